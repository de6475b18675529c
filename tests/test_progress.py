"""Progress bars on stderr: drawn while work goes on, never for a run that had nothing to do (a rerun
over finished work), never with --quiet."""

from __future__ import annotations

import pytest

from vidvpr.core.progress import LOG_INTERVAL_S, progress_bar


class Clock:
    """tqdm's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr("tqdm.std.time", clock)
    return clock


def test_a_total_and_a_status_alone_draw_nothing(clock: Clock, capsys: pytest.CaptureFixture) -> None:
    # a rerun: `vidvpr slice` learns it has 0 frames to do, `vidvpr encode` says "encode 0 views"
    with progress_bar(None, "slice") as bar:
        bar.reset(total=0)
        bar.set_description("encode 0 views")
        clock.now += 10
    assert capsys.readouterr().err == ""


def test_finished_work_counted_at_once_draws_nothing(clock: Clock, capsys: pytest.CaptureFixture) -> None:
    # `vidvpr demo make` over rendered traversals: a second of checking, then their frames at once
    with progress_bar(638, "demo") as bar:
        clock.now += 1
        bar.update(341)
        bar.update(297)
    assert capsys.readouterr().err == ""


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """stderr (captured, so not a terminal) taken for one."""
    monkeypatch.setattr("vidvpr.core.progress._stderr_is_terminal", lambda: True)


def test_work_going_on_past_the_delay_is_drawn_and_cleared_at_the_end(clock: Clock, capsys: pytest.CaptureFixture,
                                                                     terminal: None) -> None:
    with progress_bar(None, "slice") as bar:
        bar.update(1)
        clock.now += 1
        bar.update(1)
        assert "slice: 2frame" in capsys.readouterr().err
    assert capsys.readouterr().err.endswith("\r")  # leave=False: the line is wiped


def test_quiet_draws_nothing_ever(clock: Clock, capsys: pytest.CaptureFixture) -> None:
    with progress_bar(None, "slice", quiet=True) as bar:
        for _ in range(3):
            bar.update(1)
            clock.now += 1
    assert capsys.readouterr().err == ""


def test_a_terminal_sees_the_bar_redrawn_as_work_goes_on(clock: Clock, capsys: pytest.CaptureFixture,
                                                         terminal: None) -> None:
    with progress_bar(None, "slice") as bar:
        for _ in range(30):
            bar.update(1)
            clock.now += 1
        assert capsys.readouterr().err.count("slice:") >= 25


def test_a_log_gets_the_bar_only_every_log_interval(clock: Clock, capsys: pytest.CaptureFixture) -> None:
    """stderr to a file or a pipe: one line of progress per LOG_INTERVAL_S, not one per update."""
    with progress_bar(None, "slice") as bar:
        for _ in range(int(3 * LOG_INTERVAL_S)):
            bar.update(1)
            clock.now += 1
        drawn = capsys.readouterr().err.count("slice:")
    assert 1 <= drawn <= 3
