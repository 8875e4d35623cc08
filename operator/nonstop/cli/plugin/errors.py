"""What the plugin says when something goes wrong: one line naming the cause, and an exit
code a script can act on. Pure (no cluster): tests/unit/test_plugin_errors.py.

| code | meaning |
|---|---|
| 0 | done (an action Applied, a page shown, a watch ended by Ctrl-C) |
| 1 | refused or failed: an action Rejected, no such Rollout, forbidden, a bad answer |
| 2 | usage: an unknown command or flag, a missing argument (click's own) |
| 3 | cannot reach the cluster: no kubeconfig, no such context, connection refused, TLS, credentials refused |
| 4 | timed out: nonstop did not answer an action in time |
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import click
import urllib3
from kubernetes.client.exceptions import ApiException
from kubernetes.config import ConfigException

OK, FAILED, USAGE, UNREACHABLE, TIMED_OUT = 0, 1, 2, 3, 4
INTERRUPTED = 130  # Ctrl-C anywhere but the live view (which ends with 0), as a shell does


class PluginError(click.ClickException):
    """A failure the user can act on: shown as `error: <message>` (kubectl's spelling), on
    stderr, on one line; the process exits with `exit_code` (1: refused or failed)."""

    exit_code = FAILED

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))  # one line, whatever the server wrote

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", file=file, err=file is None)


class UnreachableError(PluginError):
    """No usable connection to the cluster (exit 3)."""

    exit_code = UNREACHABLE


class TimedOutError(PluginError):
    """nonstop did not answer in time (exit 4)."""

    exit_code = TIMED_OUT


@dataclass(frozen=True)
class Doing:
    """What a request was for, to name it when the API server refuses it."""

    verb: str  # get, list, watch, create, patch (RBAC's verbs)
    resource: str  # rollouts.nonstop.dev, rolloutactions.nonstop.dev, pods, ...
    namespace: str | None = None  # None: all namespaces
    name: str | None = None


# kube-apiserver's refusal (staging/src/k8s.io/apiserver/pkg/endpoints/handlers/responsewriters
# /errors.go, forbiddenMessage): `User "alice" cannot get resource "rollouts" in API group
# "nonstop.dev" in the namespace "demo"`; a subresource adds `/status`, cluster scope drops
# the namespace part.
_FORBIDDEN = re.compile(
    r'User "(?P<user>[^"]*)" cannot (?P<verb>\S+) resource "(?P<resource>[^"]+)"'
    r'(?: in API group "(?P<group>[^"]*)")?'
    r'(?: in the namespace "(?P<namespace>[^"]*)")?'
)


def server_message(exc: ApiException) -> str:
    """The message of the Status the API server answered with, else its reason."""
    body = exc.body
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    if body:
        try:
            status = json.loads(body)
        except ValueError:
            return str(body).strip()[:300]
        if isinstance(status, dict) and status.get("message"):
            return str(status["message"])
    return f"{exc.status} {exc.reason or ''}".strip()


def _forbidden(exc: ApiException, doing: Doing | None, user: str | None) -> PluginError:
    said = server_message(exc)
    found = _FORBIDDEN.search(said)
    if found:
        group = found["group"]
        resource = found["resource"] + (f".{group}" if group else "")
        verb, namespace, user = found["verb"], found["namespace"], found["user"] or user
    elif doing is not None:
        verb, resource, namespace = doing.verb, doing.resource, doing.namespace
    else:
        return PluginError(f"forbidden: {said}")
    where = f" in namespace {namespace}" if namespace else " in any namespace"
    who = f" (as {user})" if user else ""
    return PluginError(f"forbidden: cannot {verb} {resource}{where}{who}")


def _unreachable_reason(exc: BaseException) -> str:
    """The root cause of a failed connection, in a few words: urllib3 wraps it twice."""
    reason: BaseException = exc
    while isinstance(reason, urllib3.exceptions.MaxRetryError) and reason.reason is not None:
        reason = reason.reason
    text = str(reason)
    if isinstance(reason, urllib3.exceptions.NewConnectionError):
        text = text.rpartition("Failed to establish a new connection: ")[2] or text
    elif isinstance(reason, urllib3.exceptions.SSLError):
        text = f"TLS: {text}"
    elif isinstance(reason, urllib3.exceptions.TimeoutError):
        text = "no answer (timed out)"
    return text.strip() or type(reason).__name__


def explain(
    exc: BaseException,
    doing: Doing | None = None,
    user: str | None = None,
    server: str | None = None,
) -> PluginError:
    """The PluginError for an exception of the client or of the connection."""
    at = f" at {server}" if server else ""
    if isinstance(exc, PluginError):
        return exc
    if isinstance(exc, ConfigException):
        return UnreachableError(f"cannot reach the cluster: {exc}")
    if isinstance(exc, ApiException):
        status = exc.status or 0
        if status == 403:
            return _forbidden(exc, doing, user)
        if status == 401:
            return UnreachableError(
                f"cannot reach the cluster{at}: it refused the credentials (401 Unauthorized)"
            )
        if status == 404 and doing is not None:
            if doing.name is not None:
                where = f" in namespace {doing.namespace}" if doing.namespace else ""
                return PluginError(f"{_kind(doing.resource)} {doing.name} not found{where}")
            return PluginError(
                f"the API server does not serve {doing.resource}"
                + (
                    ": is nonstop's CRD installed? (kubectl apply -f crds/)"
                    if doing.resource.endswith(".nonstop.dev")
                    else ""
                )
            )
        what = f"{doing.verb} {doing.resource}: " if doing else ""
        return PluginError(f"{what}the API server answered {status}: {server_message(exc)}")
    if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
        pool = getattr(exc, "pool", None)  # MaxRetryError: the pool says where it went
        if not server and pool is not None and getattr(pool, "host", None):
            at = f" at {getattr(pool, 'scheme', 'https')}://{pool.host}:{pool.port}"
        return UnreachableError(f"cannot reach the cluster{at}: {_unreachable_reason(exc)}")
    raise TypeError(f"not a client error: {exc!r}")


def _kind(resource: str) -> str:
    """rollouts.nonstop.dev -> Rollout (how the plugin's messages name objects)."""
    plural = resource.split(".", maxsplit=1)[0]
    return {"rollouts": "Rollout", "rolloutactions": "RolloutAction"}.get(plural, plural)


CLIENT_ERRORS = (ApiException, ConfigException, urllib3.exceptions.HTTPError, OSError)


@contextlib.contextmanager
def doing(
    verb: str,
    resource: str,
    namespace: str | None = None,
    name: str | None = None,
    *,
    user: str | None = None,
    server: str | None = None,
) -> Iterator[None]:
    """Requests inside raise PluginError, named after what they were for."""
    try:
        yield
    except CLIENT_ERRORS as exc:
        raise explain(exc, Doing(verb, resource, namespace, name), user, server) from exc
