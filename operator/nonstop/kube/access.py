"""What the operator asks of the API server, as RBAC sees it: the table the chart's rules
are checked against.

`OPERATOR` lists every (API group, resource, verb) the operator process uses, and where:
in the namespaces it serves (`served`: Rollouts and everything they own or name), in its
own namespace (`own`: the leader Lease), or cluster-wide (`cluster`). tests/unit/test_rbac.py
holds it to the truth from both sides: it drives the operator's real API code (every
KubePort method of the cached client, every informer the cache makes, the leader election)
over a recording HTTP client and maps each request to RBAC attributes as the API server
does, so a new call without its line here fails; and it renders the Helm chart in both RBAC
scopes, so a rule the operator does not use, or a use without a rule, fails too.

Not here on purpose: `get` of Rollouts, pods, EndpointSlices or AnalysisTemplates (a pass
reads the watch-fed cache: list+watch only), `update` of Deployments, Services or status
(merge patches), `list`/`watch` of Secrets (read by name when a measurement is due), the
`events.k8s.io` group (Events are core/v1), namespaces (the operator is told its
namespaces; kopf runs cluster-wide with no resource handler of its own).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Where = Literal["served", "own", "cluster"]


@dataclass(frozen=True, order=True)
class Access:
    """One RBAC permission: resource may carry a subresource ("rollouts/status")."""

    group: str
    resource: str
    verb: str
    where: Where = "served"


def _all(group: str, resource: str, verbs: str, where: Where = "served") -> list[Access]:
    return [Access(group, resource, verb, where) for verb in verbs.split()]


OPERATOR: frozenset[Access] = frozenset(
    [
        # the informers (kube/cache.py): one list+watch per kind, a pass reads memory
        *_all("nonstop.dev", "rollouts", "list watch"),
        *_all("nonstop.dev", "rolloutactions", "list watch"),
        *_all("nonstop.dev", "analysistemplates", "list watch"),
        *_all("apps", "deployments", "list watch"),
        *_all("", "pods", "list watch"),
        *_all("", "services", "list watch"),
        *_all("discovery.k8s.io", "endpointslices", "list watch"),
        *_all("gateway.networking.k8s.io", "httproutes", "list watch"),
        *_all("", "configmaps", "list watch"),  # only by name: a field selector per flag map
        # a pass's reads that are not in the cache
        Access("", "secrets", "get"),  # an analysis metric's credentials, by name
        Access("apps", "deployments", "get"),  # a Deployment under nonstop's name: whose?
        Access("", "services", "get"),  # a Service that exists when nonstop creates it
        Access("gateway.networking.k8s.io", "httproutes", "get"),  # before its watch listed
        Access("", "configmaps", "get"),  # the same for a flag ConfigMap
        # a pass's writes
        Access("nonstop.dev", "rollouts/status", "patch"),
        Access("nonstop.dev", "rollouts", "patch"),  # undo: spec.template, generation tested
        # the Deployments and Services it creates name the Rollout as owner with
        # blockOwnerDeletion, which the OwnerReferencesPermissionEnforcement admission
        # plugin (OpenShift, hardened clusters) allows only to who may update its finalizers
        Access("nonstop.dev", "rollouts/finalizers", "update"),
        Access("nonstop.dev", "rolloutactions/status", "patch"),  # the answer
        Access("nonstop.dev", "rolloutactions", "delete"),  # answered ones, after an hour
        *_all("apps", "deployments", "create patch delete"),
        *_all("", "services", "create patch"),
        Access("gateway.networking.k8s.io", "httproutes", "update"),
        Access("", "configmaps", "update"),  # a feature toggle's flag document
        *_all("", "events", "create patch"),  # patch: a repeated Event counts up
        # leader election (leader.py), in the operator's namespace
        *_all("coordination.k8s.io", "leases", "get create update", "own"),
    ]
)
