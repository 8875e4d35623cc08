"""Feature toggle end to end: every version of the flag ConfigMap the API server hands out is
evaluated with the real OpenFeature SDK and the flagd provider (in-process, from the file,
as an application with the ConfigMap mounted would) for 10,000 targeting keys. A broken
document stops the rollout and the ConfigMap stays as it was."""

from __future__ import annotations

import json
import time
from typing import Any

from kubernetes import client
from tests.flag_eval import variant_share

from e2e.conftest import Cluster, record_figure
from e2e.kube import VersionWatcher, eventually
from e2e.manifests import rollout
from e2e.test_rolling import events, status, wait_ready

KEYS = [f"user-{i}" for i in range(10_000)]
DOCUMENT = """{
  "$schema": "https://flagd.dev/schema/v0/flags.json",
  "flags": {
    "banner":   {"state": "ENABLED", "variants": {"a": "A", "b": "B"}, "defaultVariant": "a",
                 "targeting": {"if": [{"==": [{"var": "tier"}, "gold"]}, "b"]}},
    "new-checkout": {
      "state": "ENABLED",
      "variants": {"off": "classic", "on": "one-page"},
      "defaultVariant": "off"
    }
  }
}
"""


def flag_config_map(document: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "flags"},
        "data": {"flags.flagd.json": document},
    }


def toggle_rollout(steps: list[dict[str, Any]]) -> dict[str, Any]:
    manifest = rollout(replicas=3)
    manifest["spec"]["strategy"] = {
        "featureToggle": {
            "flag": {"configMap": "flags", "key": "new-checkout", "variant": "on"},
            "steps": steps,
        }
    }
    return manifest


def document_of(config_map: dict[str, Any]) -> str:
    return str(config_map["data"]["flags.flagd.json"])


def test_each_step_gives_the_variant_to_its_share_and_only_adds_users(
    cluster: Cluster, namespace: str
) -> None:
    cluster.apply(flag_config_map(DOCUMENT), namespace)
    api = client.CoreV1Api(cluster.api())
    versions = VersionWatcher(api.list_namespaced_config_map, (namespace,), "flags").start()
    steps: list[dict[str, Any]] = [
        {"setWeight": 5},
        {"setWeight": 20},
        {"pause": {}},
        {"setWeight": 50},
    ]
    cluster.apply(toggle_rollout(steps), namespace)
    eventually(lambda: status(cluster, namespace).get("phase") == "Paused", 120, "paused at step 3")
    st = status(cluster, namespace)
    assert st["flag"]["weight"] == 20 and st["weights"]["canary"] == 20
    row = cluster.kubectl("get", "rollout", "web", "-n", namespace, "--no-headers").stdout.split()
    assert row[4:7] == ["2/4", "20", "Paused"]  # STEP, WEIGHT, PHASE
    assert "Applied" in cluster.kubectl("nonstop", "promote", "web", "-n", namespace).stdout
    done = wait_ready(cluster, namespace)
    assert done["flag"]["weight"] == 100

    documents = [document_of(v) for _, v in versions.stop()]
    started = time.monotonic()
    had: set[str] = set()
    shares = []
    for document in documents:
        assert (
            document[: document.index('"new-checkout"')]
            == DOCUMENT[: DOCUMENT.index('"new-checkout"')]
        )
        weight = status_weight(document)
        share, keys = variant_share(document, "new-checkout", "on", KEYS)
        assert abs(share - weight) <= 1, f"weight {weight}%: {share}% of 10,000 keys"
        assert had <= keys, "a key lost the new variant when the weight went up"
        had = keys
        shares.append((weight, share))
    took = time.monotonic() - started
    assert [w for w, _ in shares] == [0, 5, 20, 50, 100]
    assert "FlagUpdated" in events(cluster, namespace)
    record_figure(
        "feature toggle, 10,000 keys with the OpenFeature SDK + flagd in-process: "
        + ", ".join(f"{w:g}% -> {s:.2f}%" for w, s in shares)
        + f" ({took:.1f}s for {len(shares)} documents)"
    )


def status_weight(document: str) -> float:
    """The new variant's share as the document's fractional targeting says, read here
    without the operator's code: 0 without targeting."""
    targeting = json.loads(document)["flags"]["new-checkout"].get("targeting")
    if not targeting:
        return 0.0
    pairs = [p for p in targeting["fractional"] if isinstance(p, list)]
    total = sum(w for _, w in pairs)
    return round(100.0 * sum(w for v, w in pairs if v == "on") / total, 2)


def test_a_broken_flag_document_stops_the_rollout_and_is_left_as_it_is(
    cluster: Cluster, namespace: str
) -> None:
    broken = '{"flags": {"new-checkout": {"state": "ENABLED", "variants": {"off": 1}'
    cluster.apply(flag_config_map(broken), namespace)
    before = cluster.get("configmap", "flags", "-n", namespace)
    cluster.apply(toggle_rollout([{"setWeight": 50}]), namespace)

    def stalled() -> dict[str, Any] | None:
        st = status(cluster, namespace)
        cond = next((c for c in st.get("conditions", []) if c["type"] == "Stalled"), {})
        return st if cond.get("status") == "True" else None

    st = eventually(stalled, 60, "Stalled")
    assert "FlagDocumentInvalid" in events(cluster, namespace)
    assert "is not JSON" in st["message"]
    time.sleep(2)
    after = cluster.get("configmap", "flags", "-n", namespace)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert cluster.get("deployments", "-n", namespace)["items"] == []
