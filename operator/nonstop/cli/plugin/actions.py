"""What the plugin changes: RolloutActions (abort, retry, pause, resume, promote,
promote-full, undo: created, then nonstop's answer awaited), and the Rollout's pod template
(`set image`, `restart`), as `kubectl set image` and `kubectl rollout restart` do for a
Deployment."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import click
from kubernetes.client.exceptions import ApiException

from nonstop.api import GROUP, KIND, VERSION
from nonstop.api.action import ACTION_KIND
from nonstop.cli.plugin.errors import FAILED, INTERRUPTED, OK, PluginError, TimedOutError, doing
from nonstop.kube.client import Kube
from nonstop.plan.model import ROLLOUT_LABEL

ROLLOUTS = f"rollouts.{GROUP}"
ACTIONS = f"rolloutactions.{GROUP}"
# What `kubectl rollout restart` writes into a Deployment's pod template (kubectl's
# polymorphichelpers/objectrestarter.go): a new template, so a new revision, same pods.
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
TEMPLATE_RETRIES = 3  # re-read and retry when the spec changed between our read and write

VERBS = {
    "abort": "abort",
    "retry": "retry",
    "pause": "pause",
    "resume": "resume",
    "promote": "promote",
    "promote-full": "promoteFull",
    "undo": "undo",
}
HELP = {
    "abort": "Roll back to the stable revision now (records the reason).",
    "retry": "Start an aborted revision again from its first step.",
    "pause": "Hold the rollout where it is (until resume).",
    "resume": "Release a hold set by pause.",
    "promote": "End the current step (canary) or switch now (blue-green).",
    "promote-full": "Skip all remaining steps.",
    "undo": "Put the previous revision's pod template back.",
}


def action_body(rollout: Mapping[str, Any], verb: str, reason: str | None) -> dict[str, Any]:
    """The RolloutAction for `verb` on this Rollout (as read from the API server). Owned by
    the Rollout, so that it is garbage-collected with it, and labelled with its name, so that
    `kubectl get rolloutactions -l nonstop.dev/rollout=NAME` lists a Rollout's actions."""
    meta = rollout["metadata"]
    spec: dict[str, Any] = {"rollout": meta["name"], "action": VERBS[verb]}
    if reason:
        spec["reason"] = reason
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": ACTION_KIND,
        "metadata": {
            "generateName": f"{meta['name']}-{verb}-",
            "labels": {ROLLOUT_LABEL: meta["name"]},
            "ownerReferences": [
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": KIND,
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": False,
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "spec": spec,
    }


def get_rollout(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    """The Rollout, or PluginError (exit 1) naming what is missing or forbidden."""
    with doing("get", ROLLOUTS, namespace, name):
        rollout = kube.get_rollout(namespace, name)
    if rollout is None:
        raise PluginError(f"Rollout {name} not found in namespace {namespace}")
    return rollout


def act(
    kube: Kube,
    namespace: str,
    rollout: str,
    verb: str,
    reason: str | None,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Create a RolloutAction and wait for nonstop to answer it: 0 Applied, 1 Rejected,
    4 no answer within `timeout` seconds."""
    target = get_rollout(kube, namespace, rollout)
    with doing("create", ACTIONS, namespace):
        created = kube.create_action(namespace, action_body(target, verb, reason))
    name = created["metadata"]["name"]
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with doing("get", ACTIONS, namespace, name):
                action = kube.get_action(namespace, name) or {}
            status = action.get("status") or {}
            if status.get("phase") in ("Applied", "Rejected"):
                click.echo(f"rolloutaction/{name} {status['phase']}: {status.get('message', '')}")
                return OK if status["phase"] == "Applied" else FAILED
            sleep(0.5)
    except KeyboardInterrupt:
        click.echo(
            f"interrupted: rolloutaction/{name} was created; nonstop will still answer it"
            f" (kubectl get rolloutaction {name} -n {namespace})",
            err=True,
        )
        return INTERRUPTED
    raise TimedOutError(
        f"rolloutaction/{name} created; nonstop has not answered within {timeout:g}s"
        " (is the operator running, and watching this namespace?)"
    )


def parse_images(pairs: Sequence[str]) -> dict[str, str]:
    """CONTAINER=IMAGE arguments (`*` for every container), as `kubectl set image`."""
    images: dict[str, str] = {}
    for pair in pairs:
        container, sep, image = pair.partition("=")
        if not sep or not container or not image or image != image.strip():
            raise click.BadParameter(
                f"{pair!r}: expected CONTAINER=IMAGE (or *=IMAGE for every container)",
                param_hint="CONTAINER=IMAGE",
            )
        images[container] = image
    return images


def with_images(template: Mapping[str, Any], images: Mapping[str, str]) -> dict[str, Any]:
    """The pod template with the images set; containers and initContainers, as kubectl.
    PluginError when a named container is not in it."""
    changed = copy.deepcopy(dict(template))
    spec = changed.setdefault("spec", {})
    names = [c.get("name") for key in ("containers", "initContainers") for c in spec.get(key) or []]
    missing = sorted(set(images) - {"*"} - set(names))
    if missing:
        raise PluginError(
            f"no container named {', '.join(missing)} in the Rollout's pod template"
            f" (containers: {', '.join(str(n) for n in names)})"
        )
    for key in ("containers", "initContainers"):
        for container in spec.get(key) or []:
            image = images.get(container.get("name"), images.get("*"))
            if image is not None:
                container["image"] = image
    return changed


def with_restart(template: Mapping[str, Any], at: datetime) -> dict[str, Any]:
    """The pod template with kubectl's restartedAt annotation set to `at` (RFC 3339)."""
    changed = copy.deepcopy(dict(template))
    metadata = changed.setdefault("metadata", {})
    annotations = metadata.get("annotations") or {}
    metadata["annotations"] = {
        **annotations,
        RESTARTED_AT: at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return changed


def change_template(
    kube: Kube,
    namespace: str,
    name: str,
    change: Callable[[Mapping[str, Any]], dict[str, Any]],
) -> bool:
    """Write change(spec.template) to the Rollout, only if the spec is still the one read
    (a JSON patch that tests metadata.generation); re-read and retry when it was not.
    False when the change changes nothing."""
    for _ in range(TEMPLATE_RETRIES):
        rollout = get_rollout(kube, namespace, name)
        template = (rollout.get("spec") or {}).get("template") or {}
        wanted = change(template)
        if wanted == template:
            return False
        try:
            with doing("patch", ROLLOUTS, namespace, name):
                kube.set_rollout_template(
                    namespace, name, wanted, int(rollout["metadata"]["generation"])
                )
            return True
        except PluginError as exc:
            cause = exc.__cause__
            if not (isinstance(cause, ApiException) and cause.status in (409, 422)):
                raise
            # A failed test is a bare 422 too: only a spec that moved on is worth a retry;
            # otherwise the API server refused the template itself, and the message says why.
            again = get_rollout(kube, namespace, name)
            if again["metadata"]["generation"] == rollout["metadata"]["generation"]:
                raise
    raise PluginError(
        f"Rollout {name} changed {TEMPLATE_RETRIES} times while it was being written; try again"
    )
