"""The sequence benchmarks in tools/ refuse nonsense arguments in one line, exit 2, before any work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
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
    "bench_seq_coarse.py": [["--eval", "/nonexistent"], ["--nordland", "/"], ["--eval", "/x", "--length", "5,10"],
                            ["--eval", "/x", "--length", "0"], ["--eval", "/x", "--ends", "0"],
                            ["--eval", "/x", "--sketch-dims", "abc"], ["--eval", "/x", "--nordland", "/"]],
}


@pytest.mark.parametrize(("tool", "arguments"), [(tool, args) for tool, cases in BAD_ARGUMENTS.items() for args in cases],
                         ids=lambda value: value if isinstance(value, str) else " ".join(value))
def test_a_sequence_benchmark_refuses_bad_arguments_in_one_line(tool: str, arguments: list[str]) -> None:
    done = subprocess.run([sys.executable, str(TOOLS / tool), *arguments], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    message = done.stderr.strip().splitlines()[-1]
    assert message.startswith(f"{tool}: error: ") and "Traceback" not in done.stderr, done.stderr


def test_the_coarse_bound_answers_as_the_full_search_when_every_end_is_kept() -> None:
    """bench_seq_coarse's restricted answer, given line ends whose ±2 frames cover every frame,
    is the full search's best end: the tool measures only what the kept ends lose."""
    sys.path.insert(0, str(TOOLS))
    from bench_seq_coarse import restricted_answer

    from vidvpr.evaluate.sequence import DatabaseRuns, SequenceSettings, sequence_scores

    rng = np.random.default_rng(3)
    distances = rng.random((12, 23)).astype(np.float32)
    database_runs = [np.arange(0, 11), np.arange(11, 23)]
    scores, _ = sequence_scores(distances, [np.arange(12)], database_runs, SequenceSettings(3))
    runs = DatabaseRuns.of(database_runs, 23)
    every = np.tile([2, 7, 10, 13, 18, 21], (12, 1))  # ±2 of these covers both runs' every frame
    assert np.array_equal(restricted_answer(scores, every, runs, 2), np.argmin(scores, axis=1))
