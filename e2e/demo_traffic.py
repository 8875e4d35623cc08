"""The live part of `make demo` on the real node: sends requests to the Rollout's Service while
it rolls out and prints, once a second, the step and phase next to the share of the last
second's requests each version answered and the failed requests so far.

usage: python -m e2e.demo_traffic URL NAMESPACE [ROLLOUT]   (KUBECONFIG as kubectl's)
Exits 0 when the Rollout is Healthy for its generation and no request failed, 1 otherwise.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

from e2e.traffic.load import LoadGenerator, failures, shares, summary, window

TIMEOUT = 300.0


def rollout_state(namespace: str, name: str) -> dict[str, Any]:
    out = subprocess.run(
        ["kubectl", "get", "rollout", name, "-n", namespace, "-o", "json"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    obj: dict[str, Any] = json.loads(out)
    return obj


def done(obj: dict[str, Any]) -> bool:
    st = obj.get("status", {})
    return bool(
        st.get("observedGeneration") == obj["metadata"]["generation"]
        and st.get("phase") == "Healthy"
    )


def line(elapsed: float, obj: dict[str, Any], last_second: list[Any], failed: int) -> str:
    st = obj.get("status", {})
    share = "  ".join(f"{v} {s:6.1%}" for v, s in sorted(shares(last_second).items()))
    return (
        f"{elapsed:5.0f}s  {st.get('phase', '?'):<11} step {st.get('step', '-'):<5}"
        f"  {len(last_second):4d} req/s  {share:<28}  failed so far: {failed}"
    )


def main(argv: list[str]) -> int:
    url, namespace = argv[0], argv[1]
    name = argv[2] if len(argv) > 2 else "web"
    # a new connection per request, as kube-proxy balances connections
    with LoadGenerator(url, rate=100, keep_alive=False, max_duration=TIMEOUT + 60) as load:
        t0 = time.monotonic()
        healthy_since: float | None = None
        while time.monotonic() - t0 < TIMEOUT:
            time.sleep(1)
            now = time.monotonic()
            obj = rollout_state(namespace, name)
            samples = load.samples()
            print(
                line(now - t0, obj, window(samples, now - 1, now), len(failures(samples))),
                flush=True,
            )
            if done(obj):
                healthy_since = healthy_since or now
                if now - healthy_since >= 3:
                    break
            else:
                healthy_since = None
    samples = load.samples()
    print("\n" + summary(samples, load.marks()))
    failed = len(failures(samples))
    print(f"\n{len(samples)} requests, {failed} failed")
    return 0 if failed == 0 and healthy_since is not None else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
