"""FHIRPath parser: text -> AST, for the subset SQL-on-FHIR v2 views use.

A small Pratt parser following the FHIRPath grammar's precedence (highest first): `.` and `[]`,
unary `+ -`, `* / div mod`, `+ - &`, `is as`, `|`, `< > <= >=`, `= ~ != !~`, `in contains`, `and`,
`or xor`, `implies`. The AST is pure data; the compiler (compiler.py) gives it meaning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


class FhirPathSyntaxError(ValueError):
    """The expression is not valid FHIRPath (message says where)."""


@dataclass(frozen=True)
class Node:
    """Base of all AST nodes."""


@dataclass(frozen=True)
class Literal(Node):
    """A literal: `type` is one of boolean, string, integer, decimal, date, dateTime, time, empty."""

    value: object
    type: str


@dataclass(frozen=True)
class This(Node):
    """`$this` (also the implicit start of a relative path)."""


@dataclass(frozen=True)
class Index(Node):
    """`$index` inside a function argument."""


@dataclass(frozen=True)
class Constant(Node):
    """`%name`: a view constant or an environment variable such as %rowIndex."""

    name: str


@dataclass(frozen=True)
class Member(Node):
    """`target.name`: navigation to a child element."""

    target: Node
    name: str


@dataclass(frozen=True)
class Call(Node):
    """`target.name(args)`: a function invocation on the target collection."""

    target: Node
    name: str
    args: tuple[Node, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Indexer(Node):
    """`target[index]`."""

    target: Node
    index: Node


@dataclass(frozen=True)
class Binary(Node):
    """`left op right`."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Unary(Node):
    """`-x` or `+x`."""

    op: str
    operand: Node


@dataclass(frozen=True)
class TypeOp(Node):
    """`target is Type` / `target as Type`."""

    op: str
    target: Node
    type_name: str


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|//[^\n]*|/\*.*?\*/)
  | (?P<datetime>@\d{4}(?:-\d{2}(?:-\d{2})?)?(?:T(?:\d{2}(?::\d{2}(?::\d{2}(?:\.\d+)?)?)?)?(?:Z|[+-]\d{2}:\d{2})?)?)
  | (?P<time>@T\d{2}(?::\d{2}(?::\d{2}(?:\.\d+)?)?)?)
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<delimited>`(?:[^`\\]|\\.)*`)
  | (?P<constant>%(?:[A-Za-z_][A-Za-z0-9_]*|`(?:[^`\\]|\\.)*`|'(?:[^'\\]|\\.)*'))
  | (?P<special>\$this|\$index|\$total)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><=|>=|!=|!~|[-+*/&|<>=~.,()\[\]{}])
    """,
    re.VERBOSE | re.DOTALL,
)

_ESCAPES = {
    "'": "'",
    '"': '"',
    "`": "`",
    "\\": "\\",
    "/": "/",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
}


def _unescape(body: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt == "u" and i + 5 < len(body) + 1:
                out.append(chr(int(body[i + 2 : i + 6], 16)))
                i += 6
                continue
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    pos: int


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise FhirPathSyntaxError(f"unexpected character {text[pos]!r} at {pos} in {text!r}")
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append(_Tok(kind, m.group(), pos))
        pos = m.end()
    tokens.append(_Tok("eof", "", len(text)))
    return tokens


# Binary operators: token text -> (left binding power); all left-associative.
_BINARY = {
    "implies": 10,
    "or": 20,
    "xor": 20,
    "and": 30,
    "in": 40,
    "contains": 40,
    "=": 50,
    "~": 50,
    "!=": 50,
    "!~": 50,
    "<": 60,
    ">": 60,
    "<=": 60,
    ">=": 60,
    "|": 70,
    "is": 80,
    "as": 80,
    "+": 90,
    "-": 90,
    "&": 90,
    "*": 100,
    "/": 100,
    "div": 100,
    "mod": 100,
}
_UNARY_BP = 110
_POSTFIX_BP = 120


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    def peek(self) -> _Tok:
        return self.tokens[self.i]

    def next(self) -> _Tok:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect(self, text: str) -> _Tok:
        tok = self.next()
        if tok.text != text:
            raise self.error(tok, f"expected {text!r}")
        return tok

    def error(self, tok: _Tok, problem: str) -> FhirPathSyntaxError:
        found = tok.text or "end of expression"
        return FhirPathSyntaxError(
            f"{problem} at position {tok.pos} (found {found!r}) in {self.text!r}"
        )

    def parse(self) -> Node:
        if self.peek().kind == "eof":
            raise self.error(self.peek(), "empty expression")
        node = self.expression(0)
        if self.peek().kind != "eof":
            raise self.error(self.peek(), "unexpected token")
        return node

    def expression(self, min_bp: int) -> Node:
        left = self.prefix()
        while True:
            tok = self.peek()
            if tok.text in (".", "[") and tok.kind == "op":
                left = self.postfix(left)
                continue
            bp = _BINARY.get(tok.text) if tok.kind in ("op", "ident") else None
            if bp is None or bp <= min_bp:
                return left
            self.next()
            if tok.text in ("is", "as"):
                left = TypeOp(tok.text, left, self.type_specifier())
            else:
                left = Binary(tok.text, left, self.expression(bp))

    def type_specifier(self) -> str:
        parts = [self.identifier()]
        while self.peek().text == "." and self.tokens[self.i + 1].kind in ("ident", "delimited"):
            self.next()
            parts.append(self.identifier())
        return ".".join(parts)

    def identifier(self) -> str:
        tok = self.next()
        if tok.kind == "ident":
            return tok.text
        if tok.kind == "delimited":
            return _unescape(tok.text[1:-1])
        raise self.error(tok, "expected an identifier")

    def postfix(self, target: Node) -> Node:
        tok = self.next()
        if tok.text == "[":
            index = self.expression(0)
            self.expect("]")
            return Indexer(target, index)
        return self.invocation(target)

    def invocation(self, target: Node) -> Node:
        tok = self.peek()
        if tok.kind == "special":
            self.next()
            return This() if tok.text == "$this" else Index()
        name = self.identifier()
        if self.peek().text == "(":
            self.next()
            args: list[Node] = []
            if self.peek().text != ")":
                args.append(self.expression(0))
                while self.peek().text == ",":
                    self.next()
                    args.append(self.expression(0))
            self.expect(")")
            return Call(target, name, tuple(args))
        return Member(target, name)

    def prefix(self) -> Node:
        tok = self.peek()
        if tok.kind == "op" and tok.text in ("+", "-"):
            self.next()
            return Unary(tok.text, self.expression(_UNARY_BP))
        if tok.kind == "op" and tok.text == "(":
            self.next()
            inner = self.expression(0)
            self.expect(")")
            return inner
        if tok.kind == "op" and tok.text == "{":
            self.next()
            self.expect("}")
            return Literal(None, "empty")
        if tok.kind == "number":
            self.next()
            if "." in tok.text:
                return Literal(float(tok.text), "decimal")
            return Literal(int(tok.text), "integer")
        if tok.kind == "string":
            self.next()
            return Literal(_unescape(tok.text[1:-1]), "string")
        if tok.kind == "datetime":
            self.next()
            value = tok.text[1:]
            return Literal(value, "dateTime" if "T" in value else "date")
        if tok.kind == "time":
            self.next()
            return Literal(tok.text[2:], "time")
        if tok.kind == "constant":
            self.next()
            name = tok.text[1:]
            if name[:1] in ("`", "'"):
                name = _unescape(name[1:-1])
            return Constant(name)
        if tok.kind == "ident" and tok.text in ("true", "false"):
            self.next()
            return Literal(tok.text == "true", "boolean")
        if tok.kind in ("ident", "delimited", "special"):
            return self.invocation(This())
        raise self.error(tok, "unexpected token")


def parse(text: str) -> Node:
    """Parses a FHIRPath expression; raises FhirPathSyntaxError with the position of the problem."""
    if not isinstance(text, str):
        raise FhirPathSyntaxError(
            f"a FHIRPath expression must be a string, not {type(text).__name__}"
        )
    return _Parser(text).parse()
