"""Test-side access to the local control plane: kubectl as users run it, the operator as a
real process, and an EndpointSlice watcher that is independent of the operator's code."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self, TypeVar

import urllib3
import yaml
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

REPO = Path(__file__).resolve().parents[1]
REAL_NAMESPACES = "real-*"
T = TypeVar("T")


def eventually(check: Callable[[], T | None], timeout: float, what: str, every: float = 0.5) -> T:
    """Poll until check() returns something truthy. The timeout only bounds a hang; it is
    not a performance assertion (figures live in bench/)."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except AssertionError as exc:
            last = exc
        time.sleep(every)
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what}" + (f": {last}" if last else "")
    )


@dataclass
class Cluster:
    kubeconfig: str
    bin_dir: Path

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "KUBECONFIG": self.kubeconfig,
            # kubectl finds the kubectl-nonstop plugin next to this Python
            "PATH": f"{self.bin_dir}:{Path(sys.executable).parent}:{os.environ['PATH']}",
        }

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.bin_dir / "kubectl"), *args],
            input=input,
            text=True,
            capture_output=True,
            env=self.env(),
            timeout=120,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result

    def get(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", "-o", "json", *args).stdout)

    def apply(
        self, manifest: dict[str, Any] | str, namespace: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        text = manifest if isinstance(manifest, str) else yaml.safe_dump(manifest)
        return self.kubectl("apply", "-n", namespace, "-f", "-", input=text, check=check)

    def create_namespace(self, name: str) -> str:
        """A new namespace, once it takes pods: new namespaces reject pods until their
        default ServiceAccount exists."""
        self.kubectl("create", "namespace", name)
        waited = self.kubectl(
            "wait",
            "--for=jsonpath={.metadata.name}=default",
            "serviceaccount/default",
            "-n",
            name,
            "--timeout=60s",
            check=False,
        )
        if waited.returncode != 0:
            # kube-controller-manager makes it, usually within a second; once (a cold CI run
            # on 2 cores) it took over 60 s. The namespace is what the test needs, not that
            # controller's speed: make the same object it makes (AlreadyExists if it just did).
            warnings.warn(
                f"namespace {name}: no default ServiceAccount after 60 s"
                f" ({waited.stderr.strip()}); creating it",
                stacklevel=2,
            )
            made = self.kubectl("create", "serviceaccount", "default", "-n", name, check=False)
            if made.returncode != 0 and "AlreadyExists" not in made.stderr:
                raise AssertionError(f"cannot create ServiceAccount default: {made.stderr}")
        return name

    def api(self) -> client.ApiClient:
        return config.new_client_from_config(config_file=self.kubeconfig)


class Operator:
    """nonstop as a real process, with its log in a file. By default it serves every
    namespace but those of the real-node tests; `args` replaces those arguments of
    `nonstop run`, `env` adds to its environment, `name` prefixes its log files."""

    def __init__(
        self,
        cluster: Cluster,
        log_dir: Path,
        args: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        name: str = "operator",
    ) -> None:
        self.cluster = cluster
        self.log_dir = log_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        # every namespace but those of the real-node tests, where nonstop runs in a pod
        # installed by the chart (e2e/real/)
        self.args = list(args) if args is not None else [f"--namespace=!{REAL_NAMESPACES}"]
        self.extra_env = dict(env or {})
        self.name = name
        self.metrics_port: int | None = None  # a free loopback port, chosen at each start

    @property
    def metrics_url(self) -> str:
        """Where this process serves its Prometheus metrics (`nonstop run --metrics-port`)."""
        assert self.metrics_port is not None, "not started"
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}-{self.starts}.log"

    def start(self) -> None:
        self.starts += 1
        log = self.log_path.open("wb")
        # metrics on a port of its own on loopback (never the default 8090 on every
        # interface, which two processes of one test would both want)
        self.metrics_port = _free_port()
        metrics = [f"--metrics-port={self.metrics_port}", "--metrics-address=127.0.0.1"]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nonstop.cli.main", "run", *self.args, *metrics],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**self.cluster.env(), **self.extra_env},
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye, as when a node dies."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def logs(self) -> str:
        return "\n".join(
            p.read_text(errors="replace") for p in sorted(self.log_dir.glob(f"{self.name}-*.log"))
        )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class ListWatch:
    """List once, then watch from the last resourceVersion seen, resuming after every
    timeout or dropped connection, so that no change is missed; relist only when the API
    server says the version is too old (410). Subclasses say what to list and what to do
    with the objects. It shares no code with the operator."""

    _stop: threading.Event = field(default_factory=threading.Event, kw_only=True)
    _synced: threading.Event = field(default_factory=threading.Event, kw_only=True)
    _thread: threading.Thread | None = field(default=None, kw_only=True)
    error: BaseException | None = field(default=None, kw_only=True)

    def _call(self) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, str]]:
        """The client's list function, its arguments, and its selector arguments."""
        raise NotImplementedError

    def _listed(self, items: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def _changed(self, kind: str, obj: dict[str, Any]) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        call, args, selectors = self._call()
        version: str | None = None
        try:
            while not self._stop.is_set():
                if version is None:
                    listing = json.loads(call(*args, **selectors, _preload_content=False).data)
                    self._listed(listing["items"])
                    version = listing["metadata"]["resourceVersion"]
                    self._synced.set()
                try:
                    version = self._watch(call, args, selectors, version)
                except ApiException as exc:
                    if exc.status != 410:
                        raise
                    version = None
                except urllib3.exceptions.ProtocolError:
                    continue  # the connection dropped: resume from the last version seen
        except BaseException as exc:  # surfaced by stop()
            self.error = exc
            self._synced.set()

    def _watch(
        self,
        call: Callable[..., Any],
        args: tuple[Any, ...],
        selectors: dict[str, str],
        version: str,
    ) -> str:
        stream = watch.Watch()
        for event in stream.stream(
            call, *args, **selectors, resource_version=version, timeout_seconds=5
        ):
            obj = event["raw_object"]
            if event["type"] == "ERROR":
                raise ApiException(status=obj.get("code"), reason=obj.get("reason"))
            version = obj["metadata"]["resourceVersion"]
            if event["type"] != "BOOKMARK":
                self._changed(event["type"], obj)
            if self._stop.is_set():
                stream.stop()
        return version

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._synced.wait(30)
        return self

    def _join(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=15)
        if self.error:
            raise self.error


@dataclass
class ReadyEndpointWatcher(ListWatch):
    """Watches a Service's EndpointSlices and records, for as long as it runs, the smallest
    number of ready endpoints it ever saw, and which endpoints were ready when."""

    api: client.ApiClient
    namespace: str
    service: str
    counts: list[tuple[float, int]] = field(default_factory=list)
    ready_sets: list[tuple[float, frozenset[str]]] = field(default_factory=list)
    trace: list[str] = field(default_factory=list)
    _slices: dict[str, set[str]] = field(default_factory=dict)

    @property
    def minimum(self) -> int:
        return min(c for _, c in self.counts)

    @property
    def current(self) -> int:
        return self.counts[-1][1]

    def _ready(self, slice_: dict[str, Any]) -> set[str]:
        ready = set()
        for endpoint in slice_.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is not False:
                ready.add((endpoint.get("targetRef") or {}).get("name") or endpoint["addresses"][0])
        return ready

    def _record(self, what: str = "") -> None:
        ready: set[str] = set().union(*self._slices.values()) if self._slices else set()
        self.counts.append((time.monotonic(), len(ready)))
        self.ready_sets.append((time.monotonic(), frozenset(ready)))
        self.trace.append(f"{time.strftime('%H:%M:%S')} {len(ready)} {sorted(ready)} {what}")

    def _call(self) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, str]]:
        discovery = client.DiscoveryV1Api(self.api)
        selector = {"label_selector": f"kubernetes.io/service-name={self.service}"}
        return discovery.list_namespaced_endpoint_slice, (self.namespace,), selector

    def _listed(self, items: list[dict[str, Any]]) -> None:
        self._slices = {s["metadata"]["name"]: self._ready(s) for s in items}
        self._record("list")

    def _changed(self, kind: str, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        if kind == "DELETED":
            self._slices.pop(name, None)
        else:
            self._slices[name] = self._ready(obj)
        self._record(f"{kind} {name} {json.dumps(obj.get('endpoints'))}")

    def wait_for(self, ready: int, timeout: float = 60) -> None:
        """Wait until `ready` endpoints are ready, then measure from there on: a Deployment
        can report a pod available a moment before the EndpointSlice lists it as ready."""
        eventually(
            lambda: self.counts and self.current >= ready, timeout, f"{ready} ready endpoints"
        )
        self.counts = self.counts[-1:]
        self.trace.append("-- measuring from here --")

    def stop(self) -> int:
        self._join()
        return self.minimum


@dataclass
class VersionWatcher(ListWatch):
    """Records every version of one object the API server hands out, with the time it
    arrived. `list_call` is a list function of the official client; the object is picked
    by name with a field selector."""

    list_call: Callable[..., Any]
    args: tuple[Any, ...]
    name: str
    versions: list[tuple[float, dict[str, Any]]] = field(default_factory=list)

    def _call(self) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, str]]:
        return self.list_call, self.args, {"field_selector": f"metadata.name={self.name}"}

    def _listed(self, items: list[dict[str, Any]]) -> None:
        for item in items:
            self._changed("ADDED", item)

    def _changed(self, kind: str, obj: dict[str, Any]) -> None:
        seen = {v["metadata"]["resourceVersion"] for _, v in self.versions[-3:]}
        if kind != "DELETED" and obj["metadata"]["resourceVersion"] not in seen:
            self.versions.append((time.monotonic(), obj))

    def stop(self) -> list[tuple[float, dict[str, Any]]]:
        self._join()
        return self.versions
