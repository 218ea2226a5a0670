"""The budget pilot: splits that never touch test rows, exact replay of stopping rules, the choice."""
from __future__ import annotations

import numpy as np
import pytest

from bench.config import load_config
from bench.graphs import build_graph
from bench.pilot import PilotInput, export_bundle, load_bundle, load_records, pilot_splits, run_pilot
from bench.report.pilot import budget_table, choose, fold_std_from_frame, monitored_scores, replay
from bench.training import fit
from tests.bench.toy import toy_task


def _cfg(*extra):
    return load_config(None, ["architectures=[cgcnn]", "hparams={cgcnn: {hidden: 8, num_layers: 1, fc_hidden: 8}}",
                              "graph.cutoff=5.0", "pilot.epochs=4", "train.batch_size=4", "train.val_fraction=0.25",
                              *extra])


def _input(data):
    graphs = [build_graph(s, "multi_edge", cutoff=5.0) for s in data.structures]
    return PilotInput("toy", data.problem_type, "Å", data.sha256, graphs, np.asarray(data.targets),
                      np.asarray(data.folds[0].train))


def test_splits_come_from_the_training_rows_only():
    data = toy_task(n=40)
    train, val, holdout = pilot_splits(np.asarray(data.folds[0].train), _cfg())
    parts = [set(train.tolist()), set(val.tolist()), set(holdout.tolist())]
    assert set().union(*parts) == set(data.folds[0].train.tolist())
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert not set().union(*parts) & set(data.folds[0].test.tolist())


def _history(val, hold):
    return [{"val_score": v, "holdout_score": h} for v, h in zip(val, hold)]


def test_monitored_score_is_the_trailing_mean():
    assert monitored_scores(np.array([4.0, 2.0, 6.0, 0.0]), 2).tolist() == [4.0, 3.0, 4.0, 3.0]


def test_replay_applies_cap_and_patience_by_hand():
    val = [5, 4, 3, 3.5, 3.6, 3.7, 2, 1]
    hold = [50, 40, 30, 35, 36, 37, 20, 10]
    # window 1, patience 3: best at epoch 2, then 3 epochs without improvement -> stops after epoch 5 (6 epochs)
    r = replay(_history(val, hold), cap=8, patience=3, window=1)
    assert (r.epochs, r.best_epoch, r.stopped_early, r.holdout, r.complete) == (6, 2, True, 30, True)
    # patience 4 lets it reach epoch 6 (2.0) and 7 (1.0): the cap of 8 ends it
    r = replay(_history(val, hold), cap=8, patience=4, window=1)
    assert (r.epochs, r.best_epoch, r.stopped_early, r.holdout) == (8, 7, False, 10)
    # a curve shorter than the cap cannot be judged at that cap
    assert not replay(_history(val, hold), cap=20, patience=50, window=1).complete


def test_the_replayed_rule_is_what_fit_does():
    # fit with the rule must keep the epoch that replaying the rule on a longer curve keeps
    data = toy_task(n=24)
    graphs = [build_graph(s, "multi_edge", cutoff=5.0) for s in data.structures]
    hp = {"hidden": 8, "num_layers": 1, "fc_hidden": 8, "num_gaussians": 10, "cutoff": 5.0}
    args = (graphs[:14], data.targets[:14], graphs[14:18], data.targets[14:18], "regression")
    extra = {"holdout": (graphs[18:], data.targets[18:])}
    long = fit("cgcnn", hp, *args, _cfg("train.epochs=12", "train.patience=13", "train.val_window=2").train,
               seed=0, progress=False, extra_eval=extra)
    short = fit("cgcnn", hp, *args, _cfg("train.epochs=9", "train.patience=2", "train.val_window=2").train,
                seed=0, progress=False, extra_eval=extra)
    r = replay(long.history, cap=9, patience=2, window=2)
    assert r.epochs == len(short.history) and r.best_epoch == short.best_epoch
    assert r.holdout == pytest.approx(short.history[short.best_epoch]["holdout_score"], rel=1e-6)


def test_the_cheapest_rule_meeting_both_targets_is_chosen():
    # run A converges at epoch 3, run B keeps improving slowly until epoch 30
    a = _history([5, 3, 2, 1] + [1.5] * 60, [5, 3, 2, 1] + [1.5] * 60)
    b = _history(list(np.linspace(5, 1, 31)) + [1.2] * 40, list(np.linspace(5, 1, 31)) + [1.2] * 40)
    records = [{"task": "t", "architecture": "a", "history": a}, {"task": "t", "architecture": "b", "history": b}]
    table = budget_table(records, {("t", "a"): 1.0, ("t", "b"): 1.0}, window=1, caps=(10, 20, 40), patiences=(5,))
    by_cap = table.set_index("cap")
    # cap 10: B is still improving (stopped early 1/2; doubling moves B by (4/30 * 10) / 1 > 0.2)
    assert by_cap.loc[10, "stopped_early_fraction"] == 0.5 and not by_cap.loc[10, "meets_targets"]
    assert by_cap.loc[40, "stopped_early_fraction"] == 1.0 and by_cap.loc[40, "meets_targets"]
    assert choose(table)["cap"] == 40


def test_among_equally_cheap_rules_the_largest_cap_is_chosen():
    # both runs stop by patience at epoch 9 under every cap: the caps cost the same on the pilot
    a = _history([5, 3, 2, 1] + [1.5] * 60, [5, 3, 2, 1] + [1.5] * 60)
    records = [{"task": "t", "architecture": "a", "history": a}, {"task": "t", "architecture": "b", "history": a}]
    table = budget_table(records, {("t", "a"): 1.0, ("t", "b"): 1.0}, window=1, caps=(10, 20, 30), patiences=(5, 6))
    five = table[table["patience"] == 5]
    assert five["meets_targets"].all() and set(five["mean_epochs"]) == {9.0}
    best = choose(table)
    assert (best["cap"], best["patience"]) == (30, 5)  # room for grid runs that train longer than the pilot's


def test_a_short_patience_on_a_plateau_fails_the_budget_doubling_test():
    # improves to 2, sits on a plateau for 8 epochs, then improves again to 1 (a plateau before an lr decay)
    curve = [5, 4, 3, 2] + [2.5] * 8 + [1.8, 1.5, 1.2, 1.0] + [1.0] * 60
    records = [{"task": "t", "architecture": "a", "history": _history(curve, curve)}]
    table = budget_table(records, {("t", "a"): 1.0}, window=1, caps=(40,), patiences=(5, 10)).set_index("patience")
    # patience 5 stops early on the plateau, so doubling the cap alone changes nothing ...
    assert table.loc[5, "stopped_early_fraction"] == 1.0 and table.loc[5, "max_doubling_change_over_std"] == 0.0
    # ... but doubling the budget (patience 10) rides out the plateau and reaches 1.0: 2 - 1 = 1 fold std
    assert table.loc[5, "max_budget_doubling_change_over_std"] == pytest.approx(1.0)
    assert not table.loc[5, "meets_targets"] and table.loc[10, "meets_targets"]


def test_runs_without_a_fold_std_of_the_grid_use_the_smallest_published_one():
    from bench.report.pilot import with_published_stand_in
    from bench.report.references import PUBLISHED

    records = [{"task": "matbench_phonons", "architecture": "cgcnn@paper"},
               {"task": "matbench_jdft2d", "architecture": "cgcnn"}, {"task": "toy", "architecture": "cgcnn"}]
    completed, used = with_published_stand_in({("matbench_jdft2d", "cgcnn"): 9.0}, records)
    smallest = min(ref.std for ref in PUBLISHED["matbench_phonons"])
    assert used == {"matbench_phonons": smallest} and smallest == pytest.approx(1.976)
    assert completed[("matbench_phonons", "cgcnn@paper")] == smallest
    assert completed[("matbench_jdft2d", "cgcnn")] == 9.0  # the grid's own std is never replaced
    assert ("toy", "cgcnn") not in completed  # no published entry: no stand-in, the run stays undecided


def test_fold_std_averages_seeds_within_a_fold_first():
    import pandas as pd

    frame = pd.DataFrame({"task": "t", "architecture": "a", "variant": "multi_edge", "fold": [0, 0, 1, 1],
                          "seed": [0, 1, 0, 1], "test_mae": [1.0, 3.0, 4.0, 6.0]})
    assert fold_std_from_frame(frame, "multi_edge")[("t", "a")] == pytest.approx(np.std([2.0, 5.0], ddof=1))


def test_pilot_runs_from_a_bundle_and_writes_one_record_per_run(tmp_path):
    cfg = _cfg()
    bundle = export_bundle(cfg, [_input(toy_task(n=30))], tmp_path / "bundle.pt")
    cfg2, items = load_bundle(bundle)
    assert cfg2 == cfg and len(items[0].graphs) == 30
    run_pilot(cfg2.model_copy(update={"tasks": ["toy"]}), tmp_path / "pilot", progress=False, bundle=bundle)
    (rec,) = load_records(tmp_path / "pilot")
    assert rec["epochs_run"] == 4 and not rec["deadline_hit"] and rec["architecture"] == "cgcnn"
    assert {"train_loss", "val_score", "holdout_score", "lr"} <= set(rec["history"][0])
    assert rec["n_train"] + rec["n_val"] + rec["n_holdout"] == len(items[0].train_rows)


def test_pilot_section_writes_the_budget_table_and_the_choice(tmp_path):
    from bench.pilot import append_records
    from bench.report.pilot import pilot_section

    converge = [{"val_score": v, "holdout_score": v, "train_loss": 0.0, "lr": 1e-3}
                for v in [5, 3, 2, 1] + [1.5] * 600]
    cfg = _cfg("tasks=[matbench_jdft2d]")
    append_records([{"task": "matbench_jdft2d", "architecture": "cgcnn", "variant": "multi_edge", "n_params": 1,
                     "device": "cpu", "epochs_run": len(converge), "unit": "meV/atom", "history": converge}],
                   tmp_path / "pilot")
    lines, files = pilot_section(cfg, tmp_path, {("matbench_jdft2d", "cgcnn"): 10.0}, figures=False)
    text = "\n".join(lines)
    # the cheapest rule; all caps cost the same on this curve, so the largest
    assert "## Budget pilot" in text and "epoch cap **400**, patience **10**" in text
    assert sorted(p.name for p in files) == ["pilot_budget.csv", "pilot_runs.csv"]
