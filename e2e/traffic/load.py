"""A load generator that runs for a whole rollout, so that an e2e test can prove "zero failed
requests" with real requests, through a real proxy (the Traefik gateway on 127.0.0.1, or a
Service ClusterIP via kube-proxy), to real pods.

Every backend of the e2e suite answers 200 with ``{"version": "...", "pod": "..."}`` and an
``X-Version`` header, so each answer says which revision served it. The generator records
every request as a :class:`Sample`; the test marks the moments that matter (``mark("step 2:
weight 30 applied")``) and asserts on the samples with the pure functions below, which do no
I/O, so that they are unit-tested on hand-made samples and the assertions read the same in
every test::

    with LoadGenerator(f"http://127.0.0.1:{port}/", headers={"Host": "app.test"}) as load:
        step = load.mark("step 1: weight 20")
        share = shares(load.wait_for_requests(1000, since=step, timeout=120))
        ... the rollout runs ...
    assert failures(load.samples()) == []
    record_figure(summary(load.samples(), load.marks()))

Design choices, and why:

- Threads, each with its own keep-alive connection (urllib3, already a dependency): a
  rollout must not break a connection a client keeps open, and a client that opened a new
  connection per request would never see that. A worker that gets a connection error or a
  timeout records it and carries on with a fresh connection, as a real client would, so a
  blip is counted once and never ends the run.
- No retries, no redirects: a request that a retry would have hidden is a failure here.
- Times are ``time.monotonic()``, the clock the other e2e watchers use, so the samples can
  be set against, say, the moment the EndpointSlice watcher saw a pod go unready.
- Hard caps on requests and on duration (2 million, 2 hours by default): a test that forgets
  to stop it, or hangs, cannot leave it running or fill the memory.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

import urllib3
from tabulate import tabulate

UNKNOWN = "?"
"""The version of a 200 answer that named none (no ``X-Version``, no ``version`` in JSON)."""

BEFORE = "(before the first mark)"
"""The label of the phase of samples sent before the first mark."""

ERROR_TEXT_LIMIT = 300


@dataclass(frozen=True, slots=True)
class Sample:
    """One request. ``sent`` and ``done`` are ``time.monotonic()``; ``status`` is None when no
    answer came (then ``error`` says why); ``version`` is the revision that answered."""

    sent: float
    done: float
    status: int | None
    version: str | None
    error: str | None
    pod: str | None = None

    @property
    def failed(self) -> bool:
        """A non-200 answer, or none at all (connection error, timeout) is a failure: users
        would have seen it."""
        return self.error is not None or self.status != 200

    @property
    def latency(self) -> float:
        return self.done - self.sent


@dataclass(frozen=True, slots=True)
class Mark:
    """A named point in time (monotonic) that splits the run into phases. ``recorded`` is
    how many samples had been recorded then: none recorded earlier can have been sent after
    ``at``, so waiting for requests after a mark need not rescan the whole run."""

    label: str
    at: float
    recorded: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Phase:
    """The requests sent from one mark (``start``) to the next (``end``, ``math.inf`` for the
    last phase). ``counts`` and ``shares`` are over successful answers, by version."""

    label: str
    start: float
    end: float
    requests: int
    failures: int
    counts: dict[str, int]
    shares: dict[str, float]
    latency_p99: float | None
    latency_max: float | None


class LoadGenerator:
    """Sends a steady stream of GET requests to ``url`` from ``workers`` threads, optionally
    capped at ``rate`` requests per second overall, until stopped, until ``max_requests``
    requests have been sent, or until ``max_duration`` seconds have passed, whichever comes
    first. A context manager: started on enter, stopped on exit.

    ``headers`` go with every request (a ``Host`` for the gateway's route, say);
    ``keep_alive=False`` opens a new connection for every request. ``timeout``
    bounds each request; a slower answer is a failure. After a failed connection a worker
    pauses ``error_pause`` seconds so that a refused port does not spin a core (and fill the
    run with millions of identical failures) while the backend is away."""

    def __init__(
        self,
        url: str,
        *,
        workers: int = 4,
        headers: dict[str, str] | None = None,
        timeout: float = 2.0,
        rate: float | None = None,
        max_requests: int = 2_000_000,
        max_duration: float = 7200.0,
        error_pause: float = 0.01,
        keep_alive: bool = True,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        if timeout <= 0:
            raise ValueError("timeout must be > 0")
        if rate is not None and rate <= 0:
            raise ValueError("rate must be > 0 (or None: as fast as the workers go)")
        if max_requests < 1 or max_duration <= 0:
            raise ValueError("max_requests must be >= 1 and max_duration > 0")
        parsed = urllib3.util.parse_url(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.url = url
        self.workers = workers
        self.headers = {"User-Agent": "nonstop-e2e-load", **(headers or {})}
        # keep_alive=False: one TCP connection per request, which is what an L4 balancer such
        # as kube-proxy spreads (a kept-alive connection stays on the pod it first reached)
        self.keep_alive = keep_alive
        if not keep_alive:
            self.headers["Connection"] = "close"
        self.timeout = timeout
        self.rate = rate
        self.max_requests = max_requests
        self.max_duration = max_duration
        self.error_pause = error_pause
        self._path = parsed.request_uri
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._samples: list[Sample] = []
        self._marks: list[Mark] = []
        self._issued = 0
        self._next_at = 0.0
        self._deadline = math.inf
        self._running = 0
        self._stop_reason: str | None = None
        self._error: BaseException | None = None

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> Self:
        """Start the workers and mark "start"."""
        if self._threads:
            raise RuntimeError("a LoadGenerator runs once; make a new one")
        self.mark("start")
        now = time.monotonic()
        with self._cond:
            self._deadline = now + self.max_duration
            self._next_at = now
            self._running = self.workers
        for i in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"load-{i}", daemon=True)
            self._threads.append(thread)
            thread.start()
        return self

    def stop(self) -> None:
        """Stop sending and wait for the requests in flight (each bounded by ``timeout``).
        Raises what a worker died of, if one did: that is a bug here, not a failed request."""
        with self._cond:
            if self._stop_reason is None:
                self._stop_reason = "stopped"
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout + 10)
        if self._error is not None:
            raise self._error

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the generator has stopped (by a cap, or stop()); True if it has."""
        with self._cond:
            return self._cond.wait_for(lambda: self._threads != [] and self._running == 0, timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        with self._cond:
            return self._running > 0

    @property
    def stop_reason(self) -> str | None:
        """None while running; then "stopped", "max_requests" or "max_duration"."""
        with self._cond:
            return self._stop_reason

    # -- what a test reads ------------------------------------------------------------------

    def mark(self, label: str, at: float | None = None) -> Mark:
        """Record a named point in time: now, or ``at`` (monotonic) if the moment was seen by
        someone else, e.g. a watch of the route that saw the new weight."""
        with self._cond:
            now = time.monotonic()
            if at is None or at >= now:
                mark = Mark(label, now if at is None else at, len(self._samples))
            else:  # samples recorded before now may have been sent after `at`
                mark = Mark(label, at, 0)
            self._marks.append(mark)
            self._cond.notify_all()
            return mark

    def samples(self) -> list[Sample]:
        """A snapshot of the samples so far, in the order the answers came."""
        with self._cond:
            return list(self._samples)

    def marks(self) -> list[Mark]:
        with self._cond:
            return list(self._marks)

    @property
    def requests(self) -> int:
        """How many requests have been answered (or have failed) so far."""
        with self._cond:
            return len(self._samples)

    def wait_for_requests(
        self, n: int, since: Mark | float | None = None, timeout: float = 60.0
    ) -> list[Sample]:
        """Wait until ``n`` requests sent at or after ``since`` (a mark, a monotonic time, or
        the start) have completed, failed ones included, and return all those completed so
        far (at least ``n``), in order of sending: a share measured on them is one of the
        phase that began at ``since``. Raises TimeoutError after ``timeout`` seconds, and
        RuntimeError at once if the generator stops first (it will never get there)."""
        if isinstance(since, Mark):
            start, cursor = since.at, since.recorded
        else:
            start, cursor = (-math.inf if since is None else since), 0
        deadline = time.monotonic() + timeout
        found: list[Sample] = []
        with self._cond:
            while True:
                fresh = self._samples[cursor:]
                cursor += len(fresh)
                found.extend(s for s in fresh if s.sent >= start)
                if len(found) >= n:
                    return sorted(found, key=lambda s: s.sent)
                if self._threads and self._running == 0:
                    raise RuntimeError(
                        f"the load generator stopped ({self._stop_reason}) after {len(found)} of {n} requests"
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"only {len(found)} of {n} requests completed in {timeout}s ({self.url})"
                    )
                self._cond.wait(left)

    # -- the workers ------------------------------------------------------------------------

    def _pool(self) -> urllib3.HTTPConnectionPool:
        """One keep-alive connection (opened on first use); a new pool is a new connection."""
        return urllib3.connection_from_url(
            self.url,
            maxsize=1,
            block=False,
            retries=False,
            timeout=urllib3.Timeout(total=self.timeout),
            headers=self.headers,
        )

    def _reserve(self) -> float | None:
        """Take the next request's turn: when to send it (the overall rate spaces turns out
        evenly across workers), or None once a cap is reached."""
        with self._cond:
            now = time.monotonic()
            if self._stop.is_set():
                return None
            if self._issued >= self.max_requests:
                self._stop_by("max_requests")
                return None
            at = now if self.rate is None else max(now, self._next_at)
            if at >= self._deadline:
                self._stop_by("max_duration")
                return None
            self._issued += 1
            if self.rate is not None:
                self._next_at = at + 1.0 / self.rate
            return at

    def _stop_by(self, reason: str) -> None:
        if self._stop_reason is None:
            self._stop_reason = reason
        self._stop.set()

    def _work(self) -> None:
        pool = self._pool()
        try:
            while True:
                at = self._reserve()
                if at is None:
                    break
                delay = at - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    break
                sample = self._get(pool)
                with self._cond:
                    self._samples.append(sample)
                    self._cond.notify_all()
                if sample.error is not None or not self.keep_alive:
                    pool.close()  # the connection may be half-dead: start afresh
                    pool = self._pool()
                if sample.error is not None and self._stop.wait(self.error_pause):
                    break
        except BaseException as exc:  # a bug here; stop() raises it
            with self._cond:
                self._error = exc
                self._stop_by(f"crashed: {exc!r}")
        finally:
            pool.close()
            with self._cond:
                self._running -= 1
                self._cond.notify_all()

    def _get(self, pool: urllib3.HTTPConnectionPool) -> Sample:
        sent = time.monotonic()
        try:
            response = pool.urlopen(
                "GET",
                self._path,
                headers=self.headers,
                retries=False,
                redirect=False,
                assert_same_host=False,
                preload_content=True,  # read the whole body: the connection is reused
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            return Sample(sent, time.monotonic(), None, None, _describe(exc))
        done = time.monotonic()
        version, pod = _identity(response)
        return Sample(sent, done, response.status, version, None, pod)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    return f"{type(exc).__name__}: {exc}"[:ERROR_TEXT_LIMIT]


def _identity(response: urllib3.BaseHTTPResponse) -> tuple[str | None, str | None]:
    """The version and pod that answered: the header first (what a proxy passes on), then the
    JSON body. A body that is not JSON is no failure, just an answer without a pod."""
    version = response.headers.get("X-Version")
    pod = None
    try:
        body = json.loads(response.data)
    except ValueError:
        body = None
    if isinstance(body, dict):
        if version is None and isinstance(body.get("version"), str):
            version = body["version"]
        if isinstance(body.get("pod"), str):
            pod = body["pod"]
    return version, pod


# -- pure functions over samples (no I/O) ---------------------------------------------------


def failures(samples: Iterable[Sample]) -> list[Sample]:
    """The failed samples: non-200 answers, connection errors and timeouts."""
    return [s for s in samples if s.failed]


def failure_kinds(samples: Iterable[Sample]) -> dict[str, int]:
    """Failures by kind ("HTTP 503", "ProtocolError", "ReadTimeoutError", ...), most first."""
    kinds = Counter(_kind(s) for s in samples if s.failed)
    return dict(kinds.most_common())


def _kind(sample: Sample) -> str:
    if sample.error is not None:
        return sample.error.split(":", 1)[0]
    return f"HTTP {sample.status}"


def counts(samples: Iterable[Sample]) -> dict[str, int]:
    """Successful answers by version (UNKNOWN for a 200 that named none), in order of first
    appearance in ``samples``."""
    result: dict[str, int] = {}
    for s in samples:
        if not s.failed:
            key = s.version or UNKNOWN
            result[key] = result.get(key, 0) + 1
    return result


def shares(samples: Iterable[Sample]) -> dict[str, float]:
    """The fraction of the successful answers each version gave (they sum to 1, or the dict is
    empty). Failures are left out: they are asserted on separately, and a failure says
    nothing about which version would have answered."""
    by_version = counts(samples)
    total = sum(by_version.values())
    return {v: c / total for v, c in by_version.items()} if total else {}


def _time(point: Mark | float | None, default: float) -> float:
    if point is None:
        return default
    return point.at if isinstance(point, Mark) else point


def window(
    samples: Iterable[Sample], start: Mark | float | None, end: Mark | float | None
) -> list[Sample]:
    """The samples sent in [start, end); None is open-ended. A request is counted in the phase
    it was sent in: it was routed by the state of that phase."""
    lo, hi = _time(start, -math.inf), _time(end, math.inf)
    return [s for s in samples if lo <= s.sent < hi]


def first_seen(samples: Iterable[Sample], version: str) -> Sample | None:
    """The earliest-sent successful answer from ``version`` (None if it never answered)."""
    return min(
        (s for s in samples if not s.failed and s.version == version),
        default=None,
        key=lambda s: s.sent,
    )


def last_seen(samples: Iterable[Sample], version: str) -> Sample | None:
    """The latest-sent successful answer from ``version`` (None if it never answered)."""
    return max(
        (s for s in samples if not s.failed and s.version == version),
        default=None,
        key=lambda s: s.sent,
    )


def _percentile(sorted_values: Sequence[float], q: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


def phases(samples: Iterable[Sample], marks: Iterable[Mark]) -> list[Phase]:
    """Split the run at the marks: one phase per mark, from it to the next mark, plus a
    leading phase labelled BEFORE if any sample was sent before the first mark. Marks are
    taken in time order."""
    ordered = sorted(marks, key=lambda m: m.at)
    all_samples = sorted(samples, key=lambda s: s.sent)
    bounds: list[tuple[str, float, float]] = []
    if not ordered:
        bounds.append((BEFORE, -math.inf, math.inf))
    else:
        bounds.append((BEFORE, -math.inf, ordered[0].at))
        for i, m in enumerate(ordered):
            bounds.append((m.label, m.at, ordered[i + 1].at if i + 1 < len(ordered) else math.inf))
    result = []
    for label, start, end in bounds:
        part = window(all_samples, start, end)
        if label == BEFORE and ordered and not part:
            continue
        latencies = sorted(s.latency for s in part)
        result.append(
            Phase(
                label=label,
                start=start,
                end=end,
                requests=len(part),
                failures=len(failures(part)),
                counts=counts(part),
                shares=shares(part),
                latency_p99=_percentile(latencies, 0.99),
                latency_max=latencies[-1] if latencies else None,
            )
        )
    return result


def summary(samples: Sequence[Sample], marks: Sequence[Mark]) -> str:
    """A short table (GitHub markdown, so it pastes into docs/figures.md as it is) of the
    requests, failures, share per version and latency per phase, and a last line with the
    failures by kind. Times are seconds from the first mark (or the first request)."""
    ordered = sorted(samples, key=lambda s: s.sent)
    split = phases(ordered, marks)
    versions = list(counts(ordered))  # in order of first appearance: stable, then canary
    t0 = min([m.at for m in marks] + ([ordered[0].sent] if ordered else []), default=0.0)
    last = ordered[-1].sent if ordered else t0

    def row(label: str, start: float, end: float, phase: Phase) -> list[str]:
        lo = max(start, t0)
        hi = min(end, last)
        return [
            label,
            f"{lo - t0:.1f}",
            f"{max(hi - lo, 0.0):.1f}",
            str(phase.requests),
            str(phase.failures),
            *(f"{phase.shares[v]:.1%}" if v in phase.shares else "-" for v in versions),
            _ms(phase.latency_p99),
            _ms(phase.latency_max),
        ]

    rows = [row(p.label, p.start, p.end, p) for p in split]
    if len(split) > 1:
        whole = phases(ordered, [])[0]
        rows.append(row("all", -math.inf, math.inf, whole))
    headers = ["phase", "at s", "for s", "requests", "failed", *versions, "p99 ms", "max ms"]
    table = tabulate(
        rows,
        headers=headers,
        tablefmt="github",
        disable_numparse=True,
        colalign=("left", *("right" for _ in headers[1:])),
    )
    kinds = failure_kinds(ordered)
    tail = ", ".join(f"{k} x{n}" for k, n in kinds.items()) if kinds else "none"
    return f"{table}\nfailures: {tail}"


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f}"
