"""What `kubectl nonstop get` shows, drawn with rich from plain JSON as the API server
returns it. Pure: a Snapshot and the time in, a renderable out (tests render it to text).

The page of one Rollout follows `kubectl argo rollouts get rollout` (argo-rollouts
pkg/kubectl-argo-rollouts/cmd/get/get_rollout.go): a header of name, status, strategy and
step, then a tree of revisions with their pods and analysis runs. nonstop has no
ReplicaSet level of its own (a revision is one Deployment), so a revision's pods hang
under it directly, and it adds what nonstop knows: the traffic weight of each revision,
the step list's progress, why it is paused or aborted, the RolloutActions and the Events.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from nonstop.api.base import duration_seconds
from nonstop.plan.model import REVISION_LABEL

Obj = Mapping[str, Any]

EVENTS_SHOWN = 8
ACTIONS_SHOWN = 3
PODS_SHOWN = 10
PHASE_STYLE = {
    "Healthy": "green",
    "Progressing": "blue",
    "Paused": "yellow",
    "Degraded": "red",
}
RUN_STYLE = {
    "Successful": "green",
    "Running": "blue",
    "Inconclusive": "yellow",
    "Failed": "red",
    "Error": "red",
}
# the icons of Argo Rollouts' tree (get.go): rollout, revision, pod, analysis run
ROLLOUT_ICON, REVISION_ICON, POD_ICON, ANALYSIS_ICON = "\u27f3", "#", "\u25a1", "\u03b1"
BLUE_GREEN_STAGES = (
    "preview: the new revision comes up",
    "ready: waiting for promotion",
    "promoted",
)


@dataclass(frozen=True)
class Snapshot:
    """One Rollout and what belongs to it, as last seen."""

    name: str
    namespace: str
    rollout: Obj | None
    deployments: Sequence[Obj] = ()
    pods: Sequence[Obj] = ()
    events: Sequence[Obj] = ()
    actions: Sequence[Obj] = ()
    notes: Sequence[str] = field(default=())  # what could not be read, and why


# --- small parts ---------------------------------------------------------------------------


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def age(value: str | None, now: datetime) -> str:
    """kubectl's short ages: 45s, 3m20s, 25m, 5h10m, 3d."""
    at = parse_time(value)
    if at is None:
        return "-"
    seconds = max(0, int((now - at).total_seconds()))
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 120:
        return f"{seconds}s"
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if hours < 3:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if days < 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    return f"{days}d"


def percent(value: Any) -> str:
    """25 -> 25%, 0.01 -> 0.01%."""
    number = float(value or 0)
    return f"{number:g}%"


def short(revision: str | None) -> str:
    return revision or "?"


def strategy_of(rollout: Obj) -> str:
    """The strategy in use: status.strategy, else the one the spec names."""
    named = (rollout.get("status") or {}).get("strategy")
    if named:
        return str(named)
    strategy = (rollout.get("spec") or {}).get("strategy") or {}
    return next(iter(strategy), "?")


def steps_of(rollout: Obj) -> list[Obj] | None:
    """The steps the status' currentStepIndex counts, or None for a strategy without steps."""
    strategy = (rollout.get("spec") or {}).get("strategy") or {}
    for key in ("canary", "featureToggle"):
        if key in strategy:
            return list((strategy[key] or {}).get("steps") or [])
    shadow = strategy.get("shadow")
    if shadow and "canary" in (shadow.get("then") or {}):
        return list(shadow["then"]["canary"].get("steps") or [])
    return None


def describe_step(step: Obj, started: datetime | None = None, now: datetime | None = None) -> str:
    """One step in words: setWeight 25%, pause 30s (12s left), pause (until promoted)."""
    kind = next(iter(step), "?")
    value = step.get(kind)
    if kind == "setWeight":
        return f"setWeight {percent(value)}"
    if kind == "pause":
        return _describe_pause(str((value or {}).get("duration") or ""), started, now)
    if kind == "setCanaryScale":
        scale = value or {}
        if scale.get("matchTrafficWeight"):
            text = "pods match the weight"
        elif "percent" in scale:
            text = f"{scale['percent']}% of the pods"
        else:
            text = f"{scale.get('replicas', '?')} pods"
        return f"setCanaryScale: {text}"
    if kind == "setHeaderRoute":
        return f"setHeaderRoute {(value or {}).get('name', '?')}"
    if kind == "analysis":
        names = [t.get("templateName", "?") for t in (value or {}).get("templates") or []]
        return "analysis" + (f" {', '.join(names)}" if names else "")
    return kind


def _describe_pause(duration: str, started: datetime | None, now: datetime | None) -> str:
    if not duration:
        return "pause (until promoted)"
    if started is None or now is None:
        return f"pause {duration}"
    left = duration_seconds(duration) - (now - started).total_seconds()
    return f"pause {duration} ({max(0, int(left + 0.999))}s left)"


@dataclass(frozen=True)
class Progress:
    label: str  # "step 2 of 5", "stage 2 of 3", "pods 3/4"
    done: float
    total: float
    detail: str  # what the current step does


def progress(rollout: Obj, now: datetime) -> Progress | None:
    """Where the rollout is in its steps (or stages, or pods)."""
    st = rollout.get("status") or {}
    strategy = strategy_of(rollout)
    index = st.get("currentStepIndex")
    started = parse_time(st.get("stepStartedAt"))
    steps = steps_of(rollout)
    if strategy == "shadow" and not (st.get("shadow") or {}).get("passedAt"):
        shadow = (rollout.get("spec") or {}).get("strategy", {}).get("shadow") or {}
        total = duration_seconds(str(shadow.get("duration") or "0s"))
        since = parse_time((st.get("shadow") or {}).get("startedAt"))
        elapsed = min(total, (now - since).total_seconds()) if since else 0.0
        mirrored = percent((shadow.get("mirror") or {}).get("percent", 100))
        detail = (
            f"mirroring {mirrored} of requests, {int(elapsed)}s of {shadow.get('duration')}"
            if since
            else "shadow pods coming up"
        )
        return Progress("shadow phase", elapsed, total or 1, detail)
    if steps is not None and strategy != "blueGreen":
        total = len(steps)
        at = total if index is None and st.get("phase") == "Healthy" else int(index or 0)
        if at >= total:
            return Progress(f"step {total} of {total}", total, total, "all steps done")
        return Progress(
            f"step {at + 1} of {total}", at, total, describe_step(steps[at], started, now)
        )
    if strategy == "blueGreen" or (strategy == "shadow" and steps is None):
        stage = int(index or 0)
        if st.get("phase") == "Healthy" and st.get("currentRevision") == st.get("stableRevision"):
            stage = len(BLUE_GREEN_STAGES) - 1
        stage = min(stage, len(BLUE_GREEN_STAGES) - 1)
        return Progress(
            f"stage {stage + 1} of {len(BLUE_GREEN_STAGES)}",
            stage + 1,
            len(BLUE_GREEN_STAGES),
            BLUE_GREEN_STAGES[stage],
        )
    desired = int((rollout.get("spec") or {}).get("replicas", 1) or 0)
    updated = int(st.get("updatedReadyReplicas") or 0)
    if st.get("currentRevision") and st.get("currentRevision") == st.get("stableRevision"):
        updated = desired
    return Progress(f"pods {updated}/{desired}", updated, desired or 1, str(st.get("step") or ""))


def why_paused(rollout: Obj) -> str | None:
    """Why the rollout is not moving on purpose (or waits on pods): the Paused condition."""
    st = rollout.get("status") or {}
    paused = next((c for c in st.get("conditions") or [] if c.get("type") == "Paused"), None)
    if paused and paused.get("status") == "True":
        text = str(paused.get("reason") or "Paused")
        if st.get("held"):
            text += " (held by a pause RolloutAction: kubectl nonstop resume)"
        elif (rollout.get("spec") or {}).get("paused"):
            text += " (spec.paused: true)"
        return text + (f": {paused['message']}" if paused.get("message") else "")
    if st.get("held"):
        return "held by a pause RolloutAction (kubectl nonstop resume)"
    return None


def conditions_line(rollout: Obj) -> str:
    return "  ".join(
        f"{c['type']}={c['status']}" + (f" ({c['reason']})" if c.get("status") == "True" else "")
        for c in (rollout.get("status") or {}).get("conditions") or []
    )


def pod_ready(pod: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def pod_state(pod: Obj) -> str:
    """Running, Pending, ImagePullBackOff, Terminating: kubectl's STATUS, roughly."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return "Terminating"
    status = pod.get("status") or {}
    for container in status.get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason"):
            return str(waiting["reason"])
    return str(status.get("phase") or "Pending")


def restarts(pod: Obj) -> int:
    return sum(
        int(c.get("restartCount") or 0)
        for c in (pod.get("status") or {}).get("containerStatuses") or []
    )


def revision_of(obj: Obj) -> str | None:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    value = labels.get(REVISION_LABEL)
    return str(value) if value else None


def images_of(deployment: Obj | None, pods: Sequence[Obj]) -> list[str]:
    if deployment is not None:
        spec = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    elif pods:
        spec = pods[0].get("spec") or {}
    else:
        return []
    return [str(c.get("image", "?")) for c in spec.get("containers") or []]


def event_time(event: Obj) -> str:
    """When an Event was last seen (lastTimestamp; eventTime for events.k8s.io Events)."""
    return str(
        event.get("lastTimestamp")
        or event.get("eventTime")
        or event.get("firstTimestamp")
        or (event.get("metadata") or {}).get("creationTimestamp")
        or ""
    )


def event_key(event: Obj) -> tuple[str, int, str]:
    """Events in the order they happened: last seen (to the second), then the order the API
    server stored them in (a repeat updates its Event, which moves it on), then the name
    (nonstop names each <rollout>.<unix nanos in hex>, as client-go's recorder)."""
    meta = event.get("metadata") or {}
    version = str(meta.get("resourceVersion") or "")
    return (event_time(event)[:19], int(version) if version.isdigit() else 0, meta.get("name", ""))


def recent_events(snapshot: Snapshot) -> list[Obj]:
    uid = ((snapshot.rollout or {}).get("metadata") or {}).get("uid")
    mine = [
        e
        for e in snapshot.events
        if uid is None or (e.get("involvedObject") or {}).get("uid") in (uid, None)
    ]
    return sorted(mine, key=event_key)[-EVENTS_SHOWN:]


# --- the page of one Rollout -------------------------------------------------------------


@dataclass
class Revision:
    name: str
    deployment: Obj | None
    pods: list[Obj]
    roles: list[str]
    weight: str | None


def revisions(snapshot: Snapshot) -> tuple[list[Revision], list[str]]:
    """The revisions worth a branch (current, stable, draining, any with pods), current
    first; and the names of the others (kept at 0 for undo)."""
    rollout = snapshot.rollout or {}
    st = rollout.get("status") or {}
    current, stable = st.get("currentRevision"), st.get("stableRevision")
    weights = st.get("weights") or {}
    strategy = strategy_of(rollout)
    draining = {d.get("revision") for d in st.get("draining") or []}
    aborted = (st.get("abort") or {}).get("revision")
    deployments: dict[str, Obj] = {}
    for deployment in snapshot.deployments:
        revision = revision_of(deployment)
        if revision:
            deployments[revision] = deployment
    pods: dict[str, list[Obj]] = {}
    for pod in snapshot.pods:
        pods.setdefault(revision_of(pod) or "?", []).append(pod)
    names: set[str] = set(deployments) | set(pods) | {str(r) for r in (current, stable) if r}

    def created(revision: str) -> str:
        meta = (deployments.get(revision) or {}).get("metadata") or {}
        return str(meta.get("creationTimestamp") or "")

    shown, hidden = [], []
    order = sorted(sorted(names), key=created, reverse=True)  # newest first
    order.sort(key=lambda r: (r != current, r != stable))  # current, then stable, first
    for name in order:
        found = deployments.get(name)
        desired = int(((found or {}).get("spec") or {}).get("replicas") or 0)
        mine = sorted(pods.get(name, []), key=lambda p: p["metadata"].get("name", ""))
        roles: list[str] = []
        weight: str | None = None
        if name == stable:
            roles.append("stable")
            weight = percent(weights.get("stable", 100)) if weights else None
        if name == current and current != stable:
            roles.append("current")
            role = {"blueGreen": "preview", "featureToggle": "variant"}.get(strategy, "canary")
            if strategy == "blueGreen" and int(st.get("currentStepIndex") or 0) >= 2:
                role = "active"
            roles.append(role)
            if weights:
                weight = percent(weights.get("canary", 0))
                if float(weights.get("mirror") or 0):
                    weight += f", mirror {percent(weights['mirror'])}"
        if name in draining:
            roles.append("draining")
        if name == aborted:
            roles.append("aborted")
        if roles or desired or mine:
            shown.append(Revision(name, found, mine, roles, weight))
        else:
            hidden.append(name)
    return shown, hidden


def _revision_label(rev: Revision) -> Text:
    desired = int(((rev.deployment or {}).get("spec") or {}).get("replicas") or 0)
    ready = sum(1 for p in rev.pods if pod_ready(p))
    label = Text(f"{REVISION_ICON} ", style="bold")
    label.append(f"revision {rev.name}", style="bold")
    if rev.roles:
        style = "green" if "stable" in rev.roles else "yellow"
        label.append(f"  {' · '.join(rev.roles)}", style=style)
    if rev.weight is not None:
        label.append(f"  weight {rev.weight}", style="bold cyan")
    label.append(f"  pods {ready}/{desired} ready")
    if len(rev.pods) != desired:
        label.append(f" ({len(rev.pods)} exist)")
    images = images_of(rev.deployment, rev.pods)
    if images:
        label.append(f"  {', '.join(images)}", style="dim")
    return label


def _pod_label(pod: Obj, now: datetime) -> Text:
    meta = pod.get("metadata") or {}
    state = pod_state(pod)
    ready = pod_ready(pod)
    text = Text(f"{POD_ICON} ")
    text.append(str(meta.get("name", "?")))
    style = "green" if ready else ("yellow" if state in ("Pending", "Running") else "red")
    text.append(f"  {state}", style=style)
    text.append("  ready" if ready else "  not ready", style=style)
    count = restarts(pod)
    if count:
        text.append(f"  restarts {count}", style="red")
    text.append(f"  {age(meta.get('creationTimestamp'), now)}", style="dim")
    return text


def _run_branch(parent: Tree, run: Obj, now: datetime) -> None:
    phase = str(run.get("phase", "Running"))
    metrics = run.get("metrics") or []
    label = Text(f"{ANALYSIS_ICON} ")
    label.append(f"analysis {run.get('name', '?')}", style="bold")
    label.append(f"  {phase}", style=RUN_STYLE.get(phase, ""))
    counts = [
        (sum(int(m.get(key) or 0) for m in metrics), mark)
        for key, mark in (
            ("successful", "✔"),
            ("failed", "✖"),
            ("inconclusive", "?"),
            ("errors", "⚠"),
        )
    ]
    shown = [f"{mark} {n}" for n, mark in counts if n]
    if shown:
        label.append(f"  {'  '.join(shown)}")
    label.append(f"  {age(run.get('startedAt'), now)}", style="dim")
    if run.get("message") and phase != "Running":
        label.append(f"  {run['message']}")
    branch = parent.add(label)
    for metric in metrics:
        mphase = str(metric.get("phase", "Running"))
        line = Text(f"{metric.get('name', '?')}  ")
        line.append(mphase, style=RUN_STYLE.get(mphase, ""))
        measurements = metric.get("measurements") or []
        if measurements:
            last = measurements[-1]
            value = last.get("value")
            shown_value = "no value" if value is None else f"{float(value):g}"
            line.append(f"  latest {shown_value} ({last.get('phase', '?')}")
            line.append(f", {age(last.get('at'), now)} ago)")
            if last.get("message"):
                line.append(f" {last['message']}", style="dim")
        branch.add(line)


def _actions_lines(actions: Sequence[Obj], now: datetime) -> list[Text]:
    def created(a: Obj) -> str:
        return str((a.get("metadata") or {}).get("creationTimestamp") or "")

    lines = []
    for action in sorted(actions, key=created)[-ACTIONS_SHOWN:]:
        spec, status = action.get("spec") or {}, action.get("status") or {}
        phase = status.get("phase") or "waiting for nonstop"
        line = Text(f"{spec.get('action', '?')} ")
        style = {"Applied": "green", "Rejected": "red"}.get(phase, "yellow")
        line.append(str(phase), style=style)
        line.append(f"  {age(created(action), now)} ago", style="dim")
        line.append(f"  {(action.get('metadata') or {}).get('name', '')}", style="dim")
        if status.get("message"):
            line.append(f": {status['message']}")
        lines.append(line)
    return lines


def render_rollout(snapshot: Snapshot, now: datetime) -> RenderableType:
    """The page of one Rollout: header, step, weights, revisions tree, actions, Events."""
    rollout = snapshot.rollout
    if rollout is None:
        return Group(
            Text(
                f"Rollout {snapshot.name} not found in namespace {snapshot.namespace}"
                " (deleted?): waiting for it",
                style="red",
            ),
            *[Text(n, style="yellow") for n in snapshot.notes],
        )
    return Group(
        _title(rollout, snapshot.namespace),
        _summary(rollout, snapshot.actions, now),
        Text(""),
        _tree(snapshot, now),
        Text(""),
        _events(snapshot, now),
        *[Text(n, style="yellow") for n in snapshot.notes],
    )


def _title(rollout: Obj, namespace: str) -> Text:
    meta, st = rollout["metadata"], rollout.get("status") or {}
    phase = str(st.get("phase") or "Unknown")
    title = Text("Rollout ", style="bold")
    title.append(str(meta.get("name")), style="bold")
    title.append(f" (namespace {meta.get('namespace', namespace)})")
    title.append(f"   strategy {strategy_of(rollout)}")
    title.append("   phase ")
    title.append(phase, style=f"bold {PHASE_STYLE.get(phase, '')}")
    if (meta.get("generation") or 0) > (st.get("observedGeneration") or 0):
        title.append("   (nonstop has not seen the latest spec yet)", style="yellow")
    return title


def _summary(rollout: Obj, actions: Sequence[Obj], now: datetime) -> Table:
    """The lines under the title: message, why paused or aborted, step, weights, ..."""
    spec, st = rollout.get("spec") or {}, rollout.get("status") or {}
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    message = str(st.get("message") or "")
    if message:
        grid.add_row("message", Text(message))
    paused = why_paused(rollout)
    if paused:
        # the message is often the condition's, already on the line above
        grid.add_row("paused", Text(paused.removesuffix(f": {message}"), style="yellow"))
    abort = st.get("abort")
    if abort:
        text = f"{abort.get('reason')} {age(abort.get('at'), now)} ago: {abort.get('message')}"
        grid.add_row("aborted", Text(text, style="red"))
    step = progress(rollout, now)
    if step is not None:
        line = Table.grid(padding=(0, 1))
        line.add_row(
            Text(step.label, style="bold"),
            ProgressBar(total=step.total, completed=step.done, width=24),
            Text(step.detail),
        )
        grid.add_row("step", line)
    weights = st.get("weights")
    if weights:
        grid.add_row("weights", weights_text(rollout))
    grid.add_row(
        "replicas",
        f"desired {spec.get('replicas', '?')}  current {st.get('replicas', 0)}"
        f"  updated {st.get('updatedReplicas', 0)}  ready {st.get('readyReplicas', 0)}"
        f"  available {st.get('availableReplicas', 0)}",
    )
    if st.get("conditions"):
        grid.add_row("conditions", conditions_line(rollout))
    flag = st.get("flag")
    if flag:
        grid.add_row(
            "flag",
            f"{flag.get('key')} in configmap/{flag.get('configMap')}: variant"
            f" {flag.get('variant')} for {percent(flag.get('weight'))} of users"
            f" ({flag.get('state')})",
        )
    for i, action in enumerate(_actions_lines(actions, now)):
        grid.add_row("actions" if i == 0 else "", action)
    return grid


def weights_text(rollout: Obj) -> Text:
    """stable 75%   canary 25%   (mirror 10%): the shares of status.weights."""
    st = rollout.get("status") or {}
    weights = st.get("weights") or {}
    text = Text(f"stable {percent(weights.get('stable', 100))}", style="green")
    canary = float(weights.get("canary") or 0)
    if canary or st.get("currentRevision") != st.get("stableRevision"):
        text.append("   ")
        text.append(f"canary {percent(canary)}", style="yellow")
    if float(weights.get("mirror") or 0):
        text.append(f"   mirror {percent(weights['mirror'])}", style="cyan")
    return text


def _tree(snapshot: Snapshot, now: datetime) -> Tree:
    """The revisions with their pods and analysis runs, as Argo Rollouts' tree."""
    rollout = snapshot.rollout or {}
    meta, st = rollout.get("metadata") or {}, rollout.get("status") or {}
    tree = Tree(Text(f"{ROLLOUT_ICON} {meta.get('name')}", style="bold"), guide_style="dim")
    shown, hidden = revisions(snapshot)
    runs = list(st.get("analysisRuns") or [])
    branches: dict[str, Tree] = {}
    for rev in shown:
        branch = tree.add(_revision_label(rev))
        branches[rev.name] = branch
        for pod in rev.pods[:PODS_SHOWN]:
            branch.add(_pod_label(pod, now))
        if len(rev.pods) > PODS_SHOWN:
            branch.add(Text(f"... {len(rev.pods) - PODS_SHOWN} more pods", style="dim"))
    for run in runs:
        _run_branch(branches.get(str(run.get("revision"))) or tree, run, now)
    if hidden:
        tree.add(Text(f"older revisions kept at 0 pods: {', '.join(hidden)}", style="dim"))
    if not shown and not runs and not hidden:
        tree.add(Text("(no revisions yet)", style="dim"))
    return tree


def _events(snapshot: Snapshot, now: datetime) -> RenderableType:
    events = recent_events(snapshot)
    if not events:
        return Text("Events: (none)", style="dim")
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for column in ("AGE", "TYPE", "REASON"):
        table.add_column(column, no_wrap=True)
    table.add_column("MESSAGE", overflow="fold")
    for event in events:
        kind = str(event.get("type", ""))
        table.add_row(
            age(event_time(event) or None, now),
            Text(kind, style="red" if kind == "Warning" else ""),
            str(event.get("reason", "")),
            str(event.get("message", "")),
        )
    return Group(Text("Events:", style="bold"), table)


# --- the list of Rollouts ----------------------------------------------------------------


def render_list(rollouts: Iterable[Obj], now: datetime, all_namespaces: bool) -> RenderableType:
    """`kubectl nonstop list`: one row per Rollout, the columns of `kubectl get rollouts`;
    only MESSAGE is cut (with an ellipsis) when the width does not hold it all."""
    headers = ["NAME", "STRATEGY", "STEP", "WEIGHT", "READY", "PHASE", "AGE", "MESSAGE"]
    if all_namespaces:
        headers.insert(0, "NAMESPACE")
    rows: list[list[Text]] = []
    for rollout in sorted(
        rollouts,
        key=lambda r: (r["metadata"].get("namespace", ""), r["metadata"].get("name", "")),
    ):
        meta, spec = rollout["metadata"], rollout.get("spec") or {}
        st = rollout.get("status") or {}
        phase = str(st.get("phase") or "Unknown")
        row = [
            Text(str(meta.get("name"))),
            Text(strategy_of(rollout)),
            Text(str(st.get("step") or "-")),
            Text(f"{float((st.get('weights') or {}).get('canary') or 0):g}"),
            Text(f"{st.get('readyReplicas', 0)}/{spec.get('replicas', '?')}"),
            Text(phase, style=PHASE_STYLE.get(phase, "")),
            Text(age(meta.get("creationTimestamp"), now)),
            Text(str(st.get("message") or "")),
        ]
        if all_namespaces:
            row.insert(0, Text(str(meta.get("namespace", ""))))
        rows.append(row)
    # MESSAGE takes what the others leave (ratio), so the table spans the width
    table = Table(box=None, pad_edge=False, show_edge=False, padding=(0, 3, 0, 0), expand=True)
    for i, header in enumerate(headers):
        if header == "MESSAGE":
            table.add_column(header, no_wrap=True, overflow="ellipsis", ratio=1)
        else:
            widest = max([len(header), *(len(row[i]) for row in rows)])
            table.add_column(header, no_wrap=True, min_width=widest)
    for row in rows:
        table.add_row(*row)
    return table


def as_text(renderable: RenderableType, width: int = 120) -> str:
    """The renderable as plain text (no colour), as it would look `width` columns wide."""
    console = Console(
        file=io.StringIO(), width=width, color_system=None, force_terminal=False, record=True
    )
    console.print(renderable)
    return console.export_text()


def plain(renderable: RenderableType, width: int) -> str:
    """as_text without the blanks that pad each line to its table's width."""
    return "".join(f"{line.rstrip()}\n" for line in as_text(renderable, width).splitlines())


def utcnow() -> datetime:
    return datetime.now(UTC)
