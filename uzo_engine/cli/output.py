"""How ``uzo`` commands talk: help layout, errors on stderr, ``--json`` documents.

Every command follows the same conventions:

- results go to stdout, errors to stderr (rich text, for people);
- with ``--json``, stdout carries exactly one JSON document, errors included,
  and the exit code is the one the text output would have given;
- boolean options are flags, and their help shows no value placeholder.

Only ``typer`` and the standard library are imported here: ``uzo --version``
and ``uzo -h`` must stay fast. Rich is imported when something is printed.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import functools
import json
import math
import sys
import traceback
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.core import TyperCommand, TyperGroup, TyperOption

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from rich.console import Console
    from typer._click.core import Context
    from typer._click.formatting import HelpFormatter

HELP_CONTEXT: dict[str, Any] = {"help_option_names": ["-h", "--help"]}
USAGE_ERROR = 2  # as for a bad option: the input could not be used at all


def _bare_flags(params: Iterable[object]) -> None:
    # Typer's rich help puts ``<bool>`` in the type column of a flag, as if it took a
    # value; an empty metavar leaves the column blank (flags never show a metavar elsewhere)
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""


class UzoCommand(TyperCommand):
    """A ``uzo`` command: flags shown as flags in its help (``--local``, not
    ``--local <bool>``), and under ``--json`` a command-line error is a JSON document too.
    """

    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        _bare_flags(self.get_params(ctx))
        super().format_help(ctx, formatter)

    def make_context(
        self, info_name: str | None, args: list[str], parent: Context | None = None, **extra: Any
    ) -> Context:
        wants_json = "--json" in args and any("--json" in p.opts for p in self.params)
        try:
            return super().make_context(info_name, args, parent, **extra)
        except typer.TyperException as exc:  # a usage error: the command did not start
            if not wants_json:
                raise
            Output(as_json=True).emit(errors=[issue("usage_error", exc.format_message())])
            raise typer.Exit(exc.exit_code) from None


class UzoGroup(TyperGroup):
    """A ``uzo`` command group: flags shown as flags in its help."""

    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        _bare_flags(self.get_params(ctx))
        super().format_help(ctx, formatter)


def sub_app(help_text: str) -> typer.Typer:
    """A ``uzo`` command group (``uzo db``, ``uzo admin``...) with the CLI's conventions."""
    return typer.Typer(help=help_text, no_args_is_help=True, cls=UzoGroup)


def issue(
    code: str,
    message: str,
    *,
    node_id: str | None = None,
    edge_id: str | None = None,
    field: str | None = None,
    column: str | None = None,
) -> dict[str, Any]:
    """One entry of a JSON document's ``errors``: always the same keys."""
    return {
        "code": code,
        "message": message,
        "node_id": node_id,
        "edge_id": edge_id,
        "field": field,
        "column": column,
    }


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON: ISO dates, decimals as text, bytes as base64.

    Non-finite floats become the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``
    (a bare NaN is not JSON). Anything else unknown is rendered with ``str``.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)


class Output:
    """One command's output: text for people, or (``as_json``) a single JSON document.

    ``template`` holds every key of the document with the values it has when the
    command fails early; :meth:`emit` and :meth:`fail` fill in what is known.
    """

    def __init__(self, as_json: bool, template: dict[str, Any] | None = None) -> None:
        self.as_json = as_json
        self.template = {"ok": False, **(template or {}), "errors": []}
        # where the document goes, even while stdout is redirected to stderr
        self._stdout = sys.stdout

    @functools.cached_property
    def console(self) -> Console:
        """Results, for people (stdout)."""
        from rich.console import Console

        return Console()

    @functools.cached_property
    def err(self) -> Console:
        """Errors and warnings (stderr)."""
        from rich.console import Console

        return Console(stderr=True)

    def info(self, text: str) -> None:
        """A progress note: on stdout for people, on stderr under ``--json``."""
        (self.err if self.as_json else self.console).print(
            text, markup=False, highlight=False, soft_wrap=True
        )

    def error(self, message: str) -> None:
        """A human error message on stderr (nothing under ``--json``: it goes in the document)."""
        if not self.as_json:
            self.err.print(
                f"error: {message}", style="red", markup=False, highlight=False, soft_wrap=True
            )

    def warning(self, message: str) -> None:
        """A warning on stderr, with or without ``--json``."""
        self.err.print(
            f"warning: {message}", style="yellow", markup=False, highlight=False, soft_wrap=True
        )

    def emit(self, **fields: Any) -> None:
        """Under ``--json``, write the document: the template updated with ``fields``."""
        if not self.as_json:
            return
        doc = {**self.template, **fields}
        self._stdout.write(json.dumps(jsonable(doc), indent=2, allow_nan=False) + "\n")
        self._stdout.flush()

    def fail(
        self, exit_code: int, message: str, code: str = "error", **where: str | None
    ) -> NoReturn:
        """Report one error (stderr, or the JSON document) and exit with ``exit_code``."""
        self.error(message)
        self.emit(errors=[issue(code, message, **where)])
        raise typer.Exit(exit_code)

    @contextlib.contextmanager
    def document_only(self) -> Iterator[None]:
        """Under ``--json``, keep stdout for the document.

        Whatever else would be printed on stdout meanwhile (a library's notes, worker
        output forwarded by Ray) goes to stderr; an unexpected exception becomes the
        document's error (its traceback on stderr) with exit code 1, as without ``--json``.
        """
        if not self.as_json:
            yield
            return
        try:
            with contextlib.redirect_stdout(sys.stderr):
                yield
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            self.emit(errors=[issue("internal_error", f"{type(exc).__name__}: {exc}")])
            raise typer.Exit(1) from None


#: ``--json`` as every command declares it
JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout (errors included).")
]
