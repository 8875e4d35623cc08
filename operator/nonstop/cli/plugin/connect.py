"""Which cluster and namespace, as kubectl decides: --kubeconfig, else $KUBECONFIG, else
~/.kube/config; --context, else the current context; -n, else the context's namespace, else
default. Inside a pod without a kubeconfig: the pod's service account and namespace."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client, config

from nonstop.cli.plugin.errors import UnreachableError
from nonstop.kube.client import Kube

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


@dataclass
class Target:
    """The cluster options, gathered from before and after the subcommand (the later wins)."""

    namespace: str | None = None
    context: str | None = None
    kubeconfig: str | None = None
    all_namespaces: bool = False
    _connection: Connection | None = field(default=None, repr=False)

    def connect(self) -> Connection:
        """Load the configuration once; PluginError (exit 3) when there is none."""
        if self._connection is None:
            self._connection = connect(self)
        return self._connection


@dataclass(frozen=True)
class Connection:
    kube: Kube
    namespace: str  # where a command without -A acts
    server: str  # the API server's URL, for messages
    context: str | None  # None: in a pod
    user: str | None  # the kubeconfig user of the context, when the server does not say


def kubeconfig_files(explicit: str | None) -> list[str]:
    """The kubeconfig files kubectl would read: the flag, else $KUBECONFIG (a list, as
    kubectl merges it), else ~/.kube/config."""
    if explicit:
        return [explicit]
    listed = os.environ.get("KUBECONFIG", "")
    if listed:
        return [p for p in listed.split(os.pathsep) if p]
    return [str(Path("~/.kube/config").expanduser())]


def connect(target: Target) -> Connection:
    settings = client.Configuration()
    files = kubeconfig_files(target.kubeconfig)
    existing = [f for f in files if Path(f).is_file()]
    if target.kubeconfig and not existing:
        raise UnreachableError(f"cannot reach the cluster: no kubeconfig at {target.kubeconfig}")
    if not existing and not target.context and os.environ.get("KUBERNETES_SERVICE_HOST"):
        return _in_cluster(target, settings)
    if not existing:
        where = "$KUBECONFIG" if os.environ.get("KUBECONFIG") else "~/.kube/config"
        raise UnreachableError(
            f"cannot reach the cluster: no kubeconfig ({where}: {', '.join(files)} not found)"
            " and not in a pod; pass --kubeconfig or set KUBECONFIG"
        )
    config_file = existing[0] if len(existing) == 1 else os.pathsep.join(existing)
    try:
        contexts, current = config.list_kube_config_contexts(config_file=config_file)  # type: ignore[no-untyped-call]
    except config.ConfigException as exc:
        raise UnreachableError(f"cannot reach the cluster: {config_file}: {exc}") from exc
    chosen: dict[str, Any] | None = current
    if target.context:
        chosen = next((c for c in contexts or [] if c.get("name") == target.context), None)
        if chosen is None:
            names = ", ".join(sorted(c.get("name", "?") for c in contexts or [])) or "none"
            raise UnreachableError(
                f"cannot reach the cluster: context {target.context} is not in"
                f" {config_file} (contexts: {names})"
            )
    if not chosen:
        raise UnreachableError(
            f"cannot reach the cluster: {config_file} has no current context; pass --context"
        )
    try:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=config_file, context=chosen["name"], client_configuration=settings
        )
    except config.ConfigException as exc:
        raise UnreachableError(f"cannot reach the cluster: {exc}") from exc
    details = chosen.get("context") or {}
    namespace = target.namespace or details.get("namespace") or "default"
    return _connection(settings, namespace, chosen["name"], details.get("user"))


def _in_cluster(target: Target, settings: client.Configuration) -> Connection:
    try:
        config.load_incluster_config(client_configuration=settings)  # type: ignore[no-untyped-call]
    except config.ConfigException as exc:
        raise UnreachableError(f"cannot reach the cluster: in a pod: {exc}") from exc
    namespace = target.namespace
    if namespace is None:
        try:
            namespace = SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
        except OSError:
            namespace = "default"
    return _connection(settings, namespace, None, None)


def _connection(
    settings: client.Configuration, namespace: str, context: str | None, user: str | None
) -> Connection:
    # Kube.watch copies the default configuration: make it this one.
    client.Configuration.set_default(settings)
    # one person's commands, not a controller's passes: no need to hold requests back
    kube = Kube(client.ApiClient(settings), qps=50, burst=100)
    kube.api.user_agent = f"kubectl-nonstop/{kube.api.user_agent.partition('/')[2]}"
    return Connection(kube, namespace, str(settings.host), context, user)
