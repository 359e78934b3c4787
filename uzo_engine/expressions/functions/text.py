"""String functions, with DuckDB's edge cases (positions count characters, not bytes)."""

from __future__ import annotations

import re

import polars as pl
from sqlglot import exp

from uzo_engine.expressions.casts import cast
from uzo_engine.expressions.compiler import BOOL, Translator
from uzo_engine.expressions.registry import function
from uzo_engine.expressions.typed import Typed, null_of

STRING = pl.String()
BIGINT = pl.Int64()


def _s(tr: Translator, node: exp.Expr, key: str = "this", what: str = "") -> Typed:
    return tr.expect(tr.arg(node, key), ("string",), what or f"{key} argument")


def _n(tr: Translator, node: exp.Expr, key: str, what: str) -> Typed:
    return tr.expect(tr.arg(node, key), ("integer",), what)


# DuckDB's trim removes Unicode space separators (not tabs or newlines)
SPACES = " \u00a0\u1680" + "".join(chr(c) for c in range(0x2000, 0x200B)) + "\u202f\u205f\u3000"


def _nulls(*args: Typed) -> bool:
    return any(a.null_constant for a in args)


def propagate(result: pl.Expr, *args: Typed) -> pl.Expr:
    """``result``, NULL where any (non-constant) argument is NULL."""
    checks = [a.expr.is_null() for a in args if not a.constant]
    if not checks:
        return result
    return pl.when(pl.any_horizontal(checks)).then(None).otherwise(result)


@function(
    "lower", signature="lower(string)", returns="VARCHAR", category="string",
    doc="Lower case.", nodes=(exp.Lower,), aliases=("lcase",),
)  # fmt: skip
def _lower(tr: Translator, node: exp.Expr) -> Typed:
    s = _s(tr, node)
    return Typed(s.expr.str.to_lowercase(), STRING)


@function(
    "upper", signature="upper(string)", returns="VARCHAR", category="string",
    doc="Upper case.", nodes=(exp.Upper,), aliases=("ucase",),
)  # fmt: skip
def _upper(tr: Translator, node: exp.Expr) -> Typed:
    s = _s(tr, node)
    return Typed(s.expr.str.to_uppercase(), STRING)


@function(
    "length", signature="length(string | list)", returns="BIGINT", category="string",
    doc="Characters in a string (not bytes), or elements of a list.",
    nodes=(exp.Length,), aliases=("len", "char_length", "character_length"),
)  # fmt: skip
def _length(tr: Translator, node: exp.Expr) -> Typed:
    value = tr.arg(node)
    if value.family == "list":
        return Typed(value.expr.list.len().cast(BIGINT), BIGINT)
    s = tr.expect(value, ("string",), "length's argument")
    return Typed(s.expr.str.len_chars().cast(BIGINT), BIGINT)


def substring(s: Typed, start: Typed, length: Typed | None) -> Typed:
    """DuckDB's substring: 1-based; 0 and negative starts count as DuckDB counts them
    (``substr('hello', 0, 2)`` is 'h', ``substr('hello', -3)`` is 'llo'); a negative
    length takes the characters before the start."""
    n = s.expr.str.len_chars().cast(BIGINT)
    first = start.expr.cast(BIGINT)
    begin = pl.when(first < 0).then(n + first + 1).otherwise(first)  # 1-based, may be <= 0
    if length is None:
        end = n + 1
    else:
        size = length.expr.cast(BIGINT)
        end = pl.when(size < 0).then(begin).otherwise(begin + size)
        begin = pl.when(size < 0).then(begin + size).otherwise(begin)
    lo = pl.max_horizontal(begin, pl.lit(1, dtype=BIGINT))
    hi = pl.min_horizontal(end, n + 1)
    count = pl.max_horizontal(hi - lo, pl.lit(0, dtype=BIGINT))
    parts = [s, start, *([length] if length is not None else [])]
    return Typed(propagate(s.expr.str.slice(lo - 1, count), *parts), STRING)


@function(
    "substring", signature="substring(string, start[, length])", returns="VARCHAR",
    category="string", nodes=(exp.Substring,), aliases=("substr",),
    doc="Characters from `start` (1-based; negative counts from the end), `length` of them.",
)  # fmt: skip
def _substring(tr: Translator, node: exp.Expr) -> Typed:
    s = _s(tr, node)
    start = _n(tr, node, "start", "substring's start")
    length = node.args.get("length")
    size = tr.expect(tr.translate(length), ("integer",), "substring's length") if length else None
    if _nulls(s, start, *([size] if size else [])):
        return null_of(STRING)
    return substring(s, start, size)


@function(
    "trim", signature="trim(string[, characters])", returns="VARCHAR", category="string",
    nodes=(exp.Trim,), aliases=("ltrim", "rtrim"),
    doc="Removes spaces (only spaces, as DuckDB), or the given characters, from both ends;"
    " `ltrim`/`rtrim` and `trim(leading|trailing|both 'x' from s)` from one end.",
)  # fmt: skip
def _trim(tr: Translator, node: exp.Expr) -> Typed:
    s = _s(tr, node)
    chars_node = node.args.get("expression")
    chars = _s(tr, node, "expression", "trim's characters") if chars_node is not None else None
    if _nulls(s, *([chars] if chars else [])):
        return null_of(STRING)
    which = chars.expr if chars is not None else pl.lit(SPACES)
    position = str(node.args.get("position") or "").upper()
    if position == "LEADING":
        return Typed(s.expr.str.strip_chars_start(which), STRING)
    if position == "TRAILING":
        return Typed(s.expr.str.strip_chars_end(which), STRING)
    return Typed(s.expr.str.strip_chars(which), STRING)


def _as_strings(tr: Translator, values: list[Typed]) -> list[pl.Expr]:
    return [cast(v, STRING, strict=True, guard=tr.guard).expr for v in values if not v.is_null]


@function(
    "concat", signature="concat(value, ...)", returns="VARCHAR", category="string",
    doc="Concatenation that skips NULLs (`||` gives NULL instead).", nodes=(exp.Concat,),
)  # fmt: skip
def _concat(tr: Translator, node: exp.Expr) -> Typed:
    parts = _as_strings(tr, tr.args(node))
    if not parts:
        return Typed(pl.lit(""), STRING, "")
    return Typed(pl.concat_str(parts, ignore_nulls=True), STRING)


@function(
    "concat_ws", signature="concat_ws(separator, value, ...)", returns="VARCHAR",
    category="string", nodes=(exp.ConcatWs,),
    doc="Values joined by the separator, NULL values skipped.",
)  # fmt: skip
def _concat_ws(tr: Translator, node: exp.Expr) -> Typed:
    values = tr.args(node)
    sep = tr.expect(values[0], ("string",), "concat_ws's separator")
    if sep.is_null:
        return null_of(STRING)
    parts = _as_strings(tr, values[1:])
    if not parts:
        return Typed(pl.lit(""), STRING, "")
    if sep.constant:
        return Typed(pl.concat_str(parts, separator=str(sep.value), ignore_nulls=True), STRING)
    joined = pl.concat_list(parts).list.drop_nulls().list.join(sep.expr)
    return Typed(joined, STRING)


def _rowwise(fn: object, args: list[pl.Expr], names: list[str], dtype: pl.DataType) -> pl.Expr:
    """A function applied row by row (for arguments Polars cannot take as columns)."""
    import typing

    call = typing.cast("typing.Callable[..., object]", fn)

    def apply(batch: pl.Series) -> pl.Series:
        cols = [batch.struct.field(n).to_list() for n in names]
        out = [
            None if any(v is None for v in row) else call(*row) for row in zip(*cols, strict=True)
        ]
        return pl.Series(out, dtype=dtype)

    combined: pl.Expr = pl.struct(*(a.alias(n) for n, a in zip(names, args, strict=True)))
    return combined.map_batches(apply, return_dtype=dtype)


@function(
    "replace", signature="replace(string, from, to)", returns="VARCHAR", category="string",
    nodes=(exp.Replace,),
    doc="Every occurrence of `from` replaced by `to`; an empty `from` changes nothing."
    " A `from` taken from a column is applied row by row (slower).",
)  # fmt: skip
def _replace(tr: Translator, node: exp.Expr) -> Typed:
    s = _s(tr, node)
    old = _s(tr, node, "expression", "replace's pattern")
    new = _s(tr, node, "replacement", "replace's replacement")
    if _nulls(s, old, new):
        return null_of(STRING)
    if old.constant:
        if old.value == "":
            return s
        return Typed(s.expr.str.replace_all(str(old.value), new.expr, literal=True), STRING)
    expr = _rowwise(
        lambda a, b, c: a if b == "" else a.replace(b, c),
        [s.expr, old.expr, new.expr], ["s", "old", "new"], STRING,
    )  # fmt: skip
    return Typed(expr, STRING)


def _predicate(name: str, node_types: tuple[type[exp.Expr], ...], aliases: tuple[str, ...],
               method: str, doc: str) -> None:  # fmt: skip
    @function(
        name, signature=f"{name}(string, search)", returns="BOOLEAN", category="string",
        doc=doc, nodes=node_types, aliases=aliases,
    )  # fmt: skip
    def impl(tr: Translator, node: exp.Expr) -> Typed:
        values = [tr.translate(a) for a in (node.this, node.expression)] if node.expression \
            else tr.args(node)  # fmt: skip
        s, x = (tr.expect(v, ("string",), f"{name}'s argument") for v in values[:2])
        if _nulls(s, x):
            return Typed(pl.lit(None, dtype=BOOL), BOOL, None)
        if method == "contains":
            return Typed(s.expr.str.contains(x.expr, literal=True), BOOL)
        return Typed(getattr(s.expr.str, method)(x.expr), BOOL)


_predicate(
    "starts_with", (exp.StartsWith,), ("prefix",), "starts_with", "`string` starts with `search`."
)
_predicate("ends_with", (exp.EndsWith,), ("suffix",), "ends_with", "`string` ends with `search`.")
_predicate("contains", (exp.Contains,), (), "contains", "`search` occurs in `string`.")


@function(
    "strpos", signature="strpos(string, search)", returns="BIGINT", category="string",
    nodes=(exp.StrPosition,), aliases=("position", "instr"),
    doc="1-based character position of the first `search` in `string`, 0 if absent;"
    " also `position(search IN string)`.",
)  # fmt: skip
def _strpos(tr: Translator, node: exp.Expr) -> Typed:
    s = _s(tr, node)
    sub = _s(tr, node, "substr", "strpos's search")
    if _nulls(s, sub):
        return null_of(BIGINT)
    haystack = s.expr
    if s.constant and not sub.constant:  # a literal split by a column: one row per row
        haystack = pl.repeat(s.expr, pl.len())
    before = haystack.str.splitn(sub.expr, 2).struct.field("field_0").str.len_chars()
    before = before.cast(BIGINT)
    found = haystack.str.contains(sub.expr, literal=True)
    position = pl.when(sub.expr == "").then(1).when(found).then(before + 1).otherwise(0)
    return Typed(propagate(position.cast(BIGINT), s, sub), BIGINT)


@function(
    "left", signature="left(string, count)", returns="VARCHAR", category="string",
    nodes=(exp.Left,),
    doc="The first `count` characters; a negative count drops that many from the end.",
)  # fmt: skip
def _left(tr: Translator, node: exp.Expr) -> Typed:
    s, n = _s(tr, node), _n(tr, node, "expression", "left's count")
    if _nulls(s, n):
        return null_of(STRING)
    return Typed(propagate(s.expr.str.head(n.expr), s, n), STRING)


@function(
    "right", signature="right(string, count)", returns="VARCHAR", category="string",
    nodes=(exp.Right,),
    doc="The last `count` characters; a negative count drops that many from the start.",
)  # fmt: skip
def _right(tr: Translator, node: exp.Expr) -> Typed:
    s, n = _s(tr, node), _n(tr, node, "expression", "right's count")
    if _nulls(s, n):
        return null_of(STRING)
    return Typed(propagate(s.expr.str.tail(n.expr), s, n), STRING)


@function(
    "reverse", signature="reverse(string)", returns="VARCHAR", category="string",
    doc="The characters in reverse order.", nodes=(exp.Reverse,),
)  # fmt: skip
def _reverse(tr: Translator, node: exp.Expr) -> Typed:
    return Typed(_s(tr, node).expr.str.reverse(), STRING)


@function(
    "repeat", signature="repeat(string, count)", returns="VARCHAR", category="string",
    doc="`string` repeated `count` times (empty for count <= 0).", nodes=(exp.Repeat,),
)  # fmt: skip
def _repeat(tr: Translator, node: exp.Expr) -> Typed:
    s = _s(tr, node)
    n = tr.expect(tr.arg(node, "times"), ("integer",), "repeat's count")
    if _nulls(s, n):
        return null_of(STRING)
    count = pl.max_horizontal(n.expr.cast(BIGINT), pl.lit(0, dtype=BIGINT))
    return Typed(propagate(s.expr.repeat_by(count).list.join(""), s, n), STRING)


@function(
    "lpad", signature="lpad(string, length, fill)", returns="VARCHAR", category="string",
    nodes=(exp.Pad,), aliases=("rpad",),
    doc="Padded on the left (`rpad`: right) to `length` characters with `fill` repeated;"
    " a longer string is cut to `length`.",
)  # fmt: skip
def _pad(tr: Translator, node: exp.Expr) -> Typed:
    s = _s(tr, node)
    n = tr.expect(tr.arg(node, "expression"), ("integer",), "lpad's length")
    fill = tr.expect(tr.arg(node, "fill_pattern"), ("string",), "lpad's fill")
    if _nulls(s, n, fill):
        return null_of(STRING)
    left = bool(node.args.get("is_left"))
    width = pl.max_horizontal(n.expr.cast(BIGINT), pl.lit(0, dtype=BIGINT))
    cut = s.expr.str.slice(0, width)
    missing = pl.max_horizontal(width - cut.str.len_chars().cast(BIGINT), pl.lit(0, dtype=BIGINT))
    times = missing // pl.max_horizontal(fill.expr.str.len_chars().cast(BIGINT), pl.lit(1))
    padding = fill.expr.repeat_by(times + 1).list.join("").str.slice(0, missing)
    padded = pl.concat_str([padding, cut]) if left else pl.concat_str([cut, padding])
    result = pl.when(fill.expr == "").then(cut).otherwise(padded)
    return Typed(propagate(result, s, n, fill), STRING)


def _regex(tr: Translator, node: exp.Expr, key: str, flags: str = "") -> str | pl.Expr:
    pattern = _s(tr, node, key, "the regular expression")
    if pattern.constant:
        text = str(pattern.value)
        try:
            re.compile(text)
        except re.error as e:
            raise tr.error(f"invalid regular expression {text!r}: {e}") from None
        return f"(?{flags}){text}" if flags else text
    return pattern.expr if not flags else pl.lit(f"(?{flags})") + pattern.expr


def _options(tr: Translator, node: exp.Expr | None) -> str:
    if node is None:
        return ""
    text = tr.literal_text(node, "regular-expression options")
    unknown = set(text) - set("igsmc")
    if unknown:
        raise tr.error(f"unsupported regular-expression options {''.join(sorted(unknown))!r}")
    return (
        ("i" if "i" in text else "") + ("s" if "s" in text else "") + ("m" if "m" in text else "")
    )


@function(
    "regexp_matches", signature="regexp_matches(string, pattern[, options])",
    returns="BOOLEAN", category="string", nodes=(exp.RegexpLike,), aliases=("regexp_like",),
    doc="`pattern` (RE2 syntax) matches somewhere in `string`; options 'i' (ignore case).",
)  # fmt: skip
def _regexp_matches(tr: Translator, node: exp.Expr) -> Typed:
    s = _s(tr, node)
    pattern = _regex(tr, node, "expression", _options(tr, node.args.get("flag")))
    return Typed(s.expr.str.contains(pattern), BOOL)


def _replacement(text: str) -> str:
    """DuckDB's ``\\1`` group references as Polars' ``${1}`` (and a literal ``$`` escaped)."""
    escaped = text.replace("$", "$$")
    return re.sub(r"\\(\d)", r"${\1}", escaped)


@function(
    "regexp_replace", signature="regexp_replace(string, pattern, replacement[, options])",
    returns="VARCHAR", category="string", nodes=(exp.RegexpReplace,),
    doc="The first match replaced (every match with option 'g'); `\\1` refers to a group.",
)  # fmt: skip
def _regexp_replace(tr: Translator, node: exp.Expr) -> Typed:
    s = _s(tr, node)
    options_node = node.args.get("modifiers")
    options = tr.literal_text(options_node, "options") if options_node is not None else ""
    flags = _options(tr, options_node) if options_node is not None else ""
    pattern = _regex(tr, node, "expression", flags)
    replacement = tr.expect(tr.arg(node, "replacement"), ("string",), "the replacement")
    if not replacement.constant:
        raise tr.error("regexp_replace's replacement must be a string literal")
    if replacement.null_constant or s.null_constant:
        return null_of(STRING)
    text = _replacement(str(replacement.value))
    if "g" in options:
        return Typed(s.expr.str.replace_all(pattern, text), STRING)
    return Typed(s.expr.str.replace(pattern, text, n=1), STRING)


@function(
    "regexp_extract", signature="regexp_extract(string, pattern[, group])",
    returns="VARCHAR", category="string", nodes=(exp.RegexpExtract,),
    doc="The first match of `pattern` (or of its `group`); '' when nothing matches.",
)  # fmt: skip
def _regexp_extract(tr: Translator, node: exp.Expr) -> Typed:
    s = _s(tr, node)
    pattern = _regex(tr, node, "expression")
    group_node = node.args.get("group")
    group = int(str(tr.literal_value(group_node, "the group"))) if group_node is not None else 0
    if not isinstance(pattern, str):
        raise tr.error("regexp_extract's pattern must be a string literal")
    extracted = s.expr.str.extract(pattern, group)
    return Typed(pl.when(s.expr.is_null()).then(None).otherwise(extracted.fill_null("")), STRING)


@function(
    "split_part", signature="split_part(string, separator, index)", returns="VARCHAR",
    category="string", nodes=(exp.SplitPart,),
    doc="The `index`-th part (1-based, negative from the end) of `string` split at"
    " `separator`; '' when there is no such part.",
)  # fmt: skip
def _split_part(tr: Translator, node: exp.Expr) -> Typed:
    s = _s(tr, node)
    sep = _s(tr, node, "delimiter", "split_part's separator")
    index = tr.expect(tr.arg(node, "part_index"), ("integer",), "split_part's index")
    if _nulls(s, sep, index):
        return null_of(STRING)
    parts = s.expr.str.split(sep.expr)
    i = index.expr.cast(BIGINT)
    position = pl.when(i > 0).then(i - 1).when(i < 0).then(i).otherwise(None)
    part = parts.list.get(position, null_on_oob=True)
    return Typed(propagate(part.fill_null(""), s, sep, index), STRING)


@function(
    "string_split", signature="string_split(string, separator)", returns="VARCHAR[]",
    category="string", nodes=(exp.Split,), aliases=("str_split", "string_to_array"),
    doc="`string` split at every `separator`, as a list.",
)  # fmt: skip
def _string_split(tr: Translator, node: exp.Expr) -> Typed:
    s = _s(tr, node)
    sep = _s(tr, node, "expression", "string_split's separator")
    return Typed(s.expr.str.split(sep.expr), pl.List(STRING))


@function(
    "strlen", signature="strlen(string)", returns="BIGINT", category="string",
    aliases=("octet_length",), doc="The number of bytes of the UTF-8 string.",
)  # fmt: skip
def _strlen(tr: Translator, node: exp.Expr) -> Typed:
    args = tr.args(node)
    if len(args) != 1:
        raise tr.error("strlen(string) takes one argument")
    s = tr.expect(args[0], ("string",), "strlen's argument")
    return Typed(s.expr.str.len_bytes().cast(BIGINT), BIGINT)


@function(
    "chr", signature="chr(code)", returns="VARCHAR", category="string", nodes=(exp.Chr,),
    doc="The character with that Unicode code point.",
)  # fmt: skip
def _chr(tr: Translator, node: exp.Expr) -> Typed:
    values = tr.args(node) if node.expressions else [tr.arg(node)]
    code = tr.expect(values[0], ("integer",), "chr's code")
    if code.null_constant:
        return null_of(STRING)

    def char(value: int) -> str:
        if not 0 <= value <= 0x10FFFF or 0xD800 <= value <= 0xDFFF:
            raise ValueError(f"chr: {value} is not a Unicode code point")
        return chr(value)

    return Typed(_rowwise(char, [code.expr], ["code"], STRING), STRING)


@function(
    "ascii", signature="ascii(string)", returns="INTEGER", category="string",
    nodes=(exp.Ascii,), doc="The Unicode code point of the first character (0 for '').",
)  # fmt: skip
def _ascii(tr: Translator, node: exp.Expr) -> Typed:
    s = _s(tr, node)
    first = _rowwise(lambda v: ord(v[0]) if v else 0, [s.expr], ["s"], pl.Int32())
    return Typed(first, pl.Int32())
