"""The load generator against real HTTP servers on 127.0.0.1 (no cluster), and its pure
functions on hand-made samples. Counts are exact where the servers make them so (a cap on
requests, a backend that answers by a counter); timings are only bounded, generously."""

from __future__ import annotations

import contextlib
import json
import math
import random
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

import pytest

from e2e.traffic.load import (
    BEFORE,
    UNKNOWN,
    LoadGenerator,
    Mark,
    Sample,
    counts,
    failure_kinds,
    failures,
    first_seen,
    last_seen,
    phases,
    shares,
    summary,
    window,
)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a handler stuck in a slow answer must not hold up stop()
    backend: Backend

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        self.backend.accepted(sock)
        return sock, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # connections cut by stop() are the point of some tests, not noise to print


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the pods behind the gateway
    # headers and body go out in two writes: without this, Nagle waits for the client's
    # delayed ACK, 40 ms a request
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        backend = cast(_Server, self.server).backend
        status, version, delay = backend.answer(self.headers.get("Host"))
        if delay:
            time.sleep(delay)
        body = json.dumps({"version": version, "pod": f"{version}-pod"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Version", version)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Backend:
    """Stands in for the pods behind a proxy. Versions are given in turn by a counter, and
    every ``fail_every``-th request gets a 500, so that counts are exact, not statistical.
    Without a port it takes a free one below the ephemeral range (32768-), so that a client
    retrying a stopped backend can never connect to itself on that port, and the port stays
    free to start the backend again on."""

    def __init__(
        self,
        versions: Sequence[str] = ("v1",),
        *,
        port: int | None = None,
        fail_every: int = 0,
        delay: float = 0.0,
    ) -> None:
        self.versions = tuple(versions)
        self.fail_every = fail_every
        self.delay = delay
        self.served = 0
        self.connections = 0
        self.hosts: set[str | None] = set()
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self.httpd = self._bind(port)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/version"
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def _bind(self, port: int | None) -> _Server:
        if port is not None:
            httpd = _Server(("127.0.0.1", port), _Handler)
        else:
            for _ in range(100):
                try:
                    httpd = _Server(("127.0.0.1", random.randrange(20000, 32000)), _Handler)
                    break
                except OSError:
                    continue
            else:
                raise RuntimeError("no free port in 20000-32000")
        httpd.backend = self
        return httpd

    def accepted(self, sock: socket.socket) -> None:
        with self._lock:
            self.connections += 1
            self._socks.append(sock)

    def answer(self, host: str | None) -> tuple[int, str, float]:
        with self._lock:
            i = self.served
            self.served += 1
            self.hosts.add(host)
            version = self.versions[i % len(self.versions)]
            failed = self.fail_every and i % self.fail_every == self.fail_every - 1
            return (500 if failed else 200), version, self.delay

    def set_versions(self, *versions: str) -> None:
        with self._lock:
            self.versions = versions

    def stop(self) -> None:
        """As a crashed pod: the port closes and every open connection is cut."""
        self.httpd.shutdown()
        self.httpd.server_close()
        with self._lock:
            for sock in self._socks:
                with contextlib.suppress(OSError):  # already closed by the handler
                    sock.shutdown(socket.SHUT_RDWR)
            self._socks.clear()


@pytest.fixture
def backends() -> Iterator[list[Backend]]:
    """Backends started by a test, stopped after it whatever happens."""
    started: list[Backend] = []
    yield started
    for b in started:
        b.stop()


def start(backends: list[Backend], *args: Any, **kwargs: Any) -> Backend:
    b = Backend(*args, **kwargs)
    backends.append(b)
    return b


# -- against real servers -------------------------------------------------------------------


def test_every_answer_is_counted_by_version_over_kept_alive_connections(
    backends: list[Backend],
) -> None:
    b = start(backends, ["v1", "v1", "v1", "v2"])
    load = LoadGenerator(b.url, workers=4, headers={"Host": "app.test"}, max_requests=400)
    with load:
        assert load.wait(timeout=10)
    samples = load.samples()
    assert load.stop_reason == "max_requests"
    assert len(samples) == 400 == b.served
    assert failures(samples) == []
    assert counts(samples) == {"v1": 300, "v2": 100}
    assert shares(samples) == {"v1": 0.75, "v2": 0.25}
    assert {s.pod for s in samples} == {"v1-pod", "v2-pod"}
    assert all(s.status == 200 and s.done >= s.sent for s in samples)
    assert b.hosts == {"app.test"}
    assert b.connections <= 4  # one kept-alive connection per worker


def test_without_keep_alive_every_request_has_a_connection_of_its_own(
    backends: list[Backend],
) -> None:
    b = start(backends)
    with LoadGenerator(b.url, workers=2, max_requests=50, keep_alive=False) as load:
        assert load.wait(timeout=10)
    assert failures(load.samples()) == []
    assert b.connections == 50  # what kube-proxy balances: connections, not requests


def test_a_500_is_a_failure_and_the_connection_is_kept(backends: list[Backend]) -> None:
    b = start(backends, fail_every=10)
    with LoadGenerator(b.url, workers=3, max_requests=200) as load:
        assert load.wait(timeout=10)
    failed = failures(load.samples())
    assert len(failed) == 20
    assert {(s.status, s.error) for s in failed} == {(500, None)}
    assert failure_kinds(load.samples()) == {"HTTP 500": 20}
    assert shares(load.samples()) == {"v1": 1.0}  # failures are not in the shares
    assert b.connections <= 3


def test_a_slow_answer_is_a_timeout_and_a_failure(backends: list[Backend]) -> None:
    b = start(backends, delay=1.0)
    began = time.monotonic()
    with LoadGenerator(b.url, workers=2, timeout=0.2, max_requests=4) as load:
        assert load.wait(timeout=5)
    samples = load.samples()
    assert len(samples) == 4
    assert all(s.status is None and (s.error or "").startswith("ReadTimeoutError") for s in samples)
    assert failure_kinds(samples) == {"ReadTimeoutError": 4}
    assert time.monotonic() - began < 4


def test_a_backend_that_goes_away_gives_connection_errors_and_the_load_recovers_when_it_is_back(
    backends: list[Backend],
) -> None:
    b = start(backends, ["v1"])
    with LoadGenerator(b.url, workers=2, timeout=1.0, max_duration=30) as load:
        load.wait_for_requests(50, timeout=5)
        b.stop()
        down = load.mark("backend down")
        load.wait_for_requests(20, since=down, timeout=5)
        assert load.running
        back = start(backends, ["v2"], port=b.port)
        up = load.mark("backend back")
        after = load.wait_for_requests(50, since=up, timeout=5)
        assert load.running
    assert load.stop_reason == "stopped"
    assert len(after) >= 50 and failures(after) == []
    by_label = {p.label: p for p in phases(load.samples(), load.marks())}
    assert list(by_label) == ["start", "backend down", "backend back"]
    assert by_label["start"].counts.get("v1", 0) >= 50
    assert by_label["backend down"].failures >= 20
    assert "NewConnectionError" in failure_kinds(window(load.samples(), down, up))
    assert by_label["backend back"].failures == 0
    assert by_label["backend back"].shares == {"v2": 1.0}
    assert 1 <= back.connections <= 2  # each worker on one fresh connection again


def test_marks_split_the_run_into_phases(backends: list[Backend]) -> None:
    b = start(backends, ["v1"])
    with LoadGenerator(b.url, workers=4, max_duration=30) as load:
        load.wait_for_requests(200, timeout=5)
        b.set_versions("v2")
        to_v2 = load.mark("all v2")
        load.wait_for_requests(200, since=to_v2, timeout=5)
        b.set_versions("v3")
        to_v3 = load.mark("all v3")
        last = load.wait_for_requests(200, since=to_v3, timeout=5)
    samples, marks = load.samples(), load.marks()
    split = phases(samples, marks)
    assert [p.label for p in split] == ["start", "all v2", "all v3"]
    assert [p.start for p in split] == [m.at for m in marks]
    assert sum(p.requests for p in split) == len(samples)
    # a request in flight at a switch may be answered by the next version: at most one a worker
    for phase, version in zip(split, ["v1", "v2", "v3"], strict=True):
        assert phase.requests >= 200 and phase.failures == 0
        assert phase.counts[version] >= phase.requests - 4
    assert split[-1].shares == {"v3": 1.0}  # no switch after its mark
    assert shares(last) == {"v3": 1.0}
    seen_v1, seen_v2 = last_seen(samples, "v1"), last_seen(samples, "v2")
    assert seen_v1 is not None and seen_v1.sent < to_v2.at
    assert seen_v2 is not None and seen_v2.sent < to_v3.at
    text = summary(samples, marks)
    print(text)
    header = [c.strip() for c in text.splitlines()[0].split("|")[1:-1]]
    assert header[5:8] == ["v1", "v2", "v3"]  # in order of first appearance
    assert text.splitlines()[-1] == "failures: none"
    assert [line.split("|")[1].strip() for line in text.splitlines()[2:-1]] == [
        "start",
        "all v2",
        "all v3",
        "all",
    ]


def test_the_rate_caps_requests_and_the_duration_cap_stops_it_by_itself(
    backends: list[Backend],
) -> None:
    b = start(backends)
    began = time.monotonic()
    load = LoadGenerator(b.url, workers=4, rate=40, max_duration=1.0).start()
    try:
        assert load.wait(timeout=5)
        took = time.monotonic() - began
    finally:
        load.stop()
    assert load.stop_reason == "max_duration"
    assert 0.9 <= took < 5
    assert 20 <= len(load.samples()) <= 60  # 40/s for 1 s


def test_waiting_for_more_requests_than_the_cap_allows_fails_at_once(
    backends: list[Backend],
) -> None:
    b = start(backends)
    with LoadGenerator(b.url, max_requests=10) as load:
        began = time.monotonic()
        with pytest.raises(RuntimeError, match="max_requests"):
            load.wait_for_requests(100, timeout=30)
        assert time.monotonic() - began < 10
    assert len(load.samples()) == 10


def test_waiting_for_requests_that_do_not_come_times_out(backends: list[Backend]) -> None:
    b = start(backends, delay=0.3)
    with LoadGenerator(b.url, workers=1, timeout=2.0) as load:
        with pytest.raises(TimeoutError, match="of 100 requests"):
            load.wait_for_requests(100, timeout=0.2)
        earlier = load.mark("earlier", at=time.monotonic() - 60)
        assert earlier.recorded == 0
        assert len(load.wait_for_requests(1, since=earlier, timeout=5)) >= 1


def test_a_refused_port_is_a_failure_every_time_and_never_stops_the_load() -> None:
    with socket.socket() as sock:  # a port nobody listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        with LoadGenerator(f"http://127.0.0.1:{port}/", workers=2, max_requests=30) as load:
            assert load.wait(timeout=5)
    samples = load.samples()
    assert len(samples) == 30 and len(failures(samples)) == 30
    assert set(failure_kinds(samples)) == {"NewConnectionError"}
    assert load.stop_reason == "max_requests"


@pytest.mark.parametrize(
    "kwargs",
    [{"workers": 0}, {"timeout": 0}, {"rate": 0}, {"max_requests": 0}, {"max_duration": 0}],
)
def test_nonsense_settings_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        LoadGenerator("http://127.0.0.1:1/", **kwargs)


def test_not_an_http_url_is_refused() -> None:
    with pytest.raises(ValueError):
        LoadGenerator("ftp://127.0.0.1/")


# -- pure functions on hand-made samples ----------------------------------------------------


def ok(sent: float, version: str | None = "v1") -> Sample:
    return Sample(sent, sent + 0.01, 200, version, None)


def refused(sent: float) -> Sample:
    return Sample(sent, sent + 0.001, None, None, "NewConnectionError: refused")


def http(sent: float, status: int) -> Sample:
    return Sample(sent, sent + 0.02, status, "v2", None)


RUN = [
    ok(0.5),
    ok(1.0),
    ok(1.5, "v2"),
    http(2.0, 503),
    refused(2.5),
    ok(3.0, "v2"),
    ok(3.5, None),
    ok(4.0, "v2"),
]


def test_failures_are_non_200s_and_no_answers() -> None:
    assert failures(RUN) == [http(2.0, 503), refused(2.5)]
    assert failure_kinds(RUN) == {"HTTP 503": 1, "NewConnectionError": 1}
    assert Sample(0, 1, 204, "v1", None).failed


def test_counts_and_shares_are_over_successful_answers() -> None:
    assert counts(RUN) == {"v1": 2, "v2": 3, UNKNOWN: 1}
    assert shares(RUN) == {"v1": 2 / 6, "v2": 3 / 6, UNKNOWN: 1 / 6}
    assert shares([refused(1.0)]) == {}
    assert shares([]) == {}


def test_window_is_half_open_on_the_sending_time() -> None:
    assert window(RUN, 1.0, 2.0) == [ok(1.0), ok(1.5, "v2")]
    assert window(RUN, Mark("a", 3.5), None) == [ok(3.5, None), ok(4.0, "v2")]
    assert window(RUN, None, 0.5) == []
    assert window(RUN, None, None) == RUN


def test_first_and_last_seen_ignore_failures() -> None:
    assert first_seen(RUN, "v2") == ok(1.5, "v2")
    assert last_seen(RUN, "v2") == ok(4.0, "v2")
    assert last_seen(RUN, "v1") == ok(1.0)
    assert first_seen(RUN, "v3") is None and last_seen(RUN, "v3") is None


def test_phases_run_from_mark_to_mark_in_time_order() -> None:
    marks = [Mark("step 2", 3.0), Mark("step 1", 1.2)]  # out of order on purpose
    split = phases(list(reversed(RUN)), marks)
    assert [(p.label, p.start, p.end) for p in split] == [
        (BEFORE, -math.inf, 1.2),
        ("step 1", 1.2, 3.0),
        ("step 2", 3.0, math.inf),
    ]
    assert [p.requests for p in split] == [2, 3, 3]
    assert [p.failures for p in split] == [0, 2, 0]
    assert split[0].shares == {"v1": 1.0}
    assert split[1].counts == {"v2": 1}
    assert split[2].counts == {"v2": 2, UNKNOWN: 1}
    assert split[1].latency_max == pytest.approx(0.02)
    # no sample before the first mark: no leading phase; no marks: one phase
    assert [p.label for p in phases(RUN, [Mark("start", 0.0)])] == ["start"]
    assert [p.requests for p in phases(RUN, [])] == [len(RUN)]
    empty = phases([], [Mark("start", 0.0)])
    assert [(p.requests, p.shares, p.latency_p99) for p in empty] == [(0, {}, None)]


def test_summary_is_a_table_per_phase_with_the_failures_named() -> None:
    text = summary(RUN, [Mark("start", 0.0), Mark("step 1", 2.0)])
    lines = text.splitlines()
    cells = [[c.strip() for c in line.split("|")[1:-1]] for line in lines[:-1]]
    assert cells[0] == [
        "phase",
        "at s",
        "for s",
        "requests",
        "failed",
        "v1",
        "v2",
        UNKNOWN,
        "p99 ms",
        "max ms",
    ]
    assert cells[2] == ["start", "0.0", "2.0", "3", "0", "66.7%", "33.3%", "-", "10", "10"]
    assert cells[3] == ["step 1", "2.0", "2.0", "5", "2", "-", "66.7%", "33.3%", "20", "20"]
    assert cells[4][:5] == ["all", "0.0", "4.0", "8", "2"]
    assert lines[-1] == "failures: HTTP 503 x1, NewConnectionError x1"
    assert summary([], []).splitlines()[-1] == "failures: none"
