"""nonstop's flagd targeting, evaluated by the real OpenFeature SDK and flagd provider.

10,000 targeting keys per weight, through an OpenFeature client and the flagd in-process
provider reading the document from a file (tests/flag_eval.py).
"""

from __future__ import annotations

import json
import time

import cbor2
import mmh3
import pytest
from openfeature.exception import ProviderNotReadyError

from nonstop.traffic import read_flag, set_weight
from nonstop.traffic.flagd import FLAG_WEIGHT_SCALE
from tests.flag_eval import variant_share
from tests.unit.test_flagd import DOCUMENT, KEY, VARIANT

USERS = [f"user-{i}" for i in range(10_000)]
WEIGHTS = [0, 0.5, 5, 20, 50, 80, 100]


def test_shares_follow_the_weight_and_only_grow() -> None:
    previous: set[str] = set()
    document = DOCUMENT
    for weight in WEIGHTS:
        document = set_weight(document, KEY, VARIANT, weight)
        assert read_flag(document, KEY, VARIANT).weight == weight
        started = time.perf_counter()
        share, users = variant_share(document, KEY, VARIANT, USERS)
        took = time.perf_counter() - started
        assert abs(share - weight) <= 1, f"{weight}%: {share}% of {len(USERS)} users"
        assert previous <= users, f"{weight}%: {len(previous - users)} users lost {VARIANT}"
        assert took < 30, f"{len(USERS)} evaluations took {took:.1f}s"
        previous = users
    assert previous == set(USERS)


def test_zero_gives_nobody_the_variant_and_a_hundred_everybody() -> None:
    assert variant_share(set_weight(DOCUMENT, KEY, VARIANT, 0), KEY, VARIANT, USERS[:2000]) == (
        0.0,
        set(),
    )
    share, users = variant_share(
        set_weight(DOCUMENT, KEY, VARIANT, 100), KEY, VARIANT, USERS[:2000]
    )
    assert (share, users) == (100.0, set(USERS[:2000]))


def test_going_down_takes_the_variant_from_the_last_added_first() -> None:
    high = variant_share(set_weight(DOCUMENT, KEY, VARIANT, 60), KEY, VARIANT, USERS[:3000])[1]
    low = variant_share(set_weight(DOCUMENT, KEY, VARIANT, 10), KEY, VARIANT, USERS[:3000])[1]
    back = variant_share(set_weight(DOCUMENT, KEY, VARIANT, 60), KEY, VARIANT, USERS[:3000])[1]
    assert low < high
    assert back == high  # the same users as before, not a new draw


def test_other_flags_still_evaluate_as_before() -> None:
    written = set_weight(DOCUMENT, KEY, VARIANT, 50)
    for document in (DOCUMENT, written):
        assert variant_share(document, "show-banner", "on", ["a", "b"]) == (0.0, set())
    # header-color is DISABLED: the caller's default, no variant, for everyone
    assert variant_share(written, "header-color", "blue", USERS[:100])[0] == 0.0


def test_the_bucketing_is_as_documented() -> None:
    """The provider hashes the CBOR encoding of flagKey + targetingKey with MurmurHash3
    (32 bit, unsigned), and gives the first variant when (hash * total) >> 32 < its weight."""
    weight = 37.5
    document = set_weight(DOCUMENT, KEY, VARIANT, weight)
    points = round(weight * FLAG_WEIGHT_SCALE / 100)
    assert json.loads(document)["flags"][KEY]["targeting"]["fractional"][1] == [VARIANT, points]
    _, users = variant_share(document, KEY, VARIANT, USERS[:3000])
    expected = {
        user
        for user in USERS[:3000]
        if (mmh3.hash(cbor2.dumps(KEY + user, canonical=True), signed=False) * FLAG_WEIGHT_SCALE)
        >> 32
        < points
    }
    assert users == expected


@pytest.mark.parametrize("weight", [0, 50])
def test_a_broken_document_is_an_error_not_a_share(weight: float) -> None:
    document = set_weight(DOCUMENT, KEY, VARIANT, weight).replace(
        '"state": "ENABLED"', '"state": 1', 1
    )
    with pytest.raises(ProviderNotReadyError):  # the file does not load: no share at all
        variant_share(document, KEY, VARIANT, USERS[:10])
