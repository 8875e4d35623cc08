"""`nonstop run --json-logs`: every line on stderr is one JSON object, whoever logged it
(nonstop, kopf, the Kubernetes client, urllib3, a thread that crashed)."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import logging, threading, structlog
from nonstop.cli.main import configure_logging
configure_logging(json_logs=JSON, verbose=False)
structlog.get_logger("nonstop.reconcile").info(
    "applied", namespace="team", rollout="web", revision="abc", step="1/4"
)
logging.getLogger("kopf.activities").info("Activity 'startup' succeeded.")
logging.getLogger("kubernetes.client.rest").warning("a client warning")
logging.getLogger("urllib3.connectionpool").warning("Connection pool is full")
try:
    raise ValueError("multi\\nline")
except ValueError:
    logging.getLogger("kopf.objects").exception("handler failed")
thread = threading.Thread(target=lambda: 1 / 0, name="watch pods")
thread.start(); thread.join()
structlog.get_logger("nonstop.x").debug("not shown without -v")
"""


def run(json_logs: bool) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT.replace("JSON", str(json_logs))],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_every_line_of_json_logs_is_one_json_object() -> None:
    result = run(json_logs=True)
    assert result.stdout == ""  # everything goes to stderr, through one handler
    lines = result.stderr.splitlines()
    records = [json.loads(line) for line in lines]  # fails on any line that is not JSON
    assert all(isinstance(r, dict) and r.get("event") and r.get("level") for r in records)
    events = {r["event"] for r in records}
    assert "Activity 'startup' succeeded." in events  # kopf's line
    assert "Connection pool is full" in events  # urllib3's
    assert "a client warning" in events
    assert "not shown without -v" not in events
    ours = next(r for r in records if r["event"] == "applied")
    assert (ours["namespace"], ours["rollout"], ours["revision"], ours["step"]) == (
        "team",
        "web",
        "abc",
        "1/4",
    )
    failed = next(r for r in records if r["event"] == "handler failed")
    assert "ValueError: multi" in failed["exception"]  # the traceback inside the object
    crashed = next(r for r in records if r["event"] == "thread watch pods crashed")
    assert "ZeroDivisionError" in crashed["exception"]


def test_console_logs_are_text_lines() -> None:
    result = run(json_logs=False)
    assert "applied" in result.stderr and "rollout=web" in result.stderr
    assert not result.stderr.lstrip().startswith("{")
