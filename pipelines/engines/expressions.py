"""Trigger conditions, evaluated without ever handing user text to Python's ``eval``.

Three dialects share one small parser:

- KFP v2 conditions, the CEL subset the kfp compiler writes:
  ``!(int(inputs.parameter_values['pipelinechannel--n-Output']) > 2) && …``
  (``int``, ``double``, ``string`` and ``bool`` conversions, comparisons, ``!``, ``&&``,
  ``||``, parentheses, string/number/boolean literals);
- Argo ``when``, after its ``{{…}}`` placeholders were substituted: ``101 > 10``,
  ``"heads" == "heads"`` (an unquoted word that is not a literal is a string, as the
  substituted value of a placeholder often is);
- Argo ``depends``: ``a.Succeeded || (b && !c.Failed)``, where names are looked up.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any


class ExpressionError(ValueError):
    """The expression cannot be read or evaluated; the message says where."""


_TOKEN = re.compile(r"""
    \s*(?:
      (?P<number>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)
    | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<op>&&|\|\||==|!=|<=|>=|[<>!()\[\],.-])
    | (?P<name>[A-Za-z_][A-Za-z0-9_-]*)
    )""", re.VERBOSE)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"'}
_COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")
_MISSING = object()


def evaluate(text: str, parameter_values: Mapping[str, Any] | None = None,
             names: Callable[[str], Any] | None = None) -> bool:
    """The truth of ``text``. ``parameter_values`` answers CEL's
    ``inputs.parameter_values['x']``; ``names`` answers dotted names (Argo ``depends``),
    returning ``None`` for names it does not know."""
    parser = _Parser(_tokens(text), text, parameter_values or {}, names)
    compiled = parser.expression()
    if parser.peek() is not None:
        raise ExpressionError(f"unexpected '{parser.peek()[1]}' in {text!r}")
    result = compiled()
    if not isinstance(result, bool):
        raise ExpressionError(f"{text!r} is {result!r}, not true or false")
    return result


def _tokens(text: str) -> list[tuple[str, Any]]:
    tokens, position = [], 0
    while text[position:].strip():
        match = _TOKEN.match(text, position)
        if match is None:
            raise ExpressionError(f"cannot read {text[position:position + 20]!r} in {text!r}")
        position = match.end()
        kind = match.lastgroup
        value = match.group(kind)
        if kind == "number":
            value = float(value) if any(c in value for c in ".eE") else int(value)
        elif kind == "string":
            value = re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)),
                           value[1:-1])
        tokens.append((kind, value))
    return tokens


class _Parser:
    """Recursive descent over the tokens. Each rule returns a function that computes its
    value, so ``&&`` and ``||`` evaluate their right side only when needed (as CEL does:
    ``x != null && int(x) > 2`` is fine when x is null)."""

    def __init__(self, tokens, text, values, names):
        self.tokens, self.position, self.text = tokens, 0, text
        self.values, self.names = values, names

    def peek(self):
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, op: str | None = None):
        token = self.peek()
        if token is None:
            raise ExpressionError(f"{self.text!r} ends too early")
        if op is not None and token != ("op", op):
            raise ExpressionError(f"expected '{op}' but found '{token[1]}' in {self.text!r}")
        self.position += 1
        return token

    def at(self, op: str) -> bool:
        return self.peek() == ("op", op)

    def expression(self):
        left = self.conjunction()
        while self.at("||"):
            self.take()
            left = self._either(left, self.conjunction())
        return left

    def _either(self, left, right):
        return lambda: _truth(left(), self.text) or _truth(right(), self.text)

    def _both(self, left, right):
        return lambda: _truth(left(), self.text) and _truth(right(), self.text)

    def conjunction(self):
        left = self.comparison()
        while self.at("&&"):
            self.take()
            left = self._both(left, self.comparison())
        return left

    def comparison(self):
        left = self.unary()
        token = self.peek()
        if token is not None and token[0] == "op" and token[1] in _COMPARISONS:
            self.take()
            right = self.unary()
            return lambda: _compare(token[1], left(), right(), self.text)
        return left

    def unary(self):
        if self.at("!"):
            self.take()
            inner = self.unary()
            return lambda: not _truth(inner(), self.text)
        if self.at("-"):
            self.take()
            inner = self.unary()
            return lambda: _negate(inner(), self.text)
        return self.primary()

    def primary(self):
        kind, value = self.take()
        if kind in ("number", "string"):
            return lambda: value
        if kind == "op" and value == "(":
            inner = self.expression()
            self.take(")")
            return inner
        if kind != "name":
            raise ExpressionError(f"unexpected '{value}' in {self.text!r}")
        if value in ("true", "false", "null"):
            constant = None if value == "null" else value == "true"
            return lambda: constant
        if self.at("("):
            return self.call(value)
        if value == "inputs" and self.at("."):
            return self.parameter_value()
        dotted = value
        while self.at(".") and self.position + 1 < len(self.tokens) \
                and self.tokens[self.position + 1][0] == "name":
            self.take()
            dotted += "." + self.take()[1]
        return lambda: self._name(dotted)

    def _name(self, dotted: str):
        found = self.names(dotted) if self.names is not None else None
        return dotted if found is None else found  # an Argo word a placeholder left unquoted

    def call(self, function: str):
        if function not in _CONVERSIONS:
            raise ExpressionError(f"unknown function {function}() in {self.text!r}")
        self.take("(")
        argument = self.expression()
        self.take(")")

        def convert():
            value = argument()
            try:
                return _CONVERSIONS[function](value)
            except (TypeError, ValueError):
                raise ExpressionError(f"{function}({value!r}) is not possible "
                                      f"in {self.text!r}") from None

        return convert

    def parameter_value(self):
        self.take(".")
        _, field = self.take()
        if field != "parameter_values":
            raise ExpressionError(f"unknown field inputs.{field} in {self.text!r}")
        self.take("[")
        kind, key = self.take()
        if kind != "string":
            raise ExpressionError(f"inputs.parameter_values takes a quoted name in {self.text!r}")
        self.take("]")

        def read():
            value = self.values.get(key, _MISSING)
            if value is _MISSING:
                raise ExpressionError(f"the condition reads {key!r}, which has no value")
            return value

        return read


def _negate(value, text: str):
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ExpressionError(f"cannot negate {value!r} in {text!r}")
    return -value


def _to_int(value):
    if isinstance(value, str):
        value = value.strip()
        return int(value) if re.fullmatch(r"[-+]?\d+", value) else int(float(value))
    if isinstance(value, bool):
        raise TypeError("bool")
    return int(value)  # CEL truncates doubles toward zero, as int() does


def _to_bool(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(value)


def _to_string(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def _to_double(value):
    if isinstance(value, bool):
        raise TypeError("bool")
    return float(value)


_CONVERSIONS = {"int": _to_int, "double": _to_double, "string": _to_string, "bool": _to_bool}


def _number(value):
    """``value`` as a number when it is one or a string that spells one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return float(value) if re.search(r"[.eE]", value) else int(value)
        except ValueError:
            return None
    return None


def _compare(op: str, left, right, text: str) -> bool:
    if not (isinstance(left, bool) or isinstance(right, bool)):
        numbers = _number(left), _number(right)
        if None not in numbers and not (isinstance(left, str) and isinstance(right, str)):
            left, right = numbers
    if op == "==":
        return left == right
    if op == "!=":
        return left != right
    comparable = (isinstance(left, str) and isinstance(right, str)) or (
        _number(left) is not None and _number(right) is not None
        and not isinstance(left, str) and not isinstance(right, str))
    if not comparable:
        raise ExpressionError(f"cannot order {left!r} and {right!r} in {text!r}")
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]


def _truth(value, text: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"  # an Argo placeholder that held a boolean
    raise ExpressionError(f"{value!r} is not true or false in {text!r}")
