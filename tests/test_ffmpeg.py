"""ffmpeg discovery (one place, a fixed order) and `vidvpr doctor`."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from vidvpr.media import ffmpeg
from vidvpr.cli import main
from vidvpr.core.errors import ProcessFailed, ToolMissing


def fake_ffmpeg(folder: Path, encoders: str) -> Path:
    """An executable that answers -version, -encoders and -filters like ffmpeg."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "ffmpeg"
    script.write_text(
        "#!/bin/sh\n"
        'case "$2" in\n'
        '  -version) echo "ffmpeg version 9.9-fake Copyright";;\n'
        f'  -encoders) printf " V....D {encoders}   fake encoder\\n";;\n'
        '  -filters) printf " .. psnr   VV->V   fake\\n";;\n'
        "esac\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


@pytest.fixture(autouse=True)
def fresh_cache() -> None:
    ffmpeg.describe_ffmpeg.cache_clear()


def test_explicit_path_wins_over_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    explicit = fake_ffmpeg(tmp_path / "a", "libx264")
    monkeypatch.setenv(ffmpeg.FFMPEG_ENV_VAR, str(fake_ffmpeg(tmp_path / "b", "libx264")))
    info = ffmpeg.find_ffmpeg(explicit)
    assert (info.path, info.source, info.version) == (str(explicit), "option", "9.9-fake")


def test_environment_variable_is_used_when_no_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from_env = fake_ffmpeg(tmp_path / "env", "libx264")
    monkeypatch.setenv(ffmpeg.FFMPEG_ENV_VAR, str(from_env))
    assert ffmpeg.find_ffmpeg().source == "env"


def test_ffmpeg_on_path_is_used_only_with_libx264(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ffmpeg.FFMPEG_ENV_VAR, raising=False)
    fake_ffmpeg(tmp_path / "with", "libx264")
    monkeypatch.setenv("PATH", f"{tmp_path / 'with'}{os.pathsep}{os.environ['PATH']}")
    assert ffmpeg.find_ffmpeg().source == "PATH"
    ffmpeg.describe_ffmpeg.cache_clear()
    fake_ffmpeg(tmp_path / "without", "mpeg4")
    monkeypatch.setenv("PATH", f"{tmp_path / 'without'}{os.pathsep}{os.environ['PATH']}")
    info = ffmpeg.find_ffmpeg()
    assert info.source == "imageio-ffmpeg" and info.has_x264


def test_missing_explicit_ffmpeg_is_named(tmp_path: Path) -> None:
    with pytest.raises(ToolMissing, match="nope/ffmpeg: ffmpeg not found"):
        ffmpeg.find_ffmpeg(tmp_path / "nope" / "ffmpeg")


def test_commands_must_be_argument_lists() -> None:
    with pytest.raises(TypeError, match="argument lists"):
        ffmpeg.run_ffmpeg("ffmpeg -version", "probe")  # type: ignore[arg-type]


def test_failed_run_reports_the_tail_of_stderr() -> None:
    info = ffmpeg.find_ffmpeg()
    with pytest.raises(ProcessFailed, match="probe: ffmpeg exited with .*no-such-file"):
        ffmpeg.run_ffmpeg([info.path, "-v", "error", "-i", "no-such-file.mp4", "-f", "null", "-"], "probe")


def test_doctor_reports_tools_and_exits_zero() -> None:
    result = CliRunner().invoke(main, ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    checks = {c["name"]: c for c in json.loads(result.output)["checks"]}
    assert {"ffmpeg", "libx264", "libx265", "libvmaf", "pyav", "torch", "faiss"} <= set(checks)
    assert checks["ffmpeg"]["ok"] and checks["libx264"]["ok"]


def test_doctor_exits_nonzero_when_required_tools_are_missing(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["doctor", "--ffmpeg", str(fake_ffmpeg(tmp_path, "mpeg4"))])
    assert result.exit_code == 3
    assert "MISSING libx264" in " ".join(result.output.split())


# --- what each binary can do, asked once ---------------------------------------------------


def test_a_binary_described_once_is_not_run_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDVPR_CACHE_DIR", str(tmp_path / "cache"))
    binary = str(fake_ffmpeg(tmp_path / "bin", "libx264"))
    first = ffmpeg.describe_ffmpeg(binary, "option")
    ffmpeg.describe_ffmpeg.cache_clear()  # as in a new process
    monkeypatch.setattr(ffmpeg, "_capture", lambda argv: pytest.fail(f"ran {argv} again"))
    assert ffmpeg.describe_ffmpeg(binary, "option") == first and first.has_x264


def test_a_replaced_binary_is_described_anew(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDVPR_CACHE_DIR", str(tmp_path / "cache"))
    binary = fake_ffmpeg(tmp_path / "bin", "libx264")
    assert not ffmpeg.describe_ffmpeg(str(binary), "option").has_x265
    ffmpeg.describe_ffmpeg.cache_clear()
    fake_ffmpeg(tmp_path / "bin", "libx265")
    os.utime(binary, ns=(binary.stat().st_atime_ns, binary.stat().st_mtime_ns + 10**9))
    assert ffmpeg.describe_ffmpeg(str(binary), "option").has_x265


def test_a_damaged_description_is_asked_again_and_rewritten(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDVPR_CACHE_DIR", str(tmp_path / "cache"))
    binary = str(fake_ffmpeg(tmp_path / "bin", "libx264"))
    first = ffmpeg.describe_ffmpeg(binary, "option")
    [entry] = (tmp_path / "cache" / ffmpeg.DESCRIPTIONS_DIR).glob("*.json")
    entry.write_text('{"schema": "vidvpr.ffmpeg-description/1", "path": ')
    ffmpeg.describe_ffmpeg.cache_clear()
    assert ffmpeg.describe_ffmpeg(binary, "option") == first
    assert ffmpeg.FfmpegDescription.load(entry).version == first.version
