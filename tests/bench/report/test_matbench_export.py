"""Matbench submissions from MLflow runs on the real matbench_jdft2d data, loaded back with matbench itself."""
import gzip
import json
import runpy

import pytest
from matbench.bench import MatbenchBenchmark

from bench.cell import run_cell
from bench.config import load_config
from bench.grid import dummy_cells, load_task, run_grid
from bench.report.matbench_export import INFO_FILE, RESULTS_FILE, RUNNER_FILE, export_matbench, load_submission
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
    folder = export_matbench(cfg, "dummy", "none", tmp_path / "out", uri, name="dummy_test")
    assert folder.name == "matbench_v0.1_dummy_test"
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
    folder = export_matbench(cfg, "cgcnn", "lattice", tmp_path / "out", uri)
    assert folder.name == "matbench_v0.1_cpb_cgcnn_lattice"
    runs = {o.cell.fold: o.metrics["test_mae"] for o in outcomes if o.cell.architecture == "cgcnn"}
    assert len(runs) == 5
    mb = _check_submission(folder, tmp_path, runs)
    assert mb.user_metadata["variant"] == "lattice"
