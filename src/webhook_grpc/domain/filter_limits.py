"""Bounds on what a subscription filter may cost, checked on its source before compiling.

The CEL library has no evaluation cost limit, and filters run on the publishing path for every
event of the tenant. CEL itself is not Turing-complete: without comprehensions, evaluation is
linear in the expression size and the event size. Comprehensions (`all`, `exists`,
`exists_one`, `map`, `filter`) are where cost multiplies: one nested in another is quadratic in
the event, and so is a body that walks the event again (`data.lines.all(l, data.lines...)`).
So a comprehension may not contain another, and its body may use its own variable, literals,
`type` and `entity_id`, but not `data`, `previous` (nor `event.data`, `.data`); then a filter
costs at most about (source length x event size). Filters are short: a few predicates.

The check reads CEL's tokens (comments and string literals are skipped exactly as CEL's lexer
skips them), so a quote or `//` cannot hide a comprehension from it. It is conservative: an
iteration variable named `data` is refused too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

MAX_FILTER_CHARS: Final = 2048
MAX_COMPREHENSIONS: Final = 4

_COMPREHENSIONS: Final = frozenset({"all", "exists", "exists_one", "map", "filter"})
_EVENT_NAMES: Final = frozenset({"data", "previous", "event"})

# One CEL token (or skipped text) at a time, tried in this order at each position. Raw strings
# escape nothing; other strings may hold escaped quotes. Unknown characters are single tokens
# (the compiler refuses them afterwards).
_TOKEN: Final = re.compile(
    r"""(?P<skip>\s+|//[^\n]*)"""
    r"""|(?P<string>[bB]?[rR][bB]?(?:'''.*?'''|\"\"\".*?\"\"\"|'[^'\n]*'|"[^"\n]*")"""
    r"""|[bB]?(?:'''(?:\\.|.)*?'''|\"\"\"(?:\\.|.)*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"))"""
    r"""|(?P<number>0[xX][0-9a-fA-F]+[uU]?|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[uU]?)"""
    r"""|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"""
    r"""|(?P<other>.)""",
    re.DOTALL,
)
# After one of these a `.` selects a member; anywhere else it is the root-scope prefix (`.data`).
_OPERAND_ENDS: Final = frozenset({")", "]", "}"})
_OPERATOR_WORDS: Final = frozenset({"in"})


@dataclass(frozen=True)
class LimitBreach:
    """Why a filter is refused, and where (0-based offset into the source)."""

    offset: int
    reason: str


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    offset: int


def cost_breach(source: str) -> LimitBreach | None:
    """The first rule `source` breaks, or None. Only meaningful on text that also compiles:
    an unbalanced parenthesis is left to the compiler's own error."""
    if len(source) > MAX_FILTER_CHARS:
        return LimitBreach(MAX_FILTER_CHARS, f"a filter is at most {MAX_FILTER_CHARS} characters")
    tokens = _tokens(source)
    comprehensions = _comprehensions(tokens)
    if len(comprehensions) > MAX_COMPREHENSIONS:
        return LimitBreach(
            tokens[comprehensions[MAX_COMPREHENSIONS][0]].offset,
            f"a filter has at most {MAX_COMPREHENSIONS} comprehensions (all, exists, map, ...)",
        )
    for name_at, opening, closing in comprehensions:
        if any(opening < other < closing for other, _, _ in comprehensions):
            nested = "a comprehension may not contain another one"
            return LimitBreach(tokens[name_at].offset, nested)
        for index in range(opening + 1, closing):
            if _reads_the_event(tokens, index):
                return LimitBreach(
                    tokens[index].offset,
                    f"a comprehension's body may not read `{tokens[index].text}` (its cost "
                    "would multiply); use the comprehension's own variable",
                )
    return None


def _tokens(source: str) -> list[_Token]:
    return [
        _Token(match.lastgroup or "other", match.group(), match.start())
        for match in _TOKEN.finditer(source)
        if match.lastgroup != "skip"
    ]


def _is_member_dot(tokens: list[_Token], index: int) -> bool:
    """Whether tokens[index] is a `.` that selects a member of the operand before it."""
    if tokens[index].text != "." or index == 0:
        return False
    before = tokens[index - 1]
    if before.kind == "name":
        return before.text not in _OPERATOR_WORDS
    return before.kind in ("string", "number") or before.text in _OPERAND_ENDS


def _comprehensions(tokens: list[_Token]) -> list[tuple[int, int, int]]:
    """(name, opening parenthesis, closing parenthesis) token indexes of each `x.all(...)`."""
    found = []
    for index in range(1, len(tokens) - 1):
        if (
            tokens[index].kind == "name"
            and tokens[index].text in _COMPREHENSIONS
            and tokens[index + 1].text == "("
            and _is_member_dot(tokens, index - 1)
        ):
            found.append((index, index + 1, _closing(tokens, index + 1)))
    return found


def _closing(tokens: list[_Token], opening: int) -> int:
    depth = 0
    for index in range(opening, len(tokens)):
        if tokens[index].text == "(":
            depth += 1
        elif tokens[index].text == ")":
            depth -= 1
            if depth == 0:
                return index
    return len(tokens)


def _reads_the_event(tokens: list[_Token], index: int) -> bool:
    token = tokens[index]
    return (
        token.kind == "name"
        and token.text in _EVENT_NAMES
        and not (index > 0 and _is_member_dot(tokens, index - 1))
    )
