"""A table-driven, seeded generator of typed SQL expressions over the columns of :mod:`.data`.

Each entry of :data:`CONSTRUCTS` is one line: a name (results are grouped by it), a result type,
the argument types and a template (``{0}``, ``{1}``... are the arguments). Adding a construct is
adding a line, e.g.::

    C("reverse", "str", "str", "reverse({0})"),

Type specs (space separated in ``args``):

- a family: ``int dec float str bool date ts tstz list interval``;
- a union: ``num`` (int dec float), ``temporal`` (date ts tstz), ``time`` (ts tstz), ``ord``
  (num str bool date ts tstz), ``any`` (every family);
- a type variable, bound once per use of the construct: ``N`` (a numeric family), ``O``
  (orderable), ``T`` (temporal), ``A`` (any). ``N N`` is "two operands of the same family";
  ``num num`` mixes families;
- ``lit:<spec>``: a literal of that type (``IN`` lists), ``col:<spec>``: a column of that type;
- ``%kind``: a raw token from :data:`RAW` (a LIKE pattern, a unit, a small position...). Raw
  tokens are not sub-expressions: they are never evaluated on their own.

A construct is picked for an argument when its result fits the requested type (a union result
only for a request that contains all of it), so nested expressions are well-typed most of the
time; at :attr:`Generator.ill_typed_rate` an argument is drawn from a random family instead (both
systems should then refuse the expression: agreement on an error counts as a match).

:meth:`Generator.corpus` first uses every construct once at the top (in a seeded order), then
draws top-level constructs by weight. The same seed gives the same corpus.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from tests.differential.data import COLUMNS_BY_FAMILY

FAMILIES = ("int", "dec", "float", "str", "bool", "date", "ts", "tstz", "list", "interval")
UNIONS: dict[str, tuple[str, ...]] = {
    "num": ("int", "dec", "float"),
    "temporal": ("date", "ts", "tstz"),
    "time": ("ts", "tstz"),
    "ord": ("int", "dec", "float", "str", "bool", "date", "ts", "tstz"),
    "any": FAMILIES,
}
VARIABLES: dict[str, str] = {"N": "num", "O": "ord", "T": "temporal", "A": "any"}


@dataclass(frozen=True)
class Construct:
    name: str
    result: str
    args: tuple[str, ...]
    template: str
    weight: float = 1.0


def C(name: str, result: str, args: str, template: str, weight: float = 1.0) -> Construct:
    return Construct(name, result, tuple(args.split()), template, weight)


@dataclass(frozen=True)
class Expr:
    """A generated expression and its evaluable sub-expressions (raw tokens excluded)."""

    sql: str
    construct: str
    family: str  # the generator's belief: a family or a union name
    children: tuple[Expr, ...] = field(default=(), repr=False)
    # False for a part that has no meaning alone (an INTERVAL literal is only an operand of
    # temporal arithmetic in UZO): it is not evaluated on its own to find a culprit
    standalone: bool = True

    def walk(self) -> list[Expr]:
        """This expression and every sub-expression, parents first."""
        out = [self]
        for child in self.children:
            out.extend(child.walk())
        return out


# ------------------------------------------------------------------ leaves

# fmt: off
LITERALS: dict[str, tuple[str, ...]] = {
    "int": ("0", "1", "-1", "2", "3", "7", "10", "127", "128", "255", "32767", "2147483647",
            "2147483648", "9223372036854775807", "-9223372036854775808", "CAST(NULL AS BIGINT)"),
    "dec": ("0.06", "0.01", "2.50", "-2.50", "0.5", "1.005", "9.99", "100.00", "0.0",
            "3.14159265358979", "12345678901234567890.12", "0.1", "CAST(NULL AS DECIMAL(10,2))"),
    "float": ("1e3", "1.5e-7", "1e308", "-1e-3", "2.5e0", "'NaN'::DOUBLE", "'inf'::DOUBLE",
              "'-0.0'::DOUBLE", "CAST(0.1 AS REAL)", "CAST(NULL AS DOUBLE)"),
    "str": ("''", "' '", "'a'", "'abc'", "'ABC'", "'h\u00e9llo'", "'\u00e9'", "'e\u0301'",
            "'\U0001f600'", "'\u00df'", "'%'", "'_'", "'it''s'", "'2024-02-29'", "'  x  '",
            "'Hello World'", "'a\tb\n'", "CAST(NULL AS VARCHAR)"),
    "bool": ("true", "false", "TRUE", "CAST(NULL AS BOOLEAN)"),
    "date": ("DATE '2024-02-29'", "DATE '0001-01-01'", "DATE '9999-12-31'", "DATE '2024-03-03'",
             "DATE '1970-01-01'", "DATE '2023-12-31'", "CAST(NULL AS DATE)"),
    "ts": ("TIMESTAMP '2024-02-29 12:34:56.789012'", "TIMESTAMP '1970-01-01 00:00:00'",
           "TIMESTAMP '2024-03-31 02:30:00'", "TIMESTAMP '2000-01-01'",
           "TIMESTAMP '9999-12-31 23:59:59'", "CAST(NULL AS TIMESTAMP)"),
    "tstz": ("TIMESTAMPTZ '2024-02-29 12:00:00+00'", "TIMESTAMPTZ '2024-03-31 03:00:00+02'",
             "'2024-01-01 00:00:00+01'::TIMESTAMPTZ"),
    "list": ("[1, 2, 3]", "[]", "[1, NULL]", "[2147483647, 1]"),
    "interval": ("INTERVAL 1 DAY", "INTERVAL 2 HOUR", "INTERVAL '1' MONTH", "INTERVAL 90 MINUTE",
                 "INTERVAL (-1) YEAR"),
}

RAW: dict[str, tuple[str, ...]] = {
    "pattern": ("'%a%'", "'a%'", "'%c'", "'a_c'", "'_'", "'%'", "''", "'ABC'", "'%\u00e9%'",
                "'h_llo'", "'%%'", "'a\\b'", "'%\\%%'", "'_%_'", "'%\t%'"),
    "escpattern": ("'%!%%'", "'a!_b'", "'!%'", "'%!!%'", "'a_b'", "'!_'"),
    "pos": ("0", "1", "2", "-1", "-3", "5", "100"),
    "len": ("0", "1", "2", "3", "-1", "10"),
    "small": ("0", "1", "2", "3", "-1"),
    "chars": ("'x'", "' '", "'ab'", "''", "' x'"),
    "sep": ("','", "''", "' - '"),
    "regex": ("'a.c'", "'^a'", "'b$'", "'[0-9]+'", "'(?i)abc'", "'\u00e9'", "'.'", "'\\d'",
              "''", "'a|b'"),
    "group_regex": ("'([a-z]+)'", "'(\\d+)'", "'(a)(b)?'"),
    "places": ("0", "1", "2", "-1", "-2", "3"),
    "amount": ("1", "2", "'-1'", "0", "13", "100"),  # DuckDB parses INTERVAL '-1' DAY only
    "days": ("1", "2", "-1", "0", "400"),
    "tz": ("'UTC'", "'Europe/Paris'", "'America/New_York'", "'Asia/Kolkata'"),
    "fmt": ("'%Y-%m-%d'", "'%d/%m/%Y %H:%M'", "'%j'", "'%A'", "'%b %-d'", "'%Y%m%d %H%M%S.%f'"),
    "parse_fmt": ("'%Y-%m-%d'", "'%Y-%m-%d %H:%M:%S'", "'%d/%m/%Y'"),
    "idx": ("0", "1", "2", "3", "-1", "10"),
    "datestr": ("'2024-02-29'", "'2024-03-03 12:00:00'", "'1970-01-01'", "'2024-2-3'"),
    "numstr": ("'2'", "'2.5'", "'-1'", "'1e3'", "' 3'"),
    "month": ("1", "2", "12", "0", "13"),
    "day": ("1", "29", "31", "30", "0"),
    "code": ("65", "233", "128512", "0"),
}

# ------------------------------------------------------------------ constructs

COMPARISONS = ("=", "<>", "!=", "<", "<=", ">", ">=")
ARITHMETIC = ("+", "-", "*", "/", "//", "%")
# EXTRACT / date_part parts (epoch and julian are doubles; the others integers)
PARTS = ("year", "quarter", "month", "week", "day", "dow", "isodow", "doy", "hour", "minute",
         "second", "millisecond", "microsecond", "epoch", "decade", "century", "millennium",
         "isoyear", "yearweek", "era", "julian")
NON_INT_PARTS = ("epoch", "julian")
TRUNC_UNITS = ("millennium", "century", "decade", "year", "quarter", "month", "week", "day",
               "hour", "minute", "second", "millisecond", "microsecond")
INTERVAL_UNITS = ("year", "quarter", "month", "week", "day", "hour", "minute", "second",
                  "millisecond", "microsecond")
DIFF_UNITS = INTERVAL_UNITS
CAST_TARGETS: dict[str, str] = {
    "TINYINT": "int", "SMALLINT": "int", "INTEGER": "int", "BIGINT": "int", "HUGEINT": "int",
    "UTINYINT": "int", "UBIGINT": "int", "FLOAT": "float", "DOUBLE": "float",
    "DECIMAL(10,2)": "dec", "DECIMAL(38,10)": "dec", "DECIMAL(4,1)": "dec", "VARCHAR": "str",
    "BOOLEAN": "bool", "DATE": "date", "TIMESTAMP": "ts", "TIMESTAMPTZ": "tstz",
}
CAST_SOURCES = ("int", "dec", "float", "str", "bool", "date", "ts", "tstz")
SHORT_CASTS = ("INTEGER", "DOUBLE", "VARCHAR", "DATE", "DECIMAL(10,2)", "BOOLEAN")
# fmt: on

CONSTRUCTS: tuple[Construct, ...] = (
    # comparisons: same family, mixed numerics, dates with timestamps, lists
    *(C(f"cmp {op}", "bool", "O O", f"({{0}} {op} {{1}})") for op in COMPARISONS),
    *(C(f"cmp {op}", "bool", "num num", f"({{0}} {op} {{1}})") for op in COMPARISONS),
    *(
        C(f"cmp {op}", "bool", "temporal temporal", f"({{0}} {op} {{1}})", 0.5)
        for op in COMPARISONS
    ),
    C("cmp = list", "bool", "list list", "({0} = {1})"),
    C("cmp temporal vs string literal", "bool", "temporal %datestr", "({0} = {1})"),
    C("cmp temporal vs string literal", "bool", "temporal %datestr", "({0} < {1})"),
    C("cmp number vs string literal", "bool", "num %numstr", "({0} = {1})"),
    C("cmp number vs string literal", "bool", "num %numstr", "({0} > {1})"),
    # boolean logic
    C("and", "bool", "bool bool", "({0} AND {1})"),
    C("or", "bool", "bool bool", "({0} OR {1})"),
    C("not", "bool", "bool", "(NOT {0})"),
    C("is true", "bool", "bool", "({0} IS TRUE)"),
    C("is false", "bool", "bool", "({0} IS FALSE)"),
    C("is not true", "bool", "bool", "({0} IS NOT TRUE)"),
    C("is not false", "bool", "bool", "({0} IS NOT FALSE)"),
    # arithmetic on one family and on mixed families
    *(C(f"arith {op}", "N", "N N", f"({{0}} {op} {{1}})") for op in ("+", "-", "*", "%")),
    C("arith /", "float", "N N", "({0} / {1})"),
    C("arith //", "N", "N N", "({0} // {1})"),
    *(C(f"arith {op}", "num", "num num", f"({{0}} {op} {{1}})") for op in ARITHMETIC),
    *(
        C(f"arith {op} divisor", "num", "num col:num", f"({{0}} {op} {{1}})", 0.5)
        for op in ("/", "//", "%")
    ),
    C("negate", "N", "N", "(- {0})"),
    C("unary plus", "N", "N", "(+ {0})", 0.3),
    # null tests, distinctness
    C("is null", "bool", "any", "({0} IS NULL)"),
    C("is not null", "bool", "any", "({0} IS NOT NULL)"),
    C("is distinct from", "bool", "O O", "({0} IS DISTINCT FROM {1})"),
    C("is not distinct from", "bool", "O O", "({0} IS NOT DISTINCT FROM {1})"),
    C("is distinct from", "bool", "num num", "({0} IS DISTINCT FROM {1})"),
    # IN / BETWEEN
    C("in", "bool", "O lit:O lit:O", "({0} IN ({1}, {2}))"),
    C("in", "bool", "num lit:int lit:int lit:int", "({0} IN ({1}, {2}, {3}))"),
    C("in mixed int/decimal", "bool", "num lit:int lit:dec", "({0} IN ({1}, {2}))"),
    C("in mixed int/float", "bool", "num lit:int lit:float", "({0} IN ({1}, {2}))"),
    C("in with NULL", "bool", "O lit:O", "({0} IN ({1}, NULL))"),
    C("in with columns", "bool", "O O O", "({0} IN ({1}, {2}))"),
    C("in one element", "bool", "O lit:O", "({0} IN ({1}))"),
    C("not in", "bool", "O lit:O lit:O", "({0} NOT IN ({1}, {2}))"),
    C("not in with NULL", "bool", "O lit:O", "({0} NOT IN ({1}, NULL))"),
    C("between", "bool", "O O O", "({0} BETWEEN {1} AND {2})"),
    C("between", "bool", "num num num", "({0} BETWEEN {1} AND {2})"),
    C("not between", "bool", "O O O", "({0} NOT BETWEEN {1} AND {2})"),
    C("between NULL bound", "bool", "O O", "({0} BETWEEN {1} AND NULL)"),
    C("between NULL bound", "bool", "O O", "({0} BETWEEN NULL AND {1})"),
    # LIKE
    C("like", "bool", "str %pattern", "({0} LIKE {1})"),
    C("not like", "bool", "str %pattern", "({0} NOT LIKE {1})"),
    C("ilike", "bool", "str %pattern", "({0} ILIKE {1})"),
    C("not ilike", "bool", "str %pattern", "({0} NOT ILIKE {1})"),
    C("like escape", "bool", "str %escpattern", "({0} LIKE {1} ESCAPE '!')"),
    C("not like escape", "bool", "str %escpattern", "({0} NOT LIKE {1} ESCAPE '!')"),
    C("like column pattern", "bool", "str col:str", "({0} LIKE {1})"),
    # conditionals
    C("case searched", "A", "bool A A", "(CASE WHEN {0} THEN {1} ELSE {2} END)"),
    C(
        "case searched 2 branches",
        "A",
        "bool A bool A A",
        "(CASE WHEN {0} THEN {1} WHEN {2} THEN {3} ELSE {4} END)",
    ),
    C("case no else", "A", "bool A", "(CASE WHEN {0} THEN {1} END)"),
    C("case then NULL", "A", "bool A", "(CASE WHEN {0} THEN NULL ELSE {1} END)"),
    C("case simple", "A", "O O A A", "(CASE {0} WHEN {1} THEN {2} ELSE {3} END)"),
    C("case simple no else", "A", "O O A", "(CASE {0} WHEN {1} THEN {2} END)"),
    C("case mixed numerics", "num", "bool num num", "(CASE WHEN {0} THEN {1} ELSE {2} END)"),
    C("if", "A", "bool A A", "IF({0}, {1}, {2})"),
    C("if NULL branch", "A", "bool A", "IF({0}, NULL, {1})"),
    C("coalesce", "A", "A A", "COALESCE({0}, {1})"),
    C("coalesce 3", "A", "A A A", "COALESCE({0}, {1}, {2})"),
    C("coalesce mixed numerics", "num", "num num", "COALESCE({0}, {1})"),
    C("nullif", "O", "O O", "NULLIF({0}, {1})"),
    C("greatest", "O", "O O", "GREATEST({0}, {1})"),
    C("greatest 3", "O", "O O O", "GREATEST({0}, {1}, {2})"),
    C("greatest mixed numerics", "num", "num num", "GREATEST({0}, {1})"),
    C("least", "O", "O O", "LEAST({0}, {1})"),
    C("least mixed numerics", "num", "num num", "LEAST({0}, {1})"),
    # casts between every pair of families (and a few spellings)
    *(
        C(f"cast {src}->{target}", fam, src, f"CAST({{0}} AS {target})", 0.15)
        for src in CAST_SOURCES
        for target, fam in CAST_TARGETS.items()
    ),
    *(
        C(f"try_cast {src}->{target}", fam, src, f"TRY_CAST({{0}} AS {target})", 0.1)
        for src in CAST_SOURCES
        for target, fam in CAST_TARGETS.items()
    ),
    *(
        C(f":: {src}->{target}", CAST_TARGETS[target], src, f"{{0}}::{target}", 0.1)
        for src in CAST_SOURCES
        for target in SHORT_CASTS
    ),
    C("cast list->VARCHAR", "str", "list", "CAST({0} AS VARCHAR)"),
    C("cast list->INTEGER[]", "list", "list", "CAST({0} AS INTEGER[])"),
    C("cast string column->DATE", "date", "col:str", "CAST({0} AS DATE)"),
    C("try_cast string column->DATE", "date", "col:str", "TRY_CAST({0} AS DATE)"),
    C("cast string column->INTEGER", "int", "col:str", "CAST({0} AS INTEGER)"),
    C("try_cast string column->DOUBLE", "float", "col:str", "TRY_CAST({0} AS DOUBLE)"),
    # strings
    C("||", "str", "str str", "({0} || {1})"),
    C("|| non-string", "str", "str num", "({0} || {1})", 0.5),
    C("lower", "str", "str", "lower({0})"),
    C("upper", "str", "str", "upper({0})"),
    C("length", "int", "str", "length({0})"),
    C("strlen", "int", "str", "strlen({0})"),
    C("substr 3 args", "str", "str %pos %len", "substr({0}, {1}, {2})"),
    C("substr 2 args", "str", "str %pos", "substr({0}, {1})"),
    C("substring from for", "str", "str %pos %len", "substring({0} FROM {1} FOR {2})"),
    C("substr column args", "str", "str col:int col:int", "substr({0}, {1}, {2})", 0.5),
    C("trim", "str", "str", "trim({0})"),
    C("ltrim", "str", "str", "ltrim({0})"),
    C("rtrim", "str", "str", "rtrim({0})"),
    C("trim chars", "str", "str %chars", "trim({0}, {1})"),
    C("trim both from", "str", "str %chars", "trim(BOTH {1} FROM {0})"),
    C("trim leading from", "str", "str %chars", "trim(LEADING {1} FROM {0})"),
    C("concat", "str", "str str", "concat({0}, {1})"),
    C("concat 3", "str", "str str str", "concat({0}, {1}, {2})"),
    C("concat non-string", "str", "str num", "concat({0}, {1})", 0.5),
    C("concat_ws", "str", "%sep str str", "concat_ws({0}, {1}, {2})"),
    C("replace", "str", "str lit:str lit:str", "replace({0}, {1}, {2})"),
    C("replace empty pattern", "str", "str lit:str", "replace({0}, '', {1})"),
    C("replace column args", "str", "str col:str col:str", "replace({0}, {1}, {2})"),
    C("starts_with", "bool", "str str", "starts_with({0}, {1})"),
    C("ends_with", "bool", "str str", "ends_with({0}, {1})"),
    C("contains", "bool", "str str", "contains({0}, {1})"),
    C("position", "int", "str str", "position({1} IN {0})"),
    C("strpos", "int", "str str", "strpos({0}, {1})"),
    C("instr", "int", "str str", "instr({0}, {1})"),
    C("left", "str", "str %len", "left({0}, {1})"),
    C("right", "str", "str %len", "right({0}, {1})"),
    C("reverse", "str", "str", "reverse({0})"),
    C("repeat", "str", "str %small", "repeat({0}, {1})"),
    C("lpad", "str", "str %len %chars", "lpad({0}, {1}, {2})"),
    C("rpad", "str", "str %len %chars", "rpad({0}, {1}, {2})"),
    C("split_part", "str", "str %sep %pos", "split_part({0}, {1}, {2})"),
    C("ascii", "int", "str", "ascii({0})"),
    C("chr", "str", "%code", "chr({0})"),
    C("regexp_matches", "bool", "str %regex", "regexp_matches({0}, {1})"),
    C("regexp_replace", "str", "str %regex lit:str", "regexp_replace({0}, {1}, {2})"),
    C("regexp_replace global", "str", "str %regex lit:str", "regexp_replace({0}, {1}, {2}, 'g')"),
    C("regexp_extract", "str", "str %group_regex", "regexp_extract({0}, {1}, 1)"),
    C("string_split", "list", "str %sep", "string_split({0}, {1})", 0.3),
    # numbers
    C("abs", "N", "N", "abs({0})"),
    C("round", "N", "N", "round({0})"),
    C("round places", "N", "N %places", "round({0}, {1})"),
    C("floor", "N", "N", "floor({0})"),
    C("ceil", "N", "N", "ceil({0})"),
    C("sqrt", "float", "num", "sqrt({0})"),
    C("power", "float", "num num", "power({0}, {1})"),
    C("pow", "float", "num %small", "pow({0}, {1})"),
    C("** operator", "float", "num %small", "({0} ** {1})"),
    C("^ operator", "float", "num %small", "({0} ^ {1})"),
    C("ln", "float", "num", "ln({0})"),
    C("log", "float", "num", "log({0})"),
    C("log base", "float", "%small num", "log({0}, {1})"),
    C("log2", "float", "num", "log2({0})"),
    C("log10", "float", "num", "log10({0})"),
    C("exp", "float", "num", "exp({0})"),
    C("sign", "int", "num", "sign({0})"),
    C("trunc", "N", "N", "trunc({0})"),
    C("mod", "N", "N N", "mod({0}, {1})"),
    C("cbrt", "float", "num", "cbrt({0})"),
    C("isnan", "bool", "float", "isnan({0})"),
    C("isinf", "bool", "float", "isinf({0})"),
    C("isfinite", "bool", "float", "isfinite({0})"),
    # dates and timestamps
    C("year", "int", "temporal", "year({0})"),
    C("month", "int", "temporal", "month({0})"),
    C("day", "int", "temporal", "day({0})"),
    C("quarter", "int", "temporal", "quarter({0})"),
    C("dayofweek", "int", "temporal", "dayofweek({0})"),
    C("dayofyear", "int", "temporal", "dayofyear({0})"),
    C("week", "int", "temporal", "week({0})"),
    C("hour", "int", "temporal", "hour({0})"),
    C("minute", "int", "temporal", "minute({0})"),
    C("second", "int", "temporal", "second({0})"),
    C("epoch", "num", "temporal", "epoch({0})"),
    C("epoch_ms", "int", "temporal", "epoch_ms({0})"),
    C("last_day", "date", "temporal", "last_day({0})"),
    C("make_date", "date", "%month %day", "make_date(2024, {0}, {1})"),
    C("make_date columns", "date", "col:int", "make_date(2000, 1, {0})", 0.5),
    C("strftime", "str", "temporal %fmt", "strftime({0}, {1})"),
    C("strptime", "ts", "col:str %parse_fmt", "strptime({0}, {1})"),
    C("try_strptime", "ts", "col:str %parse_fmt", "try_strptime({0}, {1})"),
    C("date - date", "int", "date date", "({0} - {1})"),
    C("timestamp - timestamp", "interval", "T T", "({0} - {1})"),
    C("date + integer", "date", "date %days", "({0} + {1})"),
    C("date - integer", "date", "date %days", "({0} - {1})"),
    C("temporal + interval expression", "temporal", "temporal interval", "({0} + {1})"),
    C("interval string form", "temporal", "temporal %days", "({0} + INTERVAL '{1} days')"),
    C("current_date", "bool", "date", "({0} < current_date)"),
    C("now", "bool", "time", "({0} < now())"),
    C("at time zone", "time", "time %tz", "({0} AT TIME ZONE {1})"),
    C("timezone()", "time", "%tz time", "timezone({0}, {1})"),
    *(
        C(
            f"extract {p}",
            "num" if p in NON_INT_PARTS else "int",
            "temporal",
            f"EXTRACT({p} FROM {{0}})",
        )
        for p in PARTS
    ),
    *(
        C(
            f"date_part {p}",
            "num" if p in NON_INT_PARTS else "int",
            "temporal",
            f"date_part('{p}', {{0}})",
            0.4,
        )
        for p in PARTS
    ),
    *(
        C(f"date_trunc {u}", "temporal", "temporal", f"date_trunc('{u}', {{0}})")
        for u in TRUNC_UNITS
    ),
    *(
        C(f"+ interval {u}", "temporal", "temporal %amount", f"({{0}} + INTERVAL {{1}} {u})")
        for u in INTERVAL_UNITS
    ),
    *(
        C(f"- interval {u}", "temporal", "temporal %amount", f"({{0}} - INTERVAL {{1}} {u})", 0.5)
        for u in INTERVAL_UNITS
    ),
    *(
        C(f"date_diff {u}", "int", "T T", f"date_diff('{u}', {{0}}, {{1}})", 0.6)
        for u in DIFF_UNITS
    ),
    # lists
    C("list index", "int", "list %idx", "{0}[{1}]"),
    C("list_extract", "int", "list %idx", "list_extract({0}, {1})"),
    C("list slice", "list", "list %idx %idx", "{0}[{1}:{2}]"),
    C("list_contains", "bool", "list int", "list_contains({0}, {1})"),
    C("array_length", "int", "list", "array_length({0})"),
    C("len list", "int", "list", "len({0})"),
    C("list literal", "list", "int int", "[{0}, {1}]"),
    C("list_value", "list", "int int", "list_value({0}, {1})"),
)


# ------------------------------------------------------------------ the generator


def _families(spec: str) -> tuple[str, ...]:
    if spec in UNIONS:
        return UNIONS[spec]
    if spec in FAMILIES:
        return (spec,)
    raise ValueError(f"unknown type spec {spec!r}")


def _result_fits(construct: Construct, wanted: tuple[str, ...]) -> bool:
    if construct.result in VARIABLES:
        return bool(set(_families(VARIABLES[construct.result])) & set(wanted))
    return set(_families(construct.result)) <= set(wanted)


class Generator:
    def __init__(
        self,
        seed: int,
        constructs: tuple[Construct, ...] = CONSTRUCTS,
        *,
        max_depth: int = 3,
        ill_typed_rate: float = 0.015,
        null_rate: float = 0.04,
        column_rate: float = 0.7,
    ) -> None:
        self.rng = random.Random(seed)
        self.constructs = constructs
        self.max_depth = max_depth
        self.ill_typed_rate = ill_typed_rate
        self.null_rate = null_rate
        self.column_rate = column_rate

    def corpus(self, count: int) -> list[Expr]:
        """``count`` distinct expressions: every construct once at the top, then by weight."""
        firsts = list(self.constructs)
        self.rng.shuffle(firsts)
        weights = [c.weight for c in self.constructs]
        out: list[Expr] = []
        seen: set[str] = set()
        attempts = 0
        while len(out) < count and attempts < count * 20:
            attempts += 1
            construct = firsts.pop() if firsts else self.rng.choices(self.constructs, weights)[0]
            expr = self.build(construct, _families("any"), depth=0)
            if expr.sql not in seen:
                seen.add(expr.sql)
                out.append(expr)
        return out

    def generate(self, spec: str = "any", depth: int = 0) -> Expr:
        """A random expression of the given type spec."""
        if spec.startswith("lit:"):
            return self.literal(self.pick_family(_families(spec[4:])))
        if spec.startswith("col:"):
            return self.column(self.pick_family(_families(spec[4:])))
        wanted = _families(spec)
        if self.rng.random() < self.ill_typed_rate:
            wanted = (self.rng.choice(FAMILIES),)
        leaf_chance = 1.0 if depth >= self.max_depth else 0.35 + 0.25 * depth
        if self.rng.random() >= leaf_chance:
            fitting = [c for c in self.constructs if _result_fits(c, wanted)]
            if fitting:
                construct = self.rng.choices(fitting, [c.weight for c in fitting])[0]
                return self.build(construct, wanted, depth)
        return self.leaf(wanted)

    def pick_family(self, families: tuple[str, ...]) -> str:
        return self.rng.choice(families)

    def leaf(self, wanted: tuple[str, ...]) -> Expr:
        if self.rng.random() < self.null_rate:
            return Expr("NULL", "literal NULL", "any")
        family = self.pick_family(wanted)
        if COLUMNS_BY_FAMILY.get(family) and self.rng.random() < self.column_rate:
            return self.column(family)
        return self.literal(family)

    def column(self, family: str) -> Expr:
        names = COLUMNS_BY_FAMILY.get(family)
        if not names:
            return self.literal(family)
        name = self.rng.choice(names)
        return Expr(name, f"column {name}", family)

    def literal(self, family: str) -> Expr:
        sql = self.rng.choice(LITERALS[family])
        return Expr(sql, f"literal {family}", family, standalone=family != "interval")

    def build(self, construct: Construct, wanted: tuple[str, ...], depth: int) -> Expr:
        bound: dict[str, str] = {}
        if construct.result in VARIABLES:
            domain = _families(VARIABLES[construct.result])
            bound[construct.result] = self.rng.choice([f for f in domain if f in wanted])
        for arg in construct.args:
            var = arg.split(":")[-1]
            if var in VARIABLES and var not in bound:
                bound[var] = self.rng.choice(_families(VARIABLES[var]))
        texts: list[str] = []
        children: list[Expr] = []
        for arg in construct.args:
            if arg.startswith("%"):
                texts.append(self.rng.choice(RAW[arg[1:]]))
                continue
            prefix, _, spec = arg.rpartition(":")
            spec = bound.get(spec, spec)
            child = self.generate(f"{prefix}:{spec}" if prefix else spec, depth + 1)
            texts.append(child.sql)
            children.append(child)
        family = bound.get(construct.result, construct.result)
        return Expr(construct.template.format(*texts), construct.name, family, tuple(children))


def corpus(count: int, seed: int) -> list[Expr]:
    return Generator(seed).corpus(count)
