"""The flagd flag document: read one flag, set its new variant's share, keep every other byte."""

from __future__ import annotations

import json
from typing import Any

import pytest

from nonstop.traffic import FlagError, FlagView, flag_weight, read_flag, set_weight
from nonstop.traffic.flagd import BUCKETING_VALUE, FLAG_WEIGHT_SCALE

# A document as people write them: $schema, set metadata, shared evaluators, a flag with
# its own targeting (using $ref), odd whitespace (tabs, a space before a colon, one-line
# and multi-line objects), and the flag to roll out without targeting, in the middle.
DOCUMENT = """{
  "$schema": "https://flagd.dev/schema/v0/flags.json",
  "metadata": {"flagSetId": "shop", "version": "7"},
  "$evaluators": {
    "isStaff": {"ends_with": [{"var": "email"}, "@example.com"]}
  },
  "flags": {
    "show-banner" :   { "state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"off",
        "targeting": {"if": [{"$ref": "isStaff"}, "on", null]} },
\t"new-ui": {
      "state": "ENABLED",
      "variants": { "off": "classic", "on": "redesign", "v3": "next" },
      "defaultVariant": "off",
      "metadata": {"owner": "web", "ticket": 1234}
    },
    "header-color": {"state": "DISABLED", "variants": {"red": "#f00", "blue": "#00f"}, "defaultVariant": "red",
       "targeting": {"fractional": [["red", 50], ["blue", 50]]}}
  }
}
"""

KEY, VARIANT = "new-ui", "on"


def targeting(variant: str, default: str, new: int, old: int) -> dict[str, Any]:
    return {"fractional": [BUCKETING_VALUE, [variant, new], [default, old]]}


def flag(document: str, key: str = KEY) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(document)["flags"][key]
    return value


def changed_span(before: str, after: str) -> tuple[int, int, int]:
    """(start, end in before, end in after) of the one region where the texts differ."""
    start = 0
    while start < min(len(before), len(after)) and before[start] == after[start]:
        start += 1
    common = 0
    while (
        common < min(len(before), len(after)) - start
        and before[len(before) - 1 - common] == after[len(after) - 1 - common]
    ):
        common += 1
    return start, len(before) - common, len(after) - common


# --- reading --------------------------------------------------------------------------


def test_a_flag_without_targeting_is_at_zero_and_nonstops() -> None:
    assert read_flag(DOCUMENT, KEY, VARIANT) == FlagView(
        state="ENABLED", default_variant="off", variant="on", weight=0.0, owned=True
    )


def test_someone_elses_targeting_reads_as_zero_and_not_owned() -> None:
    view = read_flag(DOCUMENT, "header-color", "blue")
    assert view == FlagView(
        state="DISABLED", default_variant="red", variant="blue", weight=0.0, owned=False
    )
    assert not read_flag(DOCUMENT, "show-banner", "on").owned


@pytest.mark.parametrize("empty", ["{}", "null", "{ }"])
def test_empty_targeting_is_owned(empty: str) -> None:
    document = DOCUMENT.replace(
        '"defaultVariant": "off",', f'"defaultVariant": "off", "targeting": {empty},'
    )
    assert read_flag(document, KEY, VARIANT) == read_flag(DOCUMENT, KEY, VARIANT)
    written = set_weight(document, KEY, VARIANT, 10)
    assert flag(written)["targeting"] == targeting("on", "off", 1000, 9000)
    assert written.count('"targeting"') == DOCUMENT.count('"targeting"') + 1  # replaced, not added


def test_nonstops_shape_for_another_variant_is_not_owned() -> None:
    document = set_weight(DOCUMENT, KEY, "v3", 40)
    assert read_flag(document, KEY, "v3").weight == 40.0
    assert read_flag(document, KEY, "on") == FlagView("ENABLED", "off", "on", 0.0, False)


@pytest.mark.parametrize(
    ("new", "old", "weight"), [(1, 3, 25.0), (50, 50, 50.0), (0, 7, 0.0), (7, 0, 100.0)]
)
def test_nonstops_shape_with_any_total_reads_as_its_ratio(
    new: int, old: int, weight: float
) -> None:
    rule = json.dumps(targeting("on", "off", new, old))
    document = DOCUMENT.replace(
        '"defaultVariant": "off",', f'"defaultVariant": "off", "targeting": {rule},'
    )
    assert read_flag(document, KEY, VARIANT) == FlagView("ENABLED", "off", "on", weight, True)


@pytest.mark.parametrize(
    "rule",
    [
        targeting("on", "off", 1, 1) | {"extra": 1},
        targeting("off", "on", 50, 50),  # default first: not nonstop's
        {"fractional": [["on", 50], ["off", 50]]},  # the left-out bucketing value
        {"fractional": [{"var": "targetingKey"}, ["on", 50], ["off", 50]]},
        {"fractional": [BUCKETING_VALUE, ["on", 50.0], ["off", 50]]},  # flagd wants integers
        {"fractional": [BUCKETING_VALUE, ["on", True], ["off", 1]]},
        {"fractional": [BUCKETING_VALUE, ["on", -1], ["off", 101]]},
        {"fractional": [BUCKETING_VALUE, ["on", 0], ["off", 0]]},
        {"fractional": [BUCKETING_VALUE, ["on", 2**31], ["off", 0]]},
        {"fractional": [BUCKETING_VALUE, ["on", 5], ["off", 5], ["v3", 5]]},
    ],
)
def test_other_shapes_are_not_owned(rule: dict[str, Any]) -> None:
    document = DOCUMENT.replace(
        '"defaultVariant": "off",', f'"defaultVariant": "off", "targeting": {json.dumps(rule)},'
    )
    assert read_flag(document, KEY, VARIANT) == FlagView("ENABLED", "off", "on", 0.0, False)


# --- writing: only the targeting changes -----------------------------------------------


def test_insertion_adds_only_the_member_indented_like_the_last_one() -> None:
    written = set_weight(DOCUMENT, KEY, VARIANT, 20)
    anchor = DOCUMENT.index('"ticket": 1234}') + len('"ticket": 1234}')
    inserted = (
        ',\n      "targeting": {"fractional": [{"cat": [{"var": "$flagd.flagKey"},'
        ' {"var": "targetingKey"}]}, ["on", 2000], ["off", 8000]]}'
    )
    assert written == DOCUMENT[:anchor] + inserted + DOCUMENT[anchor:]
    start, end, _ = changed_span(DOCUMENT, written)
    assert (start, end) == (anchor, anchor)
    before, after = json.loads(DOCUMENT), json.loads(written)
    assert after["flags"][KEY].pop("targeting") == targeting("on", "off", 2000, 8000)
    assert after == before
    assert read_flag(written, KEY, VARIANT) == FlagView("ENABLED", "off", "on", 20.0, True)


def test_replacement_changes_only_the_targeting_value() -> None:
    first = set_weight(DOCUMENT, KEY, VARIANT, 20)
    second = set_weight(first, KEY, VARIANT, 5)
    old_value = json.dumps(targeting("on", "off", 2000, 8000))
    start = first.index(old_value)
    end = start + len(old_value)
    new_value = json.dumps(targeting("on", "off", 500, 9500))
    # $schema, metadata, $evaluators, the other flags and this flag's other members: all
    # before or after the value, byte for byte
    assert second[:start] == first[:start]
    assert second[start + len(new_value) :] == first[end:]
    assert second[start : start + len(new_value)] == new_value
    assert changed_span(first, second)[0] >= start


def test_someone_elses_targeting_is_replaced_in_place() -> None:
    written = set_weight(DOCUMENT, "header-color", "blue", 30)
    old = '{"fractional": [["red", 50], ["blue", 50]]}'
    at = DOCUMENT.index(old)
    new = json.dumps(targeting("blue", "red", 3000, 7000))
    assert written == DOCUMENT[:at] + new + DOCUMENT[at + len(old) :]


def test_a_one_line_document_gets_a_one_line_member() -> None:
    document = '{"flags":{"f":{"state":"ENABLED","variants":{"a":1,"b":2},"defaultVariant":"a"}}}'
    written = set_weight(document, "f", "b", 100)
    assert written == (
        '{"flags":{"f":{"state":"ENABLED","variants":{"a":1,"b":2},"defaultVariant":"a"'
        ', "targeting": {"fractional": [{"cat": [{"var": "$flagd.flagKey"}, {"var": "targetingKey"}]},'
        ' ["b", 10000], ["a", 0]]}}}}'
    )


def test_crlf_and_tabs_are_kept() -> None:
    document = DOCUMENT.replace("\n", "\r\n").replace("      ", "\t\t")
    written = set_weight(document, KEY, VARIANT, 5)
    start, end, new_end = changed_span(document, written)
    assert start == end  # a pure insertion
    assert written[start:new_end].startswith(',\r\n\t\t"targeting": ')
    assert read_flag(written, KEY, VARIANT).weight == 5.0


def test_escaped_keys_are_found_by_their_value() -> None:
    document = (
        '{"\\u0066lags": {"other": {"state": "ENABLED", "variants": {"x": "1"}, "defaultVariant": "x"},'
        ' "n\\u0065w-ui": {"state": "ENABLED", "variants": {"off": "a", "on": "b"},'
        ' "defaultVariant": "off", "t\\u0061rgeting": {"fractional": [["on", 1], ["off", 1]]}}}}'
    )
    written = set_weight(document, KEY, VARIANT, 1)
    assert written.startswith(document[: document.index('{"fractional"')])
    assert written.endswith("}}}")
    assert read_flag(written, KEY, VARIANT).weight == 1.0


def test_non_ascii_variant_names_are_written_as_they_are() -> None:
    document = '{"flags": {"f": {"state": "ENABLED", "variants": {"aus": false, "grün": true}, "defaultVariant": "aus"}}}'
    written = set_weight(document, "f", "grün", 50)
    assert '["grün", 5000], ["aus", 5000]' in written
    assert read_flag(written, "f", "grün").weight == 50.0


@pytest.mark.parametrize("weight", [0, 0.5, 5, 50, 99.5, 100, 0.01, 33.33, 0.29])
def test_weights_read_back_as_written(weight: float) -> None:
    written = set_weight(DOCUMENT, KEY, VARIANT, weight)
    assert read_flag(written, KEY, VARIANT).weight == weight == flag_weight(weight)
    points = round(weight * 100)
    assert flag(written)["targeting"] == targeting("on", "off", points, FLAG_WEIGHT_SCALE - points)


def test_weights_are_rounded_down_to_a_hundredth_of_a_percent() -> None:
    assert flag_weight(0.333) == 0.33
    assert flag_weight(0.005) == 0.0
    assert flag_weight(99.999) == 99.99
    written = set_weight(DOCUMENT, KEY, VARIANT, 0.333)
    assert read_flag(written, KEY, VARIANT).weight == 0.33


def test_zero_and_a_hundred() -> None:
    assert flag(set_weight(DOCUMENT, KEY, VARIANT, 0))["targeting"] == targeting(
        "on", "off", 0, 10000
    )
    assert flag(set_weight(DOCUMENT, KEY, VARIANT, 100))["targeting"] == targeting(
        "on", "off", 10000, 0
    )


@pytest.mark.parametrize("weight", [0, 0.5, 20, 100])
def test_set_weight_is_idempotent(weight: float) -> None:
    once = set_weight(DOCUMENT, KEY, VARIANT, weight)
    assert set_weight(once, KEY, VARIANT, weight) == once
    again = set_weight(set_weight(once, KEY, VARIANT, 70), KEY, VARIANT, weight)
    assert again == once


@pytest.mark.parametrize("weight", [-0.01, 100.01, float("nan"), float("inf")])
def test_weights_outside_0_to_100_are_refused(weight: float) -> None:
    with pytest.raises(FlagError, match="weight must be from 0 to 100"):
        set_weight(DOCUMENT, KEY, VARIANT, weight)


# --- errors ---------------------------------------------------------------------------


def _with_flag(body: str) -> str:
    return (
        '{"flags": {"a": {"state": "ENABLED", "variants": {"x": 1}, "defaultVariant": "x"}, "new-ui": '
        + body
        + "}}"
    )


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            '{\n  "flags": {\n    "a": 1\n    "b": 2',
            "flags.flagd.json is not JSON: Expecting ',' delimiter at line 4 column 5",
        ),
        ("", "flags.flagd.json is not JSON: Expecting value at line 1 column 1"),
        ("[]", 'flags.flagd.json must be a JSON object with a "flags" object, not a list'),
        ('{"flag": {}}', 'flags.flagd.json has no "flags"'),
        ('{"flags": [{"key": "new-ui"}]}', '"flags" is a list'),
        ('{"flags": "new-ui"}', '"flags" must be an object of flags, not a string'),
        ('{"flags": {"a": {}, "b": {}}}', 'flag "new-ui" is not in flags.flagd.json (flags: a, b)'),
        ('{"flags": {}}', 'flag "new-ui" is not in flags.flagd.json (flags: none)'),
        (
            _with_flag("true"),
            'flag "new-ui" must be an object with state, variants and defaultVariant, not a boolean',
        ),
        (
            _with_flag('{"variants": {"off": 1, "on": 2}, "defaultVariant": "off"}'),
            'flag "new-ui" has no state',
        ),
        (
            _with_flag(
                '{"state": "enabled", "variants": {"off": 1, "on": 2}, "defaultVariant": "off"}'
            ),
            'flag "new-ui": state "enabled" is not "ENABLED" or "DISABLED"',
        ),
        (
            _with_flag('{"state": "ENABLED", "defaultVariant": "off"}'),
            'flag "new-ui" needs a non-empty "variants" object',
        ),
        (
            _with_flag('{"state": "ENABLED", "variants": {}}'),
            'flag "new-ui" needs a non-empty "variants" object',
        ),
        (
            _with_flag(
                '{"state": "ENABLED", "variants": {"off": 1, "on": "2"}, "defaultVariant": "off"}'
            ),
            'flag "new-ui": its variants must all have one type (all booleans, strings, numbers or objects), but "off" is a number, "on" is a string',
        ),
        (
            _with_flag(
                '{"state": "ENABLED", "variants": {"off": [1], "on": [2]}, "defaultVariant": "off"}'
            ),
            'flag "new-ui": variant "off" is a list',
        ),
        (
            _with_flag('{"state": "ENABLED", "variants": {"off": 1, "on": 2}}'),
            'flag "new-ui" has no defaultVariant: nonstop serves it to the users who do not get "on" (variants: off, on)',
        ),
        (
            _with_flag(
                '{"state": "ENABLED", "variants": {"off": 1, "v2": 2}, "defaultVariant": "x"}'
            ),
            'flag "new-ui": defaultVariant "x" is not one of its variants (variants: off, v2)',
        ),
        (
            _with_flag(
                '{"state": "ENABLED", "variants": {"off": 1, "v2": 2}, "defaultVariant": "off"}'
            ),
            'flag "new-ui" has no variant "on" (variants: off, v2)',
        ),
        (
            _with_flag(
                '{"state": "ENABLED", "variants": {"off": 1, "on": 2}, "defaultVariant": "on"}'
            ),
            'flag "new-ui": "on" is its defaultVariant, which everyone gets already; name the new variant',
        ),
        (
            _with_flag(
                '{"state": "ENABLED", "variants": {"off": 1, "on": 2}, "defaultVariant": "off", "targeting": "on"}'
            ),
            'flag "new-ui": targeting must be a JSON object (a rule), not a string',
        ),
        (
            _with_flag(
                '{"state": "ENABLED", "variants": {"off": 1, "on": 2}, "defaultVariant": "off", "metadata": {"team": null}}'
            ),
            'flag "new-ui": metadata: "team" is null; metadata values are strings, numbers or booleans',
        ),
        (
            '{"metadata": [], "flags": {}}',
            "flags.flagd.json: metadata must be an object, not a list",
        ),
        (
            '{"$evaluators": [], "flags": {}}',
            'flags.flagd.json: "$evaluators" must be an object of named rules',
        ),
        (
            '{"flags": {}, "flags": {"new-ui": {"state": "ENABLED", "variants": {"off": 1, "on": 2}, "defaultVariant": "off"}}}',
            'flags.flagd.json has "flags" 2 times; keep one',
        ),
        (
            '{"flags": {"new-ui": {}, "new-ui": {"state": "ENABLED", "variants": {"off": 1, "on": 2}, "defaultVariant": "off"}}}',
            'flags.flagd.json: flags has "new-ui" 2 times; keep one',
        ),
        (
            _with_flag(
                '{"state": "ENABLED", "variants": {"off": 1, "on": 2}, "defaultVariant": "off", "targeting": {}, "targeting": {}}'
            ),
            'flag "new-ui" has 2 "targeting" members; keep one',
        ),
    ],
)
def test_errors_say_what_to_fix(document: str, message: str) -> None:
    with pytest.raises(FlagError) as raised:
        read_flag(document, KEY, VARIANT)
    assert message in str(raised.value)
    with pytest.raises(FlagError):  # set_weight checks the same, and writes nothing
        set_weight(document, KEY, VARIANT, 50)


def test_the_document_is_named_as_the_caller_says() -> None:
    with pytest.raises(FlagError, match=r"^ui-flags\.json is not JSON: "):
        read_flag("{", KEY, VARIANT, source="ui-flags.json")
    with pytest.raises(FlagError, match=r"is not in ui-flags\.json"):
        set_weight(DOCUMENT, "nope", VARIANT, 1, source="ui-flags.json")


def test_a_long_flag_list_is_cut() -> None:
    flags: dict[str, Any] = {f"f{i}": {} for i in range(25)}
    with pytest.raises(FlagError, match=r"\(flags: f0, f1, .*, f19 and 5 more\)$"):
        read_flag(json.dumps({"flags": flags}), KEY, VARIANT)


def test_flag_error_is_a_value_error() -> None:
    assert issubclass(FlagError, ValueError)


def test_other_flags_are_not_checked() -> None:
    document = DOCUMENT.replace('"state": "DISABLED"', '"state": "broken"')
    assert read_flag(document, KEY, VARIANT).owned
    assert set_weight(document, KEY, VARIANT, 1).count('"state": "broken"') == 1
