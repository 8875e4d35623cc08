"""Flag stores as the feature-toggle strategy sees them: a protocol, and flagd's JSON document
in a ConfigMap.

The strategy asks a store for the share of users that get the new variant, and whether the
store (read back) shows it already; it never parses a flag document itself. Another
store (a flagd sync over gRPC, an OpenFeature provider's own API) is one more class with
these two methods.
"""

from __future__ import annotations

from typing import Any, Protocol

from nonstop.api.spec import FlagRef
from nonstop.plan.model import Observed, RolloutMeta, StallError, UpdateConfigMap
from nonstop.traffic import FlagError, FlagView, read_flag, set_weight
from nonstop.traffic.flagd import flag_weight


class FlagStore(Protocol):
    @property
    def flag(self) -> FlagView:
        """The flag as read back (raises StallError when it cannot be used)."""

    def towards(self, weight: float) -> tuple[UpdateConfigMap | None, bool]:
        """The write that gives the new variant `weight`% of users (None: it does already),
        and whether it does already."""


class FlagdConfigMap:
    """flagd's flag definition document under one key of a ConfigMap. nonstop edits only the
    `fractional` targeting of its one flag (traffic/flagd.py); every other byte stays."""

    def __init__(self, ref: FlagRef, meta: RolloutMeta, observed: Observed) -> None:
        self._ref = ref
        self._source = f"ConfigMap {meta.namespace}/{ref.config_map} key {ref.file}"
        self._config_map, self._document = _document(ref, meta, observed)
        try:
            self._flag = read_flag(self._document, ref.key, ref.variant, source=self._source)
        except FlagError as exc:
            raise StallError("FlagDocumentInvalid", str(exc)) from exc
        if not self._flag.owned:
            raise StallError(
                "FlagDocumentInvalid",
                f"{self._source}: flag {ref.key} has a targeting rule nonstop did not write;"
                " nonstop owns the targeting of the flag it rolls out: remove the rule (or"
                " roll out another flag)",
            )

    @property
    def flag(self) -> FlagView:
        return self._flag

    def towards(self, weight: float) -> tuple[UpdateConfigMap | None, bool]:
        ref, current = self._ref, self._flag
        if current.weight == flag_weight(weight):
            return None, True
        text = set_weight(self._document, ref.key, ref.variant, weight, source=self._source)
        note = (
            f"flag {ref.key} in ConfigMap {ref.config_map}: {ref.variant}"
            f" {current.weight:g}% -> {weight:g}%"
        )
        body = {**self._config_map, "data": {**self._config_map["data"], ref.file: text}}
        return UpdateConfigMap(body, note), False


def _document(ref: FlagRef, meta: RolloutMeta, observed: Observed) -> tuple[dict[str, Any], str]:
    where = f"ConfigMap {meta.namespace}/{ref.config_map}"
    if observed.config_map is None:
        raise StallError(
            "FlagDocumentNotFound",
            f"{where} named in spec.strategy.featureToggle.flag cannot be read:"
            f" {observed.config_map_error or 'it does not exist'}",
        )
    data = observed.config_map.get("data") or {}
    if ref.file not in data:
        keys = ", ".join(sorted(data)) or "none"
        raise StallError(
            "FlagDocumentInvalid",
            f"{where} has no key {ref.file} (its keys: {keys}): set flag.file to the key"
            " that holds the flagd document",
        )
    return observed.config_map, str(data[ref.file])
