"""The real path on the real matbench_jdft2d data, with a tiny budget."""
import pandas as pd
import pytest

from bench.cli import main
from bench.tracking import Tracker


@pytest.fixture
def env(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    return tmp_path, uri


def _ablation(uri, results, *extra):
    return main(["ablation", "--profile", "quick", "--tasks", "matbench_jdft2d", "--architectures", "cgcnn", "--experiment", "t", "--tracking-uri", uri,
                 "--results-dir", str(results), "--no-progress", *extra])


def test_ablation_on_jdft2d_writes_the_table_and_resumes(env, capsys):
    tmp_path, uri = env
    args = ("--folds", "0", "--seeds", "0", "--variants", "distance,lattice", "--set", "train.epochs=1",
            "--set", "hparams={cgcnn: {hidden: 16, num_layers: 1}}")
    assert _ablation(uri, tmp_path / "results", *args) == 0
    out = capsys.readouterr().out
    assert "| cgcnn | lattice |" in out and "CGCNN (published)" in out  # the table is printed
    table = pd.read_csv(tmp_path / "results" / "t" / "tables" / "matbench_jdft2d_leaderboard.csv")
    ours = table[table.source == "this suite"]
    assert set(zip(ours.architecture, ours.variant)) == {("cgcnn", "distance"), ("cgcnn", "lattice"), ("dummy", "none")}
    refs = table[table.source != "this suite"]
    assert {"Dummy", "CGCNN"} <= set(refs.architecture) and refs.source.str.contains("published").all()
    md = (tmp_path / "results" / "t" / "tables" / "matbench_jdft2d_leaderboard.md").read_text()
    assert "Dummy (published)" in md and "| 67.29 |" in md and "| 49.24 |" in md
    # the same paired comparison with distance that `bench report` writes, in the same folder
    paired = pd.read_csv(tmp_path / "results" / "t" / "tables" / "matbench_jdft2d_paired.csv")
    assert list(zip(paired.architecture, paired.variant, paired.n_folds)) == [("cgcnn", "lattice", 1)]

    # the table's numbers are the MLflow runs' numbers
    runs = Tracker("t", uri).search("attributes.status = 'FINISHED' and tags.`bench.kind` = 'cell'")
    assert len(runs) == 3  # dummy + 2 variants, fold 0
    parents = Tracker("t", uri).search("tags.`bench.kind` = 'parent'")
    assert len(parents) == 2  # one per (task, architecture, variant), finished with its cells
    assert {r.info.status for r in parents} == {"FINISHED"}
    # names lead with architecture|variant (the UI's name column); parents carry the fold mean ± std
    assert {r.info.run_name for r in parents} == {"cgcnn|distance|matbench_jdft2d", "cgcnn|lattice|matbench_jdft2d"}
    assert {r.info.run_name for r in runs} >= {"cgcnn|lattice|matbench_jdft2d|fold0|seed0"}
    for parent in parents:
        child = next(r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id)
        assert parent.data.metrics["test_mae_mean"] == child.data.metrics["test_mae"]  # one fold here
        assert parent.data.metrics["test_mae_std"] == 0.0 and parent.data.metrics["n_folds"] == 1
    assert {r.data.tags.get("mlflow.parentRunId") for r in runs if r.data.tags["bench.variant"] != "none"} == \
        {r.info.run_id for r in parents}
    by_variant = {r.data.tags["bench.variant"]: r.data.metrics["test_mae"] for r in runs}
    for _, row in ours.iterrows():
        assert row.mae_mean == pytest.approx(by_variant[row.variant])
    # dummy = training-fold mean scored on the test fold, as Matbench's Dummy
    assert by_variant["none"] > 30

    assert _ablation(uri, tmp_path / "results", *args) == 0
    assert len(Tracker("t", uri).search()) == 5  # nothing recomputed
    assert "skipped (already finished)" in capsys.readouterr().out


@pytest.mark.slow
def test_all_folds_all_variants_tiny_budget(env):
    tmp_path, uri = env
    assert _ablation(uri, tmp_path / "results", "--set", "train.epochs=2") == 0
    table = pd.read_csv(tmp_path / "results" / "t" / "tables" / "matbench_jdft2d_leaderboard.csv")
    ours = table[table.source == "this suite"]
    assert len(ours) == 4 and (ours.n_runs == 5).all()
    runs = Tracker("t", uri).search("tags.`bench.kind` = 'cell'")
    assert len(runs) == 20 and all("matbench_mae" in r.data.metrics for r in runs)
    for r in runs:  # matbench's own scorer agrees with ours
        assert r.data.metrics["matbench_mae"] == pytest.approx(r.data.metrics["test_mae"], rel=1e-9)
