"""The sequence benchmarks in tools/ refuse nonsense arguments in one line, exit 2, before any work."""

from __future__ import annotations

import json
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


def test_a_sequence_benchmark_interrupted_is_one_line_and_exit_130(capsys: pytest.CaptureFixture) -> None:
    sys.path.insert(0, str(TOOLS))
    from bench_line_scores import run_tool

    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as stopped:
        run_tool(interrupted)
    assert stopped.value.code == 130
    assert capsys.readouterr().err.strip().endswith(": interrupted")


def test_the_nordland_descriptor_cache_is_used_only_when_whole_and_made_the_same_way(tmp_path: Path) -> None:
    """An interrupted or damaged cache is made again, never read as descriptors (it was a traceback)."""
    sys.path.insert(0, str(TOOLS))
    from bench_seq import _cached_descriptors

    made_by = {"names": 3, "init": 400}
    path = tmp_path / "nordland-descriptors.npz"
    assert _cached_descriptors(path, made_by) is None  # absent
    winter, summer = np.ones((3, 2), np.float32), np.zeros((3, 2), np.float32)
    np.savez(path, winter=winter, summer=summer, made_by=json.dumps(made_by))
    found = _cached_descriptors(path, made_by)
    assert found is not None and np.array_equal(found[0], winter) and np.array_equal(found[1], summer)
    assert _cached_descriptors(path, {**made_by, "names": 4}) is None  # made from other frames
    path.write_bytes(path.read_bytes()[:100])  # cut short
    assert _cached_descriptors(path, made_by) is None
    path.write_text("[1, 2]")
    assert _cached_descriptors(path, made_by) is None
