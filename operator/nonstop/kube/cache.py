"""The watch-fed cache: what a pass reads, kept current by list+watch, and the wake-ups.

Why a cache: a pass used to read the cluster with 6-12 GET/LIST requests, and a Healthy
Rollout was read again every 30 s, so that 1,000 idle Rollouts cost ~12,000 requests a
minute. Here one informer per kind (kube/informer.py) lists once and then watches; a pass
reads only from memory (`CachedKube`), and a change wakes exactly the Rollouts it concerns:

- Deployments, Pods and EndpointSlices by their `nonstop.dev/rollout` label (the API
  server filters on it; EndpointSlices get it from nonstop's Services, whose labels the
  EndpointSlice controller copies);
- Services, HTTPRoutes, ConfigMaps and AnalysisTemplates by name, through the names each
  Rollout's spec gives (`_refs`);
- RolloutActions by spec.rollout; a Rollout by itself.

What is watched: Rollouts, RolloutActions and AnalysisTemplates (nonstop's own kinds),
Deployments, Pods and EndpointSlices with nonstop's label, every Service (a Service that a
Rollout names but nonstop did not make must be seen, to be refused); HTTPRoutes only in the
namespaces some Rollout's route is in, and ConfigMaps only by the names toggles give
(a field selector each), started when a Rollout first names them. Until such a late watch
has listed, its reads fall back to one GET. Secrets, which analysis reads for a provider's
credentials, are read when a measurement is due, never watched: nonstop needs no right to
list Secrets.

A pass reads its own writes: each write's answer goes into the store (write-through,
client-go's MutationCache), and the watch event of that same version later changes
nothing. A store that has not listed yet, or whose kind the API server refuses, makes the
read raise: a pass never acts on a blind view (it fails and is retried).

Why not kopf indexes: kopf's watches filter labels in the operator (every Pod of the
cluster would travel), and an index is only readable inside a handler call.
"""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any

import structlog
from kubernetes.client.exceptions import ApiException

from nonstop.api import GROUP, PLURAL, VERSION
from nonstop.kube.client import Answer, Kube
from nonstop.kube.informer import Informer, Resource
from nonstop.kube.store import Change, Key, Obj, trimmed
from nonstop.plan.analysis import analyses_of
from nonstop.plan.model import ROLLOUT_LABEL
from nonstop.plan.resources import other_services
from nonstop.plan.views import rollout_view

log = structlog.get_logger("nonstop.cache")

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
ROLLOUTS = Resource(f"/apis/{GROUP}/{VERSION}", PLURAL)
ACTIONS = Resource(f"/apis/{GROUP}/{VERSION}", "rolloutactions")
TEMPLATES = Resource(f"/apis/{GROUP}/{VERSION}", "analysistemplates")
DEPLOYMENTS = Resource("/apis/apps/v1", "deployments")
PODS = Resource("/api/v1", "pods")
SERVICES = Resource("/api/v1", "services")
SLICES = Resource("/apis/discovery.k8s.io/v1", "endpointslices")
ROUTES = Resource("/apis/gateway.networking.k8s.io/v1", "httproutes")
CONFIG_MAPS = Resource("/api/v1", "configmaps")
SYNC_TIMEOUT = 120.0

Ref = tuple[str, str, str]  # (kind, namespace, name) of an object a Rollout names
Wake = Callable[[Key], None]


# --- which namespaces ------------------------------------------------------------------
@dataclass(frozen=True)
class Scope:
    """Where to watch: `namespaces` (one watch each) or every namespace (None), and which
    namespaces to keep of what a cluster-wide watch brings (patterns like `!kube-*`)."""

    namespaces: tuple[str, ...] | None
    patterns: tuple[str, ...] = ()

    @classmethod
    def of(cls, patterns: Iterable[str]) -> Scope:
        """From `nonstop run -n` values, as kopf reads them: names, globs, `!` excludes, and
        several in one value separated by commas."""
        parts = tuple(p.strip() for value in patterns for p in value.split(",") if p.strip())
        if parts and all(_plain(p) for p in parts):
            return cls(namespaces=parts)
        return cls(namespaces=None, patterns=parts)

    def watches(self) -> list[str | None]:
        return list(self.namespaces) if self.namespaces is not None else [None]

    def keeps(self, namespace: str) -> bool:
        if self.namespaces is not None:
            return namespace in self.namespaces
        includes = [p for p in self.patterns if not p.startswith("!")]
        excludes = [p[1:] for p in self.patterns if p.startswith("!")]
        if includes and not any(fnmatch.fnmatchcase(namespace, p) for p in includes):
            return False
        return not any(fnmatch.fnmatchcase(namespace, p) for p in excludes)


def _plain(pattern: str) -> bool:
    return not any(c in pattern for c in "*?[!")


# --- what a change concerns (pure) -------------------------------------------------------
def _labelled(obj: Obj) -> list[Hashable]:
    meta = obj["metadata"]
    rollout = (meta.get("labels") or {}).get(ROLLOUT_LABEL)
    return [(meta.get("namespace", ""), rollout)] if rollout else []


def _by_service(obj: Obj) -> list[Hashable]:
    meta = obj["metadata"]
    service = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    return [(meta.get("namespace", ""), service)] if service else []


def _by_target(obj: Obj) -> list[Hashable]:
    rollout = (obj.get("spec") or {}).get("rollout")
    return [(obj["metadata"].get("namespace", ""), str(rollout))] if rollout else []


def _by_namespace(obj: Obj) -> list[Hashable]:
    return [obj["metadata"].get("namespace", "")]


def slim_pod(obj: Obj) -> Obj:
    """What a pass reads of a pod: its metadata and status (readiness, waiting reasons,
    restarts). The spec, most of a pod's bytes, stays out of memory."""
    return {k: v for k, v in trimmed(obj).items() if k != "spec"}


def slim_deployment(obj: Obj) -> Obj:
    """What a pass reads of a Deployment: metadata (labels, the template annotation,
    owners), spec.replicas and status; not the pod template."""
    slim = trimmed(obj)
    return {**slim, "spec": {"replicas": (slim.get("spec") or {}).get("replicas", 1)}}


def refs_of(raw: Obj) -> frozenset[Ref]:
    """The objects a Rollout names, whose changes must wake it."""
    view = rollout_view(raw)
    spec, ns = view.spec, view.meta.namespace
    if spec is None:
        return frozenset()
    refs: set[Ref] = {("Service", ns, spec.service.name)}
    refs.update(("Service", ns, name) for name in other_services(spec))
    if spec.traffic_routing is not None:
        gateway = spec.traffic_routing.gateway_api
        refs.add(("HTTPRoute", gateway.namespace or ns, gateway.http_route))
    if spec.strategy.feature_toggle is not None:
        refs.add(("ConfigMap", ns, spec.strategy.feature_toggle.flag.config_map))
    for analysis in analyses_of(spec):
        refs.update(("AnalysisTemplate", ns, t.name) for t in analysis.templates or ())
    return frozenset(refs)


def woken_by(kind: str, change: Change) -> set[Key]:
    """The Rollouts a change of this kind concerns directly (names given by Rollouts are
    looked up by the cache: `Cache._named`)."""
    obj, ns = change.obj, change.obj["metadata"].get("namespace", "")
    if kind == "Rollout":
        return {change.key}
    if kind in ("Deployment", "Pod", "EndpointSlice"):
        found: set[Key] = set()
        for version in (change.old, change.new):
            rollout = ((version or {}).get("metadata", {}).get("labels") or {}).get(ROLLOUT_LABEL)
            if rollout:
                found.add((ns, rollout))
        return found
    if kind == "RolloutAction":
        rollout = (obj.get("spec") or {}).get("rollout")
        return {(ns, str(rollout))} if rollout else set()
    return set()


# --- the cache ---------------------------------------------------------------------------
class _Kind:
    """One kind's informers: one per watched namespace, or one for every namespace."""

    def __init__(self, name: str, informers: dict[str | None, Informer]) -> None:
        self.name = name
        self.informers = informers

    def informer(self, namespace: str) -> Informer | None:
        return self.informers.get(namespace) or self.informers.get(None)

    def ready(self, namespace: str) -> Informer:
        """The informer holding this namespace, once listed; raises when it cannot say."""
        informer = self.informer(namespace)
        if informer is None:
            raise ApiException(status=403, reason=f"{self.name} in {namespace} are not watched")
        if not informer.synced.wait(SYNC_TIMEOUT):
            raise ApiException(status=503, reason=f"{self.name} not listed yet")
        _raise_refusal(informer)
        return informer


class Cache:
    def __init__(self, kube: Kube, scope: Scope, wake: Wake) -> None:
        self.kube = kube
        self.scope = scope
        self._wake = wake
        self._lock = threading.Lock()
        self._refs: dict[Key, tuple[int | None, frozenset[Ref]]] = {}
        self._named: dict[Ref, set[Key]] = {}
        self._touched: dict[Key, int] = {}  # changes that concerned each Rollout, counted
        keep = self._keeps

        def kind(name: str, resource: Resource, **options: Any) -> _Kind:
            informers = {
                ns: Informer(
                    kube, resource, self._changed(name), namespace=ns, keep=keep, **options
                )
                for ns in scope.watches()
            }
            return _Kind(name, informers)

        exists = ROLLOUT_LABEL  # a label selector: the key exists
        self.rollouts = kind("Rollout", ROLLOUTS)
        self.actions = kind("RolloutAction", ACTIONS, index=_by_target)
        self.templates = kind("AnalysisTemplate", TEMPLATES, index=_by_namespace)
        self.deployments = kind(
            "Deployment", DEPLOYMENTS, label_selector=exists, index=_labelled, slim=slim_deployment
        )
        self.pods = kind("Pod", PODS, label_selector=exists, index=_labelled, slim=slim_pod)
        self.services = kind("Service", SERVICES)
        self.slices = kind("EndpointSlice", SLICES, label_selector=exists, index=_by_service)
        self._fixed = (
            self.rollouts,
            self.actions,
            self.templates,
            self.deployments,
            self.pods,
            self.services,
            self.slices,
        )
        # started when a Rollout first names one: (namespace) -> routes, (ns, name) -> map
        self.routes: dict[str, Informer] = {}
        self.config_maps: dict[tuple[str, str], Informer] = {}
        self._started = False

    def _keeps(self, obj: Obj) -> bool:
        return self.scope.keeps(obj["metadata"].get("namespace", ""))

    # --- life ----------------------------------------------------------------------------
    def start(self, timeout: float = SYNC_TIMEOUT) -> bool:
        """Start every watch; True once each has listed (within `timeout`)."""
        self._started = True
        informers = [i for k in self._fixed for i in k.informers.values()]
        for informer in informers:
            informer.start()
        synced = all(i.synced.wait(timeout) for i in informers)
        for informer in informers:
            if informer.error:
                log.warning("cannot watch", informer=informer.name, error=informer.error)
        return synced

    def stop(self) -> None:
        for informer in self.informers():
            informer.stop()

    def changes_of(self, key: Key) -> int:
        """How many changes the watches have seen that concern this Rollout: equal counts
        mean nothing it depends on changed in between (our own writes aside)."""
        with self._lock:
            return self._touched.get(key, 0)

    def rollout_keys(self) -> list[Key]:
        return [k for i in self.rollouts.informers.values() for k in i.store.all_keys()]

    def rollout_objects(self) -> list[Obj]:
        """Every Rollout in memory, as the watch gave it (the metrics' scrape reads these)."""
        return [o for i in self.rollouts.informers.values() for o in i.store.items()]

    def informers(self) -> list[Informer]:
        with self._lock:
            late = [*self.routes.values(), *self.config_maps.values()]
        return [*(i for k in self._fixed for i in k.informers.values()), *late]

    # --- changes -> wake-ups ---------------------------------------------------------------
    def _changed(self, kind: str) -> Callable[[list[Change]], None]:
        def on_changes(changes: list[Change]) -> None:
            for change in changes:
                try:
                    keys = woken_by(kind, change)
                    if kind == "Rollout":
                        self._track(change)
                    with self._lock:
                        meta = change.obj["metadata"]
                        ref = (kind, meta.get("namespace", ""), meta["name"])
                        keys |= self._named.get(ref, set())
                        if kind == "EndpointSlice":
                            service = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL, "")
                            keys |= self._named.get(("Service", ref[1], service), set())
                    for key in keys:
                        log.debug("wake", kind=kind, name=change.key[1], rollout=key[1])
                        with self._lock:
                            self._touched[key] = self._touched.get(key, 0) + 1
                        self._wake(key)
                except Exception as exc:  # a malformed object must not stop the watch
                    log.warning("change not handled", kind=kind, error=repr(exc)[:300])

        return on_changes

    def _track(self, change: Change) -> None:
        """Keep the names each Rollout gives, and the late watches they need."""
        key = change.key
        if change.new is None:
            refs: frozenset[Ref] = frozenset()
            generation = None
        else:
            generation = change.new["metadata"].get("generation")
            held = self._refs.get(key)
            if held is not None and held[0] == generation:
                return  # only the status changed: the names are the same
            refs = refs_of(change.new)
        with self._lock:
            old = self._refs.pop(key, (None, frozenset()))[1]
            if change.new is not None:
                self._refs[key] = (generation, refs)
            for ref in old - refs:
                named = self._named.get(ref)
                if named is not None:
                    named.discard(key)
                    if not named:
                        del self._named[ref]
            for ref in refs:
                self._named.setdefault(ref, set()).add(key)
            wanted = set(self._named)
        self._watch_named(wanted)

    def _watch_named(self, wanted: set[Ref]) -> None:
        """Start the route and ConfigMap watches that Rollouts now name; stop the rest."""
        routes = {ns for kind, ns, _ in wanted if kind == "HTTPRoute" and self.scope.keeps(ns)}
        maps = {(ns, n) for kind, ns, n in wanted if kind == "ConfigMap" and self.scope.keeps(ns)}
        start: list[Informer] = []
        stop: list[Informer] = []
        with self._lock:
            for ns in routes - set(self.routes):
                self.routes[ns] = Informer(
                    self.kube, ROUTES, self._changed("HTTPRoute"), namespace=ns
                )
                start.append(self.routes[ns])
            for ns, name in maps - set(self.config_maps):
                self.config_maps[(ns, name)] = Informer(
                    self.kube,
                    CONFIG_MAPS,
                    self._changed("ConfigMap"),
                    namespace=ns,
                    field_selector=f"metadata.name={name}",
                )
                start.append(self.config_maps[(ns, name)])
            for ns in set(self.routes) - routes:
                stop.append(self.routes.pop(ns))
            for pair in set(self.config_maps) - maps:
                stop.append(self.config_maps.pop(pair))
        if self._started:
            for informer in start:
                informer.start()
        for informer in stop:
            informer.stop()


class CachedKube:
    """The KubePort a pass uses: reads from the cache, writes through the client, and
    keeps each write's answer in the cache."""

    def __init__(self, kube: Kube, cache: Cache) -> None:
        self.kube = kube
        self.cache = cache

    # --- reads -----------------------------------------------------------------------
    def get_rollout(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.cache.rollouts.ready(namespace).store.get((namespace, name))

    def list_deployments(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return _select(self.cache.deployments.ready(namespace), namespace, selector)

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return _select(self.cache.pods.ready(namespace), namespace, selector)

    def get_service(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.cache.services.ready(namespace).store.get((namespace, name))

    def list_endpoint_slices(self, namespace: str, service: str) -> list[dict[str, Any]]:
        return self.cache.slices.ready(namespace).store.by((namespace, service))

    def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.kube.get_secret(namespace, name)  # only when a measurement is due

    def list_analysis_templates(self, namespace: str) -> list[dict[str, Any]]:
        return self.cache.templates.ready(namespace).store.by(namespace)

    def get_route(self, namespace: str, name: str) -> dict[str, Any] | None:
        informer = self.cache.routes.get(namespace)
        if informer is None or not informer.synced.is_set():
            return self.kube.get_route(namespace, name)
        return _held(informer, namespace, name)

    def get_config_map(self, namespace: str, name: str) -> dict[str, Any] | None:
        informer = self.cache.config_maps.get((namespace, name))
        if informer is None or not informer.synced.is_set():
            return self.kube.get_config_map(namespace, name)
        return _held(informer, namespace, name)

    def list_actions(self, namespace: str, rollout: str | None = None) -> list[dict[str, Any]]:
        informer = self.cache.actions.ready(namespace)
        if rollout is not None:
            return informer.store.by((namespace, rollout))
        return [a for a in informer.store.items() if a["metadata"].get("namespace") == namespace]

    def get_deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        held = self.cache.deployments.ready(namespace).store.get((namespace, name))
        # Only nonstop's labelled Deployments are watched: whether one someone else made
        # holds the name is asked once, before the revision's Deployment is created.
        return held if held is not None else self.kube.get_deployment(namespace, name)

    # --- writes ----------------------------------------------------------------------
    def replace_config_map(self, body: dict[str, Any]) -> None:
        meta = body["metadata"]
        informer = self.cache.config_maps.get((meta["namespace"], meta["name"]))
        _keep(informer, self.kube.replace_config_map(body))

    def delete_action(self, namespace: str, name: str) -> None:
        self.kube.delete_action(namespace, name)
        informer = self.cache.actions.informer(namespace)
        if informer is not None:
            informer.store.remove((namespace, name))

    def answer_action(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        answer = self.kube.answer_action(namespace, name, status)
        _keep(self.cache.actions.informer(namespace), answer)

    def create_deployment(self, body: dict[str, Any]) -> None:
        answer = self.kube.create_deployment(body)
        _keep(self.cache.deployments.informer(body["metadata"]["namespace"]), answer)

    def scale_deployment(self, namespace: str, name: str, replicas: int) -> None:
        answer = self.kube.scale_deployment(namespace, name, replicas)
        _keep(self.cache.deployments.informer(namespace), answer)

    def delete_deployment(self, namespace: str, name: str) -> None:
        self.kube.delete_deployment(namespace, name)
        informer = self.cache.deployments.informer(namespace)
        if informer is not None:
            informer.store.remove((namespace, name))

    def ensure_service(
        self, body: dict[str, Any], current_selector: dict[str, str] | None = None
    ) -> None:
        answer = self.kube.ensure_service(body, current_selector)
        _keep(self.cache.services.informer(body["metadata"]["namespace"]), answer)

    def replace_route(self, body: dict[str, Any]) -> None:
        answer = self.kube.replace_route(body)
        _keep(self.cache.routes.get(body["metadata"]["namespace"]), answer)

    def set_rollout_template(
        self, namespace: str, name: str, template: dict[str, Any], generation: int
    ) -> None:
        answer = self.kube.set_rollout_template(namespace, name, template, generation)
        _keep(self.cache.rollouts.informer(namespace), answer)

    def patch_rollout_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        answer = self.kube.patch_rollout_status(namespace, name, status)
        _keep(self.cache.rollouts.informer(namespace), answer)

    def post_event(self, rollout: dict[str, Any], type_: str, reason: str, message: str) -> None:
        self.kube.post_event(rollout, type_, reason, message)


def _keep(informer: Informer | None, answer: Answer) -> None:
    if informer is not None and answer is not None and "metadata" in answer:
        informer.store.write(answer)


def _raise_refusal(informer: Informer) -> None:
    """The API server's refusal of this kind (informer.error, "404 Not Found"), as the
    ApiException a direct read would have raised."""
    if informer.error is not None:
        status, _, reason = informer.error.partition(" ")
        raise ApiException(status=int(status), reason=reason)


def _held(informer: Informer, namespace: str, name: str) -> dict[str, Any] | None:
    _raise_refusal(informer)
    return informer.store.get((namespace, name))


def _select(informer: Informer, namespace: str, selector: str) -> list[dict[str, Any]]:
    """A `k=v,k2=v2` selector over the store: the rollout label through the index."""
    wanted = dict(part.split("=", 1) for part in selector.split(",") if part)
    rollout = wanted.get(ROLLOUT_LABEL)
    candidates = (
        informer.store.by((namespace, rollout))
        if rollout is not None
        else [o for o in informer.store.items() if o["metadata"].get("namespace") == namespace]
    )
    return [
        o
        for o in candidates
        if all((o["metadata"].get("labels") or {}).get(k) == v for k, v in wanted.items())
    ]
