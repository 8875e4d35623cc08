"""Evaluate a flagd document with the real OpenFeature SDK and the flagd in-process provider.

The provider reads the document from a file (its offline "file source"), as an application
in the cluster would read the ConfigMap mounted as a file, and every key is evaluated
through an OpenFeature client: hooks, context, the provider's JsonLogic engine and its
``fractional`` bucketing, all as shipped (openfeature-sdk, openfeature-provider-flagd).
Nothing leaves the machine: the file source needs no flagd process and no network.
"""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import FlagEvaluationDetails
from openfeature.provider.no_op_provider import NoOpProvider

DOMAIN = "nonstop-tests-flag-eval"  # one client domain, so the global default stays as it is
POLL_MS = 50  # how often the file source re-reads the file; also how long shutdown waits
_lock = threading.Lock()  # the domain is global state: one evaluation run at a time


def variant_share(
    document: str, key: str, variant: str, targeting_keys: Iterable[str]
) -> tuple[float, set[str]]:
    """The share (%) of `targeting_keys` that get `variant` of flag `key`, and those keys.

    Raises RuntimeError when the provider cannot load the document or an evaluation ends in
    an error (a broken document must not pass for "nobody gets the variant").
    """
    keys = list(targeting_keys)
    with _lock, tempfile.TemporaryDirectory(prefix="flagd-") as folder:
        path = Path(folder) / "flags.flagd.json"
        path.write_text(document, encoding="utf-8")
        provider = FlagdProvider(
            resolver_type=ResolverType.IN_PROCESS,
            offline_flag_source_path=str(path),
            deadline_ms=POLL_MS,
        )
        try:
            api.set_provider_and_wait(provider, DOMAIN)  # raises if the file does not load
            evaluate = _evaluator(api.get_client(DOMAIN), document, key)
            got = set()
            for targeting_key in keys:
                details = evaluate(EvaluationContext(targeting_key=targeting_key))
                if details.error_code is not None:
                    raise RuntimeError(
                        f"flag {key} for {targeting_key}: {details.error_code} {details.error_message}"
                    )
                if details.variant == variant:
                    got.add(targeting_key)
        finally:
            _shut_down(provider)
    share = 100 * len(got) / len(keys) if keys else 0.0
    return share, got


def _evaluator(
    client: OpenFeatureClient, document: str, key: str
) -> Callable[[EvaluationContext], FlagEvaluationDetails[Any]]:
    """The client's typed evaluation that fits the flag's variants (string flags: strings)."""
    variants = json.loads(document)["flags"][key]["variants"]
    sample = next(iter(variants.values()))
    if isinstance(sample, bool):
        return lambda context: client.get_boolean_details(key, False, context)
    if isinstance(sample, str):
        return lambda context: client.get_string_details(key, "", context)
    if isinstance(sample, int | float):
        return lambda context: client.get_float_details(key, 0.0, context)
    return lambda context: client.get_object_details(key, {}, context)


def _shut_down(provider: FlagdProvider) -> None:
    """Unbind the provider, stop its file watcher, and wait for the watcher thread to end."""
    api.set_provider(NoOpProvider(), DOMAIN)  # the registry also shuts the old one down
    provider.shutdown()
    watcher = getattr(provider.resolver, "connector", None)
    thread = getattr(watcher, "thread", None)
    if isinstance(thread, threading.Thread):
        thread.join(timeout=10 * POLL_MS / 1000)
        if thread.is_alive():
            raise RuntimeError("the flagd file watcher did not stop")
