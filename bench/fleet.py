"""Fleet benchmark: nonstop side by side with Argo Rollouts on the local control plane.
Prints figures; asserts nothing (timing goals never become test assertions).

    make bench-fleet                       (or: .venv/bin/python bench/fleet.py [options])

Options (each also as an environment variable; the argument wins):
    --sizes 100,500,1000     NONSTOP_FLEET_SIZES        Rollouts updated at once, one
                                                        scenario per size
    --idle 1000              NONSTOP_FLEET_IDLE         Healthy Rollouts of the idle
                                                        scenario (0: skip it)
    --idle-window 60         NONSTOP_FLEET_IDLE_WINDOW  seconds the idle cost is measured
    --controllers nonstop,argo  NONSTOP_FLEET_CONTROLLERS  which controllers, in this order
    --timeout 1800           NONSTOP_FLEET_TIMEOUT      seconds a fleet may take to become
                                                        Healthy before the scenario is
                                                        reported as timed out
    NONSTOP_BENCH_KEEP=1     keep the cluster "nonstop-fleet" afterwards

For each controller, on a fresh cluster made with an audit policy (e2e/cluster/up.sh
--audit; fresh so that neither controller inherits the other's objects or finalizers), the
controller runs alone as a process on this machine, and:

- update N: N Rollouts (2 replicas, canary steps setWeight 50 then 100, no pauses) are
  created and become Healthy; then all of their pod templates change at once (a thread
  pool patches them) and the clock runs until all are Healthy again at the new generation.
  Figures: that time; the controller's CPU seconds (utime+stime of /proc/<pid>/stat,
  waited-for children included); its peak RSS (VmHWM, reset through clear_refs before the
  update); its API requests per Rollout update (reads: get/list/watch; writes:
  create/update/patch/delete), counted in the audit log by user agent; and the per-step
  latency (see step_latencies()).
- idle M: M Rollouts created and Healthy, then a window of W seconds: the controller's API
  requests per minute, CPU seconds per minute, RSS at the end.

Each scenario has its own namespace, deleted (while the controller runs, so that it can
remove its finalizers) before the next one. Pods are KWOK's: this measures the
controllers and the Kubernetes control plane, not image pulls or application start-up.
The manifests of both controllers and their differences: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from e2e.kube import REPO, Cluster, Operator, eventually

NAME = "nonstop-fleet"
CACHE = Path(
    os.environ.get(
        "NONSTOP_CACHE", Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "nonstop"
    )
)
AUDIT_LOG = CACHE / "kwok" / "clusters" / NAME / "logs" / "audit.log"
# Our own API client's user agent, so that the audit log never mistakes the benchmark's
# polling for the controller's (nonstop's client would otherwise share the Python default).
BENCH_AGENT = "fleet-bench/1"
READS = {"get", "list", "watch"}
WRITES = {"create", "update", "patch", "delete", "deletecollection"}
# The Kubernetes controllers whose writes say that a step's pods are there: Deployment and
# ReplicaSet status, EndpointSlices.
CLUSTER_AGENT = "kube-controller-manager/"
CLUSTER_RESOURCES = {"deployments", "replicasets", "endpointslices"}
# Metadata is enough to count requests; RequestReceived would only double every line.
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
"""
NODE_PODS = 110  # pods a KWOK node takes (its allocatable)
ROLLOUT_NAME = re.compile(r"^(r\d{5})(?:[-.]|$)")


# --- the two controllers ------------------------------------------------------------------


@dataclass
class Controller:
    """What differs between the two: how it runs, its API group, the Rollout it is given,
    how it says Healthy, and how it shows in the audit log."""

    name: str
    group: str
    agents: tuple[str, ...]  # user-agent prefixes of its requests
    manifest: Callable[[str, str], dict[str, Any]]
    healthy: Callable[[dict[str, Any]], bool]
    install: Callable[[Cluster], None]
    start: Callable[[Cluster, Path], Process]


@dataclass
class Process:
    """The controller's process, whatever started it."""

    pid: int
    stop: Callable[[], None]
    alive: Callable[[], bool]


def pod_template(name: str, image: str) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": name}},
        "spec": {
            "containers": [{"name": "app", "image": image, "ports": [{"containerPort": 8080}]}]
        },
    }


CANARY_STEPS = [{"setWeight": 50}, {"setWeight": 100}]


def nonstop_manifest(name: str, image: str) -> dict[str, Any]:
    # nonstop owns the Service clients use, so it needs one (spec.service); Argo's basic
    # canary has no Service at all.
    return {
        "apiVersion": "nonstop.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": pod_template(name, image),
            "service": {"name": name, "ports": [{"port": 80, "targetPort": 8080}]},
            "strategy": {"canary": {"steps": CANARY_STEPS}},
        },
    }


def argo_manifest(name: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": pod_template(name, image),
            "strategy": {"canary": {"steps": CANARY_STEPS}},
        },
    }


def nonstop_healthy(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    return bool(
        status.get("phase") == "Healthy"
        and status.get("observedGeneration") == obj["metadata"]["generation"]
    )


def argo_healthy(obj: dict[str, Any]) -> bool:
    # Argo writes observedGeneration as a string.
    status = obj.get("status") or {}
    return bool(
        status.get("phase") == "Healthy"
        and str(status.get("observedGeneration")) == str(obj["metadata"]["generation"])
    )


def established(cluster: Cluster, crd: str) -> None:
    # kubectl wait fails at once on a CRD that has no conditions yet: retry it
    eventually(
        lambda: (
            cluster.kubectl(
                "wait", "--for=condition=Established", f"crd/{crd}", "--timeout=10s", check=False
            ).returncode
            == 0
        ),
        60,
        f"CRD {crd} Established",
    )


def nonstop_install(cluster: Cluster) -> None:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    established(cluster, "rollouts.nonstop.dev")


def nonstop_start(cluster: Cluster, log_dir: Path) -> Process:
    # Its defaults: every namespace, no leader election, 10 workers, qps 40 / burst 80.
    operator = Operator(cluster, log_dir, args=[], name="nonstop")
    operator.start()
    assert operator.proc is not None
    return Process(operator.proc.pid, operator.stop, operator.alive)


def argo_build(*args: str) -> str:
    out = subprocess.run(
        ["bash", str(REPO / "bench/argo/build.sh"), *args],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


def argo_install(cluster: Cluster) -> None:
    # (the directory also holds a kustomization.yaml, which is not an object)
    crds = sorted(Path(argo_build("--crds")).glob("*-crd.yaml"))
    files = [a for crd in crds for a in ("-f", str(crd))]
    cluster.kubectl("apply", "--server-side", "--force-conflicts", *files)
    established(cluster, "rollouts.argoproj.io")


def argo_start(cluster: Cluster, log_dir: Path) -> Process:
    binary = argo_build()
    log = (log_dir / "argo.log").open("wb")
    # Its defaults too (leader election on, as in its manifests; 10 rollout threads; qps 40 /
    # burst 80), but out of cluster; its metrics and health servers on loopback only.
    proc = subprocess.Popen(
        [
            binary,
            "--kubeconfig",
            cluster.kubeconfig,
            "--metricsPort",
            "18090",
            "--healthzPort",
            "18080",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**cluster.env(), "POD_NAMESPACE": "default"},
    )

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()

    return Process(proc.pid, stop, lambda: proc.poll() is None)


CONTROLLERS = {
    "nonstop": Controller(
        "nonstop",
        "nonstop.dev",
        # nonstop/ once its client says so; before that the Python client's default
        # (OpenAPI-Generator/<version>/python) and kopf's own watches.
        ("nonstop/", "OpenAPI-Generator/", "kopf/"),
        nonstop_manifest,
        nonstop_healthy,
        nonstop_install,
        nonstop_start,
    ),
    "argo": Controller(
        "argo",
        "argoproj.io",
        # client-go's default, from the binary's name: rollouts-controller/v0.0.0 (...)
        ("rollouts-controller/",),
        argo_manifest,
        argo_healthy,
        argo_install,
        argo_start,
    ),
}


# --- what the process costs ---------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime + cutime + cstime: all threads, and children it waited for."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text.rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state): utime..cstime are fields 14..17
    ticks = sum(int(f) for f in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def memory_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def reset_peak_rss(pid: int) -> None:
    # "5" resets VmHWM to the current RSS (proc(5)), so each scenario has its own peak.
    Path(f"/proc/{pid}/clear_refs").write_text("5")


# --- the audit log --------------------------------------------------------------------------


@dataclass
class Request:
    audit_id: str
    agent: str
    verb: str
    resource: str
    namespace: str
    name: str
    received: float
    completed: float


def timestamp(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def read_audit(start: int, end: int | None = None) -> list[Request]:
    """The requests logged between two byte offsets of the audit log, one per audit ID
    (a watch logs ResponseStarted and ResponseComplete: the last one wins)."""
    with AUDIT_LOG.open("rb") as f:
        f.seek(start)
        data = f.read() if end is None else f.read(end - start)
    requests: dict[str, Request] = {}
    for line in data.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue  # a line cut at the window's end
        ref = event.get("objectRef") or {}
        requests[event["auditID"]] = Request(
            audit_id=event["auditID"],
            agent=event.get("userAgent", ""),
            verb=event.get("verb", ""),
            resource=ref.get("resource", "")
            + ("/" + ref["subresource"] if ref.get("subresource") else ""),
            namespace=ref.get("namespace", ""),
            name=ref.get("name", ""),
            received=timestamp(event["requestReceivedTimestamp"]),
            completed=timestamp(event["stageTimestamp"]),
        )
    return list(requests.values())


def audit_offset() -> int:
    return AUDIT_LOG.stat().st_size


def by(controller: Controller, requests: list[Request]) -> list[Request]:
    return [r for r in requests if r.agent.startswith(controller.agents)]


def step_latencies(controller: Controller, requests: list[Request], namespace: str) -> list[float]:
    """Seconds from the cluster showing a change of a Rollout's pods to the controller's
    next write for that Rollout. Approximation (the audit log at level Metadata has no
    object contents, so it cannot tell which status write shows a step's pods ready): for
    each controller write for a Rollout that follows at least one kube-controller-manager
    write to that Rollout's Deployments, ReplicaSets or EndpointSlices since the
    controller's previous write, the time from the last of those cluster writes
    (stageTimestamp: committed, watchers see it) to the controller's write (received).
    Writes the controller makes on its own (a chain within one pass, a resync) are not
    counted. Objects belong to a Rollout by name: r00042, r00042-..., r00042.<event>."""
    timeline: dict[str, list[tuple[float, bool]]] = {}
    for r in requests:
        match = ROLLOUT_NAME.match(r.name)
        if r.namespace != namespace or r.verb not in WRITES or not match:
            continue
        if r.agent.startswith(CLUSTER_AGENT) and r.resource.split("/")[0] in CLUSTER_RESOURCES:
            timeline.setdefault(match[1], []).append((r.completed, True))
        elif r.agent.startswith(controller.agents):
            timeline.setdefault(match[1], []).append((r.received, False))
    latencies = []
    for events in timeline.values():
        last_cluster: float | None = None
        for at, from_cluster in sorted(events):
            if from_cluster:
                last_cluster = at
            elif last_cluster is not None:
                latencies.append(max(0.0, at - last_cluster))
                last_cluster = None
    return latencies


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


# --- the fleet ------------------------------------------------------------------------------


@dataclass
class Fleet:
    cluster: Cluster
    controller: Controller
    namespace: str
    size: int
    timeout: float
    api: Any = field(init=False)

    def __post_init__(self) -> None:
        self.api = self.cluster.api()
        self.api.user_agent = BENCH_AGENT

    def names(self) -> list[str]:
        return [f"r{i:05d}" for i in range(self.size)]

    def create(self, image: str) -> None:
        self.cluster.create_namespace(self.namespace)
        docs = [self.controller.manifest(n, image) for n in self.names()]
        # One kubectl for all: a multi-document file, created in one go.
        self.cluster.kubectl(
            "create", "-n", self.namespace, "-f", "-", input=yaml.safe_dump_all(docs)
        )

    def update(self, image: str) -> None:
        """All templates at once: 8 patches in flight, as a CI job applying a release to
        every service would."""
        objects = client.CustomObjectsApi(self.api)
        # the whole containers list: a merge patch replaces lists, it would drop the ports
        body = {"spec": {"template": {"spec": pod_template("", image)["spec"]}}}

        def patch(name: str) -> None:
            objects.patch_namespaced_custom_object(
                self.controller.group, "v1alpha1", self.namespace, "rollouts", name, body
            )

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(patch, self.names()))

    def healthy_count(self, generation: int) -> int:
        objects = client.CustomObjectsApi(self.api)
        # raw JSON: the client's own decoding of a thousand objects costs seconds
        response: Any = objects.list_namespaced_custom_object(
            self.controller.group, "v1alpha1", self.namespace, "rollouts", _preload_content=False
        )
        listing = json.loads(response.data)
        return sum(
            1
            for o in listing["items"]
            if o["metadata"]["generation"] >= generation and self.controller.healthy(o)
        )

    def wait_healthy(self, generation: int) -> tuple[float, int]:
        """Seconds until all are Healthy at `generation` or later (or the timeout), and how
        many were."""
        start = time.monotonic()
        count = 0
        while time.monotonic() - start < self.timeout:
            count = self.healthy_count(generation)
            if count == self.size:
                break
            time.sleep(1)
        return time.monotonic() - start, count

    def delete(self) -> None:
        self.cluster.kubectl("delete", "namespace", self.namespace, "--wait=false")
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            if self.cluster.kubectl("get", "namespace", self.namespace, check=False).returncode:
                return
            time.sleep(2)
        note(f"namespace {self.namespace} still there after 15 min: going on")


def note(text: str) -> None:
    print(f"[fleet {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# --- scenarios ------------------------------------------------------------------------------

Figures = dict[str, str]


def requests_figures(requests: list[Request], per: float, unit: str) -> Figures:
    reads = sum(1 for r in requests if r.verb in READS)
    writes = Counter(r.resource for r in requests if r.verb in WRITES)
    # the three resources written most, to see where the writes go
    top = ", ".join(f"{res} {n / per:.1f}" for res, n in writes.most_common(3))
    return {
        f"API requests {unit}": f"{(reads + writes.total()) / per:.1f}",
        f"  reads (get/list/watch) {unit}": f"{reads / per:.1f}",
        f"  writes {unit}": f"{writes.total() / per:.1f}",
        "  most written": top or "-",
    }


def update_scenario(
    cluster: Cluster, controller: Controller, proc: Process, size: int, timeout: float
) -> Figures:
    fleet = Fleet(cluster, controller, f"fleet-{size}", size, timeout)
    fleet.create("registry.example/web:1")
    created, count = fleet.wait_healthy(1)
    note(f"{controller.name}: {count}/{size} Rollouts created and Healthy in {created:.1f} s")
    time.sleep(5)  # let the last writes of the creation settle out of the window
    offset, cpu = audit_offset(), cpu_seconds(proc.pid)
    reset_peak_rss(proc.pid)
    start = time.time()
    fleet.update("registry.example/web:2")
    patched = time.time() - start
    took, count = fleet.wait_healthy(2)
    took += patched
    figures: Figures = {
        "created -> all Healthy (s)": f"{created:.1f}",
        "update -> all Healthy (s)": f"{took:.1f}"
        + ("" if count == size else f" ({count}/{size} Healthy: timed out)"),
        "  of which patching all (s)": f"{patched:.1f}",
        "CPU (s)": f"{cpu_seconds(proc.pid) - cpu:.1f}",
        "peak RSS (MiB)": f"{memory_kib(proc.pid, 'VmHWM') / 1024:.0f}",
    }
    requests = read_audit(offset)
    mine = by(controller, requests)
    figures |= requests_figures(mine, size, "per Rollout update")
    latencies = step_latencies(controller, requests, fleet.namespace)
    figures["step latency p50 / p99 (ms)"] = (
        f"{percentile(latencies, 50) * 1000:.0f} / {percentile(latencies, 99) * 1000:.0f}"
        f" (n={len(latencies)})"
    )
    note(f"{controller.name}: update {size}: {figures}")
    fleet.delete()
    return figures


def idle_scenario(
    cluster: Cluster,
    controller: Controller,
    proc: Process,
    size: int,
    window: float,
    timeout: float,
) -> Figures:
    fleet = Fleet(cluster, controller, f"fleet-idle-{size}", size, timeout)
    fleet.create("registry.example/web:1")
    created, count = fleet.wait_healthy(1)
    note(f"{controller.name}: {count}/{size} idle Rollouts Healthy in {created:.1f} s")
    time.sleep(10)  # the tail of the creation is not idling
    offset, cpu = audit_offset(), cpu_seconds(proc.pid)
    reset_peak_rss(proc.pid)
    time.sleep(window)
    end = audit_offset()
    minutes = window / 60
    figures: Figures = {
        "Healthy Rollouts": f"{count}/{size}",
        "CPU (s per minute)": f"{(cpu_seconds(proc.pid) - cpu) / minutes:.2f}",
        "RSS (MiB)": f"{memory_kib(proc.pid, 'VmRSS') / 1024:.0f}",
    }
    figures |= requests_figures(by(controller, read_audit(offset, end)), minutes, "per minute")
    note(f"{controller.name}: idle {size}: {figures}")
    fleet.delete()
    return figures


# --- the run --------------------------------------------------------------------------------


def cluster_up(nodes: int) -> Cluster:
    """A fresh cluster with the audit policy: down first, so each controller starts from
    the same state."""
    policy = CACHE / "fleet" / "audit-policy.yaml"
    policy.parent.mkdir(parents=True, exist_ok=True)
    policy.write_text(AUDIT_POLICY)
    cluster_down()
    up = subprocess.run(
        [
            *("bash", str(REPO / "e2e/cluster/up.sh"), "--name", NAME),
            *("--audit", str(policy), "--nodes", str(nodes)),
        ],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    return Cluster(up.stdout.strip().splitlines()[-1], CACHE / "bin")


def cluster_down() -> None:
    subprocess.run(
        ["bash", str(REPO / "e2e/cluster/down.sh"), "--name", NAME],
        check=False,
        capture_output=True,
    )


@dataclass
class Options:
    sizes: list[int]
    idle: int
    idle_window: float
    controllers: list[str]
    timeout: float


def options() -> Options:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--sizes", default=env("NONSTOP_FLEET_SIZES", "100,500,1000"))
    parser.add_argument("--idle", type=int, default=int(env("NONSTOP_FLEET_IDLE", "1000")))
    parser.add_argument(
        "--idle-window", type=float, default=float(env("NONSTOP_FLEET_IDLE_WINDOW", "60"))
    )
    parser.add_argument("--controllers", default=env("NONSTOP_FLEET_CONTROLLERS", "nonstop,argo"))
    parser.add_argument(
        "--timeout", type=float, default=float(env("NONSTOP_FLEET_TIMEOUT", "1800"))
    )
    args = parser.parse_args()
    controllers = [c.strip() for c in args.controllers.split(",") if c.strip()]
    unknown = set(controllers) - CONTROLLERS.keys()
    if unknown:
        parser.error(f"unknown controllers {sorted(unknown)}: choose from {sorted(CONTROLLERS)}")
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    return Options(sizes, args.idle, args.idle_window, controllers, args.timeout)


def nodes_for(opts: Options) -> int:
    """KWOK nodes take 110 pods each: enough for the largest fleet with both revisions'
    pods at once (at most 2 + 2 per Rollout during a canary), within up.sh's 100 nodes."""
    pods = 4 * max([*opts.sizes, opts.idle // 2, 1])
    nodes = max(3, -(-pods // NODE_PODS))
    if nodes > 100:
        note(
            f"{pods} pods need {nodes} KWOK nodes, up.sh makes at most 100: some will stay Pending"
        )
    return min(nodes, 100)


def run_controller(
    controller: Controller, opts: Options, log_dir: Path, results: dict[str, Figures]
) -> None:
    """Runs the scenarios, adding each one's figures to `results` as soon as it is done
    (so that an interrupted run still prints what it measured)."""
    cluster = cluster_up(nodes_for(opts))
    controller.install(cluster)
    proc = controller.start(cluster, log_dir)
    try:
        for size in opts.sizes:
            results[f"update {size}"] = update_scenario(
                cluster, controller, proc, size, opts.timeout
            )
        if opts.idle:
            results[f"idle {opts.idle}"] = idle_scenario(
                cluster, controller, proc, opts.idle, opts.idle_window, opts.timeout
            )
    finally:
        if not proc.alive():
            note(f"{controller.name} exited early: see its log in {log_dir}")
        proc.stop()


def table(results: dict[str, dict[str, Figures]]) -> Iterator[str]:
    """Scenarios as row groups, controllers as columns; a cell too long for a column
    (the resources written most) goes under the table instead."""
    names = list(results)
    scenarios = list(dict.fromkeys(s for r in results.values() for s in r))
    width, col = 44, 22
    notes = []
    yield " " * width + "".join(f"{n:>{col}}" for n in names)
    for scenario in scenarios:
        yield f"-- {scenario} ".ljust(width + col * len(names), "-")
        rows = list(dict.fromkeys(k for r in results.values() for k in r.get(scenario, {})))
        for row in rows:
            cells = [results[n].get(scenario, {}).get(row, "-") for n in names]
            if max(len(c) for c in cells) >= col:
                notes += [
                    f"{scenario}, {row.strip()}, {n}: {c}"
                    for n, c in zip(names, cells, strict=True)
                ]
            else:
                yield f"{row:<{width}}" + "".join(f"{c:>{col}}" for c in cells)
    yield from notes


def main() -> None:
    # SIGTERM (timeout, a CI job cancelled) still stops the controller and the cluster
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    opts = options()
    log_dir = Path(os.environ.get("TMPDIR", "/tmp")) / f"{NAME}-logs"
    log_dir.mkdir(exist_ok=True)
    results: dict[str, dict[str, Figures]] = {}
    try:
        for name in opts.controllers:
            results[name] = {}
            run_controller(CONTROLLERS[name], opts, log_dir, results[name])
    finally:
        if not os.environ.get("NONSTOP_BENCH_KEEP"):
            cluster_down()
        for line in table(results):
            print(line)


if __name__ == "__main__":
    main()
