"""Rule conditions: a small, safe subset of CEL, checked and compiled once, evaluated fast.

    phq9.total >= 15 && logistics.transport == "none"
    cssrs.tier >= "moderate" || (safety.recent_violence && !has(safety.plan))

* Facts are named by full dotted path (``phq9.total``) and typed: true/false, number,
  string (optionally limited to allowed values, possibly ordered lowest first), or list
  of strings. Literals: ``15``, ``3.5``, ``"text"`` or ``'text'``, ``true``, ``false``.
* Operators, loosest first: ``||``; ``&&``; ``== != < <= > >= in`` (one per comparison:
  write ``a < b && b < c``); ``+ -``; ``*``; ``!`` and unary ``-``. Parentheses group.
* ``x in ["car", "bus"]`` tests a value against a list (lists appear only there);
  ``"mania" in domains.flags`` tests whether a list fact contains a value.
* ``has(fact)`` is true when the fact is known; ``size(list_fact)`` counts its items.
* Ordered values compare by position: ``cssrs.tier >= "moderate"``.
* Conditions are checked when the rule set loads: unknown facts, misspelt values and
  mixed types are reported with their column.
* An unknown fact (not asked, declined) makes a comparison unknown, not false. ``&&`` is
  false if any side is false, ``||`` true if any side is true; otherwise an unknown side
  makes the result unknown. ``!`` of unknown is unknown; ``has()`` is never unknown.
"""

from __future__ import annotations

import difflib
import math
import operator
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Set
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import CodeType
from typing import Any, Final, NamedTuple, cast

__all__ = [
    "CompiledCondition",
    "Condition",
    "ExpressionError",
    "FactKind",
    "FactType",
    "compile_condition",
]


class FactKind(StrEnum):
    """The type of a fact's value."""

    BOOL = "bool"
    NUMBER = "number"
    STRING = "string"
    LIST = "list"


@dataclass(frozen=True, slots=True)
class FactType:
    """A fact's type: its kind and, for strings and lists, the values it may take.

    ``allowed`` lists the permitted values of a STRING fact (None: any string) or the
    permitted elements of a LIST fact. ``ordered`` (STRING only) declares ``allowed``
    to be in ascending order, so ``<``, ``<=``, ``>``, ``>=`` compare by position.
    """

    kind: FactKind
    allowed: tuple[str, ...] | None = None
    ordered: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", FactKind(self.kind))
        if self.allowed is not None:
            if isinstance(self.allowed, str):
                raise ValueError("allowed values must be a sequence of strings, not one string")
            allowed = tuple(self.allowed)
            if self.kind not in (FactKind.STRING, FactKind.LIST):
                raise ValueError(f"a {self.kind} fact cannot have allowed values")
            if not allowed or not all(isinstance(value, str) for value in allowed):
                raise ValueError("allowed values must be a non-empty sequence of strings")
            if len(set(allowed)) != len(allowed):
                raise ValueError(f"allowed values repeat: {', '.join(allowed)}")
            object.__setattr__(self, "allowed", allowed)
        if self.ordered and (self.kind is not FactKind.STRING or self.allowed is None):
            raise ValueError("only a string fact with allowed values can be ordered")

    @classmethod
    def boolean(cls) -> FactType:
        """A true/false fact."""
        return cls(FactKind.BOOL)

    @classmethod
    def number(cls) -> FactType:
        """A numeric fact (int or float)."""
        return cls(FactKind.NUMBER)

    @classmethod
    def string(cls) -> FactType:
        """A free-text string fact."""
        return cls(FactKind.STRING)

    @classmethod
    def enum(cls, values: Iterable[str], *, ordered: bool = False) -> FactType:
        """A string fact limited to ``values`` (ascending order if ``ordered``)."""
        return cls(FactKind.STRING, tuple(values), ordered)

    @classmethod
    def list_of(cls, values: Iterable[str] | None = None) -> FactType:
        """A list-of-strings fact whose elements come from ``values`` (None: any)."""
        return cls(FactKind.LIST, None if values is None else tuple(values))


class ExpressionError(ValueError):
    """A condition that cannot be compiled; ``position`` is the 0-based column."""

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message, position)
        self.message = message
        self.position = position

    def __str__(self) -> str:
        if self.position is None:
            return self.message
        return f"column {self.position}: {self.message}"


Condition = Callable[[Mapping[str, object]], bool | None]


@dataclass(frozen=True, slots=True)
class CompiledCondition:
    """A checked condition: ``evaluate(facts)`` gives True, False or None (unknown).

    ``facts`` lists the fact paths the source refers to, in order of first appearance;
    ``python`` is the generated source of ``evaluate`` (for debugging; may be empty).
    """

    source: str
    evaluate: Condition
    facts: tuple[str, ...]
    python: str = field(default="", repr=False, compare=False)


def compile_condition(source: str, facts: Mapping[str, FactType]) -> CompiledCondition:
    """Parse, type-check against the ``facts`` catalogue and compile ``source``.

    Raises ExpressionError (with the column) if the source is not a well-typed
    true/false condition over the catalogue.
    """
    parser = _Parser(source)
    tree = parser.parse()
    _check_depth(tree)
    checker = _Checker(facts)
    kind = checker.kind(tree)
    if kind is not FactKind.BOOL:
        raise ExpressionError(
            f"a condition must be true or false; this expression is {_KIND_NAMES[kind]}", 0
        )
    paths = tuple(dict.fromkeys(parser.paths))
    generator = _Generator(facts, parser.paths)
    python = generator.function(tree)
    namespace = generator.namespace  # only the constants the code uses; no builtins
    exec(_with_keys_of(compile(python, "<condition>", "exec"), facts, paths), namespace)
    evaluate = cast(Condition, namespace.pop("condition"))
    return CompiledCondition(source, evaluate, paths, python)


def _with_keys_of(
    code: CodeType, catalogue: Mapping[str, FactType], paths: tuple[str, ...]
) -> CodeType:
    """``code`` with its fact paths replaced by the catalogue's own (equal) key strings: a
    dict finds an identical key without comparing characters, and fact dicts are often
    keyed by the same strings as the catalogue."""
    wanted = frozenset(paths)
    keys = {key: key for key in catalogue if key in wanted}
    consts = tuple(
        const.replace(co_consts=tuple(_same(keys, item) for item in const.co_consts))
        if isinstance(const, CodeType)
        else const
        for const in code.co_consts
    )
    return code.replace(co_consts=consts)


def _same(keys: Mapping[str, str], const: object) -> object:
    return keys.get(const, const) if type(const) is str else const


# --- Tokens --------------------------------------------------------------------------

_KIND_NAMES: Final = {
    FactKind.BOOL: "true/false",
    FactKind.NUMBER: "a number",
    FactKind.STRING: "a string",
    FactKind.LIST: "a list",
}
_OPERATORS: Final = ("||", "&&", "==", "!=", "<=", ">=", "<", ">", "!", "+", "-", "*")
_PUNCTUATION: Final = "()[],"
_CHARACTER_HINTS: Final = {
    "=": "; use '==' to compare",
    "&": "; use '&&' for 'and'",
    "|": "; use '||' for 'or'",
    "/": "; division is not supported",
    "%": "; remainder is not supported",
}
_WORD_HINTS: Final = {"and": "&&", "or": "||", "not": "!"}
_ESCAPES: Final = {'"': '"', "'": "'", "\\": "\\", "n": "\n"}
_MAX_INT: Final = 2**63 - 1  # CEL's int range; also keeps int() clear of its digit limit
_NAME_START: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_NAME_CHARS: Final = _NAME_START | frozenset("0123456789")
_DIGITS: Final = frozenset("0123456789")


class _Token(NamedTuple):
    kind: str  # "number", "string", "bool", "name", "op" (operators, punctuation, `in`), "end"
    text: str  # the source text
    pos: int
    value: bool | int | float | str | None = None


def _tokenize(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos, end = 0, len(source)
    while pos < end:
        char = source[pos]
        if char.isspace():
            pos += 1
        elif char in "\"'":
            token = _read_string(source, pos)
            tokens.append(token)
            pos += len(token.text)
        elif char in _DIGITS:
            token = _read_number(source, pos)
            tokens.append(token)
            pos += len(token.text)
        elif char in _NAME_START:
            token = _read_name(source, pos)
            tokens.append(token)
            pos += len(token.text)
        elif char in _PUNCTUATION:
            tokens.append(_Token("op", char, pos))
            pos += 1
        else:
            text = next((op for op in _OPERATORS if source.startswith(op, pos)), None)
            if text is None:
                hint = _CHARACTER_HINTS.get(char, "")
                raise ExpressionError(f"unexpected character {char!r}{hint}", pos)
            tokens.append(_Token("op", text, pos))
            pos += len(text)
    tokens.append(_Token("end", "", end))
    return tokens


def _read_string(source: str, start: int) -> _Token:
    quote = source[start]
    chars: list[str] = []
    pos = start + 1
    while pos < len(source) and source[pos] != "\n":
        char = source[pos]
        if char == quote:
            return _Token("string", source[start : pos + 1], start, "".join(chars))
        if char == "\\":
            escaped = source[pos + 1 : pos + 2]
            if escaped in ("", "\n"):
                break
            if escaped not in _ESCAPES:
                raise ExpressionError(
                    f"unknown escape '\\{escaped}' in a string; use \\\", \\', \\\\ or \\n", pos
                )
            chars.append(_ESCAPES[escaped])
            pos += 2
        else:
            chars.append(char)
            pos += 1
    raise ExpressionError(f"string is not closed; add the missing {quote}", start)


def _read_number(source: str, start: int) -> _Token:
    pos = start
    while pos < len(source) and source[pos] in _DIGITS:
        pos += 1
    if source[pos : pos + 1] == "." and source[pos + 1 : pos + 2] in _DIGITS:
        pos += 2
        while pos < len(source) and source[pos] in _DIGITS:
            pos += 1
    text = source[start:pos]
    if pos < len(source) and (source[pos] in _NAME_CHARS or source[pos] == "."):
        raise ExpressionError(f"malformed number {source[start : pos + 1]!r}", start)
    value: int | float
    if "." in text:
        value = float(text)
        if not math.isfinite(value):
            raise ExpressionError(f"number {text} is too large", start)
    else:
        if len(text.lstrip("0")) > len(str(_MAX_INT)) or int(text) > _MAX_INT:
            raise ExpressionError(f"number {text} is too large", start)
        value = int(text)
    return _Token("number", text, start, value)


def _read_name(source: str, start: int) -> _Token:
    pos = start
    while True:
        while pos < len(source) and source[pos] in _NAME_CHARS:
            pos += 1
        if source[pos : pos + 1] != ".":
            break
        if source[pos + 1 : pos + 2] not in _NAME_START:
            raise ExpressionError("'.' must be followed by a name, as in phq9.total", pos)
        pos += 1
    text = source[start:pos]
    if text in ("true", "false"):
        return _Token("bool", text, start, text == "true")
    if text == "in":
        return _Token("op", text, start)
    return _Token("name", text, start)


def _show(token: _Token) -> str:
    if token.kind == "end":
        return "the end of the condition"
    return token.text if token.kind in ("number", "string") else f"'{token.text}'"


# --- Syntax tree -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Literal:
    value: bool | int | float | str
    pos: int


@dataclass(frozen=True, slots=True)
class _Fact:
    path: str
    pos: int


@dataclass(frozen=True, slots=True)
class _ListLiteral:
    items: tuple[_Literal, ...]
    kind: FactKind  # STRING or NUMBER
    pos: int


@dataclass(frozen=True, slots=True)
class _Unary:
    op: str  # "!" or "-"
    operand: _Node
    pos: int


@dataclass(frozen=True, slots=True)
class _Binary:
    op: str  # comparison, "in" or arithmetic
    left: _Node
    right: _Node
    pos: int


@dataclass(frozen=True, slots=True)
class _Logic:
    op: str  # "&&" or "||"
    operands: tuple[_Node, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class _Call:
    name: str
    args: tuple[_Node, ...]
    pos: int


_Node = _Literal | _Fact | _ListLiteral | _Unary | _Binary | _Logic | _Call

_RELATIONS: Final = frozenset({"==", "!=", "<", "<=", ">", ">=", "in"})
_FUNCTIONS: Final = ("has", "size")
# Bounds keep parsing, checking and evaluation far from Python's recursion limit.
_MAX_NESTING: Final = 32
_MAX_DEPTH: Final = 64


class _Parser:
    """Recursive descent, one method per precedence level (CEL's order)."""

    def __init__(self, source: str) -> None:
        self._tokens = _tokenize(source)
        self._index = 0
        self._nesting = 0
        self.paths: list[str] = []  # fact paths, in source order

    def parse(self) -> _Node:
        if self._peek().kind == "end":
            raise ExpressionError("the condition is empty", 0)
        node = self._or()
        token = self._peek()
        if token.kind != "end":
            hint = ""
            if token.kind == "name" and token.text in _WORD_HINTS:
                hint = f" (write '{_WORD_HINTS[token.text]}' for '{token.text}')"
            raise ExpressionError(
                f"unexpected {_show(token)}{hint};"
                " expected an operator or the end of the condition",
                token.pos,
            )
        return node

    def _peek(self) -> _Token:
        return self._tokens[self._index]

    def _next(self) -> _Token:
        token = self._tokens[self._index]
        self._index += 1
        return token

    def _at(self, *ops: str) -> bool:
        token = self._tokens[self._index]
        return token.kind == "op" and token.text in ops

    def _expect_closing(self, text: str, opener: _Token) -> None:
        if not self._at(text):
            raise ExpressionError(
                f"expected '{text}' to close the '{opener.text}' at column {opener.pos},"
                f" but found {_show(self._peek())}",
                self._peek().pos,
            )
        self._next()
        self._nesting -= 1

    def _enter(self, token: _Token) -> None:
        self._nesting += 1
        if self._nesting > _MAX_NESTING:
            raise ExpressionError("the condition is nested too deeply", token.pos)

    def _or(self) -> _Node:
        return self._logic("||", self._and)

    def _and(self) -> _Node:
        return self._logic("&&", self._relation)

    def _logic(self, op: str, operand: Callable[[], _Node]) -> _Node:
        first = operand()
        if not self._at(op):
            return first
        pos = self._peek().pos
        operands = [first]
        while self._at(op):
            self._next()
            operands.append(operand())
        return _Logic(op, tuple(operands), pos)

    def _relation(self) -> _Node:
        left = self._additive()
        if not self._at(*_RELATIONS):
            return left
        op = self._next()
        right = self._additive()
        if self._at(*_RELATIONS):
            raise ExpressionError(
                f"comparisons cannot be chained ('{op.text}' then '{self._peek().text}');"
                " join them with &&, as in a < b && b < c",
                self._peek().pos,
            )
        return _Binary(op.text, left, right, op.pos)

    def _additive(self) -> _Node:
        node = self._multiplicative()
        while self._at("+", "-"):
            op = self._next()
            node = _Binary(op.text, node, self._multiplicative(), op.pos)
        return node

    def _multiplicative(self) -> _Node:
        node = self._unary()
        while self._at("*"):
            op = self._next()
            node = _Binary(op.text, node, self._unary(), op.pos)
        return node

    def _unary(self) -> _Node:
        if not self._at("!", "-"):
            return self._primary()
        op = self._next()
        self._enter(op)
        operand = self._unary()
        self._nesting -= 1
        if op.text == "-" and isinstance(operand, _Literal):
            value = operand.value
            if isinstance(value, int | float) and not isinstance(value, bool):
                return _Literal(-value, op.pos)
        return _Unary(op.text, operand, op.pos)

    def _primary(self) -> _Node:
        token = self._next()
        if token.kind in ("number", "string", "bool"):
            assert token.value is not None
            return _Literal(token.value, token.pos)
        if token.kind == "name":
            if self._at("("):
                return self._call(token)
            if token.text == "null":
                raise ExpressionError(
                    "there is no null; use has(fact) to test whether a fact is known", token.pos
                )
            self.paths.append(token.text)
            return _Fact(token.text, token.pos)
        if token.text == "(" and token.kind == "op":
            self._enter(token)
            node = self._or()
            self._expect_closing(")", token)
            return node
        if token.text == "[" and token.kind == "op":
            return self._list(token)
        raise ExpressionError(
            f"expected a value, a fact or '(', but found {_show(token)}", token.pos
        )

    def _call(self, name: _Token) -> _Node:
        if name.text not in _FUNCTIONS:
            head, _, tail = name.text.rpartition(".")
            if tail in _FUNCTIONS:
                hint = f"; write {tail}({head})"
            else:
                close = difflib.get_close_matches(name.text, _FUNCTIONS, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ExpressionError(
                f"unknown function '{name.text}'{hint}; the functions are has() and size()",
                name.pos,
            )
        opener = self._next()
        self._enter(opener)
        args: list[_Node] = []
        if not self._at(")"):
            args.append(self._or())
            while self._at(","):
                self._next()
                args.append(self._or())
        self._expect_closing(")", opener)
        return _Call(name.text, tuple(args), name.pos)

    def _list(self, opener: _Token) -> _Node:
        self._enter(opener)
        items: list[_Literal] = []
        while not self._at("]"):
            pos = self._peek().pos
            item = self._or()
            if not isinstance(item, _Literal) or isinstance(item.value, bool):
                raise ExpressionError("a list can hold only literal strings or numbers", pos)
            if items and _is_number(item.value) != _is_number(items[0].value):
                raise ExpressionError(
                    "a list must hold only strings or only numbers, not both", item.pos
                )
            items.append(item)
            if not self._at(","):
                break
            self._next()
        self._expect_closing("]", opener)
        if not items:
            raise ExpressionError(
                "an empty list [] would never match anything; list at least one value",
                opener.pos,
            )
        kind = FactKind.NUMBER if _is_number(items[0].value) else FactKind.STRING
        return _ListLiteral(tuple(items), kind, opener.pos)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _children(node: _Node) -> Iterator[_Node]:
    if isinstance(node, _Unary):
        yield node.operand
    elif isinstance(node, _Binary):
        yield node.left
        yield node.right
    elif isinstance(node, _Logic):
        yield from node.operands
    elif isinstance(node, _Call):
        yield from node.args


def _check_depth(root: _Node) -> None:
    # Iterative, because long `a + b + c ...` chains nest without parentheses.
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > _MAX_DEPTH:
            raise ExpressionError("the condition is nested too deeply", node.pos)
        stack.extend((child, depth + 1) for child in _children(node))


# --- Type checking ------------------------------------------------------------------


def _render(value: bool | int | float | str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return repr(value)


def _literal_kind(value: bool | int | float | str) -> FactKind:
    if isinstance(value, bool):
        return FactKind.BOOL
    return FactKind.STRING if isinstance(value, str) else FactKind.NUMBER


class _Checker:
    """Static types: every node's kind, with an ExpressionError for any misuse."""

    def __init__(self, catalogue: Mapping[str, FactType]) -> None:
        self._catalogue = catalogue

    def fact_type(self, node: _Fact) -> FactType:
        fact_type = self._catalogue.get(node.path)
        if fact_type is None:
            close = difflib.get_close_matches(node.path, list(self._catalogue), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ExpressionError(f"unknown fact '{node.path}'{hint}", node.pos)
        return fact_type

    def kind(self, node: _Node) -> FactKind:
        if isinstance(node, _Literal):
            return _literal_kind(node.value)
        if isinstance(node, _Fact):
            return self.fact_type(node).kind
        if isinstance(node, _ListLiteral):
            raise ExpressionError(
                'a list of values can only follow \'in\', as in x in ["a", "b"]', node.pos
            )
        if isinstance(node, _Unary):
            want = FactKind.BOOL if node.op == "!" else FactKind.NUMBER
            operand = self.kind(node.operand)
            if operand is not want:
                needs = "a true/false value" if want is FactKind.BOOL else "a number"
                raise ExpressionError(
                    f"'{node.op}' needs {needs}, but {self._describe(node.operand, operand)}",
                    node.pos,
                )
            return want
        if isinstance(node, _Logic):
            for child in node.operands:
                kind = self.kind(child)
                if kind is not FactKind.BOOL:
                    raise ExpressionError(
                        f"'{node.op}' needs true/false values on both sides,"
                        f" but {self._describe(child, kind)}",
                        child.pos,
                    )
            return FactKind.BOOL
        if isinstance(node, _Call):
            return self._call(node)
        return self._binary(node)

    def _describe(self, node: _Node, kind: FactKind) -> str:
        if isinstance(node, _Fact):
            subject = f"'{node.path}'"
        elif isinstance(node, _Literal):
            subject = _render(node.value)
        elif isinstance(node, _Call):
            subject = f"{node.name}()"
        elif isinstance(node, _ListLiteral):
            subject = "the list"
        else:
            subject = f"the '{node.op}' expression"
        return f"{subject} is {_KIND_NAMES[kind]}"

    def _binary(self, node: _Binary) -> FactKind:
        if node.op == "in":
            self._membership(node)
            return FactKind.BOOL
        left, right = self.kind(node.left), self.kind(node.right)
        both = f"{self._describe(node.left, left)} and {self._describe(node.right, right)}"
        if node.op in ("+", "-", "*"):
            if left is not FactKind.NUMBER or right is not FactKind.NUMBER:
                raise ExpressionError(f"'{node.op}' needs two numbers, but {both}", node.pos)
            return FactKind.NUMBER
        if node.op in ("==", "!="):
            if FactKind.LIST in (left, right):
                raise ExpressionError(
                    f"'{node.op}' cannot compare a list ({both});"
                    " use 'in', as in \"value\" in list_fact",
                    node.pos,
                )
            if left is not right:
                raise ExpressionError(
                    f"'{node.op}' compares values of the same type, but {both}", node.pos
                )
        elif left is not right or left not in (FactKind.NUMBER, FactKind.STRING):
            raise ExpressionError(
                f"'{node.op}' compares two numbers, or an ordered fact with one of its"
                f" values, but {both}",
                node.pos,
            )
        if left is FactKind.STRING:
            self._strings(node)
        return FactKind.BOOL

    def _strings(self, node: _Binary) -> None:
        """Value checks for a comparison between two string operands."""
        facts = [side for side in (node.left, node.right) if isinstance(side, _Fact)]
        literals = [side for side in (node.left, node.right) if isinstance(side, _Literal)]
        ordering = node.op not in ("==", "!=")
        if ordering:
            if not facts:
                raise ExpressionError(
                    f"'{node.op}' cannot order two strings; only facts with ordered values"
                    " can be compared this way",
                    node.pos,
                )
            for fact in facts:
                if not self.fact_type(fact).ordered:
                    raise ExpressionError(
                        f"cannot order '{fact.path}': its values have no order", fact.pos
                    )
        if len(facts) == 2:
            first, second = (self.fact_type(fact).allowed for fact in facts)
            if ordering and first != second:
                raise ExpressionError(
                    f"cannot order '{facts[0].path}' against '{facts[1].path}':"
                    " they have different value lists",
                    node.pos,
                )
            if first is not None and second is not None and not set(first) & set(second):
                raise ExpressionError(
                    f"'{facts[0].path}' and '{facts[1].path}' share no values,"
                    f" so '{node.op}' would always be {'false' if node.op == '==' else 'true'}",
                    node.pos,
                )
        elif facts:
            self._require_value(facts[0], literals[0])

    def _require_value(self, fact: _Fact, literal: _Literal) -> None:
        allowed = self.fact_type(fact).allowed
        if allowed is not None and literal.value not in allowed:
            raise ExpressionError(
                f"{_render(literal.value)} is not a value of '{fact.path}';"
                f" allowed: {', '.join(allowed)}",
                literal.pos,
            )

    def _membership(self, node: _Binary) -> None:
        """``value in [...]`` or ``value in list_fact``."""
        left_kind = self.kind(node.left)
        if isinstance(node.right, _ListLiteral):
            self._in_list_literal(node, left_kind, node.right)
        else:
            self._in_list_fact(node, left_kind)

    def _in_list_literal(self, node: _Binary, left_kind: FactKind, items: _ListLiteral) -> None:
        """The value and the items are of one type; a string fact's items are its values."""
        if left_kind is not items.kind:
            item_kind = "strings" if items.kind is FactKind.STRING else "numbers"
            raise ExpressionError(
                f"'in' needs the value and the list items to be of the same type, but"
                f" {self._describe(node.left, left_kind)} and the list holds {item_kind}",
                node.pos,
            )
        if isinstance(node.left, _Fact) and left_kind is FactKind.STRING:
            for item in items.items:
                self._require_value(node.left, item)

    def _in_list_fact(self, node: _Binary, left_kind: FactKind) -> None:
        """A string looked for in a list fact, that can be one of the list's elements."""
        right = node.right
        right_kind = self.kind(right)
        if right_kind is not FactKind.LIST:
            raise ExpressionError(
                f"'in' needs a list on the right, but {self._describe(right, right_kind)}",
                node.pos,
            )
        if left_kind is not FactKind.STRING:
            raise ExpressionError(
                f"'in' looks for a string in a list, but {self._describe(node.left, left_kind)}",
                node.pos,
            )
        assert isinstance(right, _Fact)  # the only nodes of kind LIST
        elements = self.fact_type(right).allowed
        if elements is None:
            return
        if isinstance(node.left, _Literal):
            self._require_value(right, node.left)
        elif isinstance(node.left, _Fact):
            values = self.fact_type(node.left).allowed
            if values is not None and not set(values) & set(elements):
                raise ExpressionError(
                    f"'{node.left.path}' and '{right.path}' share no values,"
                    " so 'in' would always be false",
                    node.pos,
                )

    def _call(self, node: _Call) -> FactKind:
        arg = node.args[0] if len(node.args) == 1 else None
        if node.name == "has":
            if not isinstance(arg, _Fact):
                where = node.pos if arg is None else arg.pos
                raise ExpressionError("has() takes one fact name, as in has(phq9.total)", where)
            self.fact_type(arg)
            return FactKind.BOOL
        if arg is None:
            raise ExpressionError("size() takes one list fact, as in size(domains.flags)", node.pos)
        kind = self.kind(arg)
        if kind is not FactKind.LIST:
            raise ExpressionError(f"size() needs a list, but {self._describe(arg, kind)}", arg.pos)
        return FactKind.NUMBER


# --- Compilation ----------------------------------------------------------------------
#
# A checked tree becomes the source of ONE flat Python function (statements, temporaries
# and early returns, no helper calls), built with compile() and exec(). This is safe: the
# source is generated only from the validated tree, never from rule text. Fact paths,
# strings and numbers enter only through repr() of a plain str, int, float or bool (see
# _literal), operators come from fixed tables, and sets and lookup tables are names bound
# in a namespace that holds nothing else: no builtins at all.
#
# Each true/false node is compiled against three outcome acts (what to do if it is true,
# false or unknown): `return ...` at the top, or a small assignment when a value is needed.
# An `&&` operand that is false does the chain's false act at once (`return False`); an
# unknown one is remembered by its temporary being None, and only the last operand decides
# between true and unknown. `||` is the mirror image. Conditions are pure, so reads are
# shared and skipped freely, but operands are still tried left to right, as before.

_TESTS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_ARITHMETIC: Final = frozenset({"+", "-", "*"})
_FLIPPED: Final = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
# Short-circuit chains nest an `if` per operand while the code is shallower than this, and
# switch to a guard flag beyond it, keeping far below Python's limit of 100 indent levels.
_NEST_LIMIT: Final = 24
# How facts are read. On CPython 3.11 `facts.get(...)` is a specialised method call, and
# cheaper than binding `get = facts.get` first (a new bound method on every call), however
# many facts a condition reads.
_GET: Final = "facts.get"


def _literal(value: object) -> str:
    """Python source for a constant. Only plain str, int, float and bool get here, and the
    repr() of each is a literal of the same value, so no rule text is ever run as code."""
    if type(value) not in (str, int, float, bool) or (
        isinstance(value, float) and not math.isfinite(value)
    ):
        raise TypeError(f"not a plain constant: {value!r}")
    text = repr(value)
    return f"({text})" if text.startswith("-") else text


def _any_none(temps: Iterable[str]) -> str:
    return " or ".join(f"{temp} is None" for temp in temps)


def _all_known(temps: Iterable[str]) -> str:
    return " and ".join(f"{temp} is not None" for temp in temps)


def _not(test: str) -> str:
    if test.isidentifier():
        return f"not {test}"
    subject, is_none, rest = test.partition(" is None")
    if is_none and not rest and subject.isidentifier():
        return f"{subject} is not None"
    subject, is_known, rest = test.partition(" is not None")
    if is_known and not rest and subject.isidentifier():
        return f"{subject} is None"
    return f"not ({test})"


def _merge(*groups: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(temp for group in groups for temp in group))


def _indented(lines: Iterable[str]) -> list[str]:
    return ["    " + line for line in lines]


@dataclass(frozen=True, slots=True)
class _Act:
    """What to do for one outcome: ``lines`` (indented relative to their block), which end
    with a return if ``ends``; ``result`` is the value of a lone ``return``. If any temp in
    ``unknown`` is None, ``fallback`` is done instead."""

    lines: tuple[str, ...] = ()
    ends: bool = False
    result: str | None = None
    unknown: tuple[str, ...] = ()
    fallback: _Act | None = None

    def known(self, known: Set[str]) -> _Act:
        """The act where the temps in ``known`` are known not to be None."""
        unknown = tuple(temp for temp in self.unknown if temp not in known)
        if unknown == self.unknown:
            return self
        return _Act(self.lines, self.ends, self.result, unknown, self.fallback if unknown else None)

    def code(self) -> list[str]:
        fallback = self.fallback
        if fallback is None or not self.unknown:
            return list(self.lines)
        test = _any_none(self.unknown)
        if fallback.result == "None" and self.result is not None:
            return [f"return None if {test} else {self.result}"]
        if not self.lines:
            return [f"if {test}:", *_indented(fallback.code())]
        if not fallback.lines:
            return [f"if {_all_known(self.unknown)}:", *_indented(self.lines)]
        if fallback.ends:
            return [f"if {test}:", *_indented(fallback.code()), *self.lines]
        return [f"if {test}:", *_indented(fallback.code()), "else:", *_indented(self.lines)]

    @property
    def empty(self) -> bool:
        return not self.lines and (self.fallback is None or not self.fallback.code())

    @property
    def final(self) -> bool:
        return self.ends and (self.fallback is None or self.fallback.final)


def _returns(result: str) -> _Act:
    return _Act((f"return {result}",), ends=True, result=result)


def _assign(name: str, value: str) -> _Act:
    return _Act((f"{name} = {value}",))


def _unless_known(unknown: tuple[str, ...], fallback: _Act, act: _Act) -> _Act:
    """``fallback`` if any temp in ``unknown`` is None, otherwise ``act``."""
    if not unknown or fallback == act:
        return act
    if act.fallback is None or not act.unknown:
        return _Act(act.lines, act.ends, act.result, unknown, fallback)
    if act.fallback == fallback:
        return _Act(act.lines, act.ends, act.result, _merge(unknown, act.unknown), fallback)
    code = tuple(act.code())
    return _Act(code, act.final, None, unknown, fallback)


_PASS: Final = _Act()


class _Outcomes(NamedTuple):
    true: _Act
    false: _Act
    unknown: _Act


_RETURN: Final = _Outcomes(_returns("True"), _returns("False"), _returns("None"))


@dataclass(frozen=True, slots=True)
class _Leaf:
    """A true/false test that needs no branching to compute, after its setup lines.

    ``truth`` is valid once every temp in ``unknown`` is known (not None), and the leaf is
    unknown exactly when one of them is None. ``safe``: ``truth`` is falsy, without error,
    while unknown. ``exact``: ``truth`` is the node's value, None included. ``boolean``:
    ``truth`` is a temp holding exactly True, False or None. ``present``: a temp that is
    not None when the leaf is true (has()).
    """

    truth: str
    unknown: tuple[str, ...] = ()
    safe: bool = False
    exact: bool = False
    boolean: bool = False
    present: str | None = None

    def true_test(self) -> str:
        if not self.unknown or self.safe:
            return self.truth
        return f"{_all_known(self.unknown)} and {self.truth}"

    def false_test(self) -> str:
        if self.boolean:
            return f"{self.truth} is False"
        if not self.unknown:
            return _not(self.truth)
        if self.safe:
            return f"{_not(self.truth)} and {_all_known(self.unknown)}"
        return f"{_all_known(self.unknown)} and {_not(self.truth)}"

    def value(self) -> str:
        if self.exact or not self.unknown:
            return self.truth
        return f"None if {_any_none(self.unknown)} else {self.truth}"


@dataclass(frozen=True, slots=True)
class _Value:
    """A value as an atomic expression, valid once every temp in ``unknown`` is known; the
    value is None exactly when one of them is None. ``exact``: the expression gives None
    then, without error. ``guarded``: it does arithmetic, so may overflow. ``sized``: it
    calls len()."""

    expr: str
    unknown: tuple[str, ...] = ()
    exact: bool = False
    guarded: bool = False
    sized: bool = False


class _Generator:
    """Writes the source of one function evaluating a checked tree (see the notes above)."""

    def __init__(self, catalogue: Mapping[str, FactType], paths: Iterable[str]) -> None:
        self._catalogue = catalogue
        self._uses = Counter(paths)
        self._lines: list[str] = []
        self._depth = 1
        self._reads: dict[str, str] = {}  # path → temp holding it, wherever that temp is set
        self._known: set[str] = set()  # temps known not to be None here
        self._saved: list[tuple[dict[str, str], set[str], int]] = []  # per open block
        self._temps = 0
        self._constants: dict[object, str] = {}
        self.namespace: dict[str, object] = {"__builtins__": {}}

    def function(self, tree: _Node) -> str:
        """The source of ``def condition(facts)``; its constants are in ``namespace``."""
        if isinstance(tree, _Fact):
            self._emit(f"return {self._fetch(tree.path)}")
        elif isinstance(tree, _Binary):  # a comparison or `in`: its exact result
            self._emit(f"return {self._leaf(tree).value()}")
        elif isinstance(tree, _Call):  # has(), never unknown
            self._emit(f"return {self._leaf(tree).truth}")
        elif isinstance(tree, _Unary) and isinstance(tree.operand, _Call):  # !has()
            self._emit(f"return {self._fetch(_path(tree.operand.args[0]))} is None")
        else:
            self._branch(tree, _RETURN)
        return "\n".join(["def condition(facts):", *self._lines]) + "\n"

    # Output: lines, blocks, temps, reads and constants.

    def _emit(self, line: str) -> None:
        self._lines.append("    " * self._depth + line)

    def _do(self, act: _Act) -> None:
        for line in act.known(self._known).code():
            self._emit(line)

    def _open(self, header: str) -> None:
        self._emit(header)
        self._depth += 1
        self._saved.append((dict(self._reads), set(self._known), len(self._lines)))

    def _close(self) -> None:
        # What was read or learnt inside the block does not hold past it.
        self._reads, self._known, start = self._saved.pop()
        if len(self._lines) == start:
            self._emit("pass")
        self._depth -= 1

    @contextmanager
    def _block(self, header: str) -> Iterator[None]:
        self._open(header)
        yield
        self._close()

    def _temp(self, prefix: str) -> str:
        self._temps += 1
        return f"{prefix}{self._temps}"

    def _read(self, path: str) -> str:
        """A temp holding the fact's value (None when unknown)."""
        temp = self._reads.get(path)
        if temp is None:
            temp = self._temp("v")
            self._emit(f"{temp} = {_GET}({_literal(path)})")
            self._reads[path] = temp
        return temp

    def _fetch(self, path: str) -> str:
        """An expression for the fact's value, for a place evaluated at most once."""
        if path in self._reads or self._uses[path] > 1:
            return self._read(path)
        return f"{_GET}({_literal(path)})"

    def _constant(self, prefix: str, key: object, value: object) -> str:
        name = self._constants.get(key)
        if name is None:
            name = self._constants[key] = f"{prefix}{len(self._constants)}"
            self.namespace[name] = value
        return name

    # True/false nodes: code that does one of three acts.

    def _branch(self, node: _Node, then: _Outcomes) -> None:
        if isinstance(node, _Literal):
            self._do(then.true if node.value else then.false)
        elif isinstance(node, _Unary):  # "!"
            self._branch(node.operand, _Outcomes(then.false, then.true, then.unknown))
        elif isinstance(node, _Logic):
            self._chain(node, then)
        else:
            self._decide(self._leaf(node), then)

    def _decide(self, leaf: _Leaf, then: _Outcomes) -> None:
        true, false, unknown = (act.known(self._known) for act in then)
        if not leaf.unknown:
            self._if(leaf.truth, true, false)
        elif true == unknown:
            self._if(leaf.false_test(), false, true)
        elif false == unknown:
            self._if(leaf.true_test(), true, false)
        elif true == false:
            self._if(_any_none(leaf.unknown), unknown, true)
        else:
            with self._block(f"if {_any_none(leaf.unknown)}:"):
                self._do(unknown)
            if unknown.final:
                self._known.update(leaf.unknown)
                self._if(leaf.truth, true, false)
            else:
                with self._block("else:"):
                    self._known.update(leaf.unknown)
                    self._if(leaf.truth, true, false)

    def _if(self, test: str, then: _Act, otherwise: _Act) -> None:
        then, otherwise = then.known(self._known), otherwise.known(self._known)
        if then == otherwise:
            self._do(then)
        elif then.empty:
            with self._block(f"if {_not(test)}:"):
                self._do(otherwise)
        elif otherwise.empty or then.final:
            with self._block(f"if {test}:"):
                self._do(then)
            self._do(otherwise)
        elif otherwise.final:
            with self._block(f"if {_not(test)}:"):
                self._do(otherwise)
            self._do(then)
        else:
            with self._block(f"if {test}:"):
                self._do(then)
            with self._block("else:"):
                self._do(otherwise)

    def _chain(self, node: _Logic, then: _Outcomes) -> None:
        """``&&`` (``||``): the first false (true) operand settles it; otherwise an unknown
        operand makes it unknown."""
        is_and = node.op == "&&"
        stop = then.false if is_and else then.true
        *operands, last = _flatten(node.op, node)
        unknown: tuple[str, ...] = ()
        nested = 0  # blocks opened for the rest of the chain
        guard = None  # once too deep: a flag cleared when the chain is settled
        for operand in operands:
            constant = _constant_truth(operand)
            if constant is is_and:  # true in `&&`, false in `||`: nothing to do
                continue
            guarded = guard is not None
            if guarded:
                self._open(f"if {guard}:")
            if constant is not None:  # false in `&&`, true in `||`: settled
                self._do(stop)
                if guarded:
                    self._close()
                break
            temps, opened, guard = self._chain_operand(operand, stop, is_and, guard)
            unknown = _merge(unknown, temps)
            nested += opened
            if guarded:
                self._close()
        else:
            self._chain_last(last, then, is_and, unknown, guard)
        self._close_nested(nested, stop)

    def _chain_operand(
        self, operand: _Node, stop: _Act, is_and: bool, guard: str | None
    ) -> tuple[tuple[str, ...], bool, str | None]:
        """Code for an operand of a chain, but the last, that does ``stop`` if the operand
        settles the chain and falls through otherwise. When ``stop`` returns, a plain test;
        else, while the code is shallow, an ``if`` holding the rest of the chain (closed by
        _close_nested); beyond that, code that clears the ``guard`` flag, created here when
        first needed. Returns the temps that are then None if the operand was unknown,
        whether a block was opened, and the guard."""
        if stop.final:
            temps, proven = self._operand(operand, stop, not is_and)
            self._known.update(proven)  # only the other outcomes get past the return
            return temps, False, guard
        if guard is None and self._depth < _NEST_LIMIT:
            test, temps, proven = self._split(operand, not is_and)
            self._open(f"if {_not(test)}:")
            self._known.update(proven)
            return temps, True, guard
        if guard is None:
            guard = self._temp("g")
            self._emit(f"{guard} = True")
        settle = _Act((*stop.code(), f"{guard} = False"))
        temps, _ = self._operand(operand, settle, not is_and)
        return temps, False, guard

    def _chain_last(
        self,
        last: _Node,
        then: _Outcomes,
        is_and: bool,
        unknown: tuple[str, ...],
        guard: str | None,
    ) -> None:
        """No earlier operand settled the chain: the last one decides it, except that where it
        is true in ``&&`` (false in ``||``) an earlier unknown operand makes the chain
        unknown. ``unknown``: the temps that are None if an earlier operand was."""
        unknown = self._unknown(unknown)
        if is_and:
            outcomes = then._replace(true=_unless_known(unknown, then.unknown, then.true))
        else:
            outcomes = then._replace(false=_unless_known(unknown, then.unknown, then.false))
        if guard is not None:
            with self._block(f"if {guard}:"):
                self._branch(last, outcomes)
        else:
            self._branch(last, outcomes)

    def _close_nested(self, nested: int, stop: _Act) -> None:
        """Close the blocks a chain opened for its rest, each with an ``else`` that does
        ``stop``: the operand that opened it settled the chain."""
        for _ in range(nested):
            self._close()
            if not stop.empty:
                with self._block("else:"):
                    self._do(stop)

    def _operand(
        self, node: _Node, stop: _Act, on_true: bool
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Code that does ``stop`` if ``node`` is true (``on_true``) or false, and falls
        through otherwise. Returns the temps that are then None if ``node`` was unknown,
        and those then known not to be None."""
        node, on_true = _strip_not(node, on_true)
        if isinstance(node, _Logic):
            flag = self._temp("u")
            self._emit(f"{flag} = True")
            mark = _assign(flag, "None")
            if on_true:
                self._branch(node, _Outcomes(stop, _PASS, mark))
            else:
                self._branch(node, _Outcomes(_PASS, stop, mark))
            return (flag,), ()
        leaf = self._leaf(node)
        self._if(leaf.true_test() if on_true else leaf.false_test(), stop, _PASS)
        return leaf.unknown, _proven(leaf, on_true)

    def _split(self, node: _Node, on_true: bool) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
        """Setup code, then a test for ``node`` being true (``on_true``) or false; and, as
        for _operand, the temps that are None if it was not, or known not to be None."""
        node, on_true = _strip_not(node, on_true)
        if isinstance(node, _Logic):
            state = self._state(node)
            return f"{state} is {on_true}", (state,), ()
        leaf = self._leaf(node)
        test = leaf.true_test() if on_true else leaf.false_test()
        return test, leaf.unknown, _proven(leaf, on_true)

    def _state(self, node: _Node) -> str:
        """A temp set to the true/false node's value: True, False or None."""
        state = self._temp("s")
        outcomes = _Outcomes(
            _assign(state, "True"), _assign(state, "False"), _assign(state, "None")
        )
        self._branch(node, outcomes)
        return state

    def _unknown(self, temps: tuple[str, ...]) -> tuple[str, ...]:
        """Those of ``temps`` not known here not to be None."""
        return tuple(temp for temp in temps if temp not in self._known)

    def _leaf(self, node: _Node) -> _Leaf:
        """A true/false fact, has(), a comparison or `in`."""
        leaf = self._new_leaf(node)
        unknown = self._unknown(leaf.unknown)
        return leaf if unknown == leaf.unknown else replace(leaf, unknown=unknown)

    def _new_leaf(self, node: _Node) -> _Leaf:
        if isinstance(node, _Fact):
            temp = self._read(node.path)
            return _Leaf(temp, (temp,), safe=True, exact=True)
        if isinstance(node, _Call):  # has(); size() is a number
            value = self._fetch(_path(node.args[0]))
            present = value if value.isidentifier() else None
            return _Leaf(f"{value} is not None", exact=True, present=present)
        assert isinstance(node, _Binary)  # guaranteed by the checker
        if node.op == "in":
            return self._membership(node)
        return self._comparison(node)

    def _comparison(self, node: _Binary) -> _Leaf:
        op, left, right = node.op, node.left, node.right
        if isinstance(left, _Literal) and isinstance(right, _Fact):
            op, left, right = _FLIPPED[op], right, left
        if op not in ("==", "!=") and isinstance(left, _Fact):
            fact_type = self._catalogue[left.path]
            if fact_type.kind is FactKind.STRING and fact_type.allowed is not None:
                # Ordered values compare by position in `allowed` (the checker saw to it).
                return self._ranked(op, left, right, fact_type.allowed)
        first, second = self._operand_value(left), self._operand_value(right)
        # None == a constant is False, so then the test needs no None check first.
        safe = op == "==" and (
            (first.exact and isinstance(right, _Literal))
            or (second.exact and isinstance(left, _Literal))
        )
        truth = f"{first.expr} {op} {second.expr}"
        return _Leaf(truth, _merge(first.unknown, second.unknown), safe=safe)

    def _ranked(self, op: str, left: _Fact, right: _Node, allowed: tuple[str, ...]) -> _Leaf:
        ranks: dict[object, int] = {value: rank for rank, value in enumerate(allowed)}
        if isinstance(right, _Fact):
            lookup = self._constant("R", ("ranks", allowed), ranks)
            first, second = self._temp("r"), self._temp("r")
            self._emit(f"{first} = {lookup}.get({self._fetch(left.path)})")
            self._emit(f"{second} = {lookup}.get({self._fetch(right.path)})")
            return _Leaf(f"{first} {op} {second}", (first, second))
        assert isinstance(right, _Literal)  # the only other string operand
        # Against a constant, one lookup gives the answer: True, False, or None (unranked).
        bound, test = ranks[right.value], _TESTS[op]
        table = {value: test(rank, bound) for value, rank in ranks.items()}
        lookup = self._constant("T", ("table", allowed, op, bound), table)
        result = self._temp("r")
        self._emit(f"{result} = {lookup}.get({self._fetch(left.path)})")
        return _Leaf(result, (result,), safe=True, exact=True, boolean=True)

    def _membership(self, node: _Binary) -> _Leaf:
        value, right = self._operand_value(node.left), node.right
        if isinstance(right, _ListLiteral):
            items = frozenset(item.value for item in right.items)
            name = self._constant("S", ("set", items), items)
            # None is in no list literal, so an exact value needs no None check.
            return _Leaf(f"{value.expr} in {name}", value.unknown, safe=value.exact)
        values = self._read(_path(right))
        return _Leaf(f"{value.expr} in {values}", _merge(value.unknown, (values,)))

    # Values: operands of comparisons, `in` and arithmetic.

    def _operand_value(self, node: _Node) -> _Value:
        value = self._value(node)
        if not value.guarded:
            return value
        # Arithmetic: None if an operand is, or if an int beyond float range meets a float.
        temp, unknown = self._temp("x"), self._unknown(value.unknown)
        self.namespace["OverflowError"] = OverflowError
        if unknown:
            with self._block(f"if {_any_none(unknown)}:"):
                self._emit(f"{temp} = None")
            self._open("else:")
        with self._block("try:"):
            self._emit(f"{temp} = {value.expr}")
        with self._block("except OverflowError:"):
            self._emit(f"{temp} = None")
        if unknown:
            self._close()
        return _Value(temp, (temp,), exact=True)

    def _value(self, node: _Node) -> _Value:
        if isinstance(node, _Literal):
            return _Value(_literal(node.value), exact=True)
        if isinstance(node, _Fact):
            temp = self._read(node.path)
            return _Value(temp, (temp,), exact=True)
        if isinstance(node, _Call):
            if node.name == "has":
                return _Value(f"({self._leaf(node).truth})", exact=True)
            values = self._read(_path(node.args[0]))
            self.namespace["len"] = len
            return _Value(f"len({values})", (values,), sized=True)
        if isinstance(node, _Unary) and node.op == "-":
            inner = self._value(node.operand)
            return _Value(
                f"(-{inner.expr})",
                inner.unknown,
                exact=not inner.unknown,
                guarded=inner.guarded,
                sized=inner.sized,
            )
        if isinstance(node, _Binary) and node.op in _ARITHMETIC:
            first, second = self._unsized(node.left), self._unsized(node.right)
            return _Value(
                f"({first.expr} {node.op} {second.expr})",
                _merge(first.unknown, second.unknown),
                guarded=True,
            )
        if isinstance(node, _Unary | _Logic):
            state = self._state(node)
            return _Value(state, (state,), exact=True)
        leaf = self._leaf(node)  # a comparison or `in` compared with another true/false
        if leaf.exact or not leaf.unknown:
            truth = leaf.truth
            return _Value(truth if truth.isidentifier() else f"({truth})", leaf.unknown, True)
        temp = self._temp("s")
        self._emit(f"{temp} = {leaf.value()}")
        return _Value(temp, (temp,), exact=True)

    def _unsized(self, node: _Node) -> _Value:
        """An arithmetic operand; len() is taken outside the overflow guard, as before."""
        value = self._value(node)
        if not value.sized:
            return value
        temp, unknown = self._temp("n"), self._unknown(value.unknown)
        if unknown:
            self._emit(f"{temp} = None if {_any_none(unknown)} else {value.expr}")
        else:
            self._emit(f"{temp} = {value.expr}")
        return _Value(temp, (temp,), exact=True)


def _proven(leaf: _Leaf, on_true: bool) -> tuple[str, ...]:
    """Temps known not to be None once ``leaf`` proved not true (``on_true``), or not false."""
    return (leaf.present,) if leaf.present and not on_true else ()


def _strip_not(node: _Node, on_true: bool) -> tuple[_Node, bool]:
    while isinstance(node, _Unary):  # "!": the only unary of a true/false node
        node, on_true = node.operand, not on_true
    return node, on_true


def _constant_truth(node: _Node) -> bool | None:
    node, truth = _strip_not(node, True)
    return (bool(node.value) is truth) if isinstance(node, _Literal) else None


def _flatten(op: str, node: _Node) -> Iterator[_Node]:
    if isinstance(node, _Logic) and node.op == op:
        for child in node.operands:
            yield from _flatten(op, child)
    else:
        yield node


def _path(node: _Node) -> str:
    assert isinstance(node, _Fact)  # guaranteed by the checker
    return node.path
