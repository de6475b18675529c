"""The sequence benchmarks in tools/ refuse nonsense arguments in one line, exit 2, before any work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parent.parent / "tools"

BAD_ARGUMENTS = {
    "bench_line_scores.py": [["--lengths", "0"], ["--lengths", "5,,10"], ["--velocity", "2..1"], ["--targets", "-5"],
                             ["--repeats", "0"], ["--runs", "500", "--columns", "200"]],
    "bench_seq.py": [["--synthetic", "abc"], ["--synthetic", "20"], ["--synthetic", "2000", "--lengths", "x"],
                     ["--synthetic", "2000", "--velocity", "0..1"], ["--synthetic", "2000", "--neighbourhood", "-1"],
                     ["--eval", "/nonexistent"], ["--nordland", "/"]],
    "bench_seq_candidates.py": [["--eval", "/nonexistent"], ["--nordland", "/", "--ends", "0"],
                                ["--nordland", "/", "--candidates", "0"], ["--eval", "/nonexistent", "--lengths", "0"]],
}


@pytest.mark.parametrize(("tool", "arguments"), [(tool, args) for tool, cases in BAD_ARGUMENTS.items() for args in cases],
                         ids=lambda value: value if isinstance(value, str) else " ".join(value))
def test_a_sequence_benchmark_refuses_bad_arguments_in_one_line(tool: str, arguments: list[str]) -> None:
    done = subprocess.run([sys.executable, str(TOOLS / tool), *arguments], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    message = done.stderr.strip().splitlines()[-1]
    assert message.startswith(f"{tool}: error: ") and "Traceback" not in done.stderr, done.stderr
