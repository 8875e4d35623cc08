"""Gateway API HTTPRoute router: the parts of a user's HTTPRoute that nonstop manages.

Pure functions over the route as JSON (what the API server returns): no client, no I/O.
The kube layer reads the route, calls `desired_route()`, and writes the result only when
`route_drift()` says nonstop's parts differ. `strip_route()` takes every trace out again;
`read_weights()` and `read_mirror_percent()` feed `status.weights`.

The HTTPRoute belongs to the user. nonstop manages only these parts of it:

- **Managed rules** are the user's rules whose backendRefs include the stable Service
  (group core, kind Service, in the Services' namespace, and on `port` when one is given).
  In each, the stable backendRef gets a weight and a canary backendRef (a copy of the stable
  one: same port, namespace and per-backend filters) is inserted right after it.
- **Owned rules** are rules nonstop adds, marked by their `name` (GEP-995 named route rules,
  in the standard channel of the v1.6.1 CRD; an ordinary field, so the mark survives a round
  trip through the API server, unlike anything kept in memory): `nonstop-header-<header
  route>-<i>` and `nonstop-mirror-<method>-<i>`, derived from the user's rule `i` (its index
  among the user's rules, i.e. its position in the route as the user wrote it). Every rule
  whose name starts with `nonstop-` is nonstop's and is re-rendered (or dropped) each pass.
- **RequestMirror filters** whose backendRef is the canary Service.
- **The annotation** `nonstop.dev/original-weights`: the stable weights as the user wrote
  them, while nonstop's weights are in place.

Everything else (other rules and their order, other backendRefs, user filters, hostnames,
parentRefs, timeouts, labels, other annotations) is copied as it is. The one thing that does
not come back exactly: a `filters: []` the user wrote on a rule that got nonstop's mirror
filter (mirroring every method) comes back without the `filters` key, which means the same.

Weights
-------
A backendRef weight is a relative integer (0..1000000). When the stable Service is the only
backend of the rule with a non-zero weight (the usual case), stable + canary = 10000
(`WEIGHT_SCALE`): basis points, so 0.01% steps are exact (0.5% -> 9950/50). The canary
weight is rounded *down*, so the canary never gets more than asked for.
When the rule also sends traffic to other backends, the canary takes its share out of the
stable backend's share only: stable + canary = the user's stable weight, and every other
backend keeps exactly its weight and share. The resolution there is 1/(user's stable
weight), so such rules should use weights like 9000/1000 rather than 9/1.

At weight 0 the canary backendRef is *removed* and the stable weight restored, rather than
kept at weight 0 (as Flagger does): the rule is then byte-for-byte the user's, a rule without
a canary backendRef is by definition as its author wrote it (so the original weight is read
from it directly), and stripping has one case less. The annotation exists only while a
canary backendRef does.

The user's original stable weight (or its absence) is recorded per managed rule in the
annotation (JSON: `{"service": ..., "rules": {"<i>": {"port": ..., "weight": ...}}}`) and
restored from it. Without the annotation (someone deleted it), nonstop falls back to what
the weights say: stable + canary (rules with other weighted backends), or no weight at all
(the stable Service is the only backend; traffic is the same). A canary backendRef at weight
0, which nonstop never writes, is taken as the user's (Argo Rollouts asks users to list one)
and leaves the stable weight as it is.

Header routes
-------------
One owned rule per (header route, managed rule), inserted before its source rule. Its
matches are the source rule's matches, each with the header conditions added; its filters,
timeouts etc. are the source rule's; its only backendRef is the canary (weight 1). Having
more header matches than the source, it takes precedence over it (the Gateway API ranks
matches by path, then method, then the number of header matches). A `prefix` condition is
written as `RegularExpression` `^<escaped prefix>.*`: Envoy-based implementations match a
header regex against the whole value, others search in it; anchored and ending in `.*`, it
means the same in both. (Argo Rollouts' Gateway API plugin writes `prefix + ".*"`, unescaped
and unanchored; pkg/plugin/httproute.go, getHTTPHeaderRouteRuleList.)

Mirroring (shadow)
------------------
A RequestMirror filter to the canary Service with `percent`, appended after the user's
filters (so the copy carries the same header changes stable sees). When the mirror is
limited to some methods (default GET, HEAD, OPTIONS), each managed rule gets one owned rule
per method, before the source rule: the source matches with `method` set, the source's
filters plus the mirror. The source rule keeps serving the other methods, unmirrored. A
method match outranks header and query matches, so a split would take requests from any
other rule of the route with the same path and no method: that is refused with an error,
not done silently (other HTTPRoutes on the same Gateway cannot be seen from here). A mirror
of methods that none of the managed rules serves is an error too: the shadow would get
nothing to be judged on.
While mirroring, the canary must get no live traffic (users only ever see stable's
answers): a non-zero weight or header routes together with a mirror are refused.
Argo Rollouts' plugin has the same two shapes ("filter" mode on the weighted rule, and
"rule" mode with a managed rule found by its `name`; pkg/plugin/httproute_mirror_test.go);
Flagger adds one RequestMirror filter (no percent) to the rule it generates
(pkg/router/gateway_api.go, SetRoutes).

Why not the way Argo Rollouts or Flagger do it
----------------------------------------------
Flagger generates the whole HTTPRoute from its Canary resource; nonstop works on the user's
route. Argo's plugin needs the user to list the canary backendRef, writes integer percents
(no fractions below 1%), and records its header rules by *index* in a ConfigMap, which
breaks when someone edits the rule list; names on the rules need no side store.

Limits
------
The v1 schema allows 16 rules, 64 matches per rule and 128 in the route (a CEL rule),
16 backendRefs and 16 filters per rule, 16 header matches per match. When nonstop's
additions would go past one, `desired_route()` raises `RouteError` (a `ValueError`) whose
message says what to change; nothing is half-applied.

Drift
-----
`route_drift(observed, desired)` compares the rules and nonstop's annotation after filling
in the schema's defaults on both sides (the API server adds `weight: 1`, `kind: Service`,
`path: {type: PathPrefix, value: /}`...), so a route read back after a write is not drift,
and a route someone else changed is. `desired` must be computed from the same `observed`.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from nonstop.api.spec import Mirror, SetHeaderRoute

JsonDict = dict[str, Any]

WEIGHT_SCALE: Final = 10_000
OWNED_RULE_PREFIX: Final = "nonstop-"
HEADER_RULE_PREFIX: Final = "nonstop-header-"
MIRROR_RULE_PREFIX: Final = "nonstop-mirror-"
ORIGINAL_WEIGHTS_ANNOTATION: Final = "nonstop.dev/original-weights"

# Limits of the HTTPRoute v1 schema (Gateway API v1.6.1, standard channel);
# tests/unit/test_gateway_route.py checks them against the CRD file.
MAX_RULES: Final = 16
MAX_MATCHES_PER_RULE: Final = 64
MAX_MATCHES_PER_ROUTE: Final = 128
MAX_BACKEND_REFS_PER_RULE: Final = 16
MAX_FILTERS_PER_RULE: Final = 16
MAX_HEADERS_PER_MATCH: Final = 16
MAX_HEADER_NAME_LENGTH: Final = 256
MAX_HEADER_VALUE_LENGTH: Final = 4096
MAX_WEIGHT: Final = 1_000_000

HTTP_METHODS: Final = (
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "CONNECT",
    "OPTIONS",
    "TRACE",
    "PATCH",
)
SAFE_METHODS: Final = ("GET", "HEAD", "OPTIONS")

DEFAULT_MATCH: Final[JsonDict] = {"path": {"type": "PathPrefix", "value": "/"}}

# The defaults the API server fills in inside spec.rules[], parents before children
# (checked against the CRD by the tests). Used only to compare routes, never written.
_MIRROR_FILTER_DEFAULTS: Final = (
    (("cors", "maxAge"), 5),
    (("requestMirror", "backendRef", "group"), ""),
    (("requestMirror", "backendRef", "kind"), "Service"),
    (("requestMirror", "fraction", "denominator"), 100),
    (("requestRedirect", "statusCode"), 302),
)
RULE_DEFAULTS: Final[tuple[tuple[tuple[str, ...], Any], ...]] = (
    (("matches",), [DEFAULT_MATCH]),
    (("matches", "[]", "path"), DEFAULT_MATCH["path"]),
    (("matches", "[]", "path", "type"), "PathPrefix"),
    (("matches", "[]", "path", "value"), "/"),
    (("matches", "[]", "headers", "[]", "type"), "Exact"),
    (("matches", "[]", "queryParams", "[]", "type"), "Exact"),
    (("backendRefs", "[]", "group"), ""),
    (("backendRefs", "[]", "kind"), "Service"),
    (("backendRefs", "[]", "weight"), 1),
    *((("filters", "[]", *path), value) for path, value in _MIRROR_FILTER_DEFAULTS),
    *(
        (("backendRefs", "[]", "filters", "[]", *path), value)
        for path, value in _MIRROR_FILTER_DEFAULTS
    ),
)

_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+\-.^_`|~]+")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_REGEX_SPECIAL = frozenset("\\.+*?()|[]{}^$")


class RouteError(ValueError):
    """The HTTPRoute cannot carry what was asked; the message says what a person can change."""


# --- inputs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeaderMatch:
    """One header condition of a header route: exactly one of exact, prefix, regex."""

    name: str
    exact: str | None = None
    prefix: str | None = None
    regex: str | None = None

    def __post_init__(self) -> None:
        if len(self.name) > MAX_HEADER_NAME_LENGTH or not _HEADER_NAME.fullmatch(self.name):
            raise ValueError(
                f"header name {self.name!r} is not a valid HTTP header name (letters, digits and !#$%&'*+-.^_`|~, at most {MAX_HEADER_NAME_LENGTH})"
            )
        if sum(v is not None for v in (self.exact, self.prefix, self.regex)) != 1:
            raise ValueError(f"header {self.name}: set exactly one of exact, prefix or regex")
        if len(self.value) > MAX_HEADER_VALUE_LENGTH:
            raise ValueError(
                f"header {self.name}: the value written to the HTTPRoute would be {len(self.value)} characters; the Gateway API allows {MAX_HEADER_VALUE_LENGTH}"
            )

    @property
    def type(self) -> str:
        return "Exact" if self.exact is not None else "RegularExpression"

    @property
    def value(self) -> str:
        if self.exact is not None:
            return self.exact
        if self.prefix is not None:
            return "^" + _escape_regex(self.prefix) + ".*"
        assert self.regex is not None
        return self.regex

    def to_gateway(self) -> JsonDict:
        """The HTTPHeaderMatch, with its type spelled out (as the API server would default it)."""
        return {"type": self.type, "name": self.name, "value": self.value}


@dataclass(frozen=True)
class HeaderRoute:
    """Requests carrying all these headers go to the canary, whatever the weight."""

    name: str
    matches: tuple[HeaderMatch, ...]

    def __post_init__(self) -> None:
        if len(self.name) > 63 or not _DNS_LABEL.fullmatch(self.name):
            raise ValueError(
                f"header route name {self.name!r} must be a DNS label (lower case letters, digits and '-', at most 63)"
            )
        if not self.matches:
            raise ValueError(f"header route {self.name}: give at least one header match")
        if len(self.matches) > MAX_HEADERS_PER_MATCH:
            raise ValueError(
                f"header route {self.name}: {len(self.matches)} header matches; the Gateway API allows {MAX_HEADERS_PER_MATCH}"
            )
        lowered = [m.name.lower() for m in self.matches]
        if len(set(lowered)) != len(lowered):
            raise ValueError(
                f"header route {self.name}: each header may appear once (HTTP header names are case-insensitive)"
            )

    @classmethod
    def from_api(cls, step: SetHeaderRoute) -> HeaderRoute:
        """From a canary step's setHeaderRoute."""
        return cls(
            name=step.name,
            matches=tuple(HeaderMatch(m.name, m.exact, m.prefix, m.regex) for m in step.match),
        )


@dataclass(frozen=True)
class MirrorSpec:
    """Mirror `percent`% of the requests using `methods` (None: every method) to the canary."""

    percent: int = 100
    methods: tuple[str, ...] | None = SAFE_METHODS

    def __post_init__(self) -> None:
        if isinstance(self.percent, bool) or not 0 <= self.percent <= 100:
            raise ValueError(f"mirror percent {self.percent} is outside 0..100")
        if self.methods is not None:
            if not self.methods:
                raise ValueError("mirror methods: give at least one method, or None for all")
            unknown = [m for m in self.methods if m not in HTTP_METHODS]
            if unknown:
                raise ValueError(
                    f"mirror methods {', '.join(unknown)} are not HTTP methods the Gateway API can match ({', '.join(HTTP_METHODS)})"
                )
            if len(set(self.methods)) != len(self.methods):
                raise ValueError("mirror methods: each method may appear once")

    @property
    def splits(self) -> bool:
        """Whether mirroring needs rules of its own (it is limited to some methods)."""
        return self.methods is not None and set(self.methods) != set(HTTP_METHODS)

    @classmethod
    def from_api(cls, mirror: Mirror) -> MirrorSpec:
        return cls(percent=mirror.percent, methods=tuple(mirror.methods))


# --- public functions ------------------------------------------------------------------------


def desired_route(
    route: Mapping[str, Any],
    *,
    stable_service: str,
    canary_service: str,
    port: int | None = None,
    canary_weight: float,
    header_routes: Sequence[HeaderRoute] = (),
    mirror: MirrorSpec | None = None,
    service_namespace: str | None = None,
) -> JsonDict:
    """The route with nonstop's parts as asked: a new object, `route` is not changed.

    `port` limits the managed backendRefs to that port of the stable Service (None: any).
    `service_namespace` is where both Services live (None: the route's namespace).
    Raises RouteError when the route cannot carry it.
    """
    label = _label(route)
    percent = _percent(canary_weight, label)
    if mirror is not None and mirror.percent == 0:
        mirror = None  # mirroring nothing: no filter, no split
    _check_request(label, stable_service, canary_service, percent, header_routes, mirror)

    out: JsonDict = copy.deepcopy(dict(route))
    names = _names(out, canary_service, service_namespace)
    record = _read_record(out)
    spec = out.get("spec")
    rules = spec.get("rules") if isinstance(spec, dict) else None
    user_rules = [r for r in rules if not _is_owned(r)] if isinstance(rules, list) else []

    result: list[JsonDict] = []
    entries: dict[str, tuple[int | None, int | None]] = {}
    unmanaged: list[tuple[int, JsonDict]] = []
    split: list[tuple[int, JsonDict]] = []
    mirrored = False
    for index, rule in enumerate(user_rules):
        base = _restore_rule(rule, index, record, names, stable_service)
        at = _stable_index(base, stable_service, port, names, label, index)
        if at is None:
            unmanaged.append((index, base))
            result.append(base)
            continue
        stable_ref = base["backendRefs"][at]
        for header_route in header_routes:
            result.append(_header_rule(base, stable_ref, header_route, index, names, label))
        weighted, entry = _weighted_rule(base, at, canary_service, percent)
        if entry is not None:
            entries[str(index)] = entry
        if mirror is not None:
            mirror_filter = _mirror_filter(stable_ref, names, mirror.percent, label, index)
            if mirror.methods is not None and mirror.splits:
                for rule_ in _mirror_rules(weighted, mirror_filter, mirror.methods, index):
                    split.extend((index, m) for m in rule_["matches"])
                    result.append(rule_)
                    mirrored = True
            else:
                weighted = {**weighted, "filters": [*weighted.get("filters", []), mirror_filter]}
                mirrored = True
        result.append(weighted)

    if len(unmanaged) == len(user_rules) and (percent > 0 or header_routes or mirror):
        raise RouteError(
            f"{label} has no rule with a backendRef to Service {stable_service}{_on_port(port)}"
            f"{_in_namespace(names)}: add one (kind Service) to each rule whose traffic nonstop should split"
        )
    if mirror is not None and mirror.methods is not None and not mirrored:
        raise RouteError(
            f"{label}: no rule that routes to Service {stable_service} serves {', '.join(mirror.methods)}, "
            "so nothing would be mirrored to the shadow: mirror the methods these rules match"
        )
    _check_method_split(label, split, unmanaged)
    _check_limits(label, result, stable_service)

    if isinstance(rules, list):
        assert isinstance(spec, dict)
        spec["rules"] = result
    _write_record(out, _Record(stable_service, entries) if entries else None)
    return out


def strip_route(
    route: Mapping[str, Any], *, canary_service: str, service_namespace: str | None = None
) -> JsonDict:
    """The route without any trace of nonstop: owned rules, canary backendRefs, mirror filters
    to the canary and the annotation removed, stable weights restored as the user wrote them.

    A canary backendRef counts as nonstop's when the annotation records its rule or when it
    shares the rule with other backends; a rule that routes only to the canary Service is
    the user's own and stays.
    """
    out: JsonDict = copy.deepcopy(dict(route))
    names = _names(out, canary_service, service_namespace)
    record = _read_record(out)
    spec = out.get("spec")
    rules = spec.get("rules") if isinstance(spec, dict) else None
    if isinstance(rules, list):
        assert isinstance(spec, dict)
        user_rules = [r for r in rules if not _is_owned(r)]
        spec["rules"] = [
            _restore_rule(rule, index, record, names, None) for index, rule in enumerate(user_rules)
        ]
    _write_record(out, None)
    return out


def route_drift(observed: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """True when nonstop's parts of `observed` differ from `desired` (computed from it)."""
    return _managed_view(observed) != _managed_view(desired)


def read_weights(
    route: Mapping[str, Any],
    stable_service: str,
    canary_service: str,
    *,
    port: int | None = None,
    service_namespace: str | None = None,
) -> tuple[float, float] | None:
    """(stable %, canary %) of the traffic the route sends to the stable slot, summing to 100.

    None when no rule routes to the stable Service. When rules differ (only possible with
    rules that also route elsewhere, or when someone edited them), the largest canary share.
    """
    names = _names(route, canary_service, service_namespace)
    found = False
    largest = Fraction(0)
    for rule in _user_rules(route):
        refs = rule.get("backendRefs")
        if not isinstance(refs, list):
            continue
        stable = [
            r
            for r in refs
            if names.refers(r, stable_service) and (port is None or r.get("port") == port)
        ]
        if not stable:
            continue
        found = True
        stable_weight = sum(_weight(r) for r in stable)
        canary_weight = sum(_weight(r) for r in refs if names.refers(r, canary_service))
        if stable_weight + canary_weight > 0:
            largest = max(largest, Fraction(100 * canary_weight, stable_weight + canary_weight))
    if not found:
        return None
    canary = float(largest)
    return 100.0 - canary, canary


def read_mirror_percent(
    route: Mapping[str, Any], canary_service: str, *, service_namespace: str | None = None
) -> float:
    """The largest share (%) of requests a rule of the route mirrors to the canary; 0 if none."""
    names = _names(route, canary_service, service_namespace)
    largest = Fraction(0)
    spec = route.get("spec")
    rules = spec.get("rules") if isinstance(spec, Mapping) else None
    for rule in rules if isinstance(rules, list) else []:
        filters = rule.get("filters") if isinstance(rule, Mapping) else None
        for f in filters if isinstance(filters, list) else []:
            if _is_canary_mirror(f, names):
                largest = max(largest, _mirrored_share(f["requestMirror"]))
    return float(largest)


# --- rules -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Names:
    canary: str
    namespace: str | None  # where the Services live
    route_namespace: str | None

    def refers(self, ref: Any, name: str) -> bool:
        """Whether a backendRef (or mirror backendRef) points at the Service `name`."""
        return (
            isinstance(ref, Mapping)
            and ref.get("name") == name
            and (ref.get("group") or "") == ""
            and (ref.get("kind") or "Service") == "Service"
            and (ref.get("namespace") or self.route_namespace) == self.namespace
        )


def _names(route: Mapping[str, Any], canary: str, service_namespace: str | None) -> _Names:
    meta = route.get("metadata")
    route_ns = meta.get("namespace") if isinstance(meta, Mapping) else None
    route_ns = route_ns if isinstance(route_ns, str) and route_ns else None
    return _Names(canary, service_namespace or route_ns, route_ns)


def _is_owned(rule: Any) -> bool:
    return isinstance(rule, Mapping) and str(rule.get("name") or "").startswith(OWNED_RULE_PREFIX)


def _user_rules(route: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    spec = route.get("spec")
    rules = spec.get("rules") if isinstance(spec, Mapping) else None
    if not isinstance(rules, list):
        return []
    return [r for r in rules if isinstance(r, Mapping) and not _is_owned(r)]


def _matches(rule: Mapping[str, Any]) -> list[Any]:
    matches = rule.get("matches")
    return matches if isinstance(matches, list) and matches else [DEFAULT_MATCH]


def _weight(ref: Mapping[str, Any]) -> int:
    weight = ref.get("weight")
    return 1 if weight is None else int(weight)


def _with_weight(ref: Mapping[str, Any], weight: int | None) -> JsonDict:
    new = dict(ref)
    if weight is None:
        new.pop("weight", None)
    else:
        new["weight"] = weight
    return new


def _is_canary_mirror(f: Any, names: _Names) -> bool:
    return (
        isinstance(f, Mapping)
        and f.get("type") == "RequestMirror"
        and isinstance(f.get("requestMirror"), Mapping)
        and names.refers(f["requestMirror"].get("backendRef"), names.canary)
    )


def _mirrored_share(mirror: Mapping[str, Any]) -> Fraction:
    fraction = mirror.get("fraction")
    if isinstance(fraction, Mapping):
        denominator = int(fraction.get("denominator") or 100)
        return Fraction(100 * int(fraction.get("numerator") or 0), denominator)
    percent = mirror.get("percent")
    return Fraction(100 if percent is None else int(percent))


def _restore_rule(
    rule: Any, index: int, record: _Record | None, names: _Names, stable: str | None
) -> Any:
    """The user's rule as its author wrote it: nonstop's mirror filters and canary backendRefs
    removed, the stable weight restored (from the record, else from the weights)."""
    if not isinstance(rule, Mapping):
        return rule
    new = dict(rule)
    filters = rule.get("filters")
    if isinstance(filters, list):
        kept_filters = [f for f in filters if not _is_canary_mirror(f, names)]
        if kept_filters:
            new["filters"] = kept_filters
        elif filters:  # only nonstop's mirror: nonstop added the key
            new.pop("filters")
    refs = rule.get("backendRefs")
    if not isinstance(refs, list):
        return new
    canary_at = {j for j, ref in enumerate(refs) if names.refers(ref, names.canary)}
    if not canary_at or len(canary_at) == len(refs):
        return new  # no canary here, or a rule of the user's own that routes only to it
    kept = [ref for j, ref in enumerate(refs) if j not in canary_at]
    new["backendRefs"] = kept
    entry = record.rules.get(str(index)) if record is not None else None
    if entry is not None and record is not None:
        port, weight = entry
        for k, ref in enumerate(kept):
            if names.refers(ref, record.service) and ref.get("port") == port:
                kept[k] = _with_weight(ref, weight)
                return new
    # No record: what the weights tell. nonstop never writes a canary weight of 0, so a
    # canary at 0 was the user's and left the stable weight alone.
    canary_weight = sum(_weight(refs[j]) for j in canary_at)
    if stable is not None:
        candidates = [k for k, ref in enumerate(kept) if names.refers(ref, stable)]
    else:
        candidates = [0] if len(kept) == 1 else []  # the only other backend is the stable one
    if len(candidates) == 1 and canary_weight > 0:
        k = candidates[0]
        others = any(_weight(r) > 0 for j, r in enumerate(kept) if j != k)
        kept[k] = _with_weight(kept[k], _weight(kept[k]) + canary_weight if others else None)
    return new


def _stable_index(
    rule: Any, stable: str, port: int | None, names: _Names, label: str, index: int
) -> int | None:
    refs = rule.get("backendRefs") if isinstance(rule, Mapping) else None
    if not isinstance(refs, list):
        return None
    hits = [
        j
        for j, ref in enumerate(refs)
        if names.refers(ref, stable) and (port is None or ref.get("port") == port)
    ]
    if len(hits) > 1:
        raise RouteError(
            f"{label}: {_rule_label(rule, index)} has {len(hits)} backendRefs to Service {stable}{_on_port(port)}; "
            "nonstop splits exactly one per rule: keep one, or give the Rollout's router the port to manage"
        )
    return hits[0] if hits else None


def _weighted_rule(
    base: JsonDict, at: int, canary: str, percent: Fraction
) -> tuple[JsonDict, tuple[int | None, int | None] | None]:
    """The rule with the canary's share of the stable backend, and what to record for it."""
    refs: list[JsonDict] = base["backendRefs"]
    stable_ref = refs[at]
    original = stable_ref.get("weight")
    stable_weight = _weight(stable_ref)
    others = any(_weight(r) > 0 for j, r in enumerate(refs) if j != at)
    total = stable_weight if others or stable_weight == 0 else WEIGHT_SCALE
    canary_weight = math.floor(total * percent / 100)
    if canary_weight == 0:
        return base, None
    canary_ref = copy.deepcopy({**stable_ref, "name": canary, "weight": canary_weight})
    new_refs = [
        *refs[:at],
        _with_weight(stable_ref, total - canary_weight),
        canary_ref,
        *refs[at + 1 :],
    ]
    return {**base, "backendRefs": new_refs}, (stable_ref.get("port"), original)


def _header_rule(
    base: JsonDict,
    stable_ref: JsonDict,
    header_route: HeaderRoute,
    index: int,
    names: _Names,
    label: str,
) -> JsonDict:
    return _derived_rule(
        base,
        f"{HEADER_RULE_PREFIX}{header_route.name}-{index}",
        matches=[_with_headers(m, header_route, base, index, label) for m in _matches(base)],
        backendRefs=[{**stable_ref, "name": names.canary, "weight": 1}],
    )


def _derived_rule(base: JsonDict, name: str, **replace: Any) -> JsonDict:
    """An owned rule: `base` with its name and the given fields replaced, keys in base's order."""
    rule: JsonDict = {"name": name}
    for key, value in base.items():
        if key != "name":
            rule[key] = replace.pop(key) if key in replace else value
    rule.update(replace)
    return copy.deepcopy(rule)


def _with_headers(
    match: Any, header_route: HeaderRoute, base: JsonDict, index: int, label: str
) -> JsonDict:
    new: JsonDict = copy.deepcopy(dict(match))
    headers = list(new.get("headers") or [])
    for condition in header_route.matches:
        wanted = condition.to_gateway()
        same = [h for h in headers if str(h.get("name", "")).lower() == condition.name.lower()]
        if not same:
            headers.append(wanted)
        elif any(
            (h.get("type") or "Exact", h.get("value")) != (wanted["type"], wanted["value"])
            for h in same
        ):
            raise RouteError(
                f"{label}: header route {header_route.name} matches header {condition.name}, which "
                f"{_rule_label(base, index)} already matches differently; a Gateway API match holds one "
                "condition per header name: use another header for the header route"
            )
    if len(headers) > MAX_HEADERS_PER_MATCH:
        raise RouteError(
            f"{label}: header route {header_route.name} would give a match of {_rule_label(base, index)} "
            f"{len(headers)} header conditions; the Gateway API allows {MAX_HEADERS_PER_MATCH}: use fewer headers"
        )
    new["headers"] = headers
    return new


def _mirror_filter(
    stable_ref: Mapping[str, Any], names: _Names, percent: int, label: str, index: int
) -> JsonDict:
    backend: JsonDict = {"group": "", "kind": "Service", "name": names.canary}
    if stable_ref.get("namespace"):
        backend["namespace"] = stable_ref["namespace"]
    if stable_ref.get("port") is None:
        raise RouteError(
            f"{label}: the backendRef to Service {stable_ref.get('name')} in spec.rules[{index}] has no port, "
            "and a RequestMirror backendRef to a Service needs one: add the port to the backendRef"
        )
    backend["port"] = stable_ref["port"]
    return {"type": "RequestMirror", "requestMirror": {"backendRef": backend, "percent": percent}}


def _mirror_rules(
    base: JsonDict, mirror_filter: JsonDict, methods: Sequence[str], index: int
) -> list[JsonDict]:
    rules = []
    for method in methods:
        matches = [
            {**copy.deepcopy(m), "method": method}
            for m in _matches(base)
            if isinstance(m, Mapping) and m.get("method") in (None, method)
        ]
        if not matches:
            continue  # the rule never serves this method
        rule = _derived_rule(
            base,
            f"{MIRROR_RULE_PREFIX}{method.lower()}-{index}",
            matches=matches,
            filters=[*base.get("filters", []), mirror_filter],
        )
        rules.append(rule)
    return rules


# --- checks ----------------------------------------------------------------------------------


def _percent(weight: float, label: str) -> Fraction:
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight):
        raise RouteError(f"{label}: canary weight {weight!r} is not a number")
    if not 0 <= weight <= 100:
        raise RouteError(f"{label}: canary weight {weight} is outside 0..100")
    return Fraction(str(weight))  # the decimal as written: 0.1 is 1/10, not the nearest float


def _check_request(
    label: str,
    stable: str,
    canary: str,
    percent: Fraction,
    header_routes: Sequence[HeaderRoute],
    mirror: MirrorSpec | None,
) -> None:
    if stable == canary:
        raise RouteError(
            f"{label}: the stable and canary Services are both {stable}; they must differ"
        )
    route_names = [r.name for r in header_routes]
    if len(set(route_names)) != len(route_names):
        raise RouteError(
            f"{label}: header routes must have distinct names (got {', '.join(route_names)})"
        )
    if mirror is not None and percent > 0:
        raise RouteError(
            f"{label}: while mirroring, the canary Service {canary} must not get live traffic "
            f"(weight {float(percent):g}%): users only ever see stable's answers; set the weight to 0"
        )
    if mirror is not None and header_routes:
        raise RouteError(
            f"{label}: header routes send live requests to the canary Service {canary}, which only "
            "gets mirrored copies while mirroring: drop the header routes or the mirror"
        )


def _path_key(match: Any) -> tuple[Any, Any]:
    path = match.get("path") if isinstance(match, Mapping) else None
    path = path if isinstance(path, Mapping) else {}
    return path.get("type") or "PathPrefix", path.get("value") if path.get(
        "value"
    ) is not None else "/"


def _check_method_split(
    label: str, split: list[tuple[int, JsonDict]], unmanaged: list[tuple[int, JsonDict]]
) -> None:
    for index, rule in unmanaged:
        for match in _matches(rule):
            for source, ours in split:
                method = match.get("method") if isinstance(match, Mapping) else None
                if _path_key(match) == _path_key(ours) and method in (None, ours["method"]):
                    kind, value = _path_key(ours)
                    raise RouteError(
                        f"{label}: mirroring only some methods adds rules that match by method, and the one "
                        f"for {ours['method']} {kind} {value} (from spec.rules[{source}]) would take requests "
                        f"from {_rule_label(rule, index)}, which matches the same path "
                        f"{'without a method' if method is None else 'and method'}: the Gateway API ranks a "
                        "method match above header and query matches. Give that rule a method match or a "
                        "longer path, or move it out of the rule list nonstop mirrors"
                    )


def _check_limits(label: str, rules: list[Any], stable: str) -> None:
    why = (
        f"each header route adds one rule, and each mirrored method one rule, for every rule "
        f"that routes to Service {stable}"
    )
    if len(rules) > MAX_RULES:
        raise RouteError(
            f"{label}: with nonstop's rules the route would have {len(rules)} rules; the Gateway API "
            f"allows {MAX_RULES} ({why}): use fewer header routes or mirrored methods, or fewer such rules"
        )
    total = 0
    for position, rule in enumerate(rules):
        if not isinstance(rule, Mapping):
            continue
        name = _rule_label(rule, position)
        matches = _matches(rule)
        total += len(matches)
        if len(matches) > MAX_MATCHES_PER_RULE:
            raise RouteError(
                f"{label}: {name} would have {len(matches)} matches; the Gateway API allows {MAX_MATCHES_PER_RULE}"
            )
        refs = rule.get("backendRefs")
        if isinstance(refs, list) and len(refs) > MAX_BACKEND_REFS_PER_RULE:
            raise RouteError(
                f"{label}: with the canary's backendRef {name} would have {len(refs)} backendRefs; the "
                f"Gateway API allows {MAX_BACKEND_REFS_PER_RULE}: remove one"
            )
        filters = rule.get("filters")
        if isinstance(filters, list) and len(filters) > MAX_FILTERS_PER_RULE:
            raise RouteError(
                f"{label}: with nonstop's RequestMirror filter {name} would have {len(filters)} filters; "
                f"the Gateway API allows {MAX_FILTERS_PER_RULE}: remove one"
            )
    if total > MAX_MATCHES_PER_ROUTE:
        raise RouteError(
            f"{label}: with nonstop's rules the route would have {total} matches in all; the Gateway API "
            f"allows {MAX_MATCHES_PER_ROUTE} ({why}, with the matches of its source): use fewer header "
            "routes or mirrored methods, or fewer matches"
        )


# --- the record of the user's weights ----------------------------------------------------------


@dataclass(frozen=True)
class _Record:
    service: str
    rules: dict[str, tuple[int | None, int | None]]  # user rule index -> (stable port, weight)

    def dumps(self) -> str:
        rules = {k: {"port": port, "weight": weight} for k, (port, weight) in self.rules.items()}
        return json.dumps(
            {"service": self.service, "rules": rules}, sort_keys=True, separators=(",", ":")
        )


def _read_record(route: Mapping[str, Any]) -> _Record | None:
    """The annotation, or None when it is absent or not nonstop's format."""
    meta = route.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, Mapping) else None
    raw = annotations.get(ORIGINAL_WEIGHTS_ANNOTATION) if isinstance(annotations, Mapping) else None
    if not isinstance(raw, str):
        return None
    try:
        data = json.loads(raw)
        rules = {
            str(k): (_opt_int(v.get("port")), _opt_int(v.get("weight")))
            for k, v in data["rules"].items()
        }
        return _Record(str(data["service"]), rules)
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def _opt_int(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(value)
    return value


def _write_record(route: JsonDict, record: _Record | None) -> None:
    meta = route.get("metadata")
    if record is None:
        if isinstance(meta, dict) and isinstance(meta.get("annotations"), dict):
            annotations = meta["annotations"]
            annotations.pop(ORIGINAL_WEIGHTS_ANNOTATION, None)
            if not annotations:  # the API server does not keep an empty map either
                del meta["annotations"]
        return
    if not isinstance(meta, dict):
        meta = route["metadata"] = {}
    if not isinstance(meta.get("annotations"), dict):
        meta["annotations"] = {}
    meta["annotations"][ORIGINAL_WEIGHTS_ANNOTATION] = record.dumps()


# --- comparing ---------------------------------------------------------------------------------


def _managed_view(route: Mapping[str, Any]) -> tuple[Any, Any]:
    """The parts of a route nonstop writes, with the schema's defaults filled in."""
    spec = route.get("spec")
    rules = spec.get("rules") if isinstance(spec, Mapping) else None
    rules = copy.deepcopy(rules) if isinstance(rules, list) else [{}]
    for rule in rules:
        for path, value in RULE_DEFAULTS:
            _set_default(rule, path, value)
    meta = route.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, Mapping) else None
    raw = annotations.get(ORIGINAL_WEIGHTS_ANNOTATION) if isinstance(annotations, Mapping) else None
    try:
        record = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        record = raw
    return rules, record


def _set_default(node: Any, path: tuple[str, ...], value: Any) -> None:
    if not isinstance(node, dict):
        return
    key, rest = path[0], path[1:]
    if not rest:
        if node.get(key) is None:
            node[key] = copy.deepcopy(value)
    elif rest[0] == "[]":
        items = node.get(key)
        for item in items if isinstance(items, list) else []:
            _set_default(item, rest[1:], value)
    else:
        _set_default(node.get(key), rest, value)


# --- words -----------------------------------------------------------------------------------


def _escape_regex(text: str) -> str:
    """Backslash before every regex metacharacter: the same literal in RE2, PCRE and ECMAScript."""
    return "".join("\\" + c if c in _REGEX_SPECIAL else c for c in text)


def _label(route: Mapping[str, Any]) -> str:
    meta = route.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    name = meta.get("name") or "(unnamed)"
    return f"HTTPRoute {meta['namespace']}/{name}" if meta.get("namespace") else f"HTTPRoute {name}"


def _rule_label(rule: Any, index: int) -> str:
    name = rule.get("name") if isinstance(rule, Mapping) else None
    return f"spec.rules[{index}] ({name})" if name else f"spec.rules[{index}]"


def _on_port(port: int | None) -> str:
    return "" if port is None else f" port {port}"


def _in_namespace(names: _Names) -> str:
    if names.namespace is None or names.namespace == names.route_namespace:
        return ""
    return f" in namespace {names.namespace}"
