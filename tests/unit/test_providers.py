"""The metric providers against a real HTTP server on 127.0.0.1: every way a provider can
fail is a Reading with an error that says what happened, never an exception, never a value."""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from nonstop.api.spec import Metric
from nonstop.plan.model import Measure
from nonstop.providers import json_path, query_prometheus, query_web, read
from tests.http_server import serving

ANSWERS: dict[str, tuple[int, str]] = {}  # path+query -> (status, body)
SEEN_HEADERS: list[dict[str, str]] = []


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        SEEN_HEADERS.append(dict(self.headers))
        if self.path.startswith("/slow"):
            time.sleep(2)
        status, body = ANSWERS.get(self.path, (404, "not found"))
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with serving(Handler) as url:
        yield url


def prometheus_answer(query: str, status: int, body: Any) -> None:
    from urllib.parse import urlencode

    ANSWERS[f"/api/v1/query?{urlencode({'query': query})}"] = (
        status,
        body if isinstance(body, str) else json.dumps(body),
    )


def vector(*values: str) -> dict[str, Any]:
    result = [{"metric": {"pod": f"p{i}"}, "value": [1.0, v]} for i, v in enumerate(values)]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


def test_a_vector_gives_its_first_value_and_every_sample(server: str) -> None:
    prometheus_answer("ok", 200, vector("0.25", "0.5"))
    reading = query_prometheus(server, "ok", {})
    assert reading.error is None and reading.value == 0.25 and reading.samples == (0.25, 0.5)


def test_a_scalar_is_a_value(server: str) -> None:
    body = {"status": "success", "data": {"resultType": "scalar", "result": [1.0, "3"]}}
    prometheus_answer("scalar", 200, body)
    assert query_prometheus(server, "scalar", {}).value == 3.0


@pytest.mark.parametrize(
    ("query", "status", "body", "words"),
    [
        ("empty", 200, vector(), "empty result"),
        ("http500", 500, "boom", "HTTP 500"),
        ("http503", 503, "unavailable", "HTTP 503"),
        ("notjson", 200, "<html>", "not JSON"),
        ("failed", 400, {"status": "error", "error": "parse error"}, "HTTP 400"),
        ("error", 200, {"status": "error", "error": "bad query"}, "bad query"),
        ("text", 200, vector("abc"), "not a number"),
        (
            "matrix",
            200,
            {"status": "success", "data": {"resultType": "matrix", "result": []}},
            "not an instant vector",
        ),
    ],
)
def test_every_failure_is_an_error_reading(
    server: str, query: str, status: int, body: Any, words: str
) -> None:
    prometheus_answer(query, status, body)
    reading = query_prometheus(server, query, {})
    assert reading.value is None and reading.error is not None
    assert words in reading.error


def test_nan_is_a_value_the_verdict_turns_into_an_error(server: str) -> None:
    prometheus_answer("nan", 200, vector("NaN"))
    reading = query_prometheus(server, "nan", {})
    assert reading.value is not None and reading.value != reading.value  # NaN, judged later


def test_a_refused_connection_and_a_timeout_are_errors() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    refused = query_prometheus(f"http://127.0.0.1:{port}", "up", {})
    assert refused.error is not None and "cannot reach" in refused.error


def test_a_slow_provider_times_out(server: str) -> None:
    ANSWERS["/slow"] = (200, '{"v": 1}')
    started = time.monotonic()
    reading = query_web(f"{server}/slow", "$.v", {}, timeout=0.5)
    assert reading.error is not None and "cannot reach" in reading.error
    assert time.monotonic() - started < 1.8


def test_web_reads_the_value_at_the_json_path(server: str) -> None:
    ANSWERS["/slo"] = (200, json.dumps({"data": {"items": [{"burn": 0.7}], "odd-key": 2}}))
    assert query_web(f"{server}/slo", "$.data.items[0].burn", {}).value == 0.7
    assert query_web(f"{server}/slo", "$.data['odd-key']", {}).value == 2.0
    missing = query_web(f"{server}/slo", "$.data.nothing", {})
    assert missing.error is not None and "nothing at .nothing" in missing.error
    ANSWERS["/flag"] = (200, json.dumps({"v": True}))
    assert "not a number" in (query_web(f"{server}/flag", "$.v", {}).error or "")


def test_json_path_needs_a_dollar() -> None:
    with pytest.raises(KeyError):
        json_path({"a": 1}, "a")


class FakeKube:
    """Only what the providers ask of the API server: Secrets."""

    def __init__(self, secrets: dict[str, dict[str, Any]]) -> None:
        self.secrets = secrets

    def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.secrets.get(name)


def measure(url: str, headers: list[dict[str, Any]]) -> Measure:
    metric = Metric.model_validate(
        {"name": "slo", "provider": {"web": {"url": url, "jsonPath": "$.v", "headers": headers}}}
    )
    return Measure("step-1", metric, {"revision": "abc"})


def test_credentials_come_from_a_secret_by_reference(server: str) -> None:
    ANSWERS["/auth/abc"] = (200, '{"v": 0.1}')
    token = base64.b64encode(b"Bearer s3cret").decode()
    allowed = {"nonstop.dev/allowed-urls": f"{server}/auth/"}
    meta = {"labels": {"nonstop.dev/credentials": "true"}, "annotations": allowed}
    kube = FakeKube({"slo-api": {"metadata": meta, "data": {"token": token}}})
    header = {
        "name": "Authorization",
        "valueFrom": {"secretKeyRef": {"name": "slo-api", "key": "token"}},
    }
    reading, stable = read(kube, "shop", measure(f"{server}/auth/{{{{revision}}}}", [header]))  # type: ignore[arg-type]
    assert reading.value == 0.1 and stable is None
    assert SEEN_HEADERS[-1].get("Authorization") == "Bearer s3cret"


def test_a_missing_secret_or_key_is_an_error_naming_it(server: str) -> None:
    header = {"name": "Authorization", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "t"}}}
    reading, _ = read(FakeKube({}), "shop", measure(f"{server}/x", [header]))  # type: ignore[arg-type]
    assert reading.error is not None and "Secret gone does not exist" in reading.error
    kube = FakeKube({"gone": {"data": {}}})
    reading, _ = read(kube, "shop", measure(f"{server}/x", [header]))  # type: ignore[arg-type]
    assert reading.error is not None and "has no key t" in reading.error


def test_an_unknown_template_variable_is_an_error(server: str) -> None:
    reading, _ = read(FakeKube({}), "shop", measure(f"{server}/{{{{nope}}}}", []))  # type: ignore[arg-type]
    assert reading.error is not None and "nope" in reading.error
