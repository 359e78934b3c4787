"""How large an expression may be, checked before anything recurses through it.

sqlglot parses a parenthesis, a function call or a CASE recursively (about 25 Python
frames a level) and the translator walks the tree recursively, so an expression nested
deeper than Python's ~1,000 frames allow used to fail with a RecursionError (at about
40 parentheses). Now:

- an expression has at most :data:`MAX_LENGTH` characters;
- it nests at most :data:`MAX_DEPTH` levels: brackets are counted on the tokens before
  parsing, the tree after it (a run of one operator, ``a + b - c + ...``,
  ``a AND b AND ...``, counts as one level however long);
- such a run has at most :data:`MAX_OPERANDS` operands (Polars slows down sharply on
  expressions much deeper than that);
- parsing and translating run with :func:`headroom`: enough Python frames for an
  expression within those bounds, whatever the caller's stack.

Past a bound the error says which one, as a validation error naming the node and field.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from typing import TYPE_CHECKING

from sqlglot import exp
from sqlglot.tokenizer_core import TokenType

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlglot.tokenizer_core import Token

MAX_LENGTH = 100_000  # characters of one expression
MAX_DEPTH = 200  # levels of nesting of one expression
MAX_OPERANDS = 1_000  # operands of one run of an operator (a + b + ...)

#: Python frames an expression within the bounds may need, beyond the caller's: sqlglot's
#: parser takes ~25 a level, the translator ~6 a level or an operand, rendering ~4
FRAMES = 12_000

_OPEN = frozenset({TokenType.L_PAREN, TokenType.L_BRACKET, TokenType.L_BRACE})
_CLOSE = frozenset({TokenType.R_PAREN, TokenType.R_BRACKET, TokenType.R_BRACE})

#: operators whose runs (``a + b - c``: the left operand is the same operator) count as one
#: level; each is in the family of operators it chains with
_FAMILY: dict[type[exp.Expr], str] = {
    exp.Add: "additive",
    exp.Sub: "additive",
    exp.Mul: "multiplicative",
    exp.Div: "multiplicative",
    exp.IntDiv: "multiplicative",
    exp.Mod: "multiplicative",
    exp.And: "and",
    exp.Or: "or",
    exp.DPipe: "concat",
}


def too_deep(sql: str, what: str = "expression") -> str:
    return f"{what} {sql[:80]!r}... nests deeper than {MAX_DEPTH} levels"


def bracket_depth(tokens: list[Token]) -> int:
    """The deepest nesting of brackets among ``tokens`` (strings are single tokens)."""
    depth = deepest = 0
    for token in tokens:
        if token.token_type in _OPEN:
            depth += 1
            deepest = max(deepest, depth)
        elif token.token_type in _CLOSE:
            depth -= 1
    return deepest


_LEAVES = (exp.Identifier, exp.Column, exp.Literal, exp.Null, exp.Boolean, exp.Star, exp.Var)


def _is_when(node: exp.Expr, child: exp.Expr) -> bool:
    return isinstance(node, exp.Case) and any(child is w for w in node.args.get("ifs") or ())


def _chains(parent: exp.Expr, child: exp.Expr) -> bool:
    """Whether ``child`` continues ``parent``'s run (it is its left operand, same family)."""
    family = _FAMILY.get(type(parent))
    return family is not None and child is parent.this and _FAMILY.get(type(child)) == family


def measure(tree: exp.Expr) -> tuple[int, int]:
    """(nesting depth, the most operands of one run of an operator), without recursion."""
    deepest = longest = 0
    # node, its nesting level, the operands of the run it ends (0: it is in no run)
    stack: list[tuple[exp.Expr, int, int]] = [(tree, 1, 0)]
    while stack:
        node, level, run = stack.pop()
        deepest = max(deepest, level)
        starts = type(node) in _FAMILY and run == 0
        run = 2 if starts else run
        longest = max(longest, run)
        for child in node.iter_expressions():
            if _chains(node, child):
                stack.append((child, level, run + 1))
            elif isinstance(node, exp.Paren) or isinstance(child, _LEAVES) or _is_when(node, child):
                # brackets were counted on the tokens; a name, a value, a CASE's WHEN add none
                stack.append((child, level, 0))
            else:
                stack.append((child, level + 1, 0))
    return deepest, longest


def bounds_error(tree: exp.Expr, sql: str) -> str | None:
    """Why the parsed expression is out of bounds (None: it is within them)."""
    depth, operands = measure(tree)
    if depth > MAX_DEPTH:
        return too_deep(sql)
    if operands > MAX_OPERANDS:
        return f"expression {sql[:80]!r}... chains more than {MAX_OPERANDS:,} operands"
    return None


_lock = threading.Lock()
_holders = 0
_saved_limit = 0


@contextlib.contextmanager
def headroom() -> Iterator[None]:
    """Python's recursion limit raised by :data:`FRAMES` while an expression is parsed or
    translated, then set back once no thread needs it (the limit is per process). Pure
    Python calls take no C stack on Python 3.11+, so the deeper limit is safe."""
    global _holders, _saved_limit
    with _lock:
        if _holders == 0:
            _saved_limit = sys.getrecursionlimit()
            sys.setrecursionlimit(_saved_limit + FRAMES)
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0:
                sys.setrecursionlimit(_saved_limit)
