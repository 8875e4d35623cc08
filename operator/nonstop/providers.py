"""Metric providers: the HTTP reads behind analysis. I/O at the edge, like kube/.

Each read returns a Reading: a value (and, for a comparison, every sample), or an error a
person can act on. Nothing here raises for what a provider does: a timeout, a refused
connection, an HTTP error, a body that is not JSON, an empty result or a value that is not
a number all become `Reading(error=...)`, which the verdict counts as an Error measurement
(never a pass, and never a crash of the operator).

Credentials: a header may take its value from a Secret of the Rollout's namespace. The
Secret is sent only where it says it may go (analysis/credentials.py: the label
`nonstop.dev/credentials=true` and the annotation `nonstop.dev/allowed-urls`), checked
against each URL before its request; a refusal is an error reading that names the Secret
and what to add, and no request is made. Redirects are never followed: a 3xx is an error,
so a header never travels to an address that was not checked.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import urllib3
from kubernetes.client.exceptions import ApiException

from nonstop.analysis.credentials import refusal, shown
from nonstop.api.spec import HttpHeader
from nonstop.kube.port import KubePort
from nonstop.plan.analysis import query_of
from nonstop.plan.model import Measure, Reading

DEFAULT_TIMEOUT = 10.0
_PATH_PART = re.compile(r"\.([A-Za-z_][\w-]*)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")
_http = urllib3.PoolManager(retries=False)


def _number(raw: Any, where: str) -> float | str:
    """A float, or why the value is not one."""
    if isinstance(raw, bool) or raw is None:
        return f"{where} is {json.dumps(raw)}, not a number"
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return f"{where} is {json.dumps(raw)[:80]}, not a number"
    return value


def _get(url: str, headers: Mapping[str, str], timeout: float | None) -> tuple[Any, str | None]:
    """GET url and parse its JSON body: (body, None) or (None, why not)."""
    try:
        response = _http.request(
            "GET",
            url,
            headers=dict(headers),
            timeout=urllib3.Timeout(total=timeout or DEFAULT_TIMEOUT),
            redirect=False,  # the credentials were checked for this URL, not another
        )
    except urllib3.exceptions.MaxRetryError as exc:
        return None, f"cannot reach {url.split('?', maxsplit=1)[0]}: {exc.reason}"
    except urllib3.exceptions.HTTPError as exc:
        return None, f"cannot reach {url.split('?', maxsplit=1)[0]}: {exc}"
    if 300 <= response.status < 400:
        location = shown(response.headers.get("Location") or "nowhere")
        return None, (
            f"{url.split('?', maxsplit=1)[0]} answered HTTP {response.status}, a redirect to"
            f" {location}: redirects are not followed, give the address that answers"
        )
    if response.status >= 400:
        text = response.data[:200].decode(errors="replace")
        return None, f"{url.split('?', maxsplit=1)[0]} answered HTTP {response.status}: {text}"
    try:
        return json.loads(response.data), None
    except ValueError:
        return None, f"{url.split('?', maxsplit=1)[0]} answered something that is not JSON"


def prometheus_url(address: str, query: str) -> str:
    """The URL of an instant query."""
    return f"{address.rstrip('/')}/api/v1/query?{urlencode({'query': query})}"


def query_prometheus(
    address: str, query: str, headers: Mapping[str, str], timeout: float | None = None
) -> Reading:
    """An instant query (/api/v1/query): the first sample's value, and every sample's."""
    url = prometheus_url(address, query)
    body, error = _get(url, headers, timeout)
    if error is not None:
        return Reading(error=f"prometheus: {error}")
    if not isinstance(body, dict) or body.get("status") != "success":
        why = body.get("error", "no status") if isinstance(body, dict) else "not an object"
        return Reading(error=f"prometheus: query failed: {why}")
    data = body.get("data") or {}
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar" and isinstance(result, list) and len(result) == 2:
        raw_samples = [result[1]]
    elif kind == "vector" and isinstance(result, list):
        raw_samples = [item.get("value", [None, None])[1] for item in result]
    else:
        return Reading(error=f"prometheus: result type {kind} is not an instant vector or scalar")
    if not raw_samples:
        return Reading(error=f"prometheus: empty result for {query[:200]}")
    samples = []
    for raw in raw_samples:
        number = _number(raw, "a sample")
        if isinstance(number, str):
            return Reading(error=f"prometheus: {number}")
        samples.append(number)
    return Reading(value=samples[0], samples=tuple(samples))


def json_path(document: Any, path: str) -> Any:
    """The value at a JSONPath of the simple kind ($.a.b[0]['c']); KeyError when absent."""
    if not path.startswith("$"):
        raise KeyError(f"a JSON path starts with $: {path}")
    rest, node = path[1:], document
    while rest:
        match = _PATH_PART.match(rest)
        if match is None:
            raise KeyError(f"cannot read {rest!r} of the path {path}")
        name, index, quoted, double = match.groups()
        key: str | int = int(index) if index is not None else name or quoted or double or ""
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            raise KeyError(f"{path}: nothing at {match.group(0)}") from None
        rest = rest[match.end() :]
    return node


def query_web(
    url: str, path: str, headers: Mapping[str, str], timeout: float | None = None
) -> Reading:
    """GET a JSON document; the value at the JSON path."""
    body, error = _get(url, headers, timeout)
    if error is not None:
        return Reading(error=f"web: {error}")
    try:
        raw = json_path(body, path)
    except KeyError as exc:
        return Reading(error=f"web: {exc.args[0]}")
    number = _number(raw, f"the value at {path}")
    if isinstance(number, str):
        return Reading(error=f"web: {number}")
    return Reading(value=number, samples=(number,))


def secret_value(secret: Mapping[str, Any] | None, name: str, key: str) -> str:
    """A Secret's value, decoded; KeyError with a message when it is not there."""
    if secret is None:
        raise KeyError(f"Secret {name} does not exist")
    data = secret.get("data") or {}
    if key not in data:
        raise KeyError(f"Secret {name} has no key {key}")
    return base64.b64decode(data[key]).decode()


@dataclass(frozen=True)
class Credential:
    """A header whose value came from a Secret, and that Secret as read."""

    header: str
    name: str
    secret: Mapping[str, Any]


def _headers(
    kube: KubePort, namespace: str, headers: list[HttpHeader] | None
) -> tuple[dict[str, str], list[Credential]] | str:
    """The request headers, Secrets read (and which Secrets they came from); or why one
    cannot be read."""
    out: dict[str, str] = {}
    credentials: list[Credential] = []
    for header in headers or []:
        if header.value is not None:
            out[header.name] = header.value
            continue
        assert header.value_from is not None
        ref = header.value_from.secret_key_ref
        try:
            secret = kube.get_secret(namespace, ref.name)
            out[header.name] = secret_value(secret, ref.name, ref.key)
        except (KeyError, ValueError) as exc:
            return f"header {header.name}: {exc.args[0]}"
        except ApiException as exc:
            return f"header {header.name}: cannot read Secret {ref.name}: {exc.status} {exc.reason}"
        assert secret is not None
        credentials.append(Credential(header.name, ref.name, secret))
    return out, credentials


def refused(credentials: list[Credential], url: str) -> str | None:
    """Why these headers may not be sent to `url` (the first Secret that refuses); None: they
    may."""
    for credential in credentials:
        why = refusal(credential.name, credential.secret, url)
        if why is not None:
            return f"header {credential.header}: {why}"
    return None


def read(kube: KubePort, namespace: str, measure: Measure) -> tuple[Reading, Reading | None]:
    """The reading of a measurement (and, for a comparison, the stable revision's)."""
    provider = measure.metric.provider
    spec = provider.prometheus or provider.web
    assert spec is not None
    found = _headers(kube, namespace, spec.headers)
    if isinstance(found, str):
        return Reading(error=found), None
    headers, credentials = found

    def one(stable: bool) -> Reading:
        try:
            where, what = query_of(measure, stable)
        except ValueError as exc:  # a placeholder the template variables do not have
            return Reading(error=str(exc))
        url = prometheus_url(where, what) if provider.prometheus is not None else where
        why = refused(credentials, url)
        if why is not None:
            return Reading(error=why)
        if provider.prometheus is not None:
            return query_prometheus(where, what, headers, spec.timeout_seconds)
        return query_web(where, what, headers, spec.timeout_seconds)

    return one(False), one(True) if measure.stable_variables is not None else None
