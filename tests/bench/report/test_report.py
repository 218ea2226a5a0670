"""`bench report` on a small real grid (matbench_jdft2d, tiny budget): the tables are the MLflow runs' numbers."""
import shutil

import numpy as np
import pandas as pd
import pytest

import tasks
from bench.config import load_config
from bench.grid import run_grid
from bench.cli import main
from bench.report.matbench_export import ExportError, export_matbench
from bench.tracking import Tracker

GRID = ["--profile", "quick", "--tasks", "matbench_jdft2d", "--architectures", "cgcnn", "--experiment", "rep", "--folds", "0,1", "--seeds", "0", "--variants", "distance,lattice",
        "--set", "train.epochs=1", "--set", "hparams={cgcnn: {hidden: 8, num_layers: 1}}"]
OVERRIDES = ["experiment=rep", "tasks=[matbench_jdft2d]", "architectures=[cgcnn]", "folds=[0,1]", "seeds=[0]", "variants=[distance,lattice]", "train.epochs=1",
             "hparams={cgcnn: {hidden: 8, num_layers: 1}}"]


@pytest.fixture(scope="module")
def grid(tmp_path_factory, shared_graph_cache):
    tmp = tmp_path_factory.mktemp("report")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENCH_CACHE", shared_graph_cache)
        cfg = load_config("quick", OVERRIDES)
        run_grid(cfg, uri, progress=False, results_dir=tmp / "results")
        assert main(["report", *GRID, "--tracking-uri", uri, "--results-dir", str(tmp / "results")]) == 0
    # read independently of bench.report: every finished run with a cell key (parents of the grid have none)
    runs = pd.DataFrame([{**{k[6:]: v for k, v in r.data.tags.items() if k.startswith("bench.")}, **r.data.metrics}
                         for r in Tracker("rep", uri).search("attributes.status = 'FINISHED'")
                         if "bench.cell_key" in r.data.tags])
    runs["fold"] = runs["fold"].astype(int)
    return cfg, uri, tmp / "results" / "rep", runs


def test_leaderboard_numbers_are_the_runs_numbers(grid):
    _, _, root, runs = grid
    table = pd.read_csv(root / "tables" / "matbench_jdft2d_leaderboard.csv")
    ours = table[table.source == "this suite"]
    assert set(zip(ours.architecture, ours.variant)) == {("cgcnn", "distance"), ("cgcnn", "lattice"), ("dummy", "none")}
    for row in ours.itertuples():
        cells = runs[(runs.architecture == row.architecture) & (runs.variant == row.variant)]
        assert row.n_runs == len(cells) == 2
        assert row.mae_mean == pytest.approx(cells.test_mae.mean(), rel=1e-12)
        assert row.mae_std == pytest.approx(cells.test_mae.std(ddof=1), rel=1e-12)
        assert row.rmse_mean == pytest.approx(cells.test_rmse.mean(), rel=1e-12)
        assert row.wall_time_s == pytest.approx(cells.wall_time_s.mean(), rel=1e-12)
    assert list(ours.mae_mean) == sorted(ours.mae_mean)  # ranked, best first
    # the paired effect of lattice vs distance, recomputed from the runs fold by fold
    dist = runs[runs.variant == "distance"].set_index("fold").test_mae
    latt = runs[runs.variant == "lattice"].set_index("fold").test_mae
    diffs = (latt - dist).to_numpy()
    lattice = ours[ours.variant == "lattice"].iloc[0]
    assert lattice.delta_vs_distance == pytest.approx(diffs.mean(), rel=1e-9)
    paired = pd.read_csv(root / "tables" / "matbench_jdft2d_paired.csv").iloc[0]
    assert paired.n_folds == 2 and paired.method == "Nadeau–Bengio corrected t"
    assert paired.mean_diff == pytest.approx(diffs.mean(), rel=1e-9)
    # corrected interval: t(0.975, 1) · sd · √(1/J + n_test/n_train), sizes of folds 0 and 1 of the task
    folds = tasks.get_task("matbench_jdft2d").load().folds[:2]
    ratio = np.mean([len(f.test) for f in folds]) / np.mean([len(f.train) for f in folds])
    half = 12.706205 * np.std(diffs, ddof=1) * np.sqrt(1 / 2 + ratio)
    assert paired.test_train_ratio == pytest.approx(ratio) and 0.24 < ratio < 0.26
    assert paired.ci_high - paired.mean_diff == pytest.approx(half, rel=1e-5)
    assert paired.adjustment == "Holm" and paired.p_adjusted == pytest.approx(paired.p_corrected)  # one comparison


def test_reference_rows_are_labelled_and_never_ranked(grid):
    _, _, root, _ = grid
    table = pd.read_csv(root / "tables" / "matbench_jdft2d_leaderboard.csv")
    refs = table[table.source != "this suite"]
    assert set(refs.architecture) == {"Dummy", "CGCNN", "ALIGNN", "coGN", "coNGN", "MODNet", "MEGNet (kgcnn)",
                                      "SchNet (kgcnn)"}
    assert refs["rank"].isna().all() and refs.source.str.contains("published, not run here").all()
    assert refs.set_index("architecture").mae_mean["Dummy"] == 67.2851
    md = (root / "tables" / "matbench_jdft2d_leaderboard.md").read_text()
    assert "| ref | CGCNN (published) | – | 49.24 |" in md
    tex = (root / "tables" / "matbench_jdft2d_leaderboard.tex").read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex and "CGCNN (published)" in tex


def test_report_md_has_provenance_tables_and_figures(grid):
    _, uri, root, runs = grid
    text = (root / "REPORT.md").read_text()
    assert "bench report --profile quick" in text and "bench ablation --profile quick" in text
    assert runs["dataset_sha256"].iloc[0] in text and runs["version.torch"].iloc[0] in text
    assert runs["git_commit"].iloc[0] in text and "## Overall" in text and "Nadeau–Bengio" in text
    for name in ("heatmap_scaled_error", "heatmap_delta_vs_distance", "strip_matbench_jdft2d", "parity_matbench_jdft2d",
                 "learning_curves_matbench_jdft2d"):
        for ext in ("png", "pdf"):
            assert (root / "figures" / f"{name}.{ext}").stat().st_size > 1000
        assert f"figures/{name}.png" in text
    # the answer leads: one comparison (cgcnn lattice vs distance), before the provenance
    assert text.index("## The answer: which encoding wins") < text.index("## How this report was made")
    answer = pd.read_csv(root / "tables" / "answer.csv")
    assert answer[["architecture", "variant", "baseline"]].values.tolist() == [["cgcnn", "lattice", "distance"]]
    assert "| cgcnn |" in (root / "tables" / "answer.md").read_text()


def test_export_refuses_an_incomplete_benchmark(grid, capsys):
    cfg, uri, root, _ = grid
    out = root / "matbench"
    with pytest.raises(ExportError, match=r"folds \[2, 3, 4\].*needs all 5 folds"):
        export_matbench(cfg, "cgcnn", "lattice", out, root.parent)
    assert not out.exists()
    # through the CLI: a clear message and exit status 2
    results = ["--results-dir", str(root.parent)]
    assert main(["export-matbench", *GRID, *results, "--variant", "lattice", "--out", str(out)]) == 2
    assert "needs all 5 folds" in capsys.readouterr().err
    # choosing the pair by validation prints the ranking first, then refuses the same way
    assert main(["export-matbench", *GRID, *results, "--select-by-validation", "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert "Ranked by validation score only" in captured.out and "needs all 5 folds" in captured.err
    assert not out.exists()


def test_non_matbench_task_is_never_exported(grid):
    cfg, uri, root, _ = grid
    other = cfg.model_copy(update={"tasks": ["perovskites_cdvae"]})
    with pytest.raises(ExportError, match="perovskites_cdvae is not a Matbench v0.1 task"):
        export_matbench(other, "cgcnn", "lattice", root / "x", root.parent)


def test_rendering_the_same_runs_again_gives_the_same_bytes(grid, tmp_path):
    """Committed reports change only when their runs do (no timestamps, no unseeded jitter), and
    come from the run records alone: a copy of them without any MLflow store gives the same files."""
    _, _, root, _ = grid
    shutil.copytree(root / "runs", tmp_path / "rep" / "runs")
    fresh = f"sqlite:///{tmp_path / 'empty' / 'mlflow.db'}"
    assert main(["report", *GRID, "--tracking-uri", fresh, "--results-dir", str(tmp_path)]) == 0
    assert not (tmp_path / "empty").exists()  # the report never opened an MLflow store
    again = tmp_path / "rep"
    files = sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file() and "matbench" not in p.parts)
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert any(f.suffix == ".pdf" for f in files) and any(f.suffix == ".png" for f in files)
    for f in files:
        assert (root / f).read_bytes() == (again / f).read_bytes(), f
    assert "sqlite" not in (again / "REPORT.md").read_text() and str(tmp_path) not in (again / "REPORT.md").read_text()


def test_files_of_an_earlier_bigger_report_are_named_and_pruned_on_request(grid, tmp_path, capsys):
    """A report over fewer tasks than the last one leaves that one's files behind: it names them,
    and ``--prune`` removes exactly those (never the files it wrote, nor the run records)."""
    _, _, root, _ = grid
    shutil.copytree(root / "runs", tmp_path / "rep" / "runs")
    fresh = f"sqlite:///{tmp_path / 'empty' / 'mlflow.db'}"
    args = ["report", *GRID, "--tracking-uri", fresh, "--results-dir", str(tmp_path), "--no-figures"]
    assert main(args) == 0
    old_table = tmp_path / "rep" / "tables" / "matbench_phonons_leaderboard.csv"
    old_figure = tmp_path / "rep" / "figures" / "parity_matbench_phonons.png"
    for path in (old_table, old_figure):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("from an earlier grid")
    capsys.readouterr()
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "1 stale file(s) not written by this report" in out and str(old_table) in out
    assert str(old_figure) not in out  # --no-figures: figures are not this report's to judge
    assert old_table.exists()
    assert main([*args, "--prune"]) == 0
    assert "1 stale file(s) removed" in capsys.readouterr().out
    assert not old_table.exists() and old_figure.exists()
    assert (tmp_path / "rep" / "tables" / "matbench_jdft2d_leaderboard.csv").exists()
    assert any((tmp_path / "rep" / "runs").rglob("*.jsonl"))


def test_a_controls_grid_reads_its_baselines_from_the_grid_it_names(grid, tmp_path, shared_graph_cache, monkeypatch):
    """``compare_with``: the named grid's recorded cells (same budget, checked) are the baselines
    of the ingredient table; a grid trained on another budget is refused, naming the setting."""
    import yaml

    from bench.report.document import build_report

    cfg, _, root, runs = grid
    shutil.copytree(root / "runs", tmp_path / "rep" / "runs")
    base = tmp_path / "rep.yaml"
    base.write_text(yaml.safe_dump(cfg.model_dump()))
    ctl = cfg.model_copy(update={"experiment": "ctl", "variants": ["multi_edge_noself"], "compare_with": str(base)})
    monkeypatch.setenv("BENCH_CACHE", shared_graph_cache)
    run_grid(ctl, f"sqlite:///{tmp_path / 'mlflow.db'}", progress=False, results_dir=tmp_path)
    report = build_report(ctl, tmp_path, figures=False)
    # 2 folds x (distance, lattice); the dummy cells are the same cells in both grids (one key)
    assert "- baselines: 4 recorded cell(s) of the" in report.path.read_text()
    table = pd.read_csv(tmp_path / "ctl" / "tables" / "matbench_jdft2d_ingredients.csv")
    assert list(table.ingredient) == ["several images"] and table.loc[0, "n_folds"] == 2
    ours = pd.DataFrame([{"fold": r["fold"], "mae": r["metrics"]["test_mae"]}
                         for line in (tmp_path / "ctl" / "runs" / "matbench_jdft2d" / "cgcnn.jsonl").read_text().splitlines()
                         for r in [__import__("json").loads(line)]]).set_index("fold").mae
    dist = runs[runs.variant == "distance"].set_index("fold").test_mae
    assert table.loc[0, "mean_diff"] == pytest.approx((ours - dist).mean(), rel=1e-9)
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({**cfg.model_dump(), "train": {**cfg.train.model_dump(), "epochs": 2}}))
    with pytest.raises(ValueError, match="`train` differs"):
        build_report(ctl.model_copy(update={"compare_with": str(other)}), tmp_path, figures=False)


def test_a_grid_with_no_records_yet_reports_its_missing_cells(tmp_path):
    """A grid not yet started (a profile's first slice still to come) reports every cell as missing."""
    assert main(["report", *GRID, "--experiment", "not_started", "--no-figures",
                 "--results-dir", str(tmp_path)]) == 0
    text = (tmp_path / "not_started" / "REPORT.md").read_text()
    assert "0 of 6 cells of the grid have a run record" in text and "No finished cells yet" in text
    assert "| matbench_jdft2d | cgcnn | distance | 0 of 2 | 0/0, 1/0 |" in text  # fold/seed of each missing cell
