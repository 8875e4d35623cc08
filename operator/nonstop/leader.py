"""One writer across replicas: leader election on a coordination.k8s.io/v1 Lease.

Several operator processes (replicas of the chart's Deployment) watch the same Rollouts;
only the one that holds the Lease runs passes (workers.py asks `LeaderElector.is_leader`
right before every pass), the others wait as hot standbys. It is client-go's algorithm
(k8s.io/client-go/tools/leaderelection, leaderelection.go):

- The record lives in the Lease's spec: holderIdentity, leaseDurationSeconds, acquireTime,
  renewTime, leaseTransitions. Every write is an update of the object as read, so the API
  server refuses it (409) when someone else wrote in between (its resourceVersion).
- A candidate may take the Lease when it names nobody, or when the record has not changed
  for leaseDurationSeconds *as measured by the candidate's own clock since it first saw
  that record*: timestamps written by another machine are never compared with ours, so
  clock skew does not matter, only clock rate.
- The leader renews every retry period. It stops acting (is_leader() turns False, by the
  clock, even while a request hangs) once it has not renewed for the renew deadline, which
  is shorter than the lease duration: the difference is the time its last pass has to end
  before a standby may take over. Like client-go, this is no fencing: a pass that runs
  longer than that can overlap the next leader's first pass.
- On a clean stop the leader, after its last pass has ended, writes the Lease with no holder
  (client-go's ReleaseOnCancel, which writes holderIdentity "" and leaseDurationSeconds 1):
  a standby takes it at its next try instead of waiting for expiry. After a SIGKILL nobody
  releases, and the standby waits out the lease duration.

Timings, as client-go's core components and Argo Rollouts default them (Argo Rollouts
controller/controller.go: DefaultLeaderElect = true, LeaseDuration 15 s, RenewDeadline 10 s,
RetryPeriod 2 s, identity = hostname + "_" + a UUID "so that two processes on the same host
don't accidentally both become active"; it leaves ReleaseOnCancel false because its workers
may still run when the context is cancelled: nonstop releases only after `Workers.stop()`
has returned, which waits for every pass). Failover after a SIGKILL therefore takes about
15 s (+ up to one retry period); after a clean stop, up to one retry period.

Why not a library: the official client's `kubernetes.leaderelection` (LeaderElection with a
LeaseLock) runs blocking loops in threads with no way to stop them, calls `sys.exit` on a
bad configuration, never releases the lease, and returns for good once leadership is lost
(no new candidacy). kopf's peering (KopfPeering objects, priorities) is not a lease: replicas
of equal priority all freeze with a warning, and it needs kopf's own CRDs. What is needed is
small: the decision below is a pure function, and the I/O is three calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import structlog
from kubernetes import client
from kubernetes.client.exceptions import ApiException

log = structlog.get_logger("nonstop.leader")

LEASE_NAME = "nonstop-leader"
LEASE_DURATION = 15.0  # s: how long a standby waits, from the last change it saw, to take over
RENEW_DEADLINE = 10.0  # s: the leader stops starting passes this long after its last renewal
RETRY_PERIOD = 2.0  # s: the leader renews, a standby looks, this often
JITTER = 1.2  # standbys wait retry * [1, 1.2), as client-go's wait.JitterUntil
REQUEST_TIMEOUT = 5.0  # s, per Lease request
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


# --- the decision (pure) ------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """The election record in a Lease's spec. Times are kept as written (strings): they are
    compared for change only, never with our clock."""

    holder: str = ""
    duration: int = 0
    acquired: str | None = None
    renewed: str | None = None
    transitions: int = 0

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any] | None) -> Record:
        spec = spec or {}
        return cls(
            holder=spec.get("holderIdentity") or "",
            duration=int(spec.get("leaseDurationSeconds") or 0),
            acquired=spec.get("acquireTime"),
            renewed=spec.get("renewTime"),
            transitions=int(spec.get("leaseTransitions") or 0),
        )

    def to_spec(self) -> dict[str, Any]:
        return {
            "holderIdentity": self.holder or None,
            "leaseDurationSeconds": self.duration,
            "acquireTime": self.acquired,
            "renewTime": self.renewed,
            "leaseTransitions": self.transitions,
        }


@dataclass(frozen=True)
class Seen:
    """A record and the time (our monotonic clock) we first saw it unchanged."""

    record: Record
    since: float


class Move(StrEnum):
    CREATE = "create"  # no Lease yet: create it, naming us
    RENEW = "renew"  # we hold it: write a new renewTime
    TAKE = "take"  # nobody holds it, or its holder stopped renewing: write us in
    WAIT = "wait"  # someone else holds it and renews it


def observe(previous: Seen | None, record: Record, now: float) -> Seen:
    """The clock of a record restarts whenever it changes (any field, as client-go compares
    the whole record)."""
    if previous is not None and previous.record == record:
        return previous
    return Seen(record, now)


def decide(identity: str, record: Record | None, seen: Seen | None, now: float) -> Move:
    """May this candidate take or keep the Lease, given what it holds and since when we see
    it unchanged? `now` is on the same (monotonic) clock as `seen.since`."""
    if record is None:
        return Move.CREATE
    if record.holder == identity:
        return Move.RENEW
    if not record.holder:
        return Move.TAKE  # released on a clean stop, or never held
    if seen is None or seen.record != record:
        return Move.WAIT  # just seen: its clock starts now
    if now - seen.since >= record.duration:
        return Move.TAKE  # unchanged for a whole lease duration: its holder is gone
    return Move.WAIT


def claim(move: Move, identity: str, record: Record | None, at: str, duration: int) -> Record:
    """The record to write for a CREATE, RENEW or TAKE at wall time `at` (MicroTime)."""
    if move is Move.CREATE or record is None:
        return Record(identity, duration, at, at, 0)
    if move is Move.RENEW:
        return replace(record, duration=duration, renewed=at)
    if move is Move.TAKE:
        return Record(identity, duration, at, at, record.transitions + 1)
    raise ValueError(f"nothing to write for {move}")


def released(record: Record, at: str) -> Record:
    """What a leader writes on a clean stop (as client-go's release)."""
    return Record("", 1, at, at, record.transitions)


def leading(renewed_at: float | None, now: float, renew_deadline: float) -> bool:
    """Whether the holder may still act: it renewed (the request was sent at `renewed_at`,
    our monotonic clock) less than the renew deadline ago."""
    return renewed_at is not None and now - renewed_at < renew_deadline


def micro_time(at: datetime) -> str:
    """A Kubernetes MicroTime (RFC 3339 with microseconds, UTC)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- settings -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LeaseSettings:
    name: str
    namespace: str
    identity: str
    lease_duration: float = LEASE_DURATION
    renew_deadline: float = RENEW_DEADLINE
    retry_period: float = RETRY_PERIOD

    def __post_init__(self) -> None:  # client-go's checks, as errors rather than sys.exit
        if not self.renew_deadline < self.lease_duration:
            raise ValueError("the lease duration must be longer than the renew deadline")
        if not self.retry_period * JITTER < self.renew_deadline:
            raise ValueError("the renew deadline must be longer than retry period * 1.2")


def lease_settings(
    name: str | None = None,
    namespace: str | None = None,
    env: Mapping[str, str] | None = None,
    service_account_namespace: Path = SERVICE_ACCOUNT_NAMESPACE,
) -> LeaseSettings:
    """Lease name: the argument, NONSTOP_LEASE_NAME, or "nonstop-leader". Namespace: the
    argument, NONSTOP_LEASE_NAMESPACE, POD_NAMESPACE (the downward API), the pod's service
    account namespace, or "default" (outside a pod). Identity: the pod's name (POD_NAME,
    HOSTNAME) and a random suffix, so that two processes on one host never share one."""
    env = os.environ if env is None else env
    in_pod = ""
    with contextlib.suppress(OSError):
        in_pod = service_account_namespace.read_text().strip()
    host = env.get("POD_NAME") or env.get("HOSTNAME") or socket.gethostname()
    return LeaseSettings(
        name=name or env.get("NONSTOP_LEASE_NAME") or LEASE_NAME,
        namespace=namespace
        or env.get("NONSTOP_LEASE_NAMESPACE")
        or env.get("POD_NAMESPACE")
        or in_pod
        or "default",
        identity=f"{host}_{uuid.uuid4().hex[:10]}",
    )


# --- I/O: the Lease API and the election loop ----------------------------------------------


class _Leases:
    """Read, create and update one Lease as plain JSON over the client's connection (its
    configuration, TLS and auth), as kube/client.py does for everything else."""

    def __init__(self, api: client.ApiClient, namespace: str, name: str) -> None:
        self._api = api
        self.namespace, self.name = namespace, name
        self._path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"

    def _request(
        self, method: str, path: str, body: Mapping[str, Any] | None = None
    ) -> dict[str, Any] | None:
        url_method, url, headers, data, post = self._api.param_serialize(
            method,
            path,
            header_params={"Accept": "application/json", "Content-Type": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self._api.call_api(
            url_method, url, headers, data, post, _request_timeout=REQUEST_TIMEOUT
        )
        response.read()  # type: ignore[no-untyped-call]  # untyped in the client
        if method == "GET" and response.status == 404:
            return None
        if not 200 <= response.status < 300:
            error = ApiException(status=response.status, reason=response.reason)
            error.body = response.data.decode(errors="replace") if response.data else ""
            raise error
        result: dict[str, Any] = json.loads(response.data) if response.data else {}
        return result

    def get(self) -> dict[str, Any] | None:
        return self._request("GET", f"{self._path}/{self.name}")

    def create(self, record: Record) -> dict[str, Any]:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": record.to_spec(),
        }
        created = self._request("POST", self._path, body)
        assert created is not None
        return created

    def update(self, lease: Mapping[str, Any], record: Record) -> dict[str, Any]:
        """Write `record` over the Lease as read: its metadata.resourceVersion makes the API
        server refuse the write (409) if anyone wrote since."""
        body = {**lease, "spec": {**(lease.get("spec") or {}), **record.to_spec()}}
        updated = self._request("PUT", f"{self._path}/{self.name}", body)
        assert updated is not None
        return updated


def _nothing() -> None:
    return None


class LeaderElector:
    """Runs the election in the background (`run`), tells `is_leader()` at any moment, and
    calls on_started / on_stopped (in the event loop) when leadership begins or ends."""

    def __init__(
        self,
        settings: LeaseSettings,
        api: client.ApiClient | None = None,
        on_started: Callable[[], None] = _nothing,
        on_stopped: Callable[[], None] = _nothing,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.identity = settings.identity
        self._leases = _Leases(api or client.ApiClient(), settings.namespace, settings.name)
        self._on_started, self._on_stopped = on_started, on_stopped
        self._clock, self._wall = clock, wall
        self._seen: Seen | None = None
        self._renewed_at: float | None = None  # when our last successful write was sent
        self._told_leading = False
        self._holder: str | None = None  # the holder last seen, for the log
        self._stopping: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._log = log.bind(identity=self.identity, lease=f"{settings.namespace}/{settings.name}")

    def holds(self) -> bool:
        """Whether the lease is ours, by the clock: renewed less than the deadline ago."""
        return leading(self._renewed_at, self._clock(), self.settings.renew_deadline)

    def is_leader(self) -> bool:
        """May a pass start now? Only once leadership was announced (on_started has woken
        every Rollout) and for as long as the lease is ours by the clock, even if the
        election loop is stuck in a request."""
        return self._told_leading and self.holds()

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self.run(), name="leader-election")
        return self._task

    async def stop(self) -> None:
        """End the election; the lease is released if we hold it. Call it only once no pass
        runs any more (Workers.stop())."""
        if self._stopping is not None:
            self._stopping.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def run(self) -> None:
        self._stopping = asyncio.Event()
        self._log.info("leader election: candidate")
        while not self._stopping.is_set():
            try:
                await asyncio.to_thread(self.try_acquire_or_renew)
            except Exception as exc:  # the API server may be away: try again next period
                self._log.warning("lease request failed", error=f"{type(exc).__name__}: {exc}")
            self._tell()
            period = self.settings.retry_period
            if not self._told_leading:
                period *= random.uniform(1.0, JITTER)  # spreads the standbys out
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=period)
        if self._told_leading:
            self._told_leading = False
            self._on_stopped()
        try:
            await asyncio.to_thread(self.release)
        except Exception as exc:
            self._log.warning("lease not released", error=f"{type(exc).__name__}: {exc}")

    def _tell(self) -> None:
        now_leading = self.holds()
        if now_leading and not self._told_leading:
            self._told_leading = True
            self._log.info("leading: this process runs the passes")
            self._on_started()
        elif self._told_leading and not now_leading:
            self._told_leading = False
            self._log.warning("stopped leading: no more passes here", holder=self._holder)
            self._on_stopped()

    def try_acquire_or_renew(self) -> bool:
        """One attempt (blocking I/O, run in a thread): read the Lease, decide, write."""
        sent = self._clock()
        lease = self._leases.get()
        record = Record.from_spec(lease.get("spec")) if lease else None
        if record is not None:
            self._seen = observe(self._seen, record, sent)
            if record.holder != self._holder:
                self._holder = record.holder
                if record.holder != self.identity:
                    self._log.info("lease held by another", holder=record.holder or None)
        move = decide(self.identity, record, self._seen, sent)
        if move is Move.WAIT:
            self._renewed_at = None  # someone else holds it: we are certainly not leading
            return False
        new = claim(
            move, self.identity, record, micro_time(self._wall()), int(self.settings.lease_duration)
        )
        try:
            written = self._leases.create(new) if lease is None else self._leases.update(lease, new)
        except ApiException as exc:
            if exc.status in (409, 422):  # someone else wrote first (or created it)
                return False
            raise
        self._seen = observe(self._seen, Record.from_spec(written.get("spec")), sent)
        self._holder = self.identity
        if move is not Move.RENEW:
            self._log.info("lease taken", move=str(move), transitions=new.transitions)
        self._renewed_at = sent
        return True

    def release(self) -> bool:
        """Give the Lease up if we hold it (blocking I/O)."""
        self._renewed_at = None
        lease = self._leases.get()
        if lease is None or Record.from_spec(lease.get("spec")).holder != self.identity:
            return False
        record = Record.from_spec(lease.get("spec"))
        self._leases.update(lease, released(record, micro_time(self._wall())))
        self._log.info("lease released")
        return True
