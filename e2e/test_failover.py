"""Two operator replicas, one Lease: the holder runs every pass, the other stands by and does
not write; SIGKILL the holder in the middle of a canary and the standby takes the Lease and
finishes the rollout within its bounds. A clean stop hands the Lease over at once."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from e2e.conftest import record_figure
from e2e.kube import Cluster, Operator, ReadyEndpointWatcher, VersionWatcher, eventually
from e2e.manifests import rollout
from e2e.test_rolling import PodCounter, set_image, status, wait_ready

LEASE = "nonstop-leader"
REPLICAS = 4
MAX_PODS = REPLICAS + 1  # each step moves 25% of 4 pods: one canary pod more at a time
STEPS: list[dict[str, Any]] = [
    {"setWeight": 25},
    {"pause": {"duration": "5s"}},
    {"setWeight": 50},
    {"pause": {"duration": "5s"}},
    {"setWeight": 75},
    {"pause": {"duration": "5s"}},
]


def records(op: Operator) -> list[dict[str, Any]]:
    """The operator's own (structlog, JSON) log records; kopf's plain lines are left out. A
    record is one write, but another stream's line may follow it before its newline."""
    out = []
    decoder = json.JSONDecoder()
    for line in op.logs().splitlines():
        if line.startswith("{"):
            with contextlib.suppress(json.JSONDecodeError):
                out.append(decoder.raw_decode(line)[0])
    return out


def logged(op: Operator, event: str, **fields: str) -> list[dict[str, Any]]:
    return [
        r
        for r in records(op)
        if r["event"] == event and all(r.get(k) == v for k, v in fields.items())
    ]


def at(record: dict[str, Any]) -> float:
    return datetime.fromisoformat(record["timestamp"]).timestamp()


def holder(lease: dict[str, Any]) -> str:
    return (lease.get("spec") or {}).get("holderIdentity") or ""


@dataclass
class Replicas:
    """Two `nonstop run --leader-elect` processes on one Lease, and a watch of that Lease
    that records every version the API server hands out, with its arrival time."""

    cluster: Cluster
    namespace: str
    log_dir: Path
    ops: dict[str, Operator]
    leases: VersionWatcher

    def identity(self, op: Operator) -> str:
        """The identity of the op's current process (each start draws a new one)."""

        def candidate() -> str | None:
            found = logged(op, "leader election: candidate")
            return str(found[-1]["identity"]) if len(found) == op.starts else None

        return eventually(candidate, 60, f"{op.name} to stand as a candidate")

    def holder(self) -> str:
        return holder(self.leases.versions[-1][1]) if self.leases.versions else ""

    def wait_holder(self, identity: str, timeout: float = 90) -> float:
        """Wait until `identity` holds the Lease; when it took it (monotonic)."""
        eventually(lambda: self.holder() == identity, timeout, f"{identity} to hold the Lease")
        return next(t for t, v in self.leases.versions if holder(v) == identity)

    def leader_and_standby(self) -> tuple[Operator, Operator]:
        ids = {self.identity(op): op for op in self.ops.values()}
        first: str = eventually(
            lambda: self.holder() if self.holder() in ids else None, 60, "a lease holder"
        )
        leader = ids[first]
        return leader, next(op for op in self.ops.values() if op is not leader)


@pytest.fixture
def replicas(
    cluster: Cluster,
    operator: Operator,
    namespace: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[Replicas]:
    # The session's operator serves every namespace: it is stopped for this test, so that
    # the two replicas are the only writers here. It is back for the next tests.
    was_running = operator.alive()
    operator.stop()
    ops = {}
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        ops[name] = Operator(
            cluster,
            tmp_path / name,
            # as the chart runs it (leader election on), serving the test namespace, with its
            # Lease there; JSON logs at debug level, so that every pass is in the log
            args=[
                f"--namespace={namespace}",
                "--leader-elect",
                f"--lease-namespace={namespace}",
                "--json-logs",
                "--verbose",
            ],
            # block-buffered stdout: each JSON record in one write (print + flush), not two
            env={"POD_NAME": f"nonstop-{name}", "PYTHONUNBUFFERED": ""},
            name=name,
        )
    leases = VersionWatcher(
        list_call=client.CoordinationV1Api(cluster.api()).list_namespaced_lease,
        args=(namespace,),
        name=LEASE,
    ).start()
    try:
        for op in ops.values():
            op.start()
        yield Replicas(cluster, namespace, tmp_path, ops, leases)
        call = getattr(request.node, "rep_call", None)
        if call is not None and call.failed:
            for op in ops.values():
                print(f"\n--- replica {op.name} log (last 60 lines) ---")
                print("\n".join(op.logs().splitlines()[-60:]))
    finally:
        for op in ops.values():
            op.stop()
        leases.stop()
        if was_running:
            operator.start()


def test_the_standby_takes_over_a_canary_when_the_leader_is_killed(
    cluster: Cluster,
    namespace: str,
    replicas: Replicas,
    watch_endpoints: Callable[[int], ReadyEndpointWatcher],
) -> None:
    leader, standby = replicas.leader_and_standby()
    leader_id, standby_id = replicas.identity(leader), replicas.identity(standby)

    manifest = rollout(replicas=REPLICAS)
    manifest["spec"]["strategy"] = {"canary": {"steps": STEPS}}
    cluster.apply(manifest, namespace)
    stable = wait_ready(cluster, namespace)
    pods = PodCounter(cluster, namespace, "app=web").start()
    endpoints = watch_endpoints(REPLICAS)

    set_image(cluster, namespace, "registry.example/web:2")
    # past the first pause (setWeight 50 moves pods, or its 5 s pause holds): mid-canary
    eventually(
        lambda: (status(cluster, namespace).get("currentStepIndex") or 0) >= 2,
        120,
        "step index 2 or later",
        every=0.2,
    )
    killed_at, killed_mono = time.time(), time.monotonic()
    leader.kill()
    taken_mono = replicas.wait_holder(standby_id)
    done = wait_ready(cluster, namespace, timeout=300)
    healthy_after = time.time() - killed_at
    minimum, most = endpoints.stop(), pods.stop()

    # the rollout finished, by the standby, within its bounds
    assert done["phase"] == "Healthy"
    assert done["stableRevision"] == done["currentRevision"] != stable["currentRevision"]
    assert minimum >= REPLICAS, "\n".join(endpoints.trace)
    assert most <= MAX_PODS

    # one holder at a time: the leader until the kill, then the standby
    holders = [(t, holder(v)) for t, v in replicas.leases.versions]
    assert {h for t, h in holders if t < killed_mono} == {leader_id}
    assert {h for t, h in holders if t >= taken_mono} == {standby_id}

    # the logs: the leader ran the passes until it died; the standby named the leader, ran
    # no pass while it stood by, then led from after the kill
    assert logged(leader, "pass") and logged(leader, "leading: this process runs the passes")
    assert logged(standby, "lease held by another", holder=leader_id)
    (leading,) = logged(standby, "leading: this process runs the passes")
    assert at(leading) > killed_at
    assert all(at(r) >= at(leading) for r in logged(standby, "pass"))
    first_pass = logged(standby, "first pass as leader")[0]

    lease_taken = taken_mono - killed_mono
    led, passed = at(leading) - killed_at, at(first_pass) - killed_at
    record_figure(
        f"operator failover, 2 replicas, leader SIGKILLed mid-canary (lease 15 s, retry 2 s):"
        f" lease taken after {lease_taken:.1f} s (standby's log: {led:.1f} s), first pass of"
        f" the new leader after {passed:.1f} s, Healthy {healthy_after:.1f} s after the kill;"
        f" min ready endpoints {minimum}, max pods {most}"
    )
    assert 0 <= passed - led < 5  # the new leader woke the Rollout at once


def test_a_clean_stop_hands_the_lease_over_at_once(
    cluster: Cluster, namespace: str, replicas: Replicas
) -> None:
    leader, standby = replicas.leader_and_standby()
    standby_id = replicas.identity(standby)
    cluster.apply(rollout(replicas=2), namespace)
    first = wait_ready(cluster, namespace)
    eventually(
        lambda: logged(standby, "lease held by another"), 60, "the standby to see the holder"
    )

    stopped_mono = time.monotonic()
    leader.stop()  # SIGTERM: the passes end, then the Lease is released
    handover = replicas.wait_holder(standby_id, timeout=60) - stopped_mono
    assert logged(leader, "lease released")
    record_figure(f"operator handover on a clean stop (SIGTERM, Lease released): {handover:.1f} s")
    assert handover < 10, "the Lease was not released: the standby waited for it to expire"

    # the new leader carries out what comes next
    set_image(cluster, namespace, "registry.example/web:2")
    second = wait_ready(cluster, namespace)
    assert second["currentRevision"] != first["currentRevision"]
    assert status(cluster, namespace)["phase"] == "Healthy"
    assert logged(standby, "first pass as leader")
