"""The `vidvpr` command line: each command parses options, calls one library function and prints
the result (one module per command). This package is the only place that exits."""

from __future__ import annotations

import os
import signal
import sys
import threading


def _interrupted_while_starting(signum: int, frame: object) -> None:
    """Ctrl-C or `kill` while the command line is still being imported: no output exists yet, so
    one line and exit 130 (a KeyboardInterrupt raised inside an import printed its traceback)."""
    os.write(2, b"vidvpr: interrupted\n")
    os._exit(130)


def _catch_signals_while_starting() -> dict[int, object]:
    """Route SIGINT and SIGTERM to `_interrupted_while_starting` for the imports below, where
    Python can (main thread only; a signal the caller ignores, as `nohup` or a background job
    does, stays ignored). Returns the handlers to put back once this module is imported."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(sig)
        if handler is not None and handler != signal.SIG_IGN:
            previous[sig] = signal.signal(sig, _interrupted_while_starting)
    return previous


_HANDLERS_BEFORE_IMPORT = _catch_signals_while_starting()

# OpenMP threads that busy-wait for work slow torch's CPU forward passes up to 100x when another
# process shares the cores (measured: 90 ms → 1148 ms per batch under load); passive waiting
# costs nothing when the machine is idle. Must be set before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import importlib  # noqa: E402
import logging  # noqa: E402
from typing import Any  # noqa: E402

import click  # noqa: E402

from vidvpr import __version__  # noqa: E402
from vidvpr.cli.common import EXIT_INTERRUPTED, one_line  # noqa: E402
from vidvpr.core.memory import retain_freed_memory  # noqa: E402

retain_freed_memory()  # every stage allocates and frees frames and activations batch after batch


# Every command as (where it is defined, its one-line summary), in pipeline order. A command's
# module is imported only when that command runs or shows its own help, so `vidvpr --help` and the
# commands that need no model never pay for torch or faiss (tests/test_startup.py checks the graph).
COMMANDS: dict[str, tuple[str, str]] = {
    "doctor": ("vidvpr.cli.doctor:doctor", "Report the tools vidvpr found (exit 3 if one is missing)."),
    "probe": ("vidvpr.cli.probe:probe_command", "What a video file is; for an Insta360 .insv, its whole trailer."),
    "slice": ("vidvpr.cli.slice:slice_command", "Slice 360° videos into perspective view videos."),
    "import": ("vidvpr.cli.ingest:import_command", "Import perspective video, images or a VPR folder as view videos."),
    "encode": ("vidvpr.cli.encode:encode_command", "Encode view videos over a codec × resolution × quantiser grid."),
    "manifest": ("vidvpr.cli.manifest:manifest_command", "Sample view frames into a query/database manifest with positives."),
    "export": ("vidvpr.cli.export:export_command", "Write a manifest's frames in the VPR-datasets-downloader layout."),
    "eval": ("vidvpr.cli.evaluate:eval_command", "Recall@N of place recognition models across the encode grid."),
    "models": ("vidvpr.cli.evaluate:models_command", "List the models vidvpr can load."),
    "distill": ("vidvpr.cli.distill:distill_command", "Distil a student for low-quality frames from a teacher."),
    "study": ("vidvpr.cli.study:study_command", "Recall against bitrate: Bjøntegaard deltas, Pareto fronts."),
    "report": ("vidvpr.cli.report:report_command", "One self-contained HTML report of a study."),
    "demo": ("vidvpr.cli.demo:demo_group", "The built-in synthetic 360° world: make, run, study."),
}


def load_command(name: str) -> click.Command:
    """The click command `name` of COMMANDS, imported now, with the summary `vidvpr --help` shows."""
    location, summary = COMMANDS[name]
    module, attribute = location.split(":")
    command = getattr(importlib.import_module(module), attribute)
    command.short_help = summary
    return command


class LazyCommand(click.Command):
    """A placeholder for a command whose module is imported the first time it is used."""

    def __init__(self, name: str) -> None:
        super().__init__(name, short_help=COMMANDS[name][1])

    def real(self) -> click.Command:
        return load_command(self.name)


class OneLineGroup(click.Group):
    """A click group whose usage errors are one line ("vidvpr: error: ...") with exit code 2."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except click.ClickException as exc:
            ctx = getattr(exc, "ctx", None)  # a usage error's command: `vidvpr demo run --help` helps with it
            command = ctx.command_path if ctx is not None else "vidvpr"
            click.echo(f"vidvpr: error: {one_line(exc.format_message())} (see '{command} --help')", err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("vidvpr: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; Ctrl-C or `kill` while its module is imported or its options parsed is one
        line, exit 130 (click's own Abort printed an empty line first). Once the command runs,
        `handle_errors` removes its partial outputs and says so."""
        # a `kill` unwinds like Ctrl-C, so temporary outputs are removed rather than left behind
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo("vidvpr: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        return command.real() if isinstance(command, LazyCommand) else command

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # pipeline order, not alphabetical

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from the summaries alone: listing never imports a command."""
        rows = [(name, command.short_help or "") for name, command in self.commands.items() if not command.hidden]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=OneLineGroup, context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(__version__, prog_name="vidvpr")
@click.option("-v", "--verbose", is_flag=True, help="Log details (and tracebacks of internal errors) to stderr.")
def main(verbose: bool) -> None:
    """Build video visual place recognition datasets from 360° video and measure how
    compression hurts recall."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="vidvpr: %(levelname)s: %(message)s")


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _register() -> None:
    for name in COMMANDS:
        main.add_command(LazyCommand(name), name)


_register()

for _sig, _handler in _HANDLERS_BEFORE_IMPORT.items():  # imported: Ctrl-C is a KeyboardInterrupt again
    signal.signal(_sig, _handler)


def run() -> None:
    """Console entry point (`vidvpr`, `python -m vidvpr`)."""
    main.main(prog_name="vidvpr")


if __name__ == "__main__":
    run()
