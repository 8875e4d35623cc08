"""A small, safe condition language for metric results (successCondition / failureCondition).

Conditions read like the ones of Argo Rollouts' AnalysisTemplate, restricted to numbers:

    result < 0.05
    result >= 0.95 && result <= 1
    !(result > 100)
    isNaN(result) || result * 100 > 5
    p99 < 1.2 * baseline            (extra variables are passed by the caller)

Nothing here calls eval/exec/compile: a hand-written tokenizer and parser build an AST of
frozen dataclasses, which evaluate() walks. The parser recurses only into parentheses and
function calls; binary operators are grouped by precedence on an explicit operator stack and
prefix operators in a loop, so that the limits (MAX_LENGTH characters, MAX_DEPTH levels of
parentheses, calls and tree height) keep every condition far from Python's recursion limit.

Grammar (precedence from loosest to tightest, as in C; binary operators are left-associative,
but comparisons do not chain: `0 < result < 1` is refused with a hint, where C would compare
a boolean with 1):

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
# Binary operators by precedence level, loosest first, as in C.
_OR, _AND, _EQUALITY, _ORDER, _ADDITIVE, _MULTIPLICATIVE = range(1, 7)
_LEVELS = {
    "||": _OR,
    "&&": _AND,
    "==": _EQUALITY,
    "!=": _EQUALITY,
    "<": _ORDER,
    "<=": _ORDER,
    ">": _ORDER,
    ">=": _ORDER,
    "+": _ADDITIVE,
    "-": _ADDITIVE,
    "*": _MULTIPLICATIVE,
    "/": _MULTIPLICATIVE,
    "%": _MULTIPLICATIVE,
}
_COMPARE_OPS: dict[str, CompareOp] = {
    "==": "==",
    "!=": "!=",
    "<": "<",
    "<=": "<=",
    ">": ">",
    ">=": ">=",
}
_ARITH_OPS: dict[str, ArithOp] = {"+": "+", "-": "-", "*": "*", "/": "/", "%": "%"}
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


_Typed = tuple[Expr, int]  # an expression and the height of its tree


class _Parser:
    """Operator precedence by an explicit stack (binary operators never recurse), so nesting
    costs a few Python frames per '(' or call; MAX_DEPTH bounds both those and the height of
    the tree that evaluate() walks recursively, far below Python's recursion limit."""

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

    def too_deep(self, column: int) -> ExprError:
        return self.error(f"condition nests more than {MAX_DEPTH} levels deep", column)

    def node(self, expr: Expr, height: int, column: int) -> _Typed:
        if height > MAX_DEPTH:
            raise self.too_deep(column)
        return expr, height

    def enter(self, column: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.too_deep(column)

    def expect_close(self, opened: str, column: int) -> None:
        closing = self.peek()
        if closing.kind == "op" and closing.text == ")":
            self.next()
            self.depth -= 1
            return
        if closing.kind == "end":
            raise self.error("missing ')'", closing.column, f"to close {opened} at column {column}")
        raise self.unexpected(closing)

    # grammar

    def parse(self) -> Expr:
        if self.peek().kind == "end":
            raise ExprError("empty condition")
        expr, _ = self.expression()
        token = self.peek()
        if token.kind != "end":
            raise self.unexpected(token)
        return expr

    def expression(self) -> _Typed:
        """unary (binary-operator unary)*, grouped by precedence with an operator stack."""
        operands = [self.unary()]
        operators: list[tuple[str, _Token]] = []
        while (op := self.op()) in _LEVELS:
            assert op is not None
            token = self.next()
            level = _LEVELS[op]
            while operators and _LEVELS[operators[-1][0]] > level:
                self.reduce(operands, operators)
            if operators and _LEVELS[operators[-1][0]] == level:
                if level in (_EQUALITY, _ORDER):
                    example = "a == b && b == c" if level == _EQUALITY else "a < b && b < c"
                    raise self.error("comparisons do not chain", token.column, f"write {example}")
                self.reduce(operands, operators)  # left-associative
            operators.append((op, token))
            operands.append(self.unary())
        while operators:
            self.reduce(operands, operators)
        return operands[0]

    def reduce(self, operands: list[_Typed], operators: list[tuple[str, _Token]]) -> None:
        op, token = operators.pop()
        right, right_height = operands.pop()
        left, left_height = operands.pop()
        column, level = token.column, _LEVELS[op]
        if level == _EQUALITY:
            if kind(left) != kind(right):
                raise self.error(f"'{op}' compares a number with true/false", column)
        else:
            want: Kind = "boolean" if level in (_OR, _AND) else "number"
            for side in (left, right):
                self.expect_kind(side, want, f"'{op}'", column)
        height = 1 + max(left_height, right_height)
        if level in (_OR, _AND):
            logic_op: LogicOp = "||" if level == _OR else "&&"
            if isinstance(left, Logic) and left.op == logic_op:  # a || b || c: one node
                expr: Expr = Logic(logic_op, (*left.operands, right))
                height = max(left_height, 1 + right_height)
            else:
                expr = Logic(logic_op, (left, right))
        elif level in (_EQUALITY, _ORDER):
            expr = Compare(_COMPARE_OPS[op], left, right, column)
        else:
            arith = (_ARITH_OPS[op], right, column)
            if isinstance(left, Arithmetic) and _LEVELS[left.rest[0][0]] == level:
                expr = Arithmetic(left.first, (*left.rest, arith))  # a - b + c: one node
                height = max(left_height, 1 + right_height)
            else:
                expr = Arithmetic(left, (arith,))
        operands.append(self.node(expr, height, column))

    def unary(self) -> _Typed:
        """Prefix operators, applied innermost first (no recursion)."""
        prefixes: list[tuple[UnaryOp, _Token]] = []
        while (op := self.op()) in ("-", "!"):
            prefixes.append(("!" if op == "!" else "-", self.next()))
        expr, height = self.primary()
        for op, token in reversed(prefixes):
            if op == "!" and kind(expr) == "number":
                raise self.error(
                    f"'{token.text}' needs true/false, not a number",
                    token.column,
                    f"'{token.text}' applies to what follows it directly: write {token.text}(a > b)",
                )
            if op == "-":
                self.expect_kind(expr, "number", "'-'", token.column)
                if isinstance(expr, Number):
                    expr = Number(-expr.value, token.column)
                    continue
            expr, height = self.node(Unary(op, expr, token.column), height + 1, token.column)
        return expr, height

    def primary(self) -> _Typed:
        token = self.next()
        if token.kind == "number":
            return Number(float(token.text), token.column), 1
        if token.kind == "op" and token.text == "(":
            self.enter(token.column)
            inner = self.expression()
            self.expect_close("the '('", token.column)
            return inner
        if token.kind == "name" and token.text not in _KEYWORDS:
            if token.text in _LITERALS:
                return Boolean(_LITERALS[token.text], token.column), 1
            if self.op() == "(":
                return self.call(token)
            return Variable(token.text, token.column), 1
        raise self.unexpected(token)

    def call(self, name: _Token) -> _Typed:
        if name.text not in _FUNCTIONS:
            known = ", ".join(sorted(_FUNCTIONS))
            raise self.error(f"unknown function {name.text!r}", name.column, f"functions: {known}")
        arity = _FUNCTIONS[name.text][0]
        self.next()  # (
        self.enter(name.column)
        args: list[Expr] = []
        height = 1
        if self.op() != ")":
            while True:
                arg, arg_height = self.expression()
                self.expect_kind(arg, "number", f"{name.text}()", name.column)
                args.append(arg)
                height = max(height, arg_height + 1)
                if self.op() != ",":
                    break
                self.next()
        self.expect_close(f"{name.text}(", name.column)
        if len(args) != arity:
            plural = "argument" if arity == 1 else "arguments"
            raise self.error(f"{name.text}() takes {arity} {plural}, not {len(args)}", name.column)
        return self.node(Call(name.text, tuple(args), name.column), height, name.column)


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
        # short-circuit, left to right (loops rather than all()/any(): fewer frames)
        stop_at = expr.op == "||"
        for operand in expr.operands:
            if evaluate(operand, variables) == stop_at:
                return stop_at
        return not stop_at
    args = []
    for arg in expr.args:
        args.append(evaluate(arg, variables))
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
