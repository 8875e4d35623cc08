"""A real Prometheus server (Debian's package, see install.sh) for the metric-analysis e2e tests.

    binary = install_prometheus()                      # runs install.sh once, cached
    prom = PrometheusServer(binary, tmp_path, [exporter.target]).start()
    prom.address                                       # http://127.0.0.1:<port>
    prom.query('sum(rate(nonstop_test_requests_total[10s]))')
    prom.stop()                                        # SIGTERM: queries now fail (refused)
    prom.start()                                       # again, same port, same data

Everything listens on 127.0.0.1. The server's log is ``<data_dir>/prometheus.log``.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

HERE = Path(__file__).resolve().parent
INSTALL_SCRIPT = HERE / "install.sh"


class PrometheusError(RuntimeError):
    """Prometheus could not be installed or started."""


class PrometheusQueryError(RuntimeError):
    """Prometheus answered a query with an error (bad PromQL, timeout, ...)."""


def cache_dir() -> Path:
    """$NONSTOP_CACHE, else $XDG_CACHE_HOME/nonstop, else ~/.cache/nonstop (as install.sh)."""
    if os.environ.get("NONSTOP_CACHE"):
        return Path(os.environ["NONSTOP_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "nonstop"


def install_prometheus(timeout: float = 900) -> Path:
    """Runs install.sh (instant when the cache is warm) and returns the prometheus binary.

    Raises PrometheusError with the script's own error message when it fails.
    """
    try:
        done = subprocess.run(
            ["bash", str(INSTALL_SCRIPT)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise PrometheusError(f"{INSTALL_SCRIPT} did not finish in {timeout:.0f}s") from e
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise PrometheusError(
            f"{INSTALL_SCRIPT} failed (exit {done.returncode}):\n{done.stderr[-3000:]}"
        )
    return Path(lines[-1])


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


_RUNNING: weakref.WeakSet[PrometheusServer] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:  # no Prometheus outlives the test process that started it
    for server in list(_RUNNING):
        server.stop(timeout=5)


class PrometheusServer:
    """One Prometheus process on 127.0.0.1, scraping ``targets`` (host:port) every second."""

    def __init__(
        self,
        binary: str | os.PathLike[str],
        data_dir: str | os.PathLike[str],
        targets: Sequence[str],
        scrape_interval: str = "1s",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        job: str = "nonstop-test",
        extra_args: Sequence[str] = (),
        ready_timeout: float = 60.0,
    ) -> None:
        self.binary = Path(binary)
        self.data_dir = Path(data_dir)
        self.targets = list(targets)
        self.scrape_interval = scrape_interval
        self.host = host
        self.port = port
        self.job = job
        self.extra_args = list(extra_args)
        self.ready_timeout = ready_timeout
        self.config_path = self.data_dir / "prometheus.yml"
        self.log_path = self.data_dir / "prometheus.log"
        self.tsdb_path = self.data_dir / "tsdb"
        self.last_start_seconds: float | None = None  # from exec to /-/ready answering 200
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    # --- lifecycle -----------------------------------------------------------------------

    @property
    def address(self) -> str:
        if not self.port:
            raise RuntimeError("the Prometheus server has no port before start()")
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def write_config(self) -> None:
        """prometheus.yml: one job scraping the targets (JSON, which is valid YAML)."""
        config = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": self.scrape_interval,
            },
            "scrape_configs": [
                {
                    "job_name": self.job,
                    "static_configs": [{"targets": self.targets}],
                }
            ],
        }
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(json.dumps(config, indent=2) + "\n")

    def command(self) -> list[str]:
        return [
            str(self.binary),
            f"--config.file={self.config_path}",
            f"--web.listen-address={self.host}:{self.port}",
            f"--storage.tsdb.path={self.tsdb_path}",
            "--storage.tsdb.retention.time=1h",
            "--query.max-concurrency=4",
            "--web.max-connections=64",
            *self.extra_args,
        ]

    def start(self) -> Self:
        """Starts Prometheus (the same port and data on a restart) and waits for /-/ready."""
        if self.running:
            return self
        if not self.port:
            self.port = free_port(self.host)
        self.write_config()
        self._log = self.log_path.open("ab")
        self._log.write(f"--- nonstop: starting {' '.join(self.command())}\n".encode())
        self._log.flush()
        began = time.monotonic()
        try:
            self._proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
            )
        except OSError as e:
            raise PrometheusError(f"cannot run {self.binary}: {e}") from e
        _RUNNING.add(self)
        deadline = began + self.ready_timeout
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self.stop()
                raise PrometheusError(
                    f"Prometheus exited ({code}) before it was ready; "
                    f"{self.log_path}:\n{self.log_tail()}"
                )
            if self._ready():
                break
            if time.monotonic() > deadline:
                self.stop()
                raise PrometheusError(
                    f"Prometheus was not ready on {self.address} within {self.ready_timeout:.0f}s; "
                    f"{self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.05)
        self.last_start_seconds = time.monotonic() - began
        return self

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.address}/-/ready", timeout=1) as r:
                return bool(r.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM and wait (SIGKILL after ``timeout``); start() brings it back."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        _RUNNING.discard(self)
        if self._log is not None:
            self._log.close()
            self._log = None

    def set_targets(self, targets: Sequence[str]) -> None:
        """New scrape targets: rewrites the config and, when running, reloads it (SIGHUP)."""
        self.targets = list(targets)
        self.write_config()
        if self._proc is not None and self.running:
            self._proc.send_signal(signal.SIGHUP)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- HTTP API ------------------------------------------------------------------------

    def api(self, path: str, params: dict[str, str] | None = None, timeout: float = 5.0) -> Any:
        """GET /api/v1/<path> and return its ``data``.

        A stopped server raises urllib.error.URLError (reason: ConnectionRefusedError); an
        error answer (bad PromQL, ...) raises PrometheusQueryError.
        """
        url = f"{self.address}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            try:
                body = json.load(e)
            except ValueError:
                raise PrometheusQueryError(f"{url}: HTTP {e.code}") from e
        if body.get("status") != "success":
            raise PrometheusQueryError(
                f"{url}: {body.get('errorType', 'error')}: {body.get('error', body)}"
            )
        return body["data"]

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query: the result list of /api/v1/query, e.g. for a vector
        ``[{"metric": {...labels}, "value": [<unix time>, "<value>"]}, ...]``.

        A scalar or string result comes back as one element with empty ``metric``.
        """
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self.api("query", params)
        result = data["result"]
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": result}]
        return list(result)

    def values(self, promql: str) -> list[float]:
        """The sample values of an instant query (an empty list when it has no result)."""
        return [float(sample["value"][1]) for sample in self.query(promql)]

    def wait_for(
        self,
        promql: str,
        predicate: Callable[[list[dict[str, Any]]], bool],
        timeout: float = 15.0,
        interval: float = 0.25,
    ) -> list[dict[str, Any]]:
        """Queries until ``predicate(result)`` holds; returns that result, or raises
        TimeoutError with the last result seen."""
        deadline = time.monotonic() + timeout
        last: list[dict[str, Any]] = []
        while True:
            last = self.query(promql)
            if predicate(last):
                return last
            if time.monotonic() > deadline:
                raise TimeoutError(f"{promql!r} did not satisfy the check in {timeout}s: {last}")
            time.sleep(interval)

    def targets_health(self) -> dict[str, str]:
        """Each active scrape target (host:port) and its health: "up", "down" or "unknown"."""
        data = self.api("targets", {"state": "active"})
        return {
            t["labels"].get("instance", t["scrapeUrl"]): t["health"] for t in data["activeTargets"]
        }

    def wait_for_targets(self, timeout: float = 15.0) -> None:
        """Waits until every configured target has been scraped successfully.

        Prometheus 2.x hands static targets to its scrapers only ~5 s after a (re)start (an
        internal, fixed throttle of its discovery manager), so this takes ~5-6 s after start().
        """
        deadline = time.monotonic() + timeout
        while True:
            health = self.targets_health()
            if set(self.targets) <= set(health) and all(h == "up" for h in health.values()):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"scrape targets not all up after {timeout}s: {health}")
            time.sleep(0.1)
