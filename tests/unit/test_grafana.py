"""docs/grafana/nonstop.json, the Grafana dashboard: every query names only series the
operator exports (with the labels they carry), and Prometheus' own parser (promtool, from the
same Debian package the analysis e2e tests use) accepts every query."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from nonstop import metrics

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "docs/grafana/nonstop.json"

# the series a metric family of each type exposes, as Prometheus stores them
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
}


def exported() -> dict[str, set[str]]:
    """Series names the operator's /metrics serves, with the labels each may carry."""
    registry = CollectorRegistry()
    registry.register(
        metrics.RolloutCollector(
            lambda: [
                {
                    "metadata": {"namespace": "shop", "name": "web"},
                    "spec": {"strategy": {"canary": {"steps": [{"setWeight": 20}]}}},
                    "status": {
                        "phase": "Paused",
                        "currentStepIndex": 0,
                        "weights": {"canary": 20, "stable": 80},
                    },
                }
            ]
        )
    )
    text = generate_latest(registry).decode() + generate_latest(REGISTRY).decode()
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        if not family.name.startswith("nonstop_"):
            continue
        labels = (
            set(_declared_labels(family.name))
            | {"le"}
            | {k for s in family.samples for k in s.labels}
        )
        for suffix in SUFFIXES.get(family.type, ("",)):
            names[family.name + suffix] = labels
    return names


def _declared_labels(name: str) -> tuple[str, ...]:
    """The label names of a metric registered in nonstop.metrics (none sampled yet)."""
    for value in vars(metrics).values():
        if getattr(value, "_name", None) == name:
            return tuple(getattr(value, "_labelnames", ()))
    return ()


def queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    found = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    found += [
        v["query"]["query"] if isinstance(v.get("query"), dict) else v["query"]
        for v in dashboard["templating"]["list"]
        if v["type"] == "query"
    ]
    return found


def series_in(query: str) -> list[tuple[str, set[str]]]:
    """The metric names a query reads, each with the label names its selector matches."""
    out = []
    for match in re.finditer(r"\b([a-z_][a-z0-9_]*)\s*(\{[^}]*\})?", query):
        name, selector = match.group(1), match.group(2) or ""
        if not name.startswith("nonstop_"):
            continue
        out.append((name, set(re.findall(r"([a-z_]+)\s*=~?", selector))))
    return out


def test_the_dashboard_reads_only_what_the_operator_exports() -> None:
    names = exported()
    seen = set()
    for query in queries():
        for name, labels in series_in(query):
            assert name in names, f"{name} is not exported by nonstop (query: {query})"
            assert labels <= names[name], f"{name} has no label {labels - names[name]}: {query}"
            seen.add(name)
        for grouping in re.findall(r"\bby \(([^)]*)\)", query):
            for label in (x.strip() for x in grouping.split(",")):
                assert any(label in names[n] for n, _ in series_in(query)), (label, query)
    # every family of the operator's own has a panel
    families = {re.sub(r"_(total|bucket|count|sum|created)$", "", n) for n in names}
    panelled = {re.sub(r"_(total|bucket|count|sum|created)$", "", n) for n in seen}
    assert families - panelled == set()


def test_prometheus_parses_every_query(tmp_path: Path) -> None:
    promtool = _promtool()
    rules: dict[str, Any] = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"nonstop:dashboard_query_{i}", "expr": _concrete(q)}
                    for i, q in enumerate(queries())
                    if not q.startswith("label_values(")
                ],
            }
        ]
    }
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rules))
    checked = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _concrete(query: str) -> str:
    """A query as Grafana sends it: the dashboard's variables replaced."""
    return query.replace("$namespace", ".*")


def _promtool() -> str:
    installed = subprocess.run(
        ["bash", str(REPO / "e2e/prometheus/install.sh")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if installed.returncode != 0:
        pytest.fail(f"cannot install Prometheus (promtool): {installed.stderr[-2000:]}")
    prometheus = Path(installed.stdout.strip().splitlines()[-1])
    beside = prometheus.resolve().parent / "promtool"
    found = str(beside) if beside.exists() else shutil.which("promtool")
    if not found:
        pytest.fail(f"no promtool beside {prometheus}")
    return found
