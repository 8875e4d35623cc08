"""Traefik as a real Gateway API implementation for the e2e tests, as a process on 127.0.0.1.

    binary = build_traefik()                         # runs build.sh once, cached
    with Traefik(kubeconfig, tmp_path, binary=binary) as traefik:
        for manifest in gateway_manifests("team-a", traefik.web_port):
            ...apply it...                           # GatewayClass "traefik" + Gateway
        ...apply an HTTPRoute "web" whose parentRef is that Gateway...
        traefik.wait_route("team-a", "web")          # Traefik routes it now
        urllib.request.urlopen(traefik.url + "/")    # through the Gateway to the backends
        traefik.wait_weights("team-a", "web", {"web": 90, "web-canary": 10})

How Traefik's kubernetesgateway provider (v3.7.13) works, as read in its source
(pkg/provider/kubernetes/gateway/):
- Client: with KUBECONFIG in the environment it reads that file (newK8sClient; an in-cluster
  client wins if KUBERNETES_SERVICE_HOST/PORT are set, so those are removed here).
- GatewayClasses whose controllerName is "traefik.io/gateway-controller" are handled.
- A Gateway listener is bound to the entryPoint whose address ends with ":<listener port>"
  (entryPointName, kubernetes.go): the entryPoint "web" listens on 127.0.0.1:<web_port>
  and the Gateway's listener says port <web_port>, so the two are the same number. (An HTTP
  listener skips entryPoints with TLS.)
- Each match of rule i of HTTPRoute NS/NAME becomes a router named
  "httproute-NS-NAME-gw-GWNS-GW-ep-web-i-<hash>@kubernetesgateway" whose service is a
  weighted round robin ("<router>-wrr") of one service per backendRef,
  "<router>-svc-<namespace>-<backend>-<index>", with the backendRef's weight. The WRR is
  deterministic: 90/10 gives exactly 900/100 of 1000 requests.
- The API (--api.insecure, entryPoint "traefik") lists them: /api/http/routers,
  /api/http/services/<name> (pkg/api/handler.go); it pages at 100 items (per_page).
- Unsupported: the RequestMirror filter (that rule answers 500 while the HTTPRoute status
  still says Accepted).
"""

from __future__ import annotations

import atexit
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

HERE = Path(__file__).resolve().parent
BUILD_SCRIPT = HERE / "build.sh"
CONTROLLER_NAME = "traefik.io/gateway-controller"
PROVIDER = "kubernetesgateway"
WEB_ENTRYPOINT = "web"
GATEWAY_API = "gateway.networking.k8s.io/v1"

# Never handed to Traefik: an in-cluster client would win over KUBECONFIG, and a proxy
# would carry Traefik's requests to the backends.
_DROPPED_ENV = (
    "KUBERNETES_SERVICE_HOST",
    "KUBERNETES_SERVICE_PORT",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


class TraefikError(RuntimeError):
    """Traefik could not be built or started, or did not route as asked in time."""


def cache_dir() -> Path:
    """$NONSTOP_CACHE, else $XDG_CACHE_HOME/nonstop, else ~/.cache/nonstop (as build.sh)."""
    if os.environ.get("NONSTOP_CACHE"):
        return Path(os.environ["NONSTOP_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "nonstop"


def default_binary() -> Path:
    return cache_dir() / "bin" / "traefik"


def build_traefik(timeout: float = 3600) -> Path:
    """Runs build.sh (instant when cached; minutes when cold) and returns the binary.

    Raises TraefikError with the script's own message when it fails.
    """
    try:
        done = subprocess.run(
            ["bash", str(BUILD_SCRIPT)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise TraefikError(f"{BUILD_SCRIPT} did not finish in {timeout:.0f}s") from e
    if done.returncode != 0:
        raise TraefikError(
            f"{BUILD_SCRIPT} failed (exit {done.returncode}):\n{done.stderr[-3000:]}"
        )
    return default_binary()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _normalize(name: str) -> str:
    """Traefik's provider.Normalize: every run of non-alphanumerics becomes one '-'."""
    return "-".join(part for part in re.split(r"[^0-9A-Za-z]+", name) if part)


def gateway_manifests(
    namespace: str,
    port: int,
    *,
    gateway: str = "traefik",
    gateway_class: str = "traefik",
    listener: str = WEB_ENTRYPOINT,
) -> list[dict[str, Any]]:
    """The GatewayClass (cluster-scoped) and the Gateway in ``namespace`` that Traefik
    serves: one HTTP listener on ``port``, which must be Traefik's web_port (see the module
    docstring), taking HTTPRoutes from every namespace."""
    return [
        {
            "apiVersion": GATEWAY_API,
            "kind": "GatewayClass",
            "metadata": {"name": gateway_class},
            "spec": {"controllerName": CONTROLLER_NAME},
        },
        {
            "apiVersion": GATEWAY_API,
            "kind": "Gateway",
            "metadata": {"name": gateway, "namespace": namespace},
            "spec": {
                "gatewayClassName": gateway_class,
                "listeners": [
                    {
                        "name": listener,
                        "protocol": "HTTP",
                        "port": port,
                        "allowedRoutes": {"namespaces": {"from": "All"}},
                    }
                ],
            },
        },
    ]


_RUNNING: weakref.WeakSet[Traefik] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:  # no Traefik outlives the test process that started it
    for traefik in list(_RUNNING):
        traefik.stop(timeout=5)


class Traefik:
    """One Traefik process: entryPoint "web" on 127.0.0.1:web_port for the Gateway's
    traffic, its API on 127.0.0.1:api_port, the kubernetesgateway provider reading the
    cluster through ``kubeconfig``; its log is ``<workdir>/traefik.log``."""

    def __init__(
        self,
        kubeconfig: str | os.PathLike[str],
        workdir: str | os.PathLike[str],
        *,
        binary: str | os.PathLike[str] | None = None,
        host: str = "127.0.0.1",
        web_port: int = 0,
        api_port: int = 0,
        namespaces: Sequence[str] = (),
        log_level: str = "INFO",
        extra_args: Sequence[str] = (),
        ready_timeout: float = 60.0,
    ) -> None:
        self.kubeconfig = Path(kubeconfig)
        self.workdir = Path(workdir)
        self.binary = Path(binary) if binary is not None else default_binary()
        self.host = host
        self.web_port = web_port
        self.api_port = api_port
        self.namespaces = list(namespaces)  # watched namespaces; empty: all
        self.log_level = log_level
        self.extra_args = list(extra_args)
        self.ready_timeout = ready_timeout
        self.log_path = self.workdir / "traefik.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    # --- lifecycle -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Where the Gateway's HTTP listener answers."""
        if not self.web_port:
            raise RuntimeError("Traefik has no port before start()")
        return f"http://{self.host}:{self.web_port}"

    @property
    def api_url(self) -> str:
        if not self.api_port:
            raise RuntimeError("Traefik has no port before start()")
        return f"http://{self.host}:{self.api_port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def command(self) -> list[str]:
        args = [
            str(self.binary),
            f"--entryPoints.{WEB_ENTRYPOINT}.address={self.host}:{self.web_port}",
            "--providers.kubernetesgateway=true",
            # the API on its own entryPoint; without an address it would be :8080, all
            # interfaces. The dashboard is off: its files are not in the module zip.
            "--api.insecure=true",
            "--api.dashboard=false",
            f"--entryPoints.traefik.address={self.host}:{self.api_port}",
            "--global.checkNewVersion=false",
            "--global.sendAnonymousUsage=false",
            f"--log.level={self.log_level}",
            "--log.noColor=true",  # the log is a file
        ]
        if self.namespaces:
            args.append(f"--providers.kubernetesgateway.namespaces={','.join(self.namespaces)}")
        return [*args, *self.extra_args]

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
        env["KUBECONFIG"] = str(self.kubeconfig)
        return env

    def start(self) -> Self:
        """Starts Traefik (the same ports on a restart) and waits until its API answers."""
        if self.running:
            return self
        if not self.binary.is_file():
            raise TraefikError(f"no Traefik binary at {self.binary}: run {BUILD_SCRIPT} first")
        if not self.web_port:
            self.web_port = free_port(self.host)
        if not self.api_port:
            self.api_port = free_port(self.host)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._log.write(f"--- nonstop: starting {' '.join(self.command())}\n".encode())
        self._log.flush()
        try:
            self._proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=self.env(),
            )
        except OSError as e:
            raise TraefikError(f"cannot run {self.binary}: {e}") from e
        _RUNNING.add(self)
        deadline = time.monotonic() + self.ready_timeout
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self.stop()
                raise TraefikError(
                    f"Traefik exited ({code}) before its API answered; "
                    f"{self.log_path}:\n{self.log_tail()}"
                )
            try:
                self.api("/api/version")
                return self
            except (OSError, TraefikError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise TraefikError(
                    f"Traefik's API did not answer within {self.ready_timeout:.0f}s; "
                    f"{self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if Traefik is still there after ``timeout`` seconds."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None
        _RUNNING.discard(self)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # --- API -----------------------------------------------------------------------------

    def api(self, path: str) -> Any:
        """GET on Traefik's API, decoded; TraefikError on an HTTP error status."""
        return self._get(path)[0]

    def _get(self, path: str) -> tuple[Any, int]:
        """The decoded answer and its X-Next-Page header: the next page's number, or 1 on
        the last page (it wraps around, pkg/api/criterion.go)."""
        try:
            with urllib.request.urlopen(self.api_url + path, timeout=5) as response:
                return json.load(response), int(response.headers.get("X-Next-Page") or 0)
        except urllib.error.HTTPError as e:
            raise TraefikError(f"Traefik API {path}: HTTP {e.code}") from e

    def routers(self, namespace: str, route: str) -> list[dict[str, Any]]:
        """Traefik's routers for HTTPRoute ``namespace``/``route``, whatever its Gateway
        (one per match of each rule; their ``rule`` field holds the match)."""
        prefix = f"httproute-{_normalize(namespace)}-{_normalize(route)}-gw-"
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            query = urllib.parse.urlencode({"search": prefix, "per_page": 100, "page": page})
            routers, next_page = self._get(f"/api/http/routers?{query}")
            found += [
                r
                for r in routers
                if r.get("provider") == PROVIDER and str(r.get("name", "")).startswith(prefix)
            ]
            if next_page <= page:
                return found
            page = next_page

    def wait_route(
        self, namespace: str, route: str, *, routers: int = 1, timeout: float = 30.0
    ) -> list[dict[str, Any]]:
        """Waits until Traefik has at least ``routers`` enabled routers for the HTTPRoute
        (one per match of each rule), i.e. until requests to ``url`` reach its backends."""
        deadline = time.monotonic() + timeout
        found: list[dict[str, Any]] = []
        while True:
            if not self.running:
                raise TraefikError(f"Traefik is not running; {self.log_path}:\n{self.log_tail()}")
            found = self.routers(namespace, route)
            if sum(r.get("status") == "enabled" for r in found) >= routers:
                return found
            if time.monotonic() > deadline:
                raise TraefikError(
                    f"Traefik has {len(found)} router(s) for HTTPRoute {namespace}/{route} after "
                    f"{timeout:.0f}s, not {routers} enabled: {found}; is the route Accepted by the "
                    f"Gateway? {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def weights(self, namespace: str, route: str, rule: int = 0) -> dict[str, int]:
        """The backend weights Traefik applies to rule ``rule`` of the HTTPRoute, by
        backend Service name ("<namespace>-<name>" for a backend in another namespace),
        read from the rule's first router; {} while Traefik has no router for it."""
        for router in self.routers(namespace, route):
            name = str(router["name"]).removesuffix(f"@{PROVIDER}")
            if not re.search(rf"-ep-.+-{rule}-[0-9a-f]+$", name):
                continue
            service = str(router.get("service", "")).removesuffix(f"@{PROVIDER}")
            if not service.endswith("-wrr"):
                return {}  # an internal or error service, no weights
            info = self.api(f"/api/http/services/{urllib.parse.quote(service)}@{PROVIDER}")
            result: dict[str, int] = {}
            for backend in info.get("weighted", {}).get("services", []):
                # "<router>-svc-<backend namespace>-<backend name>-<index>"
                child = str(backend["name"]).removesuffix(f"@{PROVIDER}")
                key = re.sub(r"-\d+$", "", child.removeprefix(f"{name}-svc-"))
                key = key.removeprefix(f"{namespace}-")
                result[key] = int(backend.get("weight", 1))
            return result
        return {}

    def wait_weights(
        self,
        namespace: str,
        route: str,
        weights: Mapping[str, int],
        *,
        rule: int = 0,
        timeout: float = 30.0,
    ) -> None:
        """Waits until Traefik applies exactly ``weights`` (backend name -> weight) to rule
        ``rule`` of the HTTPRoute, e.g. after a patch of the route."""
        deadline = time.monotonic() + timeout
        while True:
            seen = self.weights(namespace, route, rule)
            if seen == dict(weights):
                return
            if time.monotonic() > deadline:
                raise TraefikError(
                    f"Traefik routes rule {rule} of HTTPRoute {namespace}/{route} with weights "
                    f"{seen} after {timeout:.0f}s, not {dict(weights)}; "
                    f"{self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.1)
