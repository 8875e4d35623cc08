"""The feature-toggle strategy: dark first, the template rolled out, then the flag's share
widened step by step in its ConfigMap; abort to 0 at once; a broken document changes
nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from nonstop.traffic import read_flag
from tests.sim import World, rollout_raw

DOCUMENT = """{
  "$schema": "https://flagd.dev/schema/v0/flags.json",
  "flags": {
    "new-checkout": {
      "state": "ENABLED",
      "variants": {"off": false, "on": true},
      "defaultVariant": "off"
    },
    "banner":   {"state": "ENABLED", "variants": {"a": "A", "b": "B"}, "defaultVariant": "a",
                 "targeting": {"if": [{"==": [{"var": "tier"}, "gold"]}, "b"]}}
  }
}
"""
STEPS: list[dict[str, Any]] = [{"setWeight": 10}, {"pause": {}}, {"setWeight": 50}]


def toggle_world(document: str = DOCUMENT, steps: list[dict[str, Any]] = STEPS) -> World:
    strategy = {
        "featureToggle": {
            "flag": {"configMap": "flags", "key": "new-checkout", "variant": "on"},
            "steps": steps,
        }
    }
    world = World(rollout_raw(replicas=4, strategy=strategy))
    world.config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "flags", "namespace": "default", "resourceVersion": "1"},
        "data": {"flags.flagd.json": document},
    }
    return world


def weight(world: World) -> float:
    assert world.config_map is not None
    return read_flag(world.config_map["data"]["flags.flagd.json"], "new-checkout", "on").weight


def banner_text(world: World) -> str:
    assert world.config_map is not None
    text = world.config_map["data"]["flags.flagd.json"]
    return text[text.index('"banner"') :]


def test_dark_deploy_then_steps_widen_the_flag_and_nothing_else_changes() -> None:
    world = toggle_world()
    world.run_until("Paused")  # first revision deployed dark, then 10%, then the pause
    assert world.replicas_by_revision() == {world.revision: 4}
    assert weight(world) == 10
    assert world.status.flag is not None and world.status.flag.weight == 10
    assert world.status.weights is not None and world.status.weights.canary == 10
    assert banner_text(world) == DOCUMENT[DOCUMENT.index('"banner"') :]  # byte for byte

    world.set_image("web:2")  # a new template: dark again, rolled out, steps from 0
    seen = []
    for _ in range(60):
        world.step()
        world.now += timedelta(seconds=2)
        seen.append((world.status.current_step_index, weight(world)))
        if world.status.phase == "Paused" and world.status.current_revision == world.revision:
            break
    assert (None, 0) in seen  # off while the new pods rolled out
    assert world.replicas_by_revision()[world.revision] == 4
    world.request("promote")
    world.run_until("Healthy")
    assert weight(world) == 100  # after the last step, everyone
    state = read_flag(world.config_map["data"]["flags.flagd.json"], "new-checkout", "on")  # type: ignore[index]
    assert state.state == "ENABLED"
    reasons = [e.reason for h in world.history for e in h.events]
    assert "FlagUpdated" in reasons


def test_abort_sets_the_weight_to_zero_at_once_and_keeps_the_flag_enabled() -> None:
    world = toggle_world()
    world.run_until("Paused")
    assert weight(world) == 10
    world.request("abort", "conversion dropped")
    world.step()
    assert weight(world) == 0
    flag = read_flag(world.config_map["data"]["flags.flagd.json"], "new-checkout", "on")  # type: ignore[index]
    assert flag.state == "ENABLED"
    assert world.status.phase == "Degraded"
    assert world.status.abort is not None and "conversion dropped" in world.status.abort.message


def test_a_broken_document_stops_the_rollout_and_changes_nothing() -> None:
    for broken, words in [
        ('{"flags": {', "not JSON"),
        (
            '{"flags": {"other": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a"}}}',
            "new-checkout",
        ),
    ]:
        world = toggle_world(document=broken)
        decision = world.step()
        assert decision.actions == ()
        assert world.config_map is not None
        assert world.config_map["data"]["flags.flagd.json"] == broken
        stalled = world.status.condition("Stalled")
        assert stalled is not None and stalled.status == "True"
        assert stalled.reason == "FlagDocumentInvalid"
        assert words in stalled.message


def test_a_targeting_rule_someone_else_wrote_is_not_overwritten() -> None:
    theirs = DOCUMENT.replace(
        '"defaultVariant": "off"\n',
        '"defaultVariant": "off",\n      "targeting": {"if": [{"var": "beta"}, "on"]}\n',
    )
    assert theirs != DOCUMENT
    world = toggle_world(document=theirs)
    assert world.step().actions == ()
    stalled = world.status.condition("Stalled")
    assert stalled is not None and stalled.reason == "FlagDocumentInvalid"
    assert "targeting rule nonstop did not write" in stalled.message


def test_a_missing_config_map_is_reported() -> None:
    world = toggle_world()
    world.config_map = None
    world.step()
    stalled = world.status.condition("Stalled")
    assert stalled is not None and stalled.reason == "FlagDocumentNotFound"
