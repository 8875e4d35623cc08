"""The condition language: grammar, precedence, types, NaN, and every kind of error message;
and the template placeholders of metric queries (render)."""

from __future__ import annotations

import math
import re
import sys

import pytest

from nonstop.analysis.expr import (
    MAX_DEPTH,
    MAX_LENGTH,
    Arithmetic,
    Compare,
    ExprError,
    Logic,
    Number,
    check,
    condition,
    evaluate,
    kind,
    parse,
)
from nonstop.analysis.template import TemplateError, render


@pytest.mark.parametrize(
    ("text", "result", "expected"),
    [
        ("result < 0.05", 0.01, True),
        ("result < 0.05", 0.05, False),
        ("result >= 0.95 && result <= 1", 0.97, True),
        ("result >= 0.95 && result <= 1", 1.01, False),
        ("!(result > 100)", 50, True),
        ("!(result > 100)", 150, False),
        ("isNaN(result)", math.nan, True),
        ("isNaN(result)", 1, False),
        ("isInf(result)", math.inf, True),
        ("isInf(result)", -math.inf, True),
        ("isInf(result)", 1e308, False),
        ("result * 100 > 5 || result == 0", 0.0, True),
        ("result * 100 > 5 || result == 0", 0.06, True),
        ("result * 100 > 5 || result == 0", 0.01, False),
        ("result >= 1e-3", 0.001, True),
        ("result < 1E3", 999, True),
        ("result > .5", 0.6, True),
        ("result == 5.", 5, True),
        ("abs(result) < 2", -1.5, True),
        ("min(result, 10) == 10", 12, True),
        ("max(result, 10) == 12", 12, True),
        ("true", 0, True),
        ("false", 0, False),
        ("result > 1 and result < 3", 2, True),
        ("result < 1 or result > 3", 2, False),
        ("not (result > 1)", 0, True),
        ("not (result > 1) and not false", 0, True),
        ("-result > 0", -1, True),
        ("- -result == result", 3, True),
        ("result % 3 == 1", 7, True),
        ("result % 3 == -1", -7, True),  # C's fmod keeps the sign of the dividend
        ("result != 1", 2, True),
        ("(result > 1) == true", 2, True),
        ("isNaN(result) != isInf(result)", math.inf, True),
        ("  result\t<\n0.05  ", 0.01, True),
    ],
)
def test_conditions(text: str, result: float, expected: bool) -> None:
    assert condition(text, result) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2 + 3 * 4", 14.0),  # * binds tighter than +
        ("(2 + 3) * 4", 20.0),
        ("10 - 2 - 3", 5.0),  # left-associative
        ("100 / 10 / 5", 2.0),
        ("2 * 3 % 4", 2.0),  # * and % share a level, left to right: (2*3) % 4
        ("-2 * 3", -6.0),  # unary minus binds tighter than *
        ("-(2 + 3)", -5.0),
        ("1 + 2 < 4", True),  # arithmetic before comparison
        ("1 < 2 == 3 < 4", True),  # comparison before equality: (1<2) == (3<4)
        ("true || false && false", True),  # && before ||: true || (false && false)
        ("(true || false) && false", False),
        ("!true || true", True),  # ! binds tighter than ||
        ("!(true || true)", False),
        ("1 == 1 && 2 == 2", True),  # equality before &&
        ("max(1, 2) + min(3, 4) * 2", 8.0),
        ("abs(-3) - abs(2 - 5)", 0.0),
    ],
)
def test_precedence_as_in_c(text: str, expected: float | bool) -> None:
    assert evaluate(parse(text), {}) == expected


def test_parse_builds_flat_chains_and_typed_nodes() -> None:
    sum_of_four = parse("1 + 2 - 3 + 4")
    assert isinstance(sum_of_four, Arithmetic)
    assert [op for op, _, _ in sum_of_four.rest] == ["+", "-", "+"]
    both = parse("result > 1 && result < 2 && true")
    assert isinstance(both, Logic)
    assert len(both.operands) == 3
    assert isinstance(parse("result < 1"), Compare)
    assert parse("-5") == Number(-5.0, 1)
    assert kind(parse("result + 1")) == "number"
    assert kind(parse("!true")) == "boolean"
    assert kind(parse("isNaN(result)")) == "boolean"
    assert kind(parse("abs(result)")) == "number"


def test_a_long_chain_is_not_deep() -> None:
    text = "+".join(["result"] * 140) + " > 1"  # 140 levels if it were a binary tree
    assert len(text) < MAX_LENGTH
    assert condition(text, 1) is True
    assert evaluate(parse("+".join(["1"] * 500)), {}) == 500


def test_extra_variables() -> None:
    assert condition("result < baseline * 1.2", 1.1, {"baseline": 1.0}) is True
    assert condition("result < baseline * 1.2", 1.3, {"baseline": 1.0}) is False
    # result always comes from the result argument
    assert condition("result > 1", 2, {"result": 0}) is True
    assert evaluate(parse("a + b"), {"a": 1, "b": 2.5}) == 3.5


class TestNaN:
    """IEEE 754: NaN compares false with everything but !=."""

    @pytest.mark.parametrize(
        "text",
        ["result < 1", "result > 1", "result <= 1", "result >= 1", "result == result"],
    )
    def test_comparisons_with_nan_are_false(self, text: str) -> None:
        assert condition(text, math.nan) is False

    def test_not_equal_is_true(self) -> None:
        assert condition("result != result", math.nan) is True

    def test_negated_comparison_is_true(self) -> None:
        # the reason a NaN must never reach a verdict as a value: !(NaN > 100) holds
        assert condition("!(result > 100)", math.nan) is True

    def test_arithmetic_propagates_nan(self) -> None:
        assert condition("isNaN(result * 2 + 1)", math.nan) is True
        assert condition("isNaN(min(result, 1))", math.nan) is True
        assert condition("isNaN(max(1, result))", math.nan) is True
        assert condition("isNaN(result % 2)", math.nan) is True
        assert condition("isNaN(result % 2)", math.inf) is True

    def test_infinities(self) -> None:
        assert condition("result > 1e308", math.inf) is True
        assert condition("isInf(1e308 * 10)", 0) is True
        assert condition("isNaN(result - result)", math.inf) is True


def _error(text: str, result: float = 1.0) -> str:
    with pytest.raises(ExprError) as caught:
        condition(text, result)
    return str(caught.value)


class TestErrors:
    def test_unexpected_token_points_at_the_column(self) -> None:
        assert _error("result < 0.05)") == "unexpected ')' at column 14 in \"result < 0.05)\""

    def test_unexpected_end(self) -> None:
        assert _error("result <") == 'unexpected end of condition at column 9 in "result <"'

    def test_missing_closing_parenthesis(self) -> None:
        assert _error("(result > 1") == (
            "missing ')' at column 12 in \"(result > 1\" (to close the '(' at column 1)"
        )
        assert "to close abs( at column 1" in _error("abs(result")

    def test_empty(self) -> None:
        assert _error("") == "empty condition"
        assert _error("   ") == "empty condition"

    @pytest.mark.parametrize(
        ("text", "hint"),
        [
            ("result & true", "write && for 'and'"),
            ("result | true", "write || for 'or'"),
            ("result = 1", "write == to compare"),
            ("result[0] < 3", "results are numbers: write result, not result[0]"),
        ],
    )
    def test_unexpected_characters_with_a_hint(self, text: str, hint: str) -> None:
        message = _error(text)
        assert message.startswith("unexpected ")
        assert message.endswith(f"({hint})")

    def test_unexpected_character(self) -> None:
        assert _error("result > $1") == "unexpected '$' at column 10 in \"result > $1\""

    def test_number_with_a_unit(self) -> None:
        assert (
            _error("result < 5m") == "unexpected 'm' after a number at column 11 in \"result < 5m\""
        )
        assert "unexpected '.' after a number" in _error("result < 1.2.3")

    def test_a_number_is_not_a_condition(self) -> None:
        assert _error("result + 1") == 'condition "result + 1" gives a number, not true/false'
        assert _error("result") == 'condition "result" gives a number, not true/false'

    def test_unknown_variable(self) -> None:
        assert _error("x > 1") == "unknown variable 'x' at column 1 in \"x > 1\" (known: result)"
        with pytest.raises(ExprError, match=r"unknown variable 'b' at column 5 \(known: a\)"):
            evaluate(parse("a + b"), {"a": 1})

    def test_a_variable_that_is_not_a_number(self) -> None:
        with pytest.raises(ExprError, match="variable 'a' is 'x', not a number"):
            evaluate(parse("a > 1"), {"a": "x"})  # type: ignore[dict-item]

    def test_unknown_function(self) -> None:
        assert _error("sqrt(result) > 1") == (
            "unknown function 'sqrt' at column 1 in \"sqrt(result) > 1\""
            " (functions: abs, isInf, isNaN, max, min)"
        )

    def test_wrong_number_of_arguments(self) -> None:
        assert "abs() takes 1 argument, not 2 at column 1" in _error("abs(1, 2) > 0")
        assert "min() takes 2 arguments, not 1 at column 1" in _error("min(result) > 0")
        assert "isNaN() takes 1 argument, not 0" in _error("isNaN()")

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("result && true", "'&&' needs true/false, not a number at column 8"),
            ("true || 1", "'||' needs true/false, not a number at column 6"),
            ("!result", "'!' needs true/false, not a number at column 1"),
            ("not result", "'not' needs true/false, not a number at column 1"),
            ("!result > 1", "'!' needs true/false, not a number at column 1"),
            ("-true == 1", "'-' needs a number, not true/false at column 1"),
            ("true + 1 > 0", "'+' needs a number, not true/false at column 6"),
            ("(result > 1) < 2", "'<' needs a number, not true/false at column 14"),
            ("true == 1", "'==' compares a number with true/false at column 6"),
            ("isNaN(true)", "isNaN() needs a number, not true/false at column 1"),
        ],
    )
    def test_types(self, text: str, message: str) -> None:
        assert message in _error(text)

    def test_not_binds_tighter_than_a_comparison(self) -> None:
        assert _error("not result > 1", 0) == (
            "'not' needs true/false, not a number at column 1 in \"not result > 1\""
            " ('not' applies to what follows it directly: write not(a > b))"
        )

    def test_comparisons_do_not_chain(self) -> None:
        assert _error("0 < result < 1") == (
            'comparisons do not chain at column 12 in "0 < result < 1" (write a < b && b < c)'
        )
        assert "comparisons do not chain" in _error("1 == 1 == true")

    def test_division_by_zero(self) -> None:
        assert _error("result / 0 > 1") == 'division by zero at column 8 in "result / 0 > 1"'
        assert _error("1 / (result - 1) > 0", 1.0) == (
            'division by zero at column 3 in "1 / (result - 1) > 0"'
        )
        assert "modulo by zero at column 8" in _error("result % 0 > 1")

    def test_length_limit(self) -> None:
        text = "result > " + "1" * (MAX_LENGTH - 8)
        assert len(text) == MAX_LENGTH + 1
        assert _error(text) == "condition is 1025 characters long, more than the limit of 1024"
        assert condition("result > " + "1" * (MAX_LENGTH - 9), 1) is False  # exactly the limit

    def test_depth_limit(self) -> None:
        nested = "(" * MAX_DEPTH + "result > 1" + ")" * MAX_DEPTH
        assert condition(nested, 2) is True
        too_deep = "(" * (MAX_DEPTH + 1) + "result > 1" + ")" * (MAX_DEPTH + 1)
        message = _error(too_deep)
        assert message.startswith("condition nests more than 64 levels deep at column 65 in")
        assert "..." in message  # a long condition is shown around the column
        assert "nests more than 64" in _error("!" * 65 + "true")
        # the height of the tree counts too, not only parentheses
        assert condition("!" * 62 + "(result > 3)", 1) is False
        assert "nests more than 64 levels deep at column 1" in _error("!" * 63 + "(result > 3)")
        assert "nests more than 64" in _error("abs(" * 65 + "1" + ")" * 65 + " > 0")

    def test_the_deepest_conditions_need_few_python_frames(self) -> None:
        # Called from deep inside an operator's stack (kopf, asyncio), the worst conditions
        # under the limits still parse and evaluate without a RecursionError.
        worst = [
            "(" * MAX_DEPTH + "result > 2" + ")" * MAX_DEPTH,
            "abs(" * (MAX_DEPTH - 3) + "result" + ")" * (MAX_DEPTH - 3) + " + 0 > 0",
            "!" * (MAX_DEPTH - 2) + "(result > 3)",
            "(-" * 31 + "result" + ")" * 31 + " > 4",
            "(" * 20
            + " || ".join(["(result<1 && result>2 == (result+1*-result < 5))"] * 8)
            + ")" * 20,
        ]

        def at_depth(frames: int) -> list[bool]:
            if frames:
                return at_depth(frames - 1)
            return [condition(text, 1.5) for text in worst]

        assert at_depth(sys.getrecursionlimit() - 400) == [False, True, False, False, False]

    def test_the_error_is_a_value_error(self) -> None:
        with pytest.raises(ValueError, match="unexpected"):
            parse("(")


class TestCheck:
    def test_accepts_a_good_condition(self) -> None:
        check("result >= 0.95 && !isNaN(result)")
        check("result < baseline", variables=("result", "baseline"))

    def test_refuses_what_condition_would_refuse(self) -> None:
        with pytest.raises(ExprError, match=r'condition "result \* 2" gives a number'):
            check("result * 2")
        with pytest.raises(ExprError, match=r"unexpected '\)' at column 14"):
            check("result < 0.05)")

    def test_names_an_unknown_variable_before_any_measurement(self) -> None:
        with pytest.raises(
            ExprError,
            match=r"unknown variable 'reslt' at column 1 in \"reslt < 1\" \(known: result\)",
        ):
            check("reslt < 1")

    def test_does_not_evaluate(self) -> None:
        check("result / 0 > 1")  # only evaluation finds a zero divisor


def test_no_eval_of_python() -> None:
    for text in ("__import__('os')", "result.__class__", "[x for x in ()]", "lambda: 1", "'a'"):
        with pytest.raises(ExprError):
            condition(text, 1)


VARIABLES = {
    "revision": "abc123",
    "stableRevision": "def456",
    "canaryRevision": "abc123",
    "rollout": "web",
    "namespace": "prod",
    "args.service-name": "web-svc",
    "args.x": "{{revision}}",
}


class TestTemplate:
    def test_replaces_placeholders_with_or_without_spaces(self) -> None:
        query = 'sum(rate(http_errors{ns="{{namespace}}",rev="{{ revision }}"}[5m]))'
        assert render(query, VARIABLES) == 'sum(rate(http_errors{ns="prod",rev="abc123"}[5m]))'
        assert render("{{stableRevision}}/{{canaryRevision}}/{{rollout}}", VARIABLES) == (
            "def456/abc123/web"
        )
        assert render("{{args.service-name}}", VARIABLES) == "web-svc"
        assert render("no placeholders {a} }}", VARIABLES) == "no placeholders {a} }}"

    def test_values_are_not_scanned_again(self) -> None:
        assert render("x={{args.x}}", VARIABLES) == "x={{revision}}"

    def test_an_unknown_placeholder_names_it_and_the_known_ones(self) -> None:
        with pytest.raises(TemplateError) as caught:
            render("rev={{revison}}", VARIABLES)
        assert str(caught.value) == (
            "unknown placeholder {{revison}} at column 5; known: args.service-name, args.x,"
            " canaryRevision, namespace, revision, rollout, stableRevision"
        )
        with pytest.raises(TemplateError, match="known: none"):
            render("{{revision}}", {})

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("{{ two words }}", "placeholder '{{ two words }}' at column 1 is not a name"),
            ("a {{}}", "placeholder '{{}}' at column 3 is not a name"),
            ("{{revision", "'{{' at column 1 is not closed by '}}'"),
            ("{{revision}} and {{rollout", "'{{' at column 18 is not closed by '}}'"),
            ("{{ {revision} }}", "'{{' at column 1 is not closed by '}}'"),
        ],
    )
    def test_malformed_placeholders(self, text: str, message: str) -> None:
        with pytest.raises(TemplateError, match=re.escape(message)):
            render(text, VARIABLES)

    def test_the_error_is_a_value_error(self) -> None:
        with pytest.raises(ValueError, match="unknown placeholder"):
            render("{{nope}}", VARIABLES)
