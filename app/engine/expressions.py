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
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, NamedTuple

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

    ``facts`` lists the fact paths the source refers to, in order of first appearance.
    """

    source: str
    evaluate: Condition
    facts: tuple[str, ...]


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
    evaluate = _Compiler(facts).build(tree)
    return CompiledCondition(source, evaluate, tuple(dict.fromkeys(parser.paths)))


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
        left_kind = self.kind(node.left)
        right = node.right
        if isinstance(right, _ListLiteral):
            if left_kind is not right.kind:
                item_kind = "strings" if right.kind is FactKind.STRING else "numbers"
                raise ExpressionError(
                    f"'in' needs the value and the list items to be of the same type, but"
                    f" {self._describe(node.left, left_kind)} and the list holds {item_kind}",
                    node.pos,
                )
            if isinstance(node.left, _Fact) and left_kind is FactKind.STRING:
                for item in right.items:
                    self._require_value(node.left, item)
            return
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

_Eval = Callable[[Mapping[str, Any]], Any]

_TESTS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_ARITHMETIC: Final[dict[str, Callable[[Any, Any], Any]]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
}
_FLIPPED: Final = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


class _Compiler:
    """Turns a checked tree into closures; common leaf shapes get one flat closure each."""

    def __init__(self, catalogue: Mapping[str, FactType]) -> None:
        self._catalogue = catalogue

    def build(self, node: _Node) -> _Eval:
        if isinstance(node, _Literal):
            return _constant(node.value)
        if isinstance(node, _Fact):
            return _read(node.path)
        if isinstance(node, _ListLiteral):
            return _constant(frozenset(item.value for item in node.items))
        if isinstance(node, _Unary):
            if node.op == "-":
                return _negate(self.build(node.operand))
            operand = node.operand
            if isinstance(operand, _Call) and operand.name == "has":
                return _unknown(_path(operand.args[0]))
            if isinstance(operand, _Fact):
                return _not_fact(operand.path)
            return _not(self.build(operand))
        if isinstance(node, _Logic):
            operands = tuple(self.build(child) for child in _flatten(node.op, node))
            if len(operands) == 2:  # the common case, unrolled: about 25% faster
                return _both(*operands) if node.op == "&&" else _either(*operands)
            return _all(operands) if node.op == "&&" else _any(operands)
        if isinstance(node, _Call):
            if node.name == "has":
                return _known(_path(node.args[0]))
            return _size(self.build(node.args[0]))
        if node.op in _ARITHMETIC:
            return _arithmetic(_ARITHMETIC[node.op], self.build(node.left), self.build(node.right))
        if node.op == "in":
            return self._membership(node.left, node.right)
        return self._comparison(node.op, node.left, node.right)

    def _comparison(self, op: str, left: _Node, right: _Node) -> _Eval:
        if isinstance(left, _Literal) and isinstance(right, _Fact):
            op, left, right = _FLIPPED[op], right, left
        test = _TESTS[op]
        if op not in ("==", "!=") and isinstance(left, _Fact):
            fact_type = self._catalogue[left.path]
            if fact_type.kind is FactKind.STRING and fact_type.allowed is not None:
                # Ordered values compare by position in `allowed` (the checker saw to it).
                ranks: dict[Any, int] = {value: i for i, value in enumerate(fact_type.allowed)}
                if isinstance(right, _Fact):
                    return _rank_pair(test, left.path, right.path, ranks)
                assert isinstance(right, _Literal)
                return _rank_vs_constant(test, left.path, ranks, ranks[right.value])
        if isinstance(left, _Fact) and isinstance(right, _Literal):
            return _fact_vs_constant(test, left.path, right.value)
        return _compare(test, self.build(left), self.build(right))

    def _membership(self, left: _Node, right: _Node) -> _Eval:
        if isinstance(left, _Fact) and isinstance(right, _ListLiteral):
            return _fact_in_set(left.path, frozenset(item.value for item in right.items))
        if isinstance(left, _Literal) and isinstance(right, _Fact):
            return _constant_in_fact(left.value, right.path)
        return _member(self.build(left), self.build(right))


def _flatten(op: str, node: _Node) -> Iterator[_Node]:
    if isinstance(node, _Logic) and node.op == op:
        for child in node.operands:
            yield from _flatten(op, child)
    else:
        yield node


def _path(node: _Node) -> str:
    assert isinstance(node, _Fact)  # guaranteed by the checker
    return node.path


# Each factory below returns the closure for one node shape. Unknown (None) operands
# make the result unknown, except in `&&`, `||` and has(), as the module doc says.


def _constant(value: object) -> _Eval:
    def evaluate(facts: Mapping[str, Any]) -> Any:
        return value

    return evaluate


def _read(path: str) -> _Eval:
    def evaluate(facts: Mapping[str, Any]) -> Any:
        return facts.get(path)

    return evaluate


def _known(path: str) -> _Eval:
    def evaluate(facts: Mapping[str, Any]) -> Any:
        return facts.get(path) is not None

    return evaluate


def _unknown(path: str) -> _Eval:
    def evaluate(facts: Mapping[str, Any]) -> Any:
        return facts.get(path) is None

    return evaluate


def _not_fact(path: str) -> _Eval:
    def evaluate(facts: Mapping[str, Any]) -> Any:
        value = facts.get(path)
        return None if value is None else not value

    return evaluate


def _not(operand: _Eval) -> _Eval:
    def evaluate(facts: Mapping[str, Any]) -> Any:
        value = operand(facts)
        return None if value is None else not value

    return evaluate


def _negate(operand: _Eval) -> _Eval:
    def evaluate(facts: Mapping[str, Any]) -> Any:
        value = operand(facts)
        return None if value is None else -value

    return evaluate


def _both(first: _Eval, second: _Eval) -> _Eval:
    def evaluate(facts: Mapping[str, Any]) -> Any:
        value = first(facts)
        if value is not None and not value:
            return False
        other = second(facts)
        if other is None:
            return None
        if not other:
            return False
        return None if value is None else True

    return evaluate


def _either(first: _Eval, second: _Eval) -> _Eval:
    def evaluate(facts: Mapping[str, Any]) -> Any:
        value = first(facts)
        if value:
            return True
        other = second(facts)
        if other:
            return True
        return None if value is None or other is None else False

    return evaluate


def _all(operands: tuple[_Eval, ...]) -> _Eval:
    def evaluate(facts: Mapping[str, Any]) -> Any:
        unknown = False
        for operand in operands:
            value = operand(facts)
            if value is None:
                unknown = True
            elif not value:
                return False
        return None if unknown else True

    return evaluate


def _any(operands: tuple[_Eval, ...]) -> _Eval:
    def evaluate(facts: Mapping[str, Any]) -> Any:
        unknown = False
        for operand in operands:
            value = operand(facts)
            if value is None:
                unknown = True
            elif value:
                return True
        return None if unknown else False

    return evaluate


def _fact_vs_constant(test: Callable[[Any, Any], bool], path: str, constant: object) -> _Eval:
    def evaluate(facts: Mapping[str, Any]) -> Any:
        value = facts.get(path)
        return None if value is None else test(value, constant)

    return evaluate


def _rank_vs_constant(
    test: Callable[[Any, Any], bool], path: str, ranks: Mapping[Any, int], bound: int
) -> _Eval:
    def evaluate(facts: Mapping[str, Any]) -> Any:
        rank = ranks.get(facts.get(path))
        return None if rank is None else test(rank, bound)

    return evaluate


def _rank_pair(
    test: Callable[[Any, Any], bool], left: str, right: str, ranks: Mapping[Any, int]
) -> _Eval:
    def evaluate(facts: Mapping[str, Any]) -> Any:
        first = ranks.get(facts.get(left))
        second = ranks.get(facts.get(right))
        return None if first is None or second is None else test(first, second)

    return evaluate


def _compare(test: Callable[[Any, Any], bool], left: _Eval, right: _Eval) -> _Eval:
    def evaluate(facts: Mapping[str, Any]) -> Any:
        first = left(facts)
        if first is None:
            return None
        second = right(facts)
        return None if second is None else test(first, second)

    return evaluate


def _fact_in_set(path: str, values: frozenset[object]) -> _Eval:
    def evaluate(facts: Mapping[str, Any]) -> Any:
        value = facts.get(path)
        return None if value is None else value in values

    return evaluate


def _constant_in_fact(constant: object, path: str) -> _Eval:
    def evaluate(facts: Mapping[str, Any]) -> Any:
        values = facts.get(path)
        return None if values is None else constant in values

    return evaluate


def _member(left: _Eval, right: _Eval) -> _Eval:
    def evaluate(facts: Mapping[str, Any]) -> Any:
        value = left(facts)
        if value is None:
            return None
        values = right(facts)
        return None if values is None else value in values

    return evaluate


def _size(operand: _Eval) -> _Eval:
    def evaluate(facts: Mapping[str, Any]) -> Any:
        values = operand(facts)
        return None if values is None else len(values)

    return evaluate


def _arithmetic(combine: Callable[[Any, Any], Any], left: _Eval, right: _Eval) -> _Eval:
    def evaluate(facts: Mapping[str, Any]) -> Any:
        first = left(facts)
        if first is None:
            return None
        second = right(facts)
        if second is None:
            return None
        try:
            return combine(first, second)
        except OverflowError:  # an int beyond float range mixed with a float: no answer
            return None

    return evaluate
