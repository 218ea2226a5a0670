"""Matbench submissions from run records on the real matbench_jdft2d data, loaded back with matbench itself."""
import gzip
import json
import os
import runpy
import subprocess
import sys

import pandas as pd
import pytest
from matbench.bench import MatbenchBenchmark

from bench.cell import run_cell
from bench.config import load_config
from bench.grid import dummy_cells, load_task, run_grid
from bench.report.matbench_export import (INFO_FILE, RESULTS_FILE, RUNNER_FILE, ExportError, describe_submission, export_matbench,
                                          load_submission,
                                          validation_ranking)
from bench.report.references import references
from bench.tracking import Tracker


def _check_submission(folder, tmp_path, runs_mae: dict[int, float]):
    """The checks of the matbench repository's submission test, plus: its scores are ours."""
    raw = (folder / RESULTS_FILE).read_bytes()
    assert raw[:2] == b"\x1f\x8b"  # gzip, as the submissions in the matbench repository
    plain = tmp_path / "results.json"  # matbench 0.6's from_file reads plain JSON only
    plain.write_bytes(gzip.decompress(raw))
    for mb in (MatbenchBenchmark.from_file(str(plain)), load_submission(folder / RESULTS_FILE)):
        assert mb.is_recorded and mb.is_valid
        task = mb.tasks_map["matbench_jdft2d"]
        for fold, mae in runs_mae.items():
            assert task.results[f"fold_{fold}"]["scores"]["mae"] == pytest.approx(mae, rel=1e-9)
    info = json.loads((folder / INFO_FILE).read_text())
    assert "notes" in info
    for key in ("authors", "algorithm", "algorithm_long", "bibtex_refs", "requirements"):
        assert info[key], key
    assert any(r.startswith("torch==") for r in info["requirements"]["python"])
    # the runner is valid Python whose imports resolve (run without its __main__ block)
    runner = runpy.run_path(str(folder / RUNNER_FILE), run_name="runner_import_check")
    assert callable(runner["bench_main"]) and "--experiment" in runner["GRID"]
    return mb


def test_dummy_export_reproduces_matbench_published_dummy(tmp_path):
    """All 5 folds in seconds: the dummy cells, exported, score exactly Matbench's published Dummy."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = load_config("quick", ["experiment=mb", "tasks=[matbench_jdft2d]"])
    data, tracker = load_task("matbench_jdft2d", cfg), Tracker("mb", uri)
    outcomes = [run_cell(c, cfg, data, None, tracker, progress=False) for c in dummy_cells(cfg, "matbench_jdft2d")]
    folder = export_matbench(cfg, "dummy", "none", tmp_path / "out", name="dummy_test",
                             notes="Chosen among 1 (architecture, variant) pairs for this test.")
    assert folder.name == "matbench_v0.1_dummy_test"
    line = describe_submission(folder, tmp_path)  # the REPORT.md entry: Matbench's own scores and the rule
    assert line.startswith("- [matbench_v0.1_dummy_test](out/matbench_v0.1_dummy_test/): dummy/none, seed 0;")
    assert "matbench_jdft2d mae 67.29 ± 10.18" in line and "Chosen among 1 (architecture, variant) pairs" in line
    mb = _check_submission(folder, tmp_path, {o.cell.fold: o.metrics["test_mae"] for o in outcomes})
    published = {r.label: r for r in references("matbench_jdft2d")}["Dummy"]
    scores = mb.tasks_map["matbench_jdft2d"].scores["mae"]
    assert scores["mean"] == pytest.approx(published.mean, abs=5e-5)
    assert scores["std"] == pytest.approx(published.std, abs=5e-5)


@pytest.mark.slow
def test_cgcnn_export_of_a_five_fold_grid(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = load_config("quick", ["experiment=mb5", "tasks=[matbench_jdft2d]", "architectures=[cgcnn]", "seeds=[0]", "variants=[lattice]", "train.epochs=1",
                                "hparams={cgcnn: {hidden: 8, num_layers: 1}}"])
    outcomes = run_grid(cfg, uri, progress=False)
    folder = export_matbench(cfg, "cgcnn", "lattice", tmp_path / "out", authors="A. Tester", notes="Kept note.")
    assert folder.name == "matbench_v0.1_cpb_cgcnn_lattice"
    runs = {o.cell.fold: o.metrics["test_mae"] for o in outcomes if o.cell.architecture == "cgcnn"}
    assert len(runs) == 5
    mb = _check_submission(folder, tmp_path, runs)
    assert mb.user_metadata["variant"] == "lattice"

    # the runner, run as a script: resumes (nothing to train), rewrites the same submission, and
    # writes no tables of its one-pair sub-grid into the working directory's results/
    before = load_submission(folder / RESULTS_FILE).as_dict()
    (folder / RESULTS_FILE).unlink()
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    done = subprocess.run([sys.executable, str(folder / RUNNER_FILE)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "skipped (already finished)" in done.stdout and not (tmp_path / "results").exists()
    again = load_submission(folder / RESULTS_FILE).as_dict()
    assert again["tasks"] == before["tasks"]
    info = json.loads((folder / INFO_FILE).read_text())
    assert info["authors"] == "A. Tester" and info["notes"].startswith("Kept note. ")


def test_the_exported_pair_is_chosen_on_validation_scores_only():
    """Validation ranks per task (t1: a < b < c, t2: c < a < b) give mean ranks a 1.5, c 2, b 2.5.

    The frame has no test column at all, so the choice cannot depend on test scores.
    """
    val = {("t1", "a"): 1.0, ("t1", "b"): 2.0, ("t1", "c"): 4.0, ("t2", "a"): 2.0, ("t2", "b"): 3.0, ("t2", "c"): 0.5}
    rows = [{"task": t, "architecture": arch, "variant": "v", "seed": 0, "fold": fold, "best_val_score": score + fold}
            for (t, arch), score in val.items() for fold in range(5)]
    rows += [{"task": t, "architecture": "dummy", "variant": "none", "seed": 0, "fold": 0, "best_val_score": float("nan")}
             for t in ("t1", "t2")]
    rows.append({"task": "t1", "architecture": "only_t1", "variant": "v", "seed": 0, "fold": 0, "best_val_score": 0.0})
    frame = pd.DataFrame(rows)
    ranking = validation_ranking(frame, ["t1", "t2"], seed=0)
    assert list(ranking.architecture) == ["a", "c", "b"]  # dummy and the pair without t2 are not candidates
    assert list(ranking.mean_val_rank) == [1.5, 2.0, 2.5]
    assert ranking.loc[0, "t1_val_score"] == pytest.approx(3.0)  # mean of 1..5
    # ranks are taken among the candidates only: b and c then tie (1.5 each), broken by the mean
    # validation score relative to each task's best: b (4/4 + 5/2.5) / 2 = 1.5, c (6/4 + 2.5/2.5) / 2 = 1.25
    narrowed = validation_ranking(frame, ["t1", "t2"], 0, [("b", "v"), ("c", "v")])
    assert list(narrowed.architecture) == ["c", "b"] and list(narrowed.mean_val_rank) == [1.5, 1.5]
    assert list(narrowed.mean_val_relative) == pytest.approx([1.25, 1.5])
    with pytest.raises(ExportError, match="seed 1"):
        validation_ranking(frame, ["t1", "t2"], seed=1)
