"""Every command's --out (and the demo's output folder) refuses an empty path, which pathlib reads as
the current folder: a script's `--out "$OUT"` with the variable unset must not write into whatever
folder the shell is in (`vidvpr demo run ""` rendered, sliced and encoded a demo there)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from vidvpr.cli import main

COMMANDS_WITH_OUT = ["distill", "encode", "eval", "export", "import", "manifest", "report", "slice", "study"]


def test_every_command_with_an_out_option_is_listed() -> None:
    """A new command with --out joins the test below (and should take NonEmptyPath)."""
    with_out = sorted(name for name in main.list_commands(None)
                      if any("--out" in p.opts for p in main.get_command(None, name).params))
    assert with_out == COMMANDS_WITH_OUT


@pytest.mark.parametrize("command", COMMANDS_WITH_OUT)
def test_an_empty_out_is_refused_in_one_line_and_nothing_is_written(command: str, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, [command, "--out", ""], prog_name="vidvpr")
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        f"vidvpr: error: Invalid value for '--out': an empty path (is a shell variable unset?) (see 'vidvpr {command} "
        "--help')"]
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("command", ["make", "run", "study"])
def test_an_empty_demo_folder_is_refused_in_one_line_and_nothing_is_written(command: str, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["demo", command, ""], prog_name="vidvpr")
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        f"vidvpr: error: Invalid value for 'OUT_DIR': an empty path (is a shell variable unset?) (see 'vidvpr demo "
        f"{command} --help')"]
    assert not any(tmp_path.iterdir())
