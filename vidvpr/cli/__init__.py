"""The `vidvpr` command line: each command parses options, calls one library function and prints
the result (one module per command). This package is the only place that exits."""

from __future__ import annotations

import os

# OpenMP threads that busy-wait for work slow torch's CPU forward passes up to 100x when another
# process shares the cores (measured: 90 ms → 1148 ms per batch under load); passive waiting
# costs nothing when the machine is idle. Must be set before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import logging  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

import click  # noqa: E402

from vidvpr import __version__  # noqa: E402
from vidvpr.cli.common import EXIT_INTERRUPTED, one_line  # noqa: E402
from vidvpr.core.memory import retain_freed_memory  # noqa: E402

retain_freed_memory()  # every stage allocates and frees frames and activations batch after batch


class OneLineGroup(click.Group):
    """A click group whose usage errors are one line ("vidvpr: error: ...") with exit code 2."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except click.ClickException as exc:
            click.echo(f"vidvpr: error: {one_line(exc.format_message())} (see 'vidvpr --help')", err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("vidvpr: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=OneLineGroup, context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(__version__, prog_name="vidvpr")
@click.option("-v", "--verbose", is_flag=True, help="Log details (and tracebacks of internal errors) to stderr.")
def main(verbose: bool) -> None:
    """Build video visual place recognition datasets from 360° video and measure how
    compression hurts recall."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="vidvpr: %(levelname)s: %(message)s")
    # a `kill` unwinds like Ctrl-C, so temporary outputs are removed rather than left behind
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _register() -> None:
    from vidvpr.cli.demo import demo_group
    from vidvpr.cli.distill import distill_command
    from vidvpr.cli.doctor import doctor
    from vidvpr.cli.encode import encode_command
    from vidvpr.cli.evaluate import eval_command, models_command
    from vidvpr.cli.export import export_command
    from vidvpr.cli.manifest import manifest_command
    from vidvpr.cli.report import report_command
    from vidvpr.cli.slice import slice_command
    from vidvpr.cli.study import study_command

    for command in (doctor, slice_command, encode_command, manifest_command, export_command, eval_command,
                    models_command, distill_command, study_command, report_command, demo_group):
        main.add_command(command)


_register()


def run() -> None:
    """Console entry point (`vidvpr`, `python -m vidvpr`)."""
    main.main(prog_name="vidvpr")


if __name__ == "__main__":
    run()
