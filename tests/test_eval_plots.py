"""What the eval plots say: curve names and titles (the drawing itself is looked at, not tested)."""

from __future__ import annotations

from dataclasses import dataclass

from tests.test_study import eval_row
from vidvpr.evaluate.plots import _curves, recall_title
from vidvpr.evaluate.results import PrecisionRecallRecord
from vidvpr.evaluate.seq_plots import precision_recall_figure


@dataclass
class _Size:
    resolution: str
    width: int
    height: int


def _row(qp: int, size: _Size):
    row = eval_row("m", f"{size.resolution}/qp{qp}", "libx264", qp, 10.0 * qp, 0.5, resolution=size.resolution)
    return row.model_copy(update={"width": size.width, "height": size.height})


def test_a_curve_of_a_resolution_given_as_a_size_is_named_by_the_size_once() -> None:
    # it was "80x32 (80x32)"
    curves = _curves([_row(40, _Size("80x32", 80, 32)), _row(45, _Size("80x32", 80, 32))], 1)
    assert list(curves) == [("m", "80x32")]


def test_a_curve_of_a_named_resolution_carries_the_size_it_became() -> None:
    curves = _curves([_row(40, _Size("360p", 640, 360))], 1)
    assert list(curves) == [("m", "360p (640x360)")]


def test_the_precision_recall_figure_names_the_threshold_and_protocol() -> None:
    curve = PrecisionRecallRecord(distance=[0.5, 1.0], precision=[1.0, 0.5], recall=[0.25, 0.5])
    row = eval_row("m", "reference", None, None, None, 0.5).model_copy(
        update={"precision_recall": curve, "auc_pr": 0.4, "recall_at_100_precision": 0.25})
    figure = precision_recall_figure([row])
    assert figure.texts[0].get_text().endswith("(VPR-Bench)\nat 25 m (same protocol)")


def test_the_recall_plots_name_their_model_when_there_is_one() -> None:
    # the legend names only the cell ("80x32") when one model was evaluated: the figure did not say whose recall
    rows = [_row(40, _Size("80x32", 80, 32))]
    assert recall_title(rows, 1, ["netvlad-efficientnet-lite0"]) == ("Recall@1 at 25 m (same protocol): "
                                                                     "netvlad-efficientnet-lite0")
    assert recall_title(rows, 5, ["teacher", "student"]) == "Recall@5 at 25 m (same protocol)"  # the legend names them


def test_the_precision_recall_figures_title_fits_inside_a_one_panel_figure() -> None:
    # it ran 71 px past both edges of the 640 px figure (eval's precision_recall.png)
    curve = PrecisionRecallRecord(distance=[0.5, 1.0], precision=[1.0, 0.5], recall=[0.25, 0.5])
    row = eval_row("netvlad-efficientnet-lite0", "reference", None, None, None, 0.5).model_copy(
        update={"precision_recall": curve, "auc_pr": 0.4, "recall_at_100_precision": 0.25})
    figure = precision_recall_figure([row])
    figure.canvas.draw()
    title = figure.texts[0].get_window_extent(figure.canvas.get_renderer())
    assert figure.bbox.x0 <= title.x0 and title.x1 <= figure.bbox.x1
