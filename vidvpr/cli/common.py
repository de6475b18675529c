"""What every command shares: error handling, --quiet/--json, option parsers, JSON output.

The CLI is the only place that exits: library errors become one line on stderr with their exit
code (2 bad input, 3 missing tool, 4 output problem, 5 external process failed), Ctrl-C and
SIGTERM exit 130, and anything unexpected is one line saying so with exit 1 (run with -v for the
traceback), never a traceback on a user's screen.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import sys
import traceback
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import TYPE_CHECKING, Any, TypeVar

import click

from vidvpr.core.errors import VidvprError

if TYPE_CHECKING:
    from vidvpr.run import Executor

F = TypeVar("F", bound=Callable[..., Any])
LOG = logging.getLogger("vidvpr")
EXIT_INTERRUPTED = 130
EXIT_INTERNAL = 1


def handle_errors(func: F) -> F:
    """Turn library errors into one line on stderr and their exit code; Ctrl-C exits 130."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except VidvprError as exc:
            for line in getattr(exc, "details", ()):  # a per-unit summary (UnitsFailed)
                click.echo(f"vidvpr: {one_line(line)}", err=True)
            click.echo(f"vidvpr: error: {one_line(str(exc))}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("vidvpr: interrupted; finished outputs are kept, partial ones removed", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as exc:  # a bug, not the user's input: one line, the traceback only with -v
            if _caused_by_interrupt(exc):  # cleanup disturbed by Ctrl-C / SIGTERM arriving mid-operation
                click.echo("vidvpr: interrupted; finished outputs are kept, partial ones removed", err=True)
                sys.exit(EXIT_INTERRUPTED)
            LOG.debug("internal error", exc_info=True)
            if LOG.isEnabledFor(logging.INFO):
                traceback.print_exc()
            click.echo(f"vidvpr: internal error: {type(exc).__name__}: {one_line(str(exc))} "
                       "(please report it; -v shows the traceback)", err=True)
            sys.exit(EXIT_INTERNAL)

    return wrapper  # type: ignore[return-value]


def _caused_by_interrupt(exc: BaseException) -> bool:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


def one_line(text: str) -> str:
    """A message folded onto one line."""
    return " ".join(text.split())


def output_options(func: F) -> F:
    """The --quiet and --json options every pipeline command takes."""
    func = click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")(func)
    return click.option("--quiet", is_flag=True, help="No progress bar or summary.")(func)


class NonEmptyPath(click.Path):
    """A click.Path that refuses "" (a quoted shell variable that is unset), which pathlib would read
    as the current folder: `--out "$OUT"` must not write into whatever folder the shell is in."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value.strip():
            self.fail("an empty path (is a shell variable unset?)", param, ctx)
        return super().convert(value, param, ctx)


def parse_size(value: str | None, option: str = "--size") -> tuple[int, int] | None:
    """'WxH' → (W, H); raises click.BadParameter naming `option` for anything else."""
    if value is None:
        return None
    try:
        width, height = (int(part) for part in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"'{value}' is not WxH (e.g. 1824x1024)", param_hint=f"'{option}'") from None
    return width, height


def parse_float_list(value: str, option: str) -> tuple[float, ...]:
    """'0,90,180' → (0.0, 90.0, 180.0); an empty item ('0,,90') is refused (`comma_items`), and every
    error names `option`."""
    parts = comma_items(value, option)
    try:
        return tuple(float(part) for part in parts)
    except ValueError:
        raise click.BadParameter(f"'{value}' is not a comma-separated list of numbers",
                                 param_hint=f"'{option}'") from None


def parse_fraction(value: str | None, option: str = "--fps") -> Fraction | None:
    """'29.97', '30000/1001' or '10' → Fraction; raises click.BadParameter naming `option` for anything else."""
    if value is None:
        return None
    try:
        return Fraction(value).limit_denominator(1_000_000)
    except (ValueError, ZeroDivisionError):
        raise click.BadParameter(f"'{value}' is not a frame rate (e.g. 10 or 30000/1001)",
                                 param_hint=f"'{option}'") from None


def comma_items(text: str, option: str) -> list[str]:
    """The comma-separated items of `text` (none for an empty text); an empty item among others, as
    in '5,,10' or '5,', is refused rather than skipped: it is a typo, not a choice."""
    parts = [part.strip() for part in text.split(",")]
    if parts == [""]:
        return []
    if "" in parts:
        raise click.BadParameter(f"{option} has an empty item in {text!r} (two commas in a row, or one at an end)")
    return parts


def parse_numbers(text: str | None, kind: type, option: str) -> tuple | None:
    """'40,45,50' -> (40, 45, 50) as `kind` (int or float); None stays None; an empty item is refused
    (`comma_items`), and so is anything `kind` does not read (for int, 40.5 is not read as 40)."""
    if text is None:
        return None
    parts = comma_items(text, option)
    try:
        return tuple(kind(part) for part in parts)
    except ValueError:
        what = "whole numbers" if kind is int else "numbers"
        raise click.BadParameter(f"{option} takes a comma-separated list of {what}, got {text!r}") from None


def parse_names(value: str | None, option: str) -> tuple[str, ...] | None:
    """'a,b' → ('a', 'b'); None stays None; an empty item ('a,,b', 'a,') is refused as by `comma_items`."""
    return None if value is None else tuple(comma_items(value, option))


def emit_json(payload: Any) -> None:
    """Machine-readable result on stdout."""
    click.echo(json.dumps(payload, indent=2, default=str))


def scheduler_option(func: F) -> F:
    """The --scheduler option of the commands whose units can run on a Dask cluster."""
    return click.option("--scheduler", default=None, metavar="ADDRESS",
                        help="Run the work on the Dask cluster of this scheduler, e.g. tcp://head:8786; inputs and "
                             "--out must be on storage every worker sees [default: Dask's scheduler-address "
                             "setting (DASK_SCHEDULER_ADDRESS) if any, else in this process].")(func)


@contextlib.contextmanager
def executor_for(scheduler: str | None, quiet: bool) -> Iterator[Executor]:
    """The executor a command runs its units on (connected before anything is written); on leaving,
    the units that had to be retried are listed and the cluster connection closed."""
    from vidvpr.run import open_executor

    executor = open_executor(scheduler)
    try:
        if executor.name != "in-process" and not quiet:
            workers = getattr(executor, "workers", [])
            dashboard = f"; dashboard {executor.dashboard}" if executor.dashboard else ""
            click.echo(f"vidvpr: running on Dask ({len(workers)} workers){dashboard}", err=True)
        yield executor
    finally:
        if not quiet:
            for line in retry_lines(executor):
                click.echo(f"vidvpr: {line}", err=True)
        executor.close()


def retry_lines(executor: Executor) -> list[str]:
    """One line per unit the executor had to run more than once."""
    return [f"retried {retry.unit} ({retry.attempts} attempts: {retry.reason})"
            for report in executor.reports for retry in report.retried]
