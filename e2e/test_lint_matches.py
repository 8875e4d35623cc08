"""`kubectl nonstop lint` says what the API server says: every bad manifest of
test_admission.py (and some more: wrong types, enums, counts, AnalysisTemplates,
RolloutActions) is sent to a real API server with the CRDs installed (a server-side dry
run), and lint's lines, offline, are the API server's lines.

The same cases and the API server's answers are recorded in
tests/fixtures/admission/apiserver.json, so that the unit tests check lint against them
without a cluster. Record them again (after a CRD change, or for a new Kubernetes) with

    KUBECONFIG=... .venv/bin/python -m e2e.test_lint_matches
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from e2e.conftest import Cluster
from e2e.manifests import rollout
from e2e.test_admission import CASES, LIMITS, at_limit, broken
from nonstop.cli.lint import admission_lines

REPO = Path(__file__).parents[1]
RECORDED = REPO / "tests" / "fixtures" / "admission" / "apiserver.json"

# Lines the API server adds that restate a type error it has already given (kube-openapi's
# format and anyOf checks, the scale subresource's accessor): lint gives the type error once.
RESTATED = (
    re.compile(r"^<nil>: Invalid value: \"\": Checked value must be of type"),
    re.compile(r"must validate at least one schema \(anyOf\)$"),
    re.compile(r"^\.spec\.replicas: Invalid value: 0: \.spec\.replicas accessor error"),
)


def _spec(change: Callable[[dict[str, Any]], None], name: str = "bad") -> dict[str, Any]:
    manifest = rollout(name=name)
    change(manifest["spec"])
    return manifest


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(spec: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = spec
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[last] = value

    return change


def _template(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "nonstop.dev/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "t"},
        "spec": spec,
    }


def _action(spec: dict[str, Any], name: str = "a") -> dict[str, Any]:
    return {
        "apiVersion": "nonstop.dev/v1alpha1",
        "kind": "RolloutAction",
        "metadata": {"name": name},
        "spec": spec,
    }


def extra_cases() -> dict[str, dict[str, Any]]:
    web = {"web": {"url": "http://x", "jsonPath": "$.a"}}
    prom = {"prometheus": {"address": "http://p:9090", "query": "q"}}
    cases = {
        "replicas-string": _spec(_set("replicas", "three")),
        "replicas-float": _spec(_set("replicas", 2.5)),
        "paused-string": _spec(_set("paused", "yes")),
        "protocol-enum": _spec(_set("service.ports.0.protocol", "HTTP")),
        "service-type-enum": _spec(_set("service.type", "External")),
        "no-service": _spec(lambda s: s.pop("service")),
        "service-a-string": _spec(_set("service", "web")),
        "port-a-string": _spec(_set("service.ports.0.port", "80")),
        "too-many-ports": _spec(
            _set("service.ports", [{"port": 1000 + i, "name": f"p{i}"} for i in range(33)])
        ),
        "no-match-labels": _spec(_set("selector.matchLabels", {})),
        "too-many-labels": _spec(
            lambda s: s["template"]["metadata"]["labels"].update({f"k{i}": "v" for i in range(70)})
        ),
        "label-value-a-number": _spec(_set("template.metadata.labels.x", 5)),
        "empty-image": _spec(_set("template.spec.containers.0.image", "")),
        "surge-a-boolean": _spec(_set("strategy", {"rolling": {"maxSurge": True}})),
        "weight-a-string": _spec(_set("strategy", {"canary": {"steps": [{"setWeight": "ten"}]}})),
        "weight-fraction": _spec(
            _set("strategy", {"canary": {"steps": [{"setWeight": 12.5}, {"setWeight": 120.5}]}})
        ),
        "no-steps": _spec(_set("strategy", {"canary": {"steps": []}})),
        "several-problems": _spec(
            lambda s: (
                _set("replicas", -1)(s),
                _set("strategy", {"canary": {"steps": [{"setWeight": 120}, {}]}})(s),
            )
        ),
        "analysis-empty": _spec(_set("strategy", {"canary": {"steps": [{"analysis": {}}]}})),
        "metric-bad": _spec(
            _set(
                "strategy",
                {
                    "canary": {
                        "steps": [
                            {
                                "analysis": {
                                    "metrics": [
                                        {
                                            "name": "Errors",
                                            "provider": {},
                                            "interval": "1x",
                                            "count": 0,
                                        }
                                    ]
                                }
                            }
                        ]
                    }
                },
            )
        ),
        "header-value-and-none": _spec(
            _set(
                "strategy",
                {
                    "canary": {
                        "steps": [
                            {
                                "analysis": {
                                    "metrics": [
                                        {
                                            "name": "e",
                                            "provider": {
                                                "web": {**web["web"], "headers": [{"name": "a"}]}
                                            },
                                        }
                                    ]
                                }
                            }
                        ]
                    }
                },
            )
        ),
        "unknown-fields-two": _spec(
            lambda s: (s.__setitem__("foo", 1), s["strategy"]["rolling"].__setitem__("bar", 2))
        ),
        "unknown-field-in-a-list": _spec(_set("service.ports.0.foo", 1)),
        "unknown-field-in-template-metadata": _spec(_set("template.metadata.name", "x")),
        "canary-scale-delay-over-an-hour": _spec(
            _set(
                "strategy",
                {"canary": {"steps": [{"setWeight": 50}], "scaleDownDelaySeconds": 4000}},
            )
        ),
        "canary-scale-two-ways": _spec(
            _set(
                "strategy",
                {"canary": {"steps": [{"setCanaryScale": {"replicas": 1, "percent": 4}}]}},
            )
        ),
        "mirror-twice-and-unsafe": _spec(
            lambda s: (
                _set("trafficRouting", {"gatewayAPI": {"httpRoute": "web"}})(s),
                _set(
                    "strategy",
                    {
                        "shadow": {
                            "duration": "5m",
                            "mirror": {"methods": ["GET", "PUT", "GET"]},
                            "then": {"canary": {"steps": [{"setWeight": 50}]}},
                        }
                    },
                )(s),
            )
        ),
        "header-match-two-ways": _spec(
            lambda s: (
                _set("trafficRouting", {"gatewayAPI": {"httpRoute": "web"}})(s),
                _set(
                    "strategy",
                    {
                        "canary": {
                            "steps": [
                                {
                                    "setHeaderRoute": {
                                        "name": "testers",
                                        "match": [
                                            {"name": "x-canary", "exact": "1", "prefix": "1"}
                                        ],
                                    }
                                }
                            ]
                        }
                    },
                )(s),
            )
        ),
        "toggle-step-two-ways": _spec(
            _set(
                "strategy",
                {
                    "featureToggle": {
                        "flag": {"configMap": "flags", "key": "new-ui", "variant": "on"},
                        "steps": [{"setWeight": 10, "pause": {}}],
                    }
                },
            )
        ),
        "shadow-then-two-ways": _spec(
            lambda s: (
                _set("trafficRouting", {"gatewayAPI": {"httpRoute": "web"}})(s),
                _set(
                    "strategy",
                    {
                        "shadow": {
                            "duration": "5m",
                            "then": {
                                "canary": {"steps": [{"setWeight": 50}]},
                                "blueGreen": {"previewService": "web-preview"},
                            },
                        }
                    },
                )(s),
            )
        ),
        "name-not-a-subdomain": _spec(lambda s: None, name="Bad_Name"),
        "names-too-long": _spec(_set("service.name", "a" * 70), name="x" * 64),
        "action-unknown-verb": _action({"rollout": "web", "action": "explode"}),
        "action-rollout-name-too-long": _action({"rollout": "a" * 64, "action": "pause"}),
        "template-two-providers-and-compare": _template(
            {
                "metrics": [
                    {
                        "name": "x",
                        "provider": {**prom, **web},
                        "compare": {},
                        "successCondition": "result > 1",
                    }
                ]
            }
        ),
        "template-no-metrics": _template({}),
        "template-confidence-too-high": _template(
            {"metrics": [{"name": "x", "provider": prom, "compare": {"confidence": 0.9999}}]}
        ),
    }
    no_spec = rollout(name="bad")
    no_spec.pop("spec")
    cases["no-spec"] = no_spec
    return cases


def cases() -> dict[str, dict[str, Any]]:
    """Every manifest checked, by name: refused ones and admitted ones (the limits)."""
    out = {change: broken(change) for change, _, _ in CASES}
    out |= {f"over-limit-{case}": at_limit(case, over=True) for case, _, _ in LIMITS}
    out |= {f"at-limit-{case}": at_limit(case, over=False) for case, _, _ in LIMITS}
    out |= extra_cases()
    return out


def server_lines(returncode: int, stderr: str) -> list[str]:
    """The API server's answer to a dry-run create, one line per problem (lint's form)."""
    if returncode == 0:
        return []
    text = stderr.strip()
    strict = re.search(r"strict decoding error: (.*)$", text)
    if strict:
        return [f'{f}: unknown field "{f}"' for f in re.findall(r'unknown field "([^"]+)"', text)]
    invalid = re.match(r'The \w+ "[^"]*" is invalid: (.*)', text, re.S)
    assert invalid, text
    body = invalid.group(1).strip()
    lines = [ln[2:] for ln in body.splitlines() if ln.startswith("* ")] or [body]
    lines = [ln for ln in lines if not any(p.search(ln) for p in RESTATED)]
    # an int-or-string of the wrong type: kube-openapi says it for the anyOf and again for
    # its first branch
    either = {ln.split(": ")[0] for ln in lines if "must be of type integer,string" in ln}
    return [
        ln
        for ln in lines
        if not (ln.split(": ")[0] in either and "must be of type integer: " in ln)
    ]


def dry_run(
    kubectl: Callable[..., subprocess.CompletedProcess[str]], manifest: dict[str, Any]
) -> list[str]:
    """The API server's lines for a create of the manifest (in namespace default: a dry
    run stores nothing)."""
    result = kubectl(
        "apply", "--dry-run=server", "-n", "default", "-f", "-",
        input=yaml.safe_dump(manifest),
        check=False,
    )  # fmt: skip
    return server_lines(result.returncode, result.stderr)


def test_lint_says_what_the_api_server_says(cluster: Cluster) -> None:
    """Each case as a server-side dry run (nothing is stored), against lint's lines."""
    differ = {}
    for name, manifest in sorted(cases().items()):
        server = dry_run(cluster.kubectl, copy.deepcopy(manifest))
        linted = admission_lines(copy.deepcopy(manifest))
        if sorted(linted) != sorted(server):
            differ[name] = {"server": server, "lint": linted}
    assert not differ, json.dumps(differ, indent=1)


def test_the_recorded_answers_are_the_api_servers(cluster: Cluster) -> None:
    """The unit tests' record (tests/fixtures/admission) is what this API server says."""
    recorded = json.loads(RECORDED.read_text())["cases"]
    assert set(recorded) == set(cases()), "record again: python -m e2e.test_lint_matches"
    stale = {
        name: case["lines"]
        for name, case in recorded.items()
        if sorted(dry_run(cluster.kubectl, case["manifest"])) != sorted(case["lines"])
    }
    assert not stale, f"record again (python -m e2e.test_lint_matches): {sorted(stale)}"


def record() -> None:
    """Write tests/fixtures/admission/apiserver.json from the cluster of $KUBECONFIG."""

    def kubectl(
        *args: str, input: str = "", check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["kubectl", *args], input=input, capture_output=True, text=True, check=check
        )

    version = json.loads(kubectl("version", "-o", "json").stdout)["serverVersion"]
    recorded = {
        "server": version["gitVersion"],
        "cases": {
            name: {"manifest": manifest, "lines": dry_run(kubectl, manifest)}
            for name, manifest in sorted(cases().items())
        },
    }
    RECORDED.parent.mkdir(parents=True, exist_ok=True)
    RECORDED.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
    print(f"recorded {len(recorded['cases'])} answers of {version['gitVersion']} in {RECORDED}")


if __name__ == "__main__":
    if not os.environ.get("KUBECONFIG"):
        sys.exit("set KUBECONFIG to a cluster with nonstop's CRDs (e2e/cluster/up.sh prints it)")
    record()
