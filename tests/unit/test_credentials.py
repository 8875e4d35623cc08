"""Secrets as analysis credentials: sent only where the Secret says it may go.

The rule (analysis/credentials.py) as examples and as properties, one of them against
urllib3's own URL parser (the one that makes the request), then the providers end to end
against a real HTTP server: a Secret without the opt-in, or to an address it does not list,
is never sent (the server sees no request) and the reading's error says what to add."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st
from urllib3.util import parse_url

from nonstop.analysis.credentials import (
    ALLOWED_URLS_ANNOTATION,
    CREDENTIALS_LABEL,
    DEFAULT_PORTS,
    address,
    allows,
    refusal,
)
from nonstop.api.spec import Metric
from nonstop.plan.model import Measure
from nonstop.providers import read
from tests.http_server import serving


def secret(allowed: str | None, label: str | None = "true") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "slo-api"}
    if label is not None:
        meta["labels"] = {CREDENTIALS_LABEL: label}
    if allowed is not None:
        meta["annotations"] = {ALLOWED_URLS_ANNOTATION: allowed}
    return {"metadata": meta, "data": {"token": base64.b64encode(b"Bearer s3cret").decode()}}


# --- the rule, by example ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("prefix", "url"),
    [
        ("https://prom.example/", "https://prom.example/api/v1/query?query=up"),
        ("https://prom.example", "https://prom.example/anything"),
        ("https://prom.example:443/", "https://prom.example/x"),  # the scheme's port
        ("https://prom.example/", "https://prom.example:443/x"),
        ("https://PROM.example/", "https://prom.EXAMPLE/x"),  # hosts have no case
        ("https://slo.example/api/v1/", "https://slo.example/api/v1/burn?service=web"),
        ("https://slo.example/api/v1", "https://slo.example/api/v1"),
        ("https://slo.example/api/v1", "https://slo.example/api/v1/burn"),
        ("http://prometheus.monitoring:9090", "http://prometheus.monitoring:9090/api/v1/query"),
        ("https://[::1]:8443/", "https://[::1]:8443/x"),
        ("https://slo.example/a/", "https://slo.example/a/x#https://evil.example/"),
    ],
)
def test_a_url_under_an_allowed_prefix_is_allowed(prefix: str, url: str) -> None:
    assert allows(prefix, url)


@pytest.mark.parametrize(
    ("prefix", "url"),
    [
        ("https://good.example/", "https://good.example.evil.example/"),  # a longer host
        ("https://good.example/", "https://evil.example/good.example/"),
        ("https://good.example/", "https://good.example@evil.example/"),  # a user name
        ("https://good.example/", "https://good.example:x@evil.example/"),
        ("https://good.example/", "https://good.example\\@evil.example/"),  # parsers differ
        ("https://good.example/", "https://evil.example/?u=https://good.example/"),
        ("https://good.example/", "https://evil.example#https://good.example/"),
        ("https://good.example/", "http://good.example/"),  # no downgrade to http
        ("https://good.example/", "https://good.example:8443/"),  # another port
        ("http://good.example:9090/", "http://good.example/"),
        ("https://good.example/api", "https://good.example/apix"),  # a / boundary
        ("https://good.example/api/", "https://good.example/api"),
        ("https://good.example/api/", "https://good.example/api/../admin"),  # dot segments
        ("https://good.example/api/", "https://good.example/api/%2e%2e/admin"),
        ("https://good.example/api/", "https://good.example/api/%2E%2E/admin"),
        ("https://good.example/", "https://good.example /"),
        ("https://good.example/", "https://good.example/\n"),
        ("https://good.example/", "ftp://good.example/"),
        ("https://good.example/", "https:good.example/"),
        ("https://good.example/", "//good.example/"),
        ("https://good.example/", "https://good.example:99999/"),
        ("https://good.example.", "https://good.example/"),
        ("https://user@good.example/", "https://user@good.example/"),  # never with a user
        ("not a url", "https://good.example/"),
    ],
)
def test_a_url_elsewhere_is_refused(prefix: str, url: str) -> None:
    assert not allows(prefix, url)


def test_what_to_add_is_said_when_the_secret_has_not_opted_in() -> None:
    url = "https://slo.example/burn?token=x"
    why = refusal("slo-api", secret(None, label=None), url)
    assert why is not None
    assert "Secret slo-api" in why and f"{CREDENTIALS_LABEL}=true" in why
    assert ALLOWED_URLS_ANNOTATION in why and "https://slo.example/burn" in why
    assert "token=x" not in why  # the query stays out of messages
    assert "not labelled" in (refusal("slo-api", secret("https://slo.example/", "yes"), url) or "")
    no_list = refusal("slo-api", secret(None), url)
    assert no_list is not None and f"no annotation {ALLOWED_URLS_ANNOTATION}" in no_list
    elsewhere = refusal("slo-api", secret("https://a.example/, https://b.example/v1/"), url)
    assert elsewhere is not None
    assert "may not be sent to https://slo.example/burn" in elsewhere
    assert "allows only https://a.example/, https://b.example/v1/" in elsewhere
    unsafe = refusal("slo-api", secret("https://slo.example/"), "https://slo.example@evil/")
    assert unsafe is not None and "user" in unsafe


def test_the_annotation_lists_prefixes_separated_by_commas_or_white_space() -> None:
    listed = secret("https://a.example/,https://b.example/v1/\n  https://c.example:8443/")
    for url in ("https://a.example/x", "https://b.example/v1/y", "https://c.example:8443/"):
        assert refusal("slo-api", listed, url) is None, url
    assert refusal("slo-api", listed, "https://b.example/v2/") is not None


# --- the rule, as properties ---------------------------------------------------------------
LABEL = st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True)
HOSTS = st.builds(".".join, st.lists(LABEL, min_size=1, max_size=3))
SCHEMES = st.sampled_from(["http", "https"])
PORTS = st.one_of(st.none(), st.integers(1, 65535))
SEGMENT = st.from_regex(r"[A-Za-z0-9_~-]{1,8}", fullmatch=True)
PATHS = st.builds(lambda s: "/" + "/".join(s), st.lists(SEGMENT, max_size=3))
# characters that make URLs ambiguous, for the attacker's part of a URL
TRICKY = st.text(alphabet="@:/\\?#.%2eE5Cab-_[] \t", max_size=12)


def prefix_of(scheme: str, host: str, port: int | None, path: str) -> str:
    return f"{scheme}://{host}{f':{port}' if port is not None else ''}{path}"


@given(SCHEMES, HOSTS, PORTS, PATHS, PATHS)
def test_every_path_below_an_allowed_prefix_is_allowed(
    scheme: str, host: str, port: int | None, path: str, below: str
) -> None:
    prefix = prefix_of(scheme, host, port, path)
    url = prefix_of(scheme, host.upper(), port, path.rstrip("/") + below)
    assert allows(prefix, url)
    if port is None:  # the scheme's port, written or not
        assert allows(prefix, prefix_of(scheme, host, DEFAULT_PORTS[scheme], path))


@given(SCHEMES, HOSTS, HOSTS, PORTS, PATHS, TRICKY)
def test_another_host_is_never_allowed(
    scheme: str, host: str, other: str, port: int | None, path: str, junk: str
) -> None:
    prefix = prefix_of(scheme, host, port, path)
    if other != host:
        assert not allows(prefix, prefix_of(scheme, other, port, path))
    # the allowed host as a part of another host, a user name, a path or a query
    for url in (
        f"{scheme}://{host}.{other}{path}",
        f"{scheme}://{host}{junk}@{other}{path}",
        f"{scheme}://{other}/{host}{path}",
        f"{scheme}://{other}{junk}{host}{path}",
    ):
        where = address(url)
        if isinstance(where, str) or where.host != host:
            assert not allows(prefix, url), url


@given(SCHEMES, HOSTS, PORTS, PATHS, HOSTS, TRICKY, TRICKY, TRICKY)
def test_an_allowed_url_goes_where_urllib3_sends_it(
    scheme: str,
    host: str,
    port: int | None,
    path: str,
    other: str,
    before: str,
    between: str,
    after: str,
) -> None:
    """Whatever the URL, if it is allowed, urllib3 (which makes the request) connects to
    the allowed scheme, host and port and asks for a path under the allowed one."""
    prefix = prefix_of(scheme, host, port, path)
    for url in (
        f"{scheme}://{before}{host}{between}{after}",
        f"{scheme}://{host}{before}{other}{between}{path}{after}",
        f"{scheme}://{host}{f':{port}' if port else ''}{path}{between}{after}",
        f"{scheme}:{before}//{host}{path}{after}",
    ):
        if not allows(prefix, url):
            continue
        sent = parse_url(url)
        assert sent.scheme == scheme and sent.host == host, url
        assert (sent.port or DEFAULT_PORTS[scheme]) == (port or DEFAULT_PORTS[scheme]), url
        request_path = sent.path or "/"
        assert request_path == path or request_path.startswith(path.rstrip("/") + "/"), url


# --- the providers, end to end -------------------------------------------------------------
SEEN: list[tuple[str, str | None]] = []  # (path, Authorization) of each request


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        SEEN.append((self.path, self.headers.get("Authorization")))
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.2:1/steal")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = (
            b'{"status": "success", "data": {"resultType": "scalar", "result": [1, "0.5"]}}'
            if self.path.startswith("/api/v1/query")
            else b'{"v": 0.5}'
        )
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with serving(Handler) as url:
        yield url


class Secrets:
    """The one call providers make of the API server: get a Secret by name."""

    def __init__(self, **secrets: dict[str, Any]) -> None:
        self.secrets = secrets

    def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.secrets.get(name)


AUTH = {"name": "Authorization", "valueFrom": {"secretKeyRef": {"name": "slo-api", "key": "token"}}}


def web(url: str) -> Measure:
    provider = {"web": {"url": url, "jsonPath": "$.v", "headers": [AUTH]}}
    return Measure("step-1", Metric.model_validate({"name": "slo", "provider": provider}), {})


def prometheus(address: str, compare: bool = False) -> Measure:
    provider = {"prometheus": {"address": address, "query": "up", "headers": [AUTH]}}
    metric: dict[str, Any] = {"name": "up", "provider": provider}
    if compare:
        metric["compare"] = {}
    return Measure(
        "step-1",
        Metric.model_validate(metric),
        {"revision": "b"},
        stable_variables={"revision": "a"} if compare else None,
    )


def test_an_opted_in_secret_is_sent_to_an_address_it_allows(server: str) -> None:
    kube = Secrets(**{"slo-api": secret(f"{server}/slo/")})
    SEEN.clear()
    reading, _ = read(kube, "shop", web(f"{server}/slo/burn"))  # type: ignore[arg-type]
    assert reading.error is None and reading.value == 0.5
    assert SEEN == [("/slo/burn", "Bearer s3cret")]


@pytest.mark.parametrize(
    ("stored", "words"),
    [
        (secret(None, label=None), f"not labelled {CREDENTIALS_LABEL}=true"),
        (secret("https://slo.example/", label="false"), f"not labelled {CREDENTIALS_LABEL}=true"),
        (secret(None), f"no annotation {ALLOWED_URLS_ANNOTATION}"),
        (secret("https://slo.example/"), "allows only https://slo.example/"),
        (secret("{server}/other/"), "allows only http://127.0.0.1:"),
    ],
)
def test_a_secret_that_does_not_allow_the_address_is_never_sent(
    server: str, stored: dict[str, Any], words: str
) -> None:
    annotations = stored["metadata"].get("annotations") or {}
    if ALLOWED_URLS_ANNOTATION in annotations:
        annotations[ALLOWED_URLS_ANNOTATION] = annotations[ALLOWED_URLS_ANNOTATION].format(
            server=server
        )
    SEEN.clear()
    reading, _ = read(Secrets(**{"slo-api": stored}), "shop", web(f"{server}/slo/burn"))  # type: ignore[arg-type]
    assert reading.value is None and reading.error is not None
    assert reading.error.startswith("header Authorization: Secret slo-api")
    assert words in reading.error
    assert SEEN == []  # no request at all: not even one without the header


def test_a_missing_secret_is_still_said_as_before(server: str) -> None:
    reading, _ = read(Secrets(), "shop", web(f"{server}/slo/burn"))  # type: ignore[arg-type]
    assert reading.error == "header Authorization: Secret slo-api does not exist"


def test_prometheus_credentials_are_checked_against_the_query_url(server: str) -> None:
    allowed = Secrets(**{"slo-api": secret(f"{server}/api/v1/query")})
    SEEN.clear()
    reading, stable = read(allowed, "shop", prometheus(server, compare=True))  # type: ignore[arg-type]
    assert reading.value == 0.5 and stable is not None and stable.value == 0.5
    assert [auth for _, auth in SEEN] == ["Bearer s3cret", "Bearer s3cret"]
    assert SEEN[0][0] == f"/api/v1/query?{urlencode({'query': 'up'})}"
    elsewhere = Secrets(**{"slo-api": secret(f"{server}/federate")})
    SEEN.clear()
    reading, stable = read(elsewhere, "shop", prometheus(server, compare=True))  # type: ignore[arg-type]
    assert reading.error is not None and "may not be sent to" in reading.error
    assert stable is not None and stable.error == reading.error
    assert SEEN == []


def test_a_redirect_is_not_followed_with_the_credentials(server: str) -> None:
    """The Secret allows the first address; a redirect elsewhere is an error, and the
    header never travels on (urllib3 would otherwise follow it, dropping only
    Authorization, not a custom header)."""
    kube = Secrets(**{"slo-api": secret(f"{server}/")})
    SEEN.clear()
    reading, _ = read(kube, "shop", web(f"{server}/redirect"))  # type: ignore[arg-type]
    assert reading.value is None and reading.error is not None
    assert "HTTP 302, a redirect to http://127.0.0.2:1/steal" in reading.error
    assert "not followed" in reading.error
    assert SEEN == [("/redirect", "Bearer s3cret")]
