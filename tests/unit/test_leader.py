"""Leader election: the pure decision (take / keep / wait) and the election loop against an
in-memory Lease that behaves like the API server's (resourceVersion-checked updates)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from nonstop.leader import (
    LeaderElector,
    LeaseSettings,
    Move,
    Record,
    Seen,
    claim,
    decide,
    leading,
    lease_settings,
    micro_time,
    observe,
    released,
)

ME, OTHER = "nonstop-abc_1111", "nonstop-def_2222"
HELD = Record(OTHER, 15, "2026-01-01T00:00:00.000000Z", "2026-01-01T00:00:10.000000Z", 3)


# --- the decision -------------------------------------------------------------------------


def test_no_lease_is_created() -> None:
    assert decide(ME, None, None, now=0.0) is Move.CREATE


def test_the_holder_renews_whatever_the_clock() -> None:
    mine = Record(ME, 15, "a", "b", 0)
    assert decide(ME, mine, Seen(mine, 0.0), now=1000.0) is Move.RENEW


def test_a_lease_held_by_another_is_waited_for_a_whole_duration_from_when_we_saw_it() -> None:
    seen = Seen(HELD, since=100.0)
    assert decide(ME, HELD, seen, now=100.0) is Move.WAIT
    assert decide(ME, HELD, seen, now=114.9) is Move.WAIT
    assert decide(ME, HELD, seen, now=115.0) is Move.TAKE


def test_the_holders_timestamps_are_never_compared_with_our_clock() -> None:
    """A renewTime years in the past means nothing: a record we have just seen (or that
    changed since) starts its own clock, so clock skew cannot make us take a live lease."""
    assert decide(ME, HELD, None, now=1e9) is Move.WAIT
    renewed = Record(OTHER, 15, HELD.acquired, "2026-01-01T00:00:12.000000Z", 3)
    assert decide(ME, renewed, Seen(HELD, since=0.0), now=1e9) is Move.WAIT


def test_a_released_or_empty_lease_is_taken_at_once() -> None:
    gone = released(HELD, "2026-01-01T00:01:00.000000Z")
    assert gone.holder == "" and gone.duration == 1
    assert decide(ME, gone, Seen(gone, since=50.0), now=50.0) is Move.TAKE
    assert decide(ME, Record(), None, now=0.0) is Move.TAKE


def test_observe_restarts_the_clock_only_when_the_record_changes() -> None:
    first = observe(None, HELD, 10.0)
    assert observe(first, HELD, 12.0) is first
    renewed = Record(OTHER, 15, HELD.acquired, "2026-01-01T00:00:12.000000Z", 3)
    assert observe(first, renewed, 12.0) == Seen(renewed, 12.0)


def test_claims_keep_acquire_time_on_renewal_and_count_transitions_on_takeover() -> None:
    at = "2026-01-01T00:00:20.000000Z"
    assert claim(Move.CREATE, ME, None, at, 15) == Record(ME, 15, at, at, 0)
    mine = Record(ME, 15, "then", "before", 4)
    assert claim(Move.RENEW, ME, mine, at, 15) == Record(ME, 15, "then", at, 4)
    assert claim(Move.TAKE, ME, HELD, at, 15) == Record(ME, 15, at, at, 4)
    with pytest.raises(ValueError):
        claim(Move.WAIT, ME, HELD, at, 15)


def test_the_leader_stops_acting_at_the_renew_deadline() -> None:
    assert not leading(None, 5.0, 10.0)
    assert leading(100.0, 109.9, 10.0)
    assert not leading(100.0, 110.0, 10.0)


def test_record_round_trips_through_a_lease_spec() -> None:
    spec = HELD.to_spec()
    assert spec["holderIdentity"] == OTHER and spec["leaseDurationSeconds"] == 15
    assert Record.from_spec(spec) == HELD
    assert Record.from_spec(None) == Record()
    assert released(HELD, "t").to_spec()["holderIdentity"] is None  # no holder


def test_micro_time_is_rfc3339_with_microseconds_in_utc() -> None:
    assert micro_time(datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)) == "2026-05-01T12:00:00.000000Z"


def test_timings_are_checked_as_client_go_checks_them() -> None:
    with pytest.raises(ValueError):
        LeaseSettings("l", "ns", ME, lease_duration=10, renew_deadline=10)
    with pytest.raises(ValueError):
        LeaseSettings("l", "ns", ME, renew_deadline=2.3, retry_period=2)


def test_settings_from_the_environment(tmp_path: Path) -> None:
    absent = tmp_path / "absent"
    pod = {"POD_NAMESPACE": "nonstop-system", "POD_NAME": "nonstop-operator-7d9f-x2x"}
    s = lease_settings(env=pod, service_account_namespace=absent)
    assert (s.name, s.namespace) == ("nonstop-leader", "nonstop-system")
    assert s.identity.startswith("nonstop-operator-7d9f-x2x_")
    assert s.identity != lease_settings(env=pod, service_account_namespace=absent).identity
    outside = lease_settings(env={"HOSTNAME": "laptop"}, service_account_namespace=absent)
    assert outside.namespace == "default" and outside.identity.startswith("laptop_")
    sa = tmp_path / "namespace"
    sa.write_text("ops\n")
    assert lease_settings(env={}, service_account_namespace=sa).namespace == "ops"
    chosen = lease_settings("mine", "there", env=pod, service_account_namespace=absent)
    assert (chosen.name, chosen.namespace) == ("mine", "there")
    by_env = {"NONSTOP_LEASE_NAME": "l2", "NONSTOP_LEASE_NAMESPACE": "n2", **pod}
    s2 = lease_settings(env=by_env, service_account_namespace=absent)
    assert (s2.name, s2.namespace) == ("l2", "n2")


# --- the election against an in-memory Lease ------------------------------------------------


class FakeLeases:
    """One Lease as the API server keeps it: a create of an existing one is a 409, and an
    update whose resourceVersion is not the current one is a 409."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.version = 0
        self.down = False
        self.writes: list[str | None] = []

    def _check(self) -> None:
        if self.down:
            raise ApiException(status=503, reason="unavailable")

    def get(self) -> dict[str, Any] | None:
        self._check()
        return copy.deepcopy(self.lease)

    def create(self, record: Record) -> dict[str, Any]:
        self._check()
        if self.lease is not None:
            raise ApiException(status=409, reason="AlreadyExists")
        return self._store(record)

    def update(self, lease: Mapping[str, Any], record: Record) -> dict[str, Any]:
        self._check()
        assert self.lease is not None
        if lease["metadata"]["resourceVersion"] != self.lease["metadata"]["resourceVersion"]:
            raise ApiException(status=409, reason="Conflict")
        return self._store(record)

    def _store(self, record: Record) -> dict[str, Any]:
        self.version += 1
        self.lease = {"metadata": {"resourceVersion": str(self.version)}, "spec": record.to_spec()}
        self.writes.append(record.holder or None)
        return copy.deepcopy(self.lease)

    @property
    def holder(self) -> str | None:
        return Record.from_spec(self.lease["spec"]).holder if self.lease else None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def elector(identity: str, leases: FakeLeases, clock: Clock) -> LeaderElector:
    e = LeaderElector(LeaseSettings("nonstop-leader", "ns", identity), clock=clock)
    e._leases = leases  # type: ignore[assignment]
    return e


def test_two_candidates_one_leader_then_takeover_after_the_holder_dies() -> None:
    leases, clock = FakeLeases(), Clock()
    a, b = elector("a_1", leases, clock), elector("b_2", leases, clock)
    assert a.try_acquire_or_renew() and a.holds()
    assert not a.is_leader()  # passes start only once the loop has announced it
    assert not b.try_acquire_or_renew() and not b.holds()
    for _ in range(10):  # a renews every 2 s; b keeps seeing a new record, so it waits
        clock.now += 2
        assert a.try_acquire_or_renew()
        assert not b.try_acquire_or_renew()
    assert leases.holder == "a_1"

    # a is SIGKILLed: no more renewals. b waits a whole lease duration from the last change.
    clock.now += 2
    assert not b.try_acquire_or_renew()
    clock.now += 12
    assert not b.try_acquire_or_renew()
    assert not a.holds()  # a itself would have stopped acting at its renew deadline
    clock.now += 3  # 15 s after b last saw the record change
    assert b.try_acquire_or_renew() and b.holds()
    assert leases.holder == "b_2"
    assert Record.from_spec(leases.lease["spec"]).transitions == 1  # type: ignore[index]


def test_a_lost_race_is_a_conflict_not_two_leaders() -> None:
    """Both read the released lease; only the first write wins (resourceVersion)."""
    leases, clock = FakeLeases(), Clock()
    a, b = elector("a_1", leases, clock), elector("b_2", leases, clock)
    a.try_acquire_or_renew()
    a.release()
    stale = leases.get()
    assert b.try_acquire_or_renew()
    assert leases.holder == "b_2"
    leases.get = lambda: copy.deepcopy(stale)  # type: ignore[method-assign]  # a read before b's write
    assert not a.try_acquire_or_renew()
    assert not a.holds() and leases.holder == "b_2"


def test_release_hands_over_at_the_next_try() -> None:
    leases, clock = FakeLeases(), Clock()
    a, b = elector("a_1", leases, clock), elector("b_2", leases, clock)
    a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    assert a.release() and not a.holds()
    assert leases.holder == ""
    clock.now += 2
    assert b.try_acquire_or_renew() and b.holds()
    assert not a.release()  # not ours any more: nothing written
    assert leases.writes == ["a_1", None, "b_2"]


def test_the_leader_keeps_leading_through_short_api_errors_then_stops() -> None:
    leases, clock = FakeLeases(), Clock()
    a = elector("a_1", leases, clock)
    a.try_acquire_or_renew()
    leases.down = True
    for _ in range(4):
        clock.now += 2
        with pytest.raises(ApiException):
            a.try_acquire_or_renew()
    assert a.holds()  # 8 s since the last renewal
    clock.now += 2
    assert not a.holds()  # 10 s: the renew deadline
    leases.down = False
    assert a.try_acquire_or_renew() and a.holds()  # still the holder: nobody took it


def test_passes_stop_at_the_renew_deadline_even_if_the_loop_is_stuck() -> None:
    """is_leader() (the workers' gate) goes by the clock: a renewal request that hangs does
    not keep the gate open past the deadline."""
    leases, clock = FakeLeases(), Clock()
    a = elector("a_1", leases, clock)
    a.try_acquire_or_renew()
    a._tell()  # what the loop does after each attempt: announce leadership
    assert a.is_leader()
    clock.now += 9.9
    assert a.is_leader()
    clock.now += 0.1  # no renewal for 10 s, and the loop never came back to say so
    assert not a.is_leader()


def test_the_loop_calls_back_on_leading_and_on_stop_and_releases() -> None:
    leases = FakeLeases()
    calls: list[str] = []

    async def scenario() -> None:
        e = LeaderElector(
            LeaseSettings("nonstop-leader", "ns", "a_1", retry_period=0.05, renew_deadline=1),
            on_started=lambda: calls.append("started"),
            on_stopped=lambda: calls.append("stopped"),
        )
        e._leases = leases  # type: ignore[assignment]
        e.start()
        for _ in range(100):
            if calls:
                break
            await asyncio.sleep(0.02)
        assert e.is_leader()
        await asyncio.sleep(0.2)  # a few renewals
        await e.stop()
        assert not e.is_leader() and not e.holds()

    asyncio.run(scenario())
    assert calls == ["started", "stopped"]
    assert leases.holder == "" and leases.writes[0] == "a_1" and leases.writes[-1] is None
    assert len(leases.writes) >= 3


def test_the_loop_tells_when_leadership_is_lost_to_another() -> None:
    leases = FakeLeases()
    calls: list[str] = []

    async def scenario() -> None:
        e = LeaderElector(
            LeaseSettings("nonstop-leader", "ns", "a_1", retry_period=0.05, renew_deadline=1),
            on_started=lambda: calls.append("started"),
            on_stopped=lambda: calls.append("stopped"),
        )
        e._leases = leases  # type: ignore[assignment]
        e.start()
        while not calls:
            await asyncio.sleep(0.02)
        # someone takes it over (as after a long partition): a sees it at its next try
        leases.lease["spec"]["holderIdentity"] = "b_2"  # type: ignore[index]
        leases.lease["metadata"]["resourceVersion"] = "999"  # type: ignore[index]
        while len(calls) < 2:
            await asyncio.sleep(0.02)
        assert not e.is_leader()
        await e.stop()

    asyncio.run(scenario())
    assert calls == ["started", "stopped"]
    assert leases.holder == "b_2"  # not ours: not released
