"""A tiny Prometheus exporter that the e2e tests control.

It serves /metrics (Prometheus text format 0.0.4) on 127.0.0.1 with, per revision label:

- ``nonstop_test_requests_total{revision, code}``: a counter that grows on every scrape by
  ``requests_per_scrape`` requests, of which a fraction (``set_error_rate``) have code "500"
  and the rest code "200". Errors are carried over exactly (no sampling noise), so
  ``rate(...{code="500"}) / rate(...)`` equals the set error rate whatever the window.
- ``nonstop_test_latency_seconds{revision, pod}``: a gauge per pod (``pods`` of them per
  revision), drawn afresh on every scrape from a normal distribution around the revision's
  mean (``set_latency``), so an instant query returns one sample per pod.

    exporter = Exporter(["stable-abc", "canary-def"]).start()
    exporter.set_error_rate("canary-def", 0.2)
    exporter.set_latency("canary-def", mean=0.3, spread=0.02)
    ... f"127.0.0.1:{exporter.port}" is a scrape target ...
    exporter.stop()
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class _Revision:
    error_rate: float = 0.0
    latency_mean: float = 0.1
    latency_spread: float = 0.01
    requests_per_scrape: int = 100
    requests: int = 0  # all requests so far
    errors: int = 0  # of which code 500
    error_credit: float = 0.0  # fractional errors not yet counted


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Exporter:
    """Serves the test metrics; every setter is thread-safe and takes effect at the next scrape."""

    def __init__(
        self,
        revisions: Iterable[str] = ("stable", "canary"),
        *,
        pods: int = 3,
        requests_per_scrape: int = 100,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | None = 0,
    ) -> None:
        if pods < 1:
            raise ValueError("pods must be >= 1")
        self.pods = pods
        self.host = host
        self._port = port
        self._default_requests = requests_per_scrape
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self._revisions: dict[str, _Revision] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.scrapes = 0
        for revision in revisions:
            self._revision(revision)

    # --- control -------------------------------------------------------------------------

    def _revision(self, revision: str) -> _Revision:
        """The state of ``revision``, added (with the defaults) if it is new. Holds no lock."""
        state = self._revisions.get(revision)
        if state is None:
            state = self._revisions[revision] = _Revision(
                requests_per_scrape=self._default_requests
            )
        return state

    @property
    def revisions(self) -> list[str]:
        with self._lock:
            return list(self._revisions)

    def set_error_rate(self, revision: str, rate: float) -> None:
        """The fraction (0..1) of ``revision``'s new requests that have code 500."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"error rate must be within 0..1, not {rate}")
        with self._lock:
            self._revision(revision).error_rate = rate

    def set_latency(self, revision: str, mean: float, spread: float = 0.0) -> None:
        """Each pod's latency gauge: a normal draw with this mean and standard deviation (>= 0)."""
        if mean < 0 or spread < 0:
            raise ValueError("latency mean and spread must be >= 0")
        with self._lock:
            state = self._revision(revision)
            state.latency_mean, state.latency_spread = mean, spread

    def set_requests_per_scrape(self, revision: str, requests: int) -> None:
        """How many requests ``revision``'s counter grows by per scrape (0 = no traffic)."""
        if requests < 0:
            raise ValueError("requests per scrape must be >= 0")
        with self._lock:
            self._revision(revision).requests_per_scrape = requests

    def remove_revision(self, revision: str) -> None:
        """Stop exposing ``revision`` (its series go stale in Prometheus)."""
        with self._lock:
            self._revisions.pop(revision, None)

    def pod_names(self, revision: str) -> list[str]:
        return [f"{revision}-{i}" for i in range(self.pods)]

    # --- exposition ----------------------------------------------------------------------

    def render(self) -> str:
        """Advances the counters by one scrape and returns the exposition text."""
        with self._lock:
            self.scrapes += 1
            requests: list[str] = []
            latency: list[str] = []
            for name, state in self._revisions.items():
                new = state.requests_per_scrape
                state.error_credit += new * state.error_rate
                new_errors = min(new, math.floor(state.error_credit + 1e-9))
                state.error_credit -= new_errors
                state.requests += new
                state.errors += new_errors
                rev = _label(name)
                requests.append(
                    f'nonstop_test_requests_total{{revision="{rev}",code="200"}} '
                    f"{state.requests - state.errors}"
                )
                requests.append(
                    f'nonstop_test_requests_total{{revision="{rev}",code="500"}} {state.errors}'
                )
                for pod in self.pod_names(name):
                    value = max(0.0, self._random.gauss(state.latency_mean, state.latency_spread))
                    latency.append(
                        f'nonstop_test_latency_seconds{{revision="{rev}",pod="{_label(pod)}"}} '
                        f"{value:.6f}"
                    )
        return "\n".join(
            [
                "# HELP nonstop_test_requests_total Requests served, by revision and status code.",
                "# TYPE nonstop_test_requests_total counter",
                *requests,
                "# HELP nonstop_test_latency_seconds Current request latency of each pod.",
                "# TYPE nonstop_test_latency_seconds gauge",
                *latency,
                "",
            ]
        )

    # --- server --------------------------------------------------------------------------

    def start(self) -> Self:
        """Listens on host:port (port 0: any free one, kept for a later start) in a thread."""
        if self._server is not None:
            return self
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    body = exporter.render().encode()
                    self.send_response(200)
                    self.send_header("Content-Type", CONTENT_TYPE)
                elif path in ("/", "/healthz"):
                    body = b"ok\n"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain")
                else:
                    body = b"not found\n"
                    self.send_response(404)
                    self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = ThreadingHTTPServer((self.host, self._port), Handler)
        server.daemon_threads = True
        self._server = server
        self._port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, name=f"exporter-{self._port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops serving (scrapes then fail with connection refused); start() serves again."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("the exporter has no port before start()")
        return self._port

    @property
    def target(self) -> str:
        """host:port, as a Prometheus scrape target."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The metrics URL, http://127.0.0.1:<port>/metrics."""
        return f"http://{self.target}/metrics"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
