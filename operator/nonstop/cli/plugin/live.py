"""`kubectl nonstop get NAME --watch`: the page of one Rollout, redrawn when it changes.

Driven by watches, not polling: one informer (nonstop.kube.informer: list, then watch
from the list's resourceVersion with bookmarks; a watch that expires (410) lists again; a
dropped connection resumes) for each of the Rollout, its Deployments, its pods, its Events
and its RolloutActions, in threads that wake the drawing loop. The loop also wakes once a
second for the clock (ages, a timed pause's time left) and redraws only when the text of
the page differs from what is on screen. Ctrl-C ends it with exit code 0.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import structlog
import yaml
from rich.console import Console, RenderableType
from rich.live import Live
from rich.text import Text

from nonstop.api import GROUP, PLURAL, VERSION
from nonstop.cli.plugin.view import (
    Snapshot,
    as_text,
    plain,
    render_list,
    render_rollout,
    utcnow,
)
from nonstop.kube.client import Kube
from nonstop.kube.informer import Informer, Resource
from nonstop.kube.store import Change
from nonstop.plan.model import ROLLOUT_LABEL

TICK = 1.0  # seconds between redraw checks when nothing changed (the clock moves)
SYNC_WAIT = 10.0  # seconds to wait for the first lists before the first frame


def quiet_logs() -> None:
    """The informers log their retries through structlog and logging; on a terminal that
    draws the page, those lines would tear it. What matters shows in the page's notes."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    logging.getLogger().setLevel(logging.CRITICAL)


class RolloutWatch:
    """The informers of one Rollout's page; `changed` is set whenever one of them saw a
    change, and `snapshot()` reads them all."""

    def __init__(self, kube: Kube, namespace: str, name: str) -> None:
        self.namespace, self.name = namespace, name
        self.changed = threading.Event()
        self.rollout_changed = threading.Event()
        by_rollout = f"{ROLLOUT_LABEL}={name}"
        nonstop = f"/apis/{GROUP}/{VERSION}"

        def informer(
            prefix: str,
            plural: str,
            wake: Callable[[list[Change]], None],
            labels: str | None = None,
            fields: str | None = None,
        ) -> Informer:
            return Informer(
                kube,
                Resource(prefix, plural),
                wake,
                namespace=namespace,
                label_selector=labels,
                field_selector=fields,
            )

        self.rollout = informer(nonstop, PLURAL, self._rollout_wake, fields=f"metadata.name={name}")
        self.parts = {
            "deployments": informer("/apis/apps/v1", "deployments", self._wake, by_rollout),
            "pods": informer("/api/v1", "pods", self._wake, by_rollout),
            "events": informer(
                "/api/v1", "events", self._wake, fields=f"involvedObject.name={name}"
            ),
            "rolloutactions": informer(nonstop, "rolloutactions", self._wake, by_rollout),
        }

    def _wake(self, _: list[Change]) -> None:
        self.changed.set()

    def _rollout_wake(self, _: list[Change]) -> None:
        self.rollout_changed.set()
        self.changed.set()

    @property
    def informers(self) -> list[Informer]:
        return [self.rollout, *self.parts.values()]

    def start(self, wait: float = SYNC_WAIT) -> None:
        for informer in self.informers:
            informer.start()
        for informer in self.informers:
            informer.synced.wait(wait)

    def stop(self) -> None:
        for informer in self.informers:
            informer.stop()

    def current_rollout(self) -> dict[str, Any] | None:
        return next(iter(self.rollout.store.items()), None)

    def snapshot(self) -> Snapshot:
        rollout = self.current_rollout()
        uid = (rollout or {}).get("metadata", {}).get("uid")
        deployments = [
            d
            for d in self.parts["deployments"].store.items()
            if uid is None
            or any(o.get("uid") == uid for o in d["metadata"].get("ownerReferences") or [])
        ]
        notes = [
            f"cannot watch {what}: {informer.error}"
            for what, informer in [("the Rollout", self.rollout), *self.parts.items()]
            if informer.error
        ]
        return Snapshot(
            name=self.name,
            namespace=self.namespace,
            rollout=rollout,
            deployments=deployments,
            pods=self.parts["pods"].store.items(),
            events=self.parts["events"].store.items(),
            actions=self.parts["rolloutactions"].store.items(),
            notes=notes,
        )


@contextlib.contextmanager
def running(watch: RolloutWatch) -> Iterator[RolloutWatch]:
    watch.start()
    try:
        yield watch
    finally:
        watch.stop()


def follow(
    kube: Kube,
    namespace: str,
    name: str,
    console: Console,
    output: str | None = None,
    now: Callable[[], datetime] = utcnow,
) -> int:
    """Show the page (or, with -o json|yaml, the Rollout each time it changes) until Ctrl-C."""
    quiet_logs()
    watch = RolloutWatch(kube, namespace, name)
    try:
        with running(watch):
            if output:
                _print_changes(watch.rollout, watch.rollout_changed, console, output)
            else:
                show(console, watch.changed, lambda: render_rollout(watch.snapshot(), now()))
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a watch ends: exit 0, no traceback
    return 0


def follow_list(
    kube: Kube,
    namespace: str | None,
    console: Console,
    output: str | None = None,
    now: Callable[[], datetime] = utcnow,
) -> int:
    """`list --watch`: the table of Rollouts (one namespace, or all), redrawn on change."""
    quiet_logs()
    changed = threading.Event()
    rollouts = Informer(
        kube,
        Resource(f"/apis/{GROUP}/{VERSION}", PLURAL),
        lambda _: changed.set(),
        namespace=namespace,
    )
    rollouts.start()
    try:
        rollouts.synced.wait(SYNC_WAIT)
        if output:
            _print_changes(rollouts, changed, console, output)
        else:

            def page() -> RenderableType:
                items = sorted(
                    rollouts.store.items(),
                    key=lambda r: (r["metadata"].get("namespace"), r["metadata"]["name"]),
                )
                if rollouts.error:
                    return Text(f"cannot watch Rollouts: {rollouts.error}", style="red")
                if not items:
                    where = f"namespace {namespace}" if namespace else "any namespace"
                    return Text(f"No Rollouts in {where} (yet).", style="dim")
                return render_list(items, now(), all_namespaces=namespace is None)

            show(console, changed, page)
    except KeyboardInterrupt:
        pass
    finally:
        rollouts.stop()
    return 0


def show(console: Console, changed: threading.Event, page: Callable[[], RenderableType]) -> None:
    """Draw page() and draw it again when `changed` is set or the clock ticks, only when
    its text differs from what is shown. A terminal gets one live region redrawn in place;
    a pipe or a file gets each new page after a rule, without cursor moves."""
    shown: str | None = None
    if not console.is_terminal:
        while True:
            changed.clear()
            text = plain(page(), console.width)
            if text != shown:
                if shown is not None:
                    console.file.write("─" * min(console.width, 80) + "\n")
                console.file.write(text)
                console.file.flush()
                shown = text
            changed.wait(TICK)
    with Live(
        console=console,
        auto_refresh=False,
        redirect_stdout=False,
        redirect_stderr=False,
        vertical_overflow="crop",
    ) as live:
        while True:
            changed.clear()
            drawn = page()
            text = as_text(drawn, console.width)
            if text != shown:  # redraw only what changed: the text is the judge
                live.update(drawn, refresh=True)
                shown = text
            changed.wait(TICK)


def _print_changes(
    informer: Informer, changed: threading.Event, console: Console, output: str
) -> None:
    """Each object as JSON or YAML, again each time it changes (as `kubectl get -w -o`)."""
    seen: dict[str, str] = {}
    while True:
        changed.clear()
        for obj in informer.store.items():
            meta = obj.get("metadata") or {}
            key = f"{meta.get('namespace')}/{meta.get('name')}"
            version = str(meta.get("resourceVersion"))
            if seen.get(key) != version:
                console.file.write(dump(obj, output, separate=bool(seen)))
                console.file.flush()
                seen[key] = version
        changed.wait(TICK)


def printable(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as kubectl prints it: without managedFields."""
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"}
    return {**obj, "metadata": meta} if obj.get("metadata") else obj


def as_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Several objects as kubectl prints them: a v1 List."""
    return {
        "apiVersion": "v1",
        "kind": "List",
        "metadata": {"resourceVersion": ""},
        "items": [printable(i) for i in items],
    }


def dump(obj: dict[str, Any], output: str, separate: bool = False) -> str:
    if output == "json":
        return json.dumps(printable(obj), indent=4) + "\n"
    text = yaml.safe_dump(printable(obj), sort_keys=False, width=100)
    return ("---\n" if separate else "") + text
