"""Start-up: the command line imports a command's module only when that command is used, and the
commands that need no model never import torch or faiss (the import graph, not a timing)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
from click.testing import CliRunner
import pytest

from tests.imports import imports_of_command
from vidvpr.cli import COMMANDS, load_command, main

HEAVY = ("torch", "faiss", "matplotlib")
# `vidvpr doctor` imports torch and faiss on purpose: it reports whether they load
MODEL_FREE = ("probe", "slice", "import", "encode", "manifest", "export", "study", "report")


def _imported_after(argv: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `vidvpr ARGV` in a fresh interpreter; which heavy and which vidvpr.cli modules it imported
    (and whether Dask was imported)."""
    _, loaded = imports_of_command(argv, (*HEAVY, "dask", "vidvpr"), env)
    return {"heavy": [m for m in loaded if m.split(".")[0] in HEAVY],
            "cli": [m for m in loaded if m.startswith("vidvpr.cli.")], "dask": "dask" in loaded}


def test_listing_the_commands_imports_none_of_them() -> None:
    imported = _imported_after(["--help"])
    assert imported["heavy"] == []
    assert imported["cli"] == ["vidvpr.cli.common"]


@pytest.mark.parametrize("command", [*COMMANDS])
def test_a_commands_help_never_imports_torch_or_faiss(command: str) -> None:
    assert _imported_after([command, "--help"])["heavy"] == []


@pytest.mark.parametrize("command", MODEL_FREE)
def test_commands_that_need_no_model_never_import_torch_or_faiss_when_they_run(command: str, tmp_path) -> None:
    # each fails at once on a missing input: far enough to have imported everything it runs with
    argv = {"probe": ["probe", str(tmp_path / "no.insv")],
            "slice": ["slice", str(tmp_path / "no.mp4"), "--out", str(tmp_path / "v")],
            "import": ["import", str(tmp_path / "no.mp4"), "--out", str(tmp_path / "v"), "--hfov", "60"],
            "encode": ["encode", str(tmp_path / "no.mp4"), "--out", str(tmp_path / "e")],
            "manifest": ["manifest", str(tmp_path / "no.toml"), "--out", str(tmp_path / "m")],
            "export": ["export", str(tmp_path / "m"), "--out", str(tmp_path / "x")],
            "study": ["study", str(tmp_path / "eval"), "--out", str(tmp_path / "s")],
            "report": ["report", str(tmp_path / "s"), "--out", str(tmp_path / "r.html")]}[command]
    assert _imported_after(argv)["heavy"] == []


def _no_dask_configuration(home: Path) -> dict[str, str]:
    """This environment without DASK_* variables, with an empty home (no ~/.config/dask)."""
    return {**{key: value for key, value in os.environ.items() if not key.startswith("DASK_")}, "HOME": str(home)}


@pytest.mark.parametrize("command", ["slice", "encode", "manifest", "eval"])
def test_without_a_dask_configuration_no_command_imports_dask(command: str, tmp_path) -> None:
    argv = {"slice": ["slice", str(tmp_path / "no.mp4"), "--out", str(tmp_path / "v")],
            "encode": ["encode", str(tmp_path / "no.mp4"), "--out", str(tmp_path / "e")],
            "manifest": ["manifest", str(tmp_path / "no.toml"), "--out", str(tmp_path / "m")],
            "eval": ["eval", str(tmp_path / "m"), "--out", str(tmp_path / "x")]}[command]
    assert not _imported_after(argv, _no_dask_configuration(tmp_path))["dask"]


def test_a_scheduler_named_in_a_dask_config_file_is_still_found(tmp_path) -> None:
    config = tmp_path / ".config" / "dask"
    config.mkdir(parents=True)
    (config / "cluster.yaml").write_text("scheduler-address: tcp://head.example:8786\n")
    code = "from vidvpr.run import scheduler_address; print(scheduler_address(None))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env=_no_dask_configuration(tmp_path))
    assert done.stdout.strip() == "tcp://head.example:8786"


def test_the_listing_shows_every_command_in_pipeline_order_with_its_summary() -> None:
    listing = CliRunner().invoke(main, ["--help"]).output
    section = listing[listing.index("Commands:"):]
    positions = [section.index(f"  {name} ") for name in COMMANDS]
    assert positions == sorted(positions)
    for name, (_, summary) in COMMANDS.items():
        assert " ".join(summary.split()[:3]) in " ".join(section.split())


@pytest.mark.parametrize("command", [*COMMANDS])
def test_every_listed_command_loads_under_its_name(command: str) -> None:
    loaded = load_command(command)
    assert isinstance(loaded, click.Command) and loaded.name == command
    assert loaded.short_help == COMMANDS[command][1]


def test_an_unknown_command_is_one_line_exit_2() -> None:
    done = subprocess.run([sys.executable, "-m", "vidvpr", "slcie"], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "slcie" in done.stderr


# A script that sends this process a signal the moment a given module is about to be imported, then
# runs the command line: a Ctrl-C or `kill` at a known point of start-up, not at a guessed time.
_SIGNAL_ON_IMPORT = """
import importlib.abc, os, signal, sys

module, signame = sys.argv[1], sys.argv[2]


class SignalOnImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == module:
            os.kill(os.getpid(), getattr(signal, signame))
        return None


sys.meta_path.insert(0, SignalOnImport())
sys.argv = ["vidvpr", *sys.argv[3:]]
from vidvpr.cli import run

run()
"""


@pytest.mark.parametrize(("module", "signame", "argv"), [
    # while `vidvpr.cli` itself is imported: this printed a KeyboardInterrupt traceback
    ("vidvpr.core.memory", "SIGINT", ["--help"]),
    ("vidvpr.core.memory", "SIGTERM", ["--help"]),
    # while the command's module is imported: this printed an empty line, then "vidvpr: interrupted"
    ("vidvpr.cli.probe", "SIGINT", ["probe", "no.insv"]),
    ("vidvpr.cli.probe", "SIGTERM", ["probe", "no.insv"]),
])
def test_ctrl_c_or_kill_while_the_command_line_starts_is_one_line_exit_130(
        tmp_path: Path, module: str, signame: str, argv: list[str]) -> None:
    script = tmp_path / "signal_on_import.py"
    script.write_text(_SIGNAL_ON_IMPORT)
    done = subprocess.run([sys.executable, str(script), module, signame, *argv], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)
    assert done.returncode == 130 and done.stderr == "vidvpr: interrupted\n", done.stderr


def test_importing_the_command_line_leaves_the_callers_signal_handlers_as_they_were() -> None:
    code = ("import signal; before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM); "
            "import vidvpr.cli; print(before == (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "True"
