"""A small, safe condition language for metric results (successCondition / failureCondition).

Conditions read like the ones of Argo Rollouts' AnalysisTemplate, restricted to numbers:

    result < 0.05
    result >= 0.95 && result <= 1
    !(result > 100)
    isNaN(result) || result * 100 > 5
    p99 < 1.2 * baseline            (extra variables are passed by the caller)

Nothing here calls eval/exec/compile: a hand-written tokenizer and a recursive-descent parser
build an AST of frozen dataclasses, which evaluate() walks.

Grammar (precedence from loosest to tightest, as in C; all binary operators are
left-associative):

    or         := and (('||' | 'or') and)*
    and        := equality (('&&' | 'and') equality)*
    equality   := comparison (('==' | '!=') comparison)?
    comparison := additive (('<' | '<=' | '>' | '>=') additive)?
    additive   := term (('+' | '-') term)*
    term       := unary (('*' | '/' | '%') unary)*
    unary      := ('-' | '!' | 'not') unary | primary
    primary    := NUMBER | 'true' | 'false' | NAME | NAME '(' args ')' | '(' or ')'

Types are checked when parsing, since every variable is a number: arithmetic and
comparisons take numbers, '!', '&&' and '||' take true/false, '==' and '!=' take two of
the same kind. So `result + 1` parses (it is a number) but is refused as a condition, and
`result && true` or `1 < 2 < 3` is refused at parse time, with the column of the operator.

Arithmetic is IEEE 754 double arithmetic, so NaN compares false with everything (`NaN < 1`,
`NaN == NaN` are false, `NaN != NaN` is true); min()/max() return NaN if either argument is
NaN. Division and `%` by zero are errors rather than infinities: a threshold computed from a
zero denominator is a mistake worth reporting. `%` is C's fmod (the sign of the dividend).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

MAX_LENGTH = 1024
MAX_DEPTH = 64

Kind = Literal["number", "boolean"]
ArithOp = Literal["+", "-", "*", "/", "%"]
CompareOp = Literal["<", "<=", ">", ">=", "==", "!="]
LogicOp = Literal["&&", "||"]
UnaryOp = Literal["-", "!"]


class ExprError(ValueError):
    """A condition that cannot be parsed or evaluated.

    The message names what is wrong and, when known, the 1-based column and the condition:
    `unexpected ')' at column 14 in "result < 0.05)"`.
    """

    def __init__(
        self, reason: str, *, text: str | None = None, column: int | None = None, hint: str = ""
    ) -> None:
        self.reason = reason
        self.text = text
        self.column = column
        self.hint = hint
        message = reason
        if column is not None:
            message += f" at column {column}"
        if text is not None:
            message += f' in "{_excerpt(text, column)}"'
        if hint:
            message += f" ({hint})"
        super().__init__(message)

    def within(self, text: str) -> ExprError:
        """The same error, told about the condition it happened in."""
        return ExprError(self.reason, text=text, column=self.column, hint=self.hint)


def _excerpt(text: str, column: int | None, width: int = 80) -> str:
    """The condition as shown in a message: whole when short, else a window around column."""
    if len(text) <= width:
        return text
    center = (column or 1) - 1
    start = max(0, min(center - width // 2, len(text) - width))
    end = start + width
    return ("..." if start > 0 else "") + text[start:end] + ("..." if end < len(text) else "")


# --- AST ---------------------------------------------------------------------------------
# Every node keeps `column` (1-based) so evaluation errors can point at the operator.


@dataclass(frozen=True)
class Number:
    value: float
    column: int


@dataclass(frozen=True)
class Boolean:
    value: bool
    column: int


@dataclass(frozen=True)
class Variable:
    name: str
    column: int


@dataclass(frozen=True)
class Unary:
    op: UnaryOp
    operand: Expr
    column: int


@dataclass(frozen=True)
class Arithmetic:
    """first (op operand)*, folded left to right: `a - b + c` is `(a - b) + c`.

    A chain of one precedence level is one node, so a long sum does not make a deep tree.
    """

    first: Expr
    rest: tuple[tuple[ArithOp, Expr, int], ...]  # (operator, operand, column of operator)


@dataclass(frozen=True)
class Compare:
    op: CompareOp
    left: Expr
    right: Expr
    column: int


@dataclass(frozen=True)
class Logic:
    """operands joined by one of && / || (short-circuit, left to right)."""

    op: LogicOp
    operands: tuple[Expr, ...]


@dataclass(frozen=True)
class Call:
    function: str
    args: tuple[Expr, ...]
    column: int


Expr = Number | Boolean | Variable | Unary | Arithmetic | Compare | Logic | Call


def kind(expr: Expr) -> Kind:
    """Whether an expression gives a number or true/false (known from its shape alone)."""
    if isinstance(expr, Boolean | Compare | Logic):
        return "boolean"
    if isinstance(expr, Unary):
        return "boolean" if expr.op == "!" else "number"
    if isinstance(expr, Call):
        return _FUNCTIONS[expr.function][1]
    return "number"


def _nan_aware(pick: Callable[[float, float], float]) -> Callable[[float, float], float]:
    def fn(a: float, b: float) -> float:
        return math.nan if math.isnan(a) or math.isnan(b) else pick(a, b)

    return fn


# name -> (number of arguments, kind of result, implementation); every argument is a number.
_FUNCTIONS: dict[str, tuple[int, Kind, Callable[..., float | bool]]] = {
    "isNaN": (1, "boolean", math.isnan),
    "isInf": (1, "boolean", math.isinf),
    "abs": (1, "number", abs),
    "min": (2, "number", _nan_aware(min)),
    "max": (2, "number", _nan_aware(max)),
}
_KEYWORDS = {"and": "&&", "or": "||", "not": "!"}
_EQUALITY: dict[str | None, CompareOp] = {"==": "==", "!=": "!="}
_ORDER: dict[str | None, CompareOp] = {"<": "<", "<=": "<=", ">": ">", ">=": ">="}
_ADDITIVE: dict[str | None, ArithOp] = {"+": "+", "-": "-"}
_MULTIPLICATIVE: dict[str | None, ArithOp] = {"*": "*", "/": "/", "%": "%"}
_UNARY: dict[str | None, UnaryOp] = {"-": "-", "!": "!"}
_LITERALS = {"true": True, "false": False}


# --- tokenizer ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: Literal["number", "name", "op", "end"]
    text: str
    column: int


_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = (
    "&&",
    "||",
    "<=",
    ">=",
    "==",
    "!=",
    "<",
    ">",
    "!",
    "+",
    "-",
    "*",
    "/",
    "%",
    "(",
    ")",
    ",",
)
_HINTS = {
    "&": "write && for 'and'",
    "|": "write || for 'or'",
    "=": "write == to compare",
    "[": "results are numbers: write result, not result[0]",
}


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char.isspace():
            i += 1
            continue
        column = i + 1
        number = _NUMBER.match(text, i)
        if number:
            end = number.end()
            if end < len(text) and (text[end].isalnum() or text[end] in "_."):
                raise ExprError(
                    f"unexpected {text[end]!r} after a number", text=text, column=end + 1
                )
            tokens.append(_Token("number", number.group(), column))
            i = end
            continue
        name = _NAME.match(text, i)
        if name:
            tokens.append(_Token("name", name.group(), column))
            i = name.end()
            continue
        op = next((op for op in _OPERATORS if text.startswith(op, i)), None)
        if op is None:
            raise ExprError(
                f"unexpected {char!r}", text=text, column=column, hint=_HINTS.get(char, "")
            )
        tokens.append(_Token("op", op, column))
        i += len(op)
    tokens.append(_Token("end", "", len(text) + 1))
    return tokens


# --- parser ------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0
        self.depth = 0

    # helpers

    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def next(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def op(self) -> str | None:
        """The operator at the current token (keywords and/or/not read as &&, ||, !)."""
        token = self.peek()
        if token.kind == "op":
            return token.text
        if token.kind == "name":
            return _KEYWORDS.get(token.text)
        return None

    def error(self, reason: str, column: int, hint: str = "") -> ExprError:
        return ExprError(reason, text=self.text, column=column, hint=hint)

    def unexpected(self, token: _Token) -> ExprError:
        if token.kind == "end":
            return self.error("unexpected end of condition", token.column)
        return self.error(f"unexpected {token.text!r}", token.column)

    def expect_kind(self, expr: Expr, want: Kind, what: str, column: int) -> None:
        got = kind(expr)
        if got != want:
            shown = {"number": "a number", "boolean": "true/false"}
            raise self.error(f"{what} needs {shown[want]}, not {shown[got]}", column)

    def nest(self, column: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"condition nests more than {MAX_DEPTH} levels deep", column)

    # grammar

    def parse(self) -> Expr:
        if self.peek().kind == "end":
            raise ExprError("empty condition")
        expr = self.logic("||", self.and_)
        token = self.peek()
        if token.kind != "end":
            raise self.unexpected(token)
        return expr

    def and_(self) -> Expr:
        return self.logic("&&", self.equality)

    def logic(self, op: LogicOp, operand: Callable[[], Expr]) -> Expr:
        first = operand()
        operands = [first]
        while self.op() == op:
            token = self.next()
            right = operand()
            for side in (operands[-1], right):
                self.expect_kind(side, "boolean", f"'{op}'", token.column)
            operands.append(right)
        return first if len(operands) == 1 else Logic(op, tuple(operands))

    def equality(self) -> Expr:
        left = self.comparison()
        op = _EQUALITY.get(self.op())
        if op is None:
            return left
        token = self.next()
        right = self.comparison()
        if kind(left) != kind(right):
            raise self.error(f"'{op}' compares a number with true/false", token.column)
        if self.op() in _EQUALITY:
            raise self.error(
                "comparisons do not chain", self.peek().column, "write a == b && b == c"
            )
        return Compare(op, left, right, token.column)

    def comparison(self) -> Expr:
        left = self.additive()
        op = _ORDER.get(self.op())
        if op is None:
            return left
        token = self.next()
        right = self.additive()
        for side in (left, right):
            self.expect_kind(side, "number", f"'{op}'", token.column)
        if self.op() in _ORDER:
            raise self.error("comparisons do not chain", self.peek().column, "write a < b && b < c")
        return Compare(op, left, right, token.column)

    def additive(self) -> Expr:
        return self.arithmetic(_ADDITIVE, self.term)

    def term(self) -> Expr:
        return self.arithmetic(_MULTIPLICATIVE, self.unary)

    def arithmetic(self, ops: Mapping[str | None, ArithOp], operand: Callable[[], Expr]) -> Expr:
        first = operand()
        rest: list[tuple[ArithOp, Expr, int]] = []
        while (op := ops.get(self.op())) is not None:
            token = self.next()
            right = operand()
            left = first if not rest else rest[-1][1]
            for side in (left, right):
                self.expect_kind(side, "number", f"'{op}'", token.column)
            rest.append((op, right, token.column))
        return first if not rest else Arithmetic(first, tuple(rest))

    def unary(self) -> Expr:
        op = _UNARY.get(self.op())
        if op is None:
            return self.primary()
        token = self.next()
        self.nest(token.column)
        operand = self.unary()
        self.depth -= 1
        if op == "!" and kind(operand) == "number":
            raise self.error(
                f"'{token.text}' needs true/false, not a number",
                token.column,
                f"'{token.text}' applies to what follows it directly: write {token.text}(a > b)",
            )
        self.expect_kind(operand, "number" if op == "-" else "boolean", "'-'", token.column)
        if op == "-" and isinstance(operand, Number):
            return Number(-operand.value, token.column)
        return Unary(op, operand, token.column)

    def primary(self) -> Expr:
        token = self.next()
        if token.kind == "number":
            return Number(float(token.text), token.column)
        if token.kind == "op" and token.text == "(":
            self.nest(token.column)
            inner = self.logic("||", self.and_)
            closing = self.peek()
            if closing.kind != "op" or closing.text != ")":
                if closing.kind == "end":
                    raise self.error(
                        "missing ')'", closing.column, f"to close the '(' at column {token.column}"
                    )
                raise self.unexpected(closing)
            self.next()
            self.depth -= 1
            return inner
        if token.kind == "name" and token.text not in _KEYWORDS:
            if token.text in _LITERALS:
                return Boolean(_LITERALS[token.text], token.column)
            if self.op() == "(":
                return self.call(token)
            return Variable(token.text, token.column)
        raise self.unexpected(token)

    def call(self, name: _Token) -> Expr:
        if name.text not in _FUNCTIONS:
            known = ", ".join(sorted(_FUNCTIONS))
            raise self.error(f"unknown function {name.text!r}", name.column, f"functions: {known}")
        arity = _FUNCTIONS[name.text][0]
        self.next()  # (
        self.nest(name.column)
        args: list[Expr] = []
        if self.op() != ")":
            while True:
                arg = self.logic("||", self.and_)
                self.expect_kind(arg, "number", f"{name.text}()", name.column)
                args.append(arg)
                if self.op() != ",":
                    break
                self.next()
        closing = self.peek()
        if closing.kind != "op" or closing.text != ")":
            if closing.kind == "end":
                raise self.error(
                    "missing ')'", closing.column, f"to close {name.text}( at column {name.column}"
                )
            raise self.unexpected(closing)
        self.next()
        self.depth -= 1
        if len(args) != arity:
            plural = "argument" if arity == 1 else "arguments"
            raise self.error(f"{name.text}() takes {arity} {plural}, not {len(args)}", name.column)
        return Call(name.text, tuple(args), name.column)


@lru_cache(maxsize=512)
def parse(text: str) -> Expr:
    """Parse a condition or a numeric expression; raise ExprError pointing at the problem.

    The result is immutable, so parses are cached: conditions are evaluated on every
    measurement.
    """
    if len(text) > MAX_LENGTH:
        raise ExprError(
            f"condition is {len(text)} characters long, more than the limit of {MAX_LENGTH}"
        )
    return _Parser(text).parse()


def check(text: str, variables: Collection[str] = ("result",)) -> None:
    """Admission-time validation of a condition: it parses, gives true/false and names only
    known variables. Raises ExprError with a message for the person who wrote it."""
    expr = parse(text)
    if kind(expr) != "boolean":
        raise ExprError(f'condition "{_excerpt(text, None)}" gives a number, not true/false')
    for name, column in _variables(expr):
        if name not in variables:
            raise _unknown_variable(name, column, variables).within(text)


def condition(text: str, result: float, extra: Mapping[str, float] | None = None) -> bool:
    """Evaluate a condition on a metric result (and any extra named variables)."""
    expr = parse(text)
    if kind(expr) != "boolean":
        raise ExprError(f'condition "{_excerpt(text, None)}" gives a number, not true/false')
    variables = {**(extra or {}), "result": result}
    try:
        value = evaluate(expr, variables)
    except ExprError as error:
        raise error.within(text) from None
    assert isinstance(value, bool)  # guaranteed by kind()
    return value


# --- evaluator ---------------------------------------------------------------------------


def evaluate(expr: Expr, variables: Mapping[str, float]) -> bool | float:
    """Evaluate a parsed expression. Errors (unknown variable, division by zero) name the
    column; condition() adds the text of the condition."""
    if isinstance(expr, Number | Boolean):
        return expr.value
    if isinstance(expr, Variable):
        return _variable(expr, variables)
    if isinstance(expr, Unary):
        value = evaluate(expr.operand, variables)
        return not value if expr.op == "!" else -value
    if isinstance(expr, Arithmetic):
        total = _number(evaluate(expr.first, variables))
        for op, operand, column in expr.rest:
            total = _arith(op, total, _number(evaluate(operand, variables)), column)
        return total
    if isinstance(expr, Compare):
        return _compare(expr.op, evaluate(expr.left, variables), evaluate(expr.right, variables))
    if isinstance(expr, Logic):
        if expr.op == "&&":
            return all(evaluate(operand, variables) for operand in expr.operands)
        return any(evaluate(operand, variables) for operand in expr.operands)
    args = [evaluate(arg, variables) for arg in expr.args]
    return _FUNCTIONS[expr.function][2](*args)


def _variable(expr: Variable, variables: Mapping[str, float]) -> float:
    if expr.name not in variables:
        raise _unknown_variable(expr.name, expr.column, variables)
    value = variables[expr.name]
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ExprError(
            f"variable {expr.name!r} is {value!r}, not a number", column=expr.column
        ) from None


def _number(value: bool | float) -> float:
    # kind() guarantees numbers here; bool is a subclass of int, so guard explicitly.
    assert not isinstance(value, bool)
    return value


def _arith(op: ArithOp, a: float, b: float, column: int) -> float:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if b == 0:
        raise ExprError("division by zero" if op == "/" else "modulo by zero", column=column)
    if op == "/":
        try:
            return a / b
        except OverflowError:
            return math.copysign(math.inf, a) * math.copysign(1.0, b)
    try:
        return math.fmod(a, b)
    except ValueError:  # fmod(inf, b)
        return math.nan


def _compare(op: CompareOp, a: bool | float, b: bool | float) -> bool:
    # Python float comparisons are IEEE 754: anything compared with NaN is false, but !=.
    if op == "==":
        return a == b
    if op == "!=":
        return a != b
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    return a >= b


def _variables(expr: Expr) -> list[tuple[str, int]]:
    """Every variable the expression reads, with its column, in order."""
    if isinstance(expr, Variable):
        return [(expr.name, expr.column)]
    if isinstance(expr, Unary):
        return _variables(expr.operand)
    if isinstance(expr, Arithmetic):
        found = _variables(expr.first)
        for _, operand, _ in expr.rest:
            found += _variables(operand)
        return found
    if isinstance(expr, Compare):
        return _variables(expr.left) + _variables(expr.right)
    if isinstance(expr, Logic | Call):
        children = expr.operands if isinstance(expr, Logic) else expr.args
        return [found for child in children for found in _variables(child)]
    return []


def _unknown_variable(name: str, column: int, known: Collection[str]) -> ExprError:
    listed = ", ".join(sorted(known)) or "none"
    return ExprError(f"unknown variable {name!r}", column=column, hint=f"known: {listed}")
