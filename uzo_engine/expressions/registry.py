"""The functions UZO's expressions know: one registry, read by the compiler and the docs.

Each function is declared once with its SQL name (as DuckDB spells it), aliases,
signature, result type and a line of documentation, next to its implementation;
the dialect reference (``docs/expressions.md``) is generated from this registry,
so the two cannot drift. sqlglot parses many functions into their own node
class (``regexp_matches`` is ``RegexpLike``); others arrive as ``Anonymous``
with their name. Both are looked up here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from sqlglot import exp

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from uzo_engine.expressions.typed import Typed


class Impl(Protocol):
    def __call__(self, tr: Any, node: exp.Expr) -> Typed: ...


@dataclass(frozen=True)
class Function:
    name: str
    signature: str  # e.g. "regexp_matches(string, pattern)"
    returns: str  # e.g. "BOOLEAN"
    doc: str
    category: str
    impl: Impl
    nodes: tuple[type[exp.Expr], ...] = ()
    aliases: tuple[str, ...] = ()
    volatile: bool = False  # a new value on every run (now()): never cached or folded


@dataclass
class Registry:
    functions: list[Function] = field(default_factory=list)
    by_node: dict[type[exp.Expr], Function] = field(default_factory=dict)
    by_name: dict[str, Function] = field(default_factory=dict)

    def add(self, fn: Function) -> None:
        for node_type in fn.nodes:
            if node_type in self.by_node:
                raise ValueError(f"{node_type.__name__} is registered twice")
            self.by_node[node_type] = fn
        for name in (fn.name, *fn.aliases):
            self.by_name.setdefault(name.lower(), fn)
        self.functions.append(fn)

    def lookup(self, node: exp.Expr) -> Function | None:
        if isinstance(node, exp.Anonymous):
            return self.by_name.get(str(node.name).lower())
        return self.by_node.get(type(node))

    def __iter__(self) -> Iterator[Function]:
        return iter(sorted(self.functions, key=lambda f: (f.category, f.name)))


REGISTRY = Registry()


def function(
    name: str,
    *,
    signature: str,
    returns: str,
    doc: str,
    category: str,
    nodes: tuple[type[exp.Expr], ...] = (),
    aliases: tuple[str, ...] = (),
    volatile: bool = False,
) -> Callable[[Impl], Impl]:
    """Register the decorated implementation ``(translator, node) -> Typed``."""

    def register(impl: Impl) -> Impl:
        REGISTRY.add(
            Function(
                name=name,
                signature=signature,
                returns=returns,
                doc=doc,
                category=category,
                impl=impl,
                nodes=nodes,
                aliases=aliases,
                volatile=volatile,
            )
        )
        return impl

    return register


def sql_function_name(node: exp.Expr) -> str:
    """A function node's name as a user would write it (DuckDB's spelling, lower case)."""
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    text = node.sql(dialect="duckdb")
    head = text.split("(", 1)[0].strip()
    return head.lower() if head.replace("_", "").isalnum() else type(node).__name__.lower()
