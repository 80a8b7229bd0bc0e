"""A small parser and evaluator for the OData ``$filter`` forms the catalogue stand-in serves.

Grammar (``and`` binds tighter than ``or``)::

    expr       := term ("or" term)*
    term       := factor ("and" factor)*
    factor     := "not" factor | "(" expr ")" | call | comparison
    call       := ("contains" | "startswith" | "endswith") "(" path "," string ")"
                | "OData.CSC.Intersects" "(" "area" "=" geography ")"
                | path "/any" "(" var ":" expr ")"          -- over Attributes
    comparison := path ("eq"|"ne"|"gt"|"ge"|"lt"|"le") (string | datetime | number | bool)

Paths: ``Name``, ``Id``, ``Online``, ``PublicationDate``, ``OriginDate``, ``ModificationDate``,
``ContentDate/Start``, ``ContentDate/End``, ``Collection/Name``; inside ``any`` the variable's
``Name`` and ``…/Value``. ``Intersects`` is a bounding-box test of the polygon against the
record's footprint. Anything else raises :class:`FilterError` (the server answers 400).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hrwsi.catalogue.records import parse_timestamp


class FilterError(ValueError):
    """The filter text is not one the stand-in understands."""


BBox = tuple[float, float, float, float]


@dataclass
class Indexed:
    """A served record with the fields filters need, parsed once."""

    record: dict[str, Any]
    id: str
    name: str
    collection: str
    publication: datetime
    content_start: datetime | None
    content_end: datetime | None
    attributes: list[dict[str, Any]] = field(default_factory=list)
    bbox: BBox | None = None


Predicate = Callable[[Indexed], bool]
AttrPredicate = Callable[[dict[str, Any]], bool]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<geography>geography'(?:[^']|'')*')
      | (?P<string>'(?:[^']|'')*')
      | (?P<datetime>\d{4}-\d{2}-\d{2}T[0-9:.]+(?:Z|[+-]\d{2}:?\d{2})?)
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<name>[A-Za-z_][A-Za-z0-9_./]*)
      | (?P<punct>[(),:=])
    )""",
    re.VERBOSE,
)
_OPERATORS = {"eq", "ne", "gt", "ge", "lt", "le"}
_DATE_PATHS = {
    "PublicationDate",
    "OriginDate",
    "ModificationDate",
    "ContentDate/Start",
    "ContentDate/End",
}


@dataclass(frozen=True)
class Token:
    kind: str
    text: str


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise FilterError(f"cannot read the filter at {text[position : position + 30]!r}")
        kind = match.lastgroup or ""
        tokens.append(Token(kind, match[kind]))
        position = match.end()
    return tokens


def _unquote(text: str) -> str:
    return text[1:-1].replace("''", "'")


def polygon_bbox(wkt: str) -> BBox:
    """The bounding box of the coordinates in a WKT POLYGON / MULTIPOLYGON / POINT."""
    numbers = re.findall(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", wkt.split(";", 1)[-1])
    if len(numbers) < 2 or len(numbers) % 2:
        raise FilterError(f"not a WKT geometry: {wkt[:60]!r}")
    lons = [float(x) for x in numbers[0::2]]
    lats = [float(y) for y in numbers[1::2]]
    return min(lons), min(lats), max(lons), max(lats)


def _overlaps(a: BBox, b: BBox) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


@dataclass(frozen=True)
class Bound:
    """A top-level ``PublicationDate`` comparison, used to bisect the sorted records."""

    op: str
    value: datetime


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.position = 0
        self.bounds: list[Bound] = []

    def peek(self) -> Token | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, text: str | None = None, kind: str | None = None) -> Token:
        token = self.peek()
        if token is None:
            raise FilterError("the filter ends too early")
        if (text is not None and token.text != text) or (kind is not None and token.kind != kind):
            raise FilterError(f"expected {text or kind}, found {token.text!r}")
        self.position += 1
        return token

    def parse(self) -> Predicate:
        predicate = self.expr(top=True)
        if self.peek() is not None:
            raise FilterError(f"unexpected {self.peek().text!r}")  # type: ignore[union-attr]
        return predicate

    def expr(self, top: bool = False) -> Predicate:
        terms = [self.term(top)]
        while (token := self.peek()) is not None and token.text == "or":
            self.take()
            terms.append(self.term(False))
        if len(terms) > 1:
            if top:
                self.bounds.clear()
            return lambda r: any(t(r) for t in terms)
        return terms[0]

    def term(self, top: bool) -> Predicate:
        factors = [self.factor(top)]
        while (token := self.peek()) is not None and token.text == "and":
            self.take()
            factors.append(self.factor(top))
        if len(factors) == 1:
            return factors[0]
        return lambda r: all(f(r) for f in factors)

    def factor(self, top: bool) -> Predicate:
        token = self.peek()
        if token is None:
            raise FilterError("the filter ends too early")
        if token.text == "not":
            self.take()
            inner = self.factor(False)
            return lambda r: not inner(r)
        if token.text == "(":
            self.take()
            inner = self.expr(False)
            self.take(")")
            return inner
        if token.kind != "name":
            raise FilterError(f"unexpected {token.text!r}")
        self.take()
        path = token.text
        if path in {"contains", "startswith", "endswith"}:
            return self.string_function(path)
        if path == "OData.CSC.Intersects":
            return self.intersects()
        if path.endswith("/any"):
            return self.any_attribute(path)
        return self.comparison(path, top)

    def string_function(self, function: str) -> Predicate:
        self.take("(")
        path = self.take(kind="name").text
        self.take(",")
        needle = _unquote(self.take(kind="string").text)
        self.take(")")
        if path != "Name":
            raise FilterError(f"{function}() is served on Name only, not {path}")
        if function == "contains":
            return lambda r: needle in r.name
        if function == "startswith":
            return lambda r: r.name.startswith(needle)
        return lambda r: r.name.endswith(needle)

    def intersects(self) -> Predicate:
        self.take("(")
        self.take("area")
        self.take("=")
        literal = self.take(kind="geography").text
        self.take(")")
        area = polygon_bbox(_unquote(literal[len("geography") :]))
        return lambda r: r.bbox is not None and _overlaps(area, r.bbox)

    def any_attribute(self, path: str) -> Predicate:
        if not path.startswith("Attributes/"):
            raise FilterError(f"any() is served on Attributes only, not {path}")
        self.take("(")
        variable = self.take(kind="name").text
        self.take(":")
        inner = _AttributeParser(self.tokens, self.position, variable)
        predicate = inner.expr()
        self.position = inner.position
        self.take(")")
        attribute_predicate: Callable[[Any], bool] = predicate
        return lambda r: any(attribute_predicate(a) for a in r.attributes)

    def literal(self) -> Any:
        token = self.take()
        if token.kind == "string":
            return _unquote(token.text)
        if token.kind == "datetime":
            try:
                return parse_timestamp(token.text)
            except ValueError as exc:
                raise FilterError(str(exc)) from None
        if token.kind == "number":
            return float(token.text) if "." in token.text else int(token.text)
        if token.text in {"true", "false"}:
            return token.text == "true"
        raise FilterError(f"expected a value, found {token.text!r}")

    def comparison(self, path: str, top: bool) -> Predicate:
        op = self.take(kind="name").text
        if op not in _OPERATORS:
            raise FilterError(f"unknown operator {op!r}")
        value = self.literal()
        getter = _getter(path)
        if path in _DATE_PATHS and not isinstance(value, datetime):
            raise FilterError(f"{path} compares with a datetime, got {value!r}")
        if path == "PublicationDate" and top:
            self.bounds.append(Bound(op, value))
        return _compare(getter, op, value)


class _AttributeParser(_Parser):
    """The expression inside ``any(att: …)``: comparisons on ``att/Name`` and ``att/…/Value``."""

    def __init__(self, tokens: list[Token], position: int, variable: str) -> None:
        super().__init__(tokens)
        self.position = position
        self.variable = variable

    def comparison(self, path: str, top: bool) -> Predicate:
        op = self.take(kind="name").text
        if op not in _OPERATORS:
            raise FilterError(f"unknown operator {op!r}")
        value = self.literal()
        if not path.startswith(self.variable + "/"):
            raise FilterError(f"{path} does not name the any() variable {self.variable!r}")
        key = path.rsplit("/", 1)[-1]
        if key not in {"Name", "Value"}:
            raise FilterError(f"attribute field {key!r} is not served")

        def get(attribute: Any) -> Any:
            return attribute.get(key)

        return _compare(get, op, value)


def _getter(path: str) -> Callable[[Indexed], Any]:
    getters: dict[str, Callable[[Indexed], Any]] = {
        "Name": lambda r: r.name,
        "Id": lambda r: r.id,
        "Online": lambda r: r.record.get("Online"),
        "Collection/Name": lambda r: r.collection,
        "PublicationDate": lambda r: r.publication,
        "ContentDate/Start": lambda r: r.content_start,
        "ContentDate/End": lambda r: r.content_end,
        "OriginDate": lambda r: _maybe_time(r.record.get("OriginDate")),
        "ModificationDate": lambda r: _maybe_time(r.record.get("ModificationDate")),
    }
    try:
        return getters[path]
    except KeyError:
        raise FilterError(f"property {path!r} is not served") from None


def _maybe_time(value: Any) -> datetime | None:
    try:
        return parse_timestamp(value)
    except ValueError:
        return None


def _compare(getter: Callable[[Any], Any], op: str, value: Any) -> Callable[[Any], bool]:
    def check(item: Any) -> bool:
        actual = getter(item)
        if op == "eq":
            return bool(actual == value)
        if op == "ne":
            return bool(actual != value)
        if actual is None:
            return False
        try:
            if op == "gt":
                return bool(actual > value)
            if op == "ge":
                return bool(actual >= value)
            if op == "lt":
                return bool(actual < value)
            return bool(actual <= value)
        except TypeError:
            return False

    return check


def compile_filter(text: str) -> tuple[Predicate, list[Bound]]:
    """A predicate for the filter, and its top-level ``PublicationDate`` bounds (for bisecting;
    empty when an ``or`` at the top makes them unusable)."""
    if not text.strip():
        return (lambda r: True), []
    parser = _Parser(tokenize(text))
    predicate = parser.parse()
    return predicate, list(parser.bounds)
