"""kubectl-nonstop: the kubectl plugin. `kubectl nonstop status NAME` shows a Rollout's
revisions, conditions and recent Events at a glance; `kubectl nonstop abort NAME` (and
retry, pause, resume, promote, promote-full, undo) creates a RolloutAction and waits for
nonstop's answer.

Installed as the `kubectl-nonstop` command, so kubectl finds it on PATH as `kubectl nonstop`.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from kubernetes import config
from tabulate import tabulate

from nonstop.api import GROUP, KIND, VERSION
from nonstop.api.action import ACTION_KIND
from nonstop.kube.client import Kube, load_config
from nonstop.plan.model import ROLLOUT_LABEL

EVENTS_SHOWN = 8


def render_status(
    rollout: dict[str, Any], deployments: list[dict[str, Any]], events: list[dict[str, Any]]
) -> str:
    """The status page of one Rollout, as text. Pure: tested without a cluster."""
    meta, spec, st = rollout["metadata"], rollout.get("spec", {}), rollout.get("status", {})
    current, stable = st.get("currentRevision"), st.get("stableRevision")
    lines = [
        f"Rollout {meta['name']} (namespace {meta.get('namespace', 'default')})",
        f"  strategy  {st.get('strategy', '?')}    phase {st.get('phase', 'Unknown')}"
        f"    step {st.get('step', '-')}    replicas {spec.get('replicas', '?')}",
        f"  message   {st.get('message', '')}",
    ]
    if st.get("abort"):
        abort = st["abort"]
        lines.append(f"  aborted   {abort.get('at')} {abort.get('reason')}: {abort.get('message')}")
    rows = []
    for d in sorted(deployments, key=lambda d: d["metadata"]["creationTimestamp"], reverse=True):
        revision = d["metadata"]["labels"].get("nonstop.dev/revision", "?")
        role = ", ".join(
            r for r, on in (("current", revision == current), ("stable", revision == stable)) if on
        )
        images = ", ".join(
            c.get("image", "?") for c in d["spec"]["template"]["spec"].get("containers", [])
        )
        status = d.get("status", {})
        rows.append(
            [
                revision,
                d["spec"].get("replicas", 0),
                status.get("readyReplicas", 0),
                status.get("availableReplicas", 0),
                role or "old",
                images,
            ]
        )
    lines += ["", "Revisions:"]
    lines.append(
        tabulate(rows, headers=["REVISION", "DESIRED", "READY", "AVAILABLE", "ROLE", "IMAGES"])
        if rows
        else "  (none yet)"
    )
    conditions = "  ".join(
        f"{c['type']}={c['status']}" + (f" ({c['reason']})" if c["status"] == "True" else "")
        for c in st.get("conditions", [])
    )
    lines += ["", f"Conditions: {conditions or '(none yet)'}", "", "Events:"]
    recent = sorted(events, key=lambda e: e["metadata"]["name"])[-EVENTS_SHOWN:]
    lines.append(
        tabulate(
            [[e.get("lastTimestamp", ""), e["type"], e["reason"], e["message"]] for e in recent],
            headers=["TIME", "TYPE", "REASON", "MESSAGE"],
        )
        if recent
        else "  (none)"
    )
    return "\n".join(lines)


def status(kube: Kube, namespace: str, name: str) -> str | None:
    rollout = kube.get_rollout(namespace, name)
    if rollout is None:
        return None
    uid = rollout["metadata"]["uid"]
    deployments = [
        d
        for d in kube.list_deployments(namespace, f"{ROLLOUT_LABEL}={name}")
        if any(r.get("uid") == uid for r in d["metadata"].get("ownerReferences", []))
    ]
    listing = kube.request_json(
        "GET",
        f"/api/v1/namespaces/{namespace}/events",
        query={"fieldSelector": f"involvedObject.uid={uid}"},
    )
    return render_status(rollout, deployments, listing["items"] if listing else [])


VERBS = {
    "abort": "abort",
    "retry": "retry",
    "pause": "pause",
    "resume": "resume",
    "promote": "promote",
    "promote-full": "promoteFull",
    "undo": "undo",
}


def action_body(rollout: dict[str, Any], verb: str, reason: str | None) -> dict[str, Any]:
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


def act(
    kube: Kube, namespace: str, rollout: str, verb: str, reason: str | None, timeout: float
) -> int:
    """Create a RolloutAction and wait for nonstop to answer it."""
    target = kube.get_rollout(namespace, rollout)
    if target is None:
        print(f"Rollout {rollout} not found in namespace {namespace}", file=sys.stderr)
        return 1
    created = kube.create_action(namespace, action_body(target, verb, reason))
    name = created["metadata"]["name"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        action = kube.get_action(namespace, name) or {}
        status = action.get("status") or {}
        if status.get("phase") in ("Applied", "Rejected"):
            print(f"rolloutaction/{name} {status['phase']}: {status.get('message', '')}")
            return 0 if status["phase"] == "Applied" else 1
        time.sleep(0.5)
    print(
        f"rolloutaction/{name} created; nonstop has not answered within {timeout:.0f}s"
        " (is the operator running?)",
        file=sys.stderr,
    )
    return 2


def current_namespace() -> str:
    try:
        _, context = config.list_kube_config_contexts()  # type: ignore[no-untyped-call]
        namespace: str = context["context"].get("namespace", "default")
        return namespace
    except (config.ConfigException, KeyError, TypeError):
        return "default"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubectl nonstop", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_status = sub.add_parser("status", help="revisions, conditions and Events of a Rollout")
    p_status.add_argument("name")
    p_status.add_argument("-n", "--namespace", default=None)
    p_status.add_argument("-w", "--watch", action="store_true", help="refresh every 2 s")
    for verb in VERBS:
        p_verb = sub.add_parser(verb, help=f"{verb} a Rollout (creates a RolloutAction)")
        p_verb.add_argument("name")
        p_verb.add_argument("-n", "--namespace", default=None)
        p_verb.add_argument("--reason", default=None, help="why, for the record")
        p_verb.add_argument("--timeout", type=float, default=30.0, help="seconds to wait")
    args = parser.parse_args(argv)

    load_config()
    kube = Kube()
    namespace = args.namespace or current_namespace()
    if args.command in VERBS:
        return act(kube, namespace, args.name, args.command, args.reason, args.timeout)
    while True:
        page = status(kube, namespace, args.name)
        if page is None:
            print(f"Rollout {args.name} not found in namespace {namespace}", file=sys.stderr)
            return 1
        if args.watch:
            print("\033[2J\033[H", end="")
        print(page)
        if not args.watch:
            return 0
        time.sleep(2)


if __name__ == "__main__":
    raise SystemExit(main())
