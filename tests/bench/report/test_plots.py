"""Figures: the Δ heatmap's marks, units on the axes, log parity axes for skewed targets, no overlaps, same bytes."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.report import plots
from bench.report.stats import paired_comparisons, significance_mark

SIZES = {k: (400, 100) for k in range(5)}


@pytest.fixture
def captured(monkeypatch):
    """The figures handed to ``plots.save`` (drawn, before they are closed)."""
    figures = []
    original = plots.save

    def keep(fig, out_dir, name):
        fig.canvas.draw()
        figures.append((name, fig, [ax.get_window_extent() for ax in fig.axes],
                        [t.get_window_extent() for ax in fig.axes for t in (ax.title,) if t.get_text()]
                        + ([fig._suptitle.get_window_extent()] if fig._suptitle else [])))
        return original(fig, out_dir, name)

    monkeypatch.setattr(plots, "save", keep)
    return figures


def _no_overlaps(axes_boxes, title_boxes):
    for i, a in enumerate(title_boxes):  # titles overlap neither each other nor any panel
        assert not any(a.overlaps(b) for b in title_boxes[i + 1:])
        assert not any(a.overlaps(ax) for ax in axes_boxes)


def _frame(task="matbench_phonons"):
    rows = []
    effects = {("a", "lattice"): [5.0, 5.2, 4.9, 5.1, 5.0], ("a", "multi_edge"): [0.3, -0.4, 0.1, -0.2, 0.2],
               ("b", "lattice"): [-1.0, 0.5, -0.3, 0.8, -0.6], ("b", "multi_edge"): [2.0, -1.5, 0.4, 1.0, -0.9]}
    for arch in ("a", "b"):
        for f in range(5):
            base = 40.0 + f
            rows.append((arch, "distance", f, base))
            rows += [(arch, v, f, base + effects[(arch, v)][f]) for v in ("multi_edge", "lattice")]
    return pd.DataFrame([{"task": task, "architecture": a, "variant": v, "fold": f, "seed": 0,
                          "test_mae": m, "run_id": f"{a}-{v}-{f}"} for a, v, f, m in rows])


def test_significance_marks_follow_the_adjusted_p():
    assert [significance_mark(p) for p in (0.0005, 0.005, 0.04, 0.05, 0.2, float("nan"))] == \
        ["***", "**", "*", "", "", ""]


def test_log_axes_rule():
    assert plots.use_log_axes(np.array([0.03, 1.0, 1604.0]))  # exfoliation energies: > 4 decades
    assert not plots.use_log_axes(np.array([59.6, 3643.7]))  # phonon peaks: ratio 61 < 100
    assert not plots.use_log_axes(np.array([-1.0, 1.0, 1e4]))  # a non-positive target: never log


def test_delta_heatmap_marks_significant_cells_and_names_units(tmp_path, captured):
    comp = paired_comparisons(_frame(), "matbench_phonons", fold_sizes=SIZES)
    paths = plots.delta_heatmap({"matbench_phonons": comp}, {"matbench_phonons": "cm^-1"}, tmp_path)
    assert [p.name for p in paths] == ["heatmap_delta_vs_distance.png", "heatmap_delta_vs_distance.pdf"]
    (_, fig, axes_boxes, title_boxes), = captured
    ax = fig.axes[0]
    cells = {t.get_text() for t in ax.texts}
    strong = comp.set_index(["architecture", "variant"]).loc[("a", "lattice")]
    assert strong.significant and f"{strong.mean_diff:+.3g}{significance_mark(strong.p_adjusted)}" in cells
    assert any(t.endswith("*") for t in cells) and not all(t.endswith("*") for t in cells)
    assert "cm$^{-1}$" in ax.get_title() and ax.get_ylabel() == "architecture"
    assert "% of distance's MAE" in fig.axes[1].get_ylabel()  # the colour bar
    _no_overlaps(axes_boxes[:1], title_boxes)


def test_delta_heatmap_is_the_same_bytes_twice(tmp_path):
    comp = {"matbench_phonons": paired_comparisons(_frame(), "matbench_phonons", fold_sizes=SIZES)}
    first = plots.delta_heatmap(comp, {"matbench_phonons": "cm^-1"}, tmp_path / "1")
    second = plots.delta_heatmap(comp, {"matbench_phonons": "cm^-1"}, tmp_path / "2")
    for a, b in zip(first, second):
        assert a.read_bytes() == b.read_bytes(), a.name


class _Client:
    """Stands in for MlflowClient: every run's predictions.csv from ``make(run_id)``."""

    def __init__(self, make):
        self.make = make

    def download_artifacts(self, run_id, name, tmp):
        path = Path(tmp) / name
        self.make(run_id).to_csv(path, index=False)
        return str(path)


def _predictions(low, high, negatives=0):
    def make(run_id):
        y = np.geomspace(low, high, 40)
        pred = y * 1.1
        pred[:negatives] = -1.0
        return pd.DataFrame({"id": [f"{run_id}-{i}" for i in range(40)], "y_true": y, "y_pred": pred})
    return make


@pytest.mark.parametrize("low,high,log", [(0.03, 1600.0, True), (60.0, 3600.0, False)])
def test_parity_axes_follow_the_rule_and_carry_units(tmp_path, captured, low, high, log):
    frame = _frame("matbench_jdft2d")[lambda d: d.architecture == "a"]
    plots.parity_plots(frame, "matbench_jdft2d", "regression",
                       _Client(_predictions(low, high, negatives=2)), tmp_path, unit="meV/atom")
    (_, fig, axes_boxes, title_boxes), = captured
    panels = [ax for ax in fig.axes if ax.has_data()]
    assert len(panels) == 3
    for ax in panels:
        assert (ax.get_xscale() == "log") == log and (ax.get_yscale() == "log") == log
        assert ax.get_xlabel() == "true exfoliation_en (meV/atom)" and ax.get_ylabel() == "predicted (meV/atom)"
        notes = [t.get_text() for t in ax.texts]
        assert notes == (["10 prediction(s) ≤ 0 not shown"] if log else [])  # 2 per fold x 5 folds
    _no_overlaps(axes_boxes, title_boxes)
