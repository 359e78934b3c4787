"""Templates of the ``http`` connector (resource paths, query values, JSON bodies): Jinja.

``"/repos/{{ owner }}/{{ repo }}"``, ``"{{ since | default('2024-01-01') }}"`` and
``"{{ 'open' if only_open else 'all' }}"`` read the template values (the resource's
``params``, overridden by the read options' ``params``). In a path, every value
written by ``{{ ... }}`` is URL-quoted (``a/b`` becomes ``a%2Fb``), so a value
cannot add a path segment, a query or another host. A body value that is a single
``{{ ... }}`` keeps its JSON type (``{"limit": "{{ n }}"}`` sends a number).

The environment is ``jinja2.sandbox.ImmutableSandboxedEnvironment`` with
``StrictUndefined`` (a name without a value is an error, never an empty string),
autoescape off and no loader (nothing to include, import or extend). A template is
a tenant's input, so it is also bounded: it may hold ``{{ expressions }}``,
``{% if %}`` blocks and comments (no loops, assignments, macros or calls), the
filters in :data:`FILTERS`, at most :data:`MAX_NAMES` value references, and no
``**``, ``%`` on strings, ``*`` on lists or ``*`` that makes a string longer than
:data:`MAX_RENDERED`.

The syntax before Jinja, ``{name}`` (``str.format`` fields), still works: a
template without Jinja markup (``{{``, ``{%``, ``{#``) whose fields are plain names
is read as ``{{ name }}``; a format spec or conversion there (``{x:>10}``) is refused.
"""

from __future__ import annotations

import functools
import string
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from jinja2 import StrictUndefined, TemplateError, nodes
from jinja2.exceptions import SecurityError
from jinja2.meta import find_undeclared_variables
from jinja2.runtime import Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

if TYPE_CHECKING:
    from collections.abc import Mapping

    from jinja2 import Template

MAX_SOURCE = 16_384  # characters of one template
MAX_NAMES = 64  # values one template may read (each can be long: together they are bounded)
MAX_RENDERED = 1_048_576  # characters of one rendered template, or of a string it builds
FILTERS = frozenset(
    {
        "abs", "capitalize", "d", "default", "first", "float", "int", "last", "length",
        "lower", "replace", "round", "string", "title", "tojson", "trim", "truncate",
        "upper", "urlencode",
    }
)  # fmt: skip
_MARKUP = ("{{", "{%", "{#")
_ALLOWED_NODES: tuple[type[nodes.Node], ...] = (
    nodes.Template, nodes.Output, nodes.TemplateData, nodes.If, nodes.Name, nodes.Const,
    nodes.Getattr, nodes.Getitem, nodes.Slice, nodes.Filter, nodes.Test, nodes.CondExpr,
    nodes.Compare, nodes.Operand, nodes.And, nodes.Or, nodes.Not, nodes.Neg, nodes.Pos,
    nodes.Add, nodes.Sub, nodes.Mul, nodes.Div, nodes.FloorDiv, nodes.Mod, nodes.Concat,
    nodes.List, nodes.Tuple, nodes.Dict, nodes.Pair, nodes.Keyword,
)  # fmt: skip


class TemplateProblem(ValueError):
    """A template that is not allowed, or that cannot be rendered with the values given."""


def _replace(value: Any, old: Any, new: Any, count: int | None = None) -> str:
    text, old, new = str(value), str(old), str(new)
    hits = text.count(old) if old else len(text) + 1
    if count is not None and count >= 0:
        hits = min(hits, count)
    if len(text) + hits * (len(new) - len(old)) > MAX_RENDERED:
        raise SecurityError(f"replace would make a string longer than {MAX_RENDERED:,} characters")
    return text.replace(old, new, -1 if count is None else count)


class _Environment(ImmutableSandboxedEnvironment):
    """The sandbox with the operators that could allocate without bound intercepted."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            raise SecurityError("'**' is not allowed in a template")
        if operator == "%" and isinstance(left, str):
            raise SecurityError("'%' formatting is not allowed in a template (use filters)")
        if operator == "*":
            if isinstance(left, list | tuple) or isinstance(right, list | tuple):
                raise SecurityError("'*' on a list is not allowed in a template")
            for text, times in ((left, right), (right, left)):
                if (
                    isinstance(text, str)
                    and isinstance(times, int)
                    and len(text) * times > MAX_RENDERED
                ):
                    raise SecurityError(f"'*' would build more than {MAX_RENDERED:,} characters")
        return super().call_binop(context, operator, left, right)


@functools.cache
def _environment(url_path: bool) -> _Environment:
    env = _Environment(
        undefined=StrictUndefined,
        autoescape=False,
        loader=None,
        keep_trailing_newline=True,
        finalize=(lambda value: quote(str(value), safe="")) if url_path else None,
    )
    env.filters = {name: f for name, f in env.filters.items() if name in FILTERS}
    env.filters["replace"] = _replace
    env.globals.clear()  # no range(), lipsum(), cycler(), namespace()...
    return env


def _jinja_source(source: str) -> str:
    """``source`` in Jinja syntax: the old ``{name}`` fields become ``{{ name }}``."""
    if "{" not in source or any(mark in source for mark in _MARKUP):
        return source
    try:
        parts = list(string.Formatter().parse(source))
    except ValueError:
        return source  # not a str.format template either: plain text
    out: list[str] = []
    for literal, name, spec, conversion in parts:
        out.append(literal)
        if name is None:
            continue
        if not name.isidentifier():
            return source  # braces that are text (a JSON snippet), not old-style fields
        if spec or conversion:
            raise TemplateProblem(
                f"{{{name}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}}"
                f": the old template syntax's format specs and conversions are not supported;"
                f" write {{{{ {name} }}}} (with a filter such as round or truncate)"
            )
        out.append("{{ " + name + " }}")
    return "".join(out)


_REFUSED_NAMES = {
    "Call": "a call (x.upper(), range())",
    "For": "{% for %}",
    "Assign": "{% set %}",
    "AssignBlock": "{% set %}",
    "Pow": "'**'",
    "Macro": "{% macro %}",
    "CallBlock": "{% call %}",
    "FilterBlock": "{% filter %}",
    "With": "{% with %}",
}


def _check_nodes(tree: nodes.Template) -> None:
    if sum(1 for _ in tree.find_all(nodes.Name)) > MAX_NAMES:
        raise TemplateProblem(f"a template may read values at most {MAX_NAMES} times")
    for node in tree.find_all(nodes.Node):
        if not isinstance(node, _ALLOWED_NODES):
            name = type(node).__name__
            what = _REFUSED_NAMES.get(name, f"{{% {name.lower()} %}}")
            raise TemplateProblem(
                f"{what} is not allowed in a template: use {{{{ expressions }}}}, filters and"
                " {% if %} blocks"
            )
        private = (isinstance(node, nodes.Getattr) and node.attr.startswith("_")) or (
            isinstance(node, nodes.Getitem)
            and isinstance(node.arg, nodes.Const)
            and str(node.arg.value).startswith("_")
        )
        if private:  # the sandbox refuses these when rendering too; say so at validation
            raise TemplateProblem("access to attributes starting with '_' is unsafe")
        if isinstance(node, nodes.Filter) and node.name not in FILTERS:
            raise TemplateProblem(
                f"filter {node.name!r} is not allowed (allowed: {', '.join(sorted(FILTERS))})"
            )


@functools.lru_cache(maxsize=1024)
def _parsed(source: str) -> tuple[str, nodes.Template]:
    if len(source) > MAX_SOURCE:
        raise TemplateProblem(f"a template may have at most {MAX_SOURCE:,} characters")
    jinja = _jinja_source(source)
    try:
        tree = _environment(False).parse(jinja)
    except TemplateError as exc:
        raise TemplateProblem(f"invalid template: {exc}") from None
    except RecursionError:
        raise TemplateProblem("invalid template: nested too deeply") from None
    _check_nodes(tree)
    return jinja, tree


@functools.lru_cache(maxsize=1024)
def _compiled(source: str, url_path: bool) -> Template:
    jinja, _ = _parsed(source)
    try:
        return _environment(url_path).from_string(jinja)
    except TemplateError as exc:  # the parse above passed: a compile-time problem
        raise TemplateProblem(f"invalid template: {exc}") from None
    except RecursionError:
        raise TemplateProblem("invalid template: nested too deeply") from None


def check_template(source: str) -> str:
    """``source`` if it is an allowed template (TemplateProblem says why not)."""
    _compiled(source, False)
    return source


def template_fields(source: str) -> list[str]:
    """The names of the values ``source`` reads, sorted."""
    return sorted(find_undeclared_variables(_parsed(source)[1]))


def render(source: str, values: Mapping[str, Any], *, url_path: bool = False) -> str:
    """``source`` filled from ``values``; with ``url_path`` every value written is URL-quoted.

    TemplateProblem names a value that is missing or an expression that fails.
    """
    try:
        text = _compiled(source, url_path).render(values)
    except TemplateProblem:
        raise
    except TemplateError as exc:
        raise TemplateProblem(str(exc)) from None
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise TemplateProblem(f"cannot be rendered: {exc}") from None
    if len(text) > MAX_RENDERED:
        raise TemplateProblem(f"renders to more than {MAX_RENDERED:,} characters")
    return text


def _single_expression(source: str) -> str | None:
    """The expression of a template that is one ``{{ expression }}`` and nothing else."""
    jinja, tree = _parsed(source)
    body = tree.body
    if (
        len(body) != 1
        or not isinstance(body[0], nodes.Output)
        or len(body[0].nodes) != 1
        or isinstance(body[0].nodes[0], nodes.TemplateData)
    ):
        return None
    text = jinja.strip()
    if not (text.startswith("{{") and text.endswith("}}")):
        return None
    return text[2:-2].strip("-+ \t\r\n")


def _render_value(source: str, values: Mapping[str, Any]) -> Any:
    expression = _single_expression(source)
    if expression is None:
        return render(source, values)
    try:
        value = _environment(False).compile_expression(expression, undefined_to_none=False)(
            **values
        )
        if isinstance(value, Undefined):
            str(value)  # StrictUndefined: raises, naming what is missing
    except TemplateProblem:
        raise
    except TemplateError as exc:
        raise TemplateProblem(str(exc)) from None
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise TemplateProblem(f"cannot be rendered: {exc}") from None
    return value


def render_json(value: Any, values: Mapping[str, Any]) -> Any:
    """Render every string leaf of a JSON template; ``"{{ x }}"`` alone keeps x's JSON type."""
    if isinstance(value, str):
        return _render_value(value, values)
    if isinstance(value, dict):
        return {k: render_json(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [render_json(v, values) for v in value]
    return value


def literal_text(source: str) -> str:
    """``source`` with each ``{{ ... }}`` as ``_`` and tags and comments removed.

    What a path template always contains, for the checks on its shape (a template
    like ``//{{ host }}`` is refused before anything is rendered).
    """
    jinja, _ = _parsed(source)
    out: list[str] = []
    inside: str | None = None
    for _, kind, text in _environment(False).lex(jinja):
        if inside is None:
            if kind == "data":
                out.append(text)
            elif kind in {"variable_begin", "block_begin", "comment_begin"}:
                inside = kind.replace("_begin", "_end")
                if kind == "variable_begin":
                    out.append("_")
        elif kind == inside:
            inside = None
    return "".join(out)
