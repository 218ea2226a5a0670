"""Run records carry a grid between machines: a fresh clone (records, no MLflow store) counts the
cells as done, regenerates the report byte for byte, and continues the grid without rerunning them."""
import json
import shutil

import numpy as np
import pytest

from bench.cells import cell_identity, grid_cells, load_task
from bench.cli import main
from bench.config import load_config
from bench.records import RecordStore, new_record
from bench.tracking import Tracker

GRID = ["--profile", "quick", "--tasks", "matbench_jdft2d", "--architectures", "cgcnn", "--variants", "distance",
        "--folds", "0,1", "--seeds", "0", "--experiment", "rt", "--set", "train.epochs=1",
        "--set", "hparams={cgcnn: {hidden: 8, num_layers: 1, fc_hidden: 8}}", "--no-progress"]


def _status(capsys, uri, results, *extra):
    capsys.readouterr()
    assert main(["status", *GRID, *extra, "--tracking-uri", uri, "--results-dir", str(results), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_a_trained_grid_moves_to_a_fresh_clone_through_its_records(tmp_path, capsys):
    here, there = tmp_path / "here", tmp_path / "there"
    uri_here, uri_there = f"sqlite:///{here / 'mlflow.db'}", f"sqlite:///{there / 'mlflow.db'}"
    assert main(["ablation", *GRID, "--tracking-uri", uri_here, "--results-dir", str(here / "results")]) == 0
    assert main(["report", *GRID, "--tracking-uri", uri_here, "--results-dir", str(here / "results"),
                 "--no-figures"]) == 0
    runs = here / "results" / "rt" / "runs"
    assert sorted(p.relative_to(runs).as_posix() for p in runs.rglob("*.jsonl")) == \
        ["matbench_jdft2d/cgcnn.jsonl", "matbench_jdft2d/dummy.jsonl"]
    record = json.loads((runs / "matbench_jdft2d" / "cgcnn.jsonl").read_text().splitlines()[0])
    for field in ("settings", "dataset_sha256", "versions", "device", "threads", "history", "epochs_run",
                  "stopped_early", "best_epoch", "metrics", "predictions", "wall_time_s", "n_params", "git_commit"):
        assert field in record, field
    assert record["settings"]["code"]["graphs"] and len(record["history"]["val_score"]) == record["epochs_run"] == 1
    assert len(record["predictions"]["id"]) == len(record["predictions"]["y_pred"]) > 100

    # "there": a clone holding the committed records, no MLflow store
    shutil.copytree(runs, there / "results" / "rt" / "runs")
    status = _status(capsys, uri_there, there / "results")
    assert status["summary"] == {"done": 4, "running": 0, "failed": 0, "pending": 0, "total": 4}
    assert status["cells"][0]["name"] == "matbench_jdft2d|dummy|none|fold0|seed0"
    assert main(["report", *GRID, "--tracking-uri", uri_there, "--results-dir", str(there / "results"),
                 "--no-figures"]) == 0
    for name in ("REPORT.md", "tables/matbench_jdft2d_leaderboard.csv", "tables/matbench_jdft2d_paired.csv"):
        assert (here / "results" / "rt" / name).read_bytes() == (there / "results" / "rt" / name).read_bytes(), name

    # continuing there with one more fold: only fold 2 trains; the recorded cells are imported
    before = (there / "results" / "rt" / "runs" / "matbench_jdft2d" / "cgcnn.jsonl").read_text()
    capsys.readouterr()
    assert main(["ablation", *GRID, "--folds", "0,1,2", "--tracking-uri", uri_there,
                 "--results-dir", str(there / "results")]) == 0
    out = capsys.readouterr().out
    assert "fold0|seed0: test MAE" in out and out.count("skipped (already finished)") == 2
    cells = [r for r in Tracker("rt", uri_there).search("attributes.status = 'FINISHED'")
             if r.data.tags.get("bench.kind") == "cell"]
    imported = {(r.data.tags["bench.architecture"], r.data.tags["bench.fold"]) for r in cells
                if r.data.tags.get("bench.source") == "record"}
    assert imported == {("dummy", "0"), ("dummy", "1"), ("cgcnn", "0"), ("cgcnn", "1")}
    after = (there / "results" / "rt" / "runs" / "matbench_jdft2d" / "cgcnn.jsonl").read_text()
    assert after.startswith(before) and len(after.splitlines()) == 3  # appended, nothing rewritten
    assert _status(capsys, uri_there, there / "results", "--folds", "0,1,2")["summary"]["done"] == 6


def _fake_records(cfg, root):
    """Records of every cell of ``cfg`` without training (made-up scores that differ per cell;
    status, import and reports read them like any other)."""
    store = RecordStore.for_experiment(cfg.experiment, root)
    data = load_task("matbench_jdft2d", cfg)
    for i, cell in enumerate(grid_cells(cfg, "matbench_jdft2d")):
        settings, config_hash, key = cell_identity(cell, cfg, data.sha256)
        test = data.folds[cell.fold].test[:3]
        mae = 40.0 + i + cell.fold / 10
        store.append(new_record(cell=cell, cell_key=key, config_hash=config_hash, settings=settings, data=data,
                                metrics={"test_mae": mae, "test_rmse": 2 * mae, "test_mae_over_mad": mae / 67.2},
                                ids=[data.ids[i] for i in test], y_true=data.targets[test], y_pred=np.zeros(3),
                                device="cpu", threads=1, git_commit="x", versions={"torch": "2"}, wall_time_s=0.0,
                                history=[{"train_loss": 1.0, "val_score": 2.0, "lr": 0.1}]))


def test_recorded_cells_are_done_reported_and_imported_on_a_fresh_clone(tmp_path, capsys):
    """The fast round trip: records (made without training) on a machine without an MLflow store."""
    cfg = load_config("quick", ["experiment=rt", "tasks=[matbench_jdft2d]", "architectures=[cgcnn]",
                                "variants=[distance]", "folds=[0,1]", "seeds=[0]", "train.epochs=1",
                                "hparams={cgcnn: {hidden: 8, num_layers: 1, fc_hidden: 8}}"])
    _fake_records(cfg, tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    status = _status(capsys, uri, tmp_path / "b")
    assert status["summary"] == {"done": 4, "running": 0, "failed": 0, "pending": 0, "total": 4}
    assert {c["detail"] for c in status["cells"]} == {"record only (not in this MLflow store)"}
    for root in ("a", "b"):
        assert main(["report", *GRID, "--results-dir", str(tmp_path / root)]) == 0
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert any(f.name == "REPORT.md" for f in files) and any(f.suffix == ".png" for f in files)
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    # `bench ablation` there: every cell is imported into the empty store; nothing trains, no graph is built
    capsys.readouterr()
    assert main(["ablation", *GRID, "--tracking-uri", uri, "--results-dir", str(tmp_path / "b")]) == 0
    assert capsys.readouterr().out.count("skipped (already finished)") == 2
    runs = Tracker("rt", uri).search("attributes.status = 'FINISHED'")
    cells = [r for r in runs if r.data.tags.get("bench.kind") == "cell"]
    assert len(cells) == 4 and {r.data.tags["bench.source"] for r in cells} == {"record"}
    assert {r.info.run_name for r in cells} >= {"cgcnn|distance|matbench_jdft2d|fold0|seed0"}
    for path in (tmp_path / "a" / "rt" / "runs").rglob("*.jsonl"):  # the records are left as they were
        assert path.read_bytes() == (tmp_path / "b" / path.relative_to(tmp_path / "a")).read_bytes()


def test_editing_one_architecture_makes_only_its_cells_pending(tmp_path, capsys, monkeypatch):
    from bench import defaults
    from bench.fingerprint import module_fingerprint

    args = ["--architectures", "cgcnn,schnet", "--variants", "distance,lattice"]
    cfg = load_config("quick", ["experiment=rt", "tasks=[matbench_jdft2d]", "architectures=[cgcnn,schnet]",
                                "variants=[distance,lattice]", "folds=[0,1]", "seeds=[0]", "train.epochs=1",
                                "hparams={cgcnn: {hidden: 8, num_layers: 1, fc_hidden: 8}}"])
    for package in ("architectures", "bench"):  # the fingerprints read this copy of the code
        shutil.copytree(defaults.PROJECT_ROOT / package, tmp_path / "code" / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(defaults, "PROJECT_ROOT", tmp_path / "code")
    module_fingerprint.cache_clear()
    _fake_records(cfg, tmp_path / "results")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert _status(capsys, uri, tmp_path / "results", *args)["summary"]["done"] == 10
    cgcnn = tmp_path / "code" / "architectures" / "cgcnn.py"
    cgcnn.write_text(cgcnn.read_text() + "\n_CHANGED = True\n")
    module_fingerprint.cache_clear()
    try:
        status = _status(capsys, uri, tmp_path / "results", *args)
    finally:
        module_fingerprint.cache_clear()
    pending = {c["architecture"] for c in status["cells"] if c["state"] == "pending"}
    done = {c["architecture"] for c in status["cells"] if c["state"] == "done"}
    assert pending == {"cgcnn"} and done == {"dummy", "schnet"}
    assert status["summary"] == {"done": 6, "running": 0, "failed": 0, "pending": 4, "total": 10}
    capsys.readouterr()
    assert main(["status", *GRID, *args, "--tracking-uri", uri, "--results-dir", str(tmp_path / "results")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "done 6 | running 0 | failed 0 | pending 4 | total 10"
    assert any(line.startswith("pending  matbench_jdft2d|cgcnn|distance|fold0|seed0") for line in lines)


@pytest.mark.parametrize("allow", [False, True])
def test_a_partial_grid_never_silently_replaces_a_complete_report(tmp_path, capsys, allow):
    cfg = load_config("quick", ["experiment=rt", "tasks=[matbench_jdft2d]", "architectures=[cgcnn]",
                                "variants=[distance]", "folds=[0,1]", "seeds=[0]", "train.epochs=1",
                                "hparams={cgcnn: {hidden: 8, num_layers: 1, fc_hidden: 8}}"])
    _fake_records(cfg, tmp_path / "results")
    results = ["--results-dir", str(tmp_path / "results"), "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"]
    assert main(["report", *GRID, *results, "--no-figures"]) == 0
    report = tmp_path / "results" / "rt" / "REPORT.md"
    complete = report.read_text()
    assert "- cells: 4 of 4 cells of the grid have a run record (complete)" in complete
    wider = ["--folds", "0,1,2"]  # fold 2 has no records: a partial grid
    code = main(["report", *GRID, *wider, *results, "--no-figures", *(["--allow-partial"] if allow else [])])
    if not allow:
        assert code == 2 and "not overwriting it" in capsys.readouterr().err
        assert report.read_text() == complete
        return
    assert code == 0
    text = report.read_text()
    assert "(INCOMPLETE: 2 missing" in text and "## Missing cells" in text
    assert "| matbench_jdft2d | cgcnn | distance | 2 of 3 | 2/0 |" in text
    assert "**Incomplete rows**" in text and "`cgcnn`/`distance` (2 of 3 cells)" in text
