"""Run records on disk: append, read back, torn lines, concurrent writers, MLflow round trip."""
import json
import multiprocessing
import warnings

import numpy as np
import pytest

from bench.cells import Cell
from bench.records import RecordStore, new_record
from bench.records.store import encode, parse_lines
from tests.bench.toy import toy_task


def _record(fold=0, seed=0, arch="cgcnn", key=None, mae=1.5, finished="2026-01-01T00:00:00Z"):
    data = toy_task()
    cell = Cell("toy", fold, arch, "lattice", seed)
    test = data.folds[fold].test
    rec = new_record(cell=cell, cell_key=key or f"k-{arch}-{fold}-{seed}", config_hash="c0", settings={"a": 1},
                     data=data, metrics={"test_mae": mae, "n_params": 10.0, "best_epoch": 1.0, "wall_time_s": 1.0}, ids=[data.ids[i] for i in test],
                     y_true=data.targets[test], y_pred=data.targets[test] + 0.25, device="cpu:x1threads", threads=1,
                     git_commit="abc", versions={"torch": "2"}, wall_time_s=1.0,
                     history=[{"train_loss": 1.0, "val_score": 0.5, "lr": 1e-3}, {"train_loss": 0.8, "val_score": 0.4,
                                                                                   "lr": 1e-3}],
                     stopped_early=True, best_epoch=1, n_params=10)
    rec["finished_at"] = finished
    return rec


def test_records_round_trip_through_the_file(tmp_path):
    store = RecordStore(tmp_path / "runs")
    assert store.append(_record(fold=0)) and store.append(_record(fold=1))
    assert not store.append(_record(fold=0))  # a cell key is written once
    path = store.path("toy", "cgcnn")
    assert path == tmp_path / "runs" / "toy" / "cgcnn.jsonl" and len(path.read_text().splitlines()) == 2
    records = store.load()
    assert len(records) == 2 and "k-cgcnn-1-0" in records
    frame = records.frame()
    assert list(frame.fold) == [0, 1] and (frame.run_id == frame.cell_key).all()
    row = frame.iloc[0]
    assert row.test_mae == 1.5 and row.val_score == 0.4 and row["version.torch"] == "2" and row.stopped_early
    preds = records.predictions("k-cgcnn-0-0")
    data = toy_task()
    assert list(preds.id) == [data.ids[i] for i in data.folds[0].test]
    np.testing.assert_array_equal(preds.y_pred - preds.y_true, 0.25)
    hist = records.history("k-cgcnn-0-0")
    assert list(hist.epoch) == [0, 1, 0, 1] and list(hist.value) == [1.0, 0.8, 0.5, 0.4]
    assert store.find("toy", "cgcnn", "k-cgcnn-1-0")["fold"] == 1 and store.find("toy", "cgcnn", "nope") is None


def test_a_torn_last_line_is_skipped_by_readers_and_cut_by_the_next_writer(tmp_path):
    store = RecordStore(tmp_path)
    store.append(_record(fold=0))
    path = store.path("toy", "cgcnn")
    whole = encode(_record(fold=1))
    with open(path, "ab") as fh:  # a writer that died mid-line
        fh.write(whole[: len(whole) // 2].encode())
    with pytest.warns(UserWarning, match="torn last line"):
        assert list(store.load().records) == ["k-cgcnn-0-0"]
    assert store.append(_record(fold=2))
    lines = path.read_text().splitlines()
    assert [json.loads(x)["fold"] for x in lines] == [0, 2]  # the torn fragment is gone, nothing glued
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(store.load()) == 2


def test_an_unreadable_middle_line_is_skipped_not_fatal():
    data = (encode(_record(fold=0)) + "\n{broken\n" + encode(_record(fold=1)) + "\n").encode()
    with pytest.warns(UserWarning, match="unreadable line 2"):
        assert [r["fold"] for r, _ in parse_lines(data)] == [0, 1]


def test_the_latest_record_of_a_cell_wins_whatever_the_line_order(tmp_path):
    old, new = _record(key="k", mae=2.0, finished="2026-01-01T00:00:00Z"), _record(key="k", mae=1.0,
                                                                                 finished="2026-02-01T00:00:00Z")
    for order, name in (((old, new), "a"), ((new, old), "b")):
        path = tmp_path / name / "toy" / "cgcnn.jsonl"
        path.parent.mkdir(parents=True)
        path.write_text("".join(encode(r) + "\n" for r in order))  # e.g. two machines' lines merged by git
        assert RecordStore(tmp_path / name).load().get("k")["metrics"]["test_mae"] == 1.0


def _append_many(root, worker, n):
    store = RecordStore(root)
    for i in range(n):
        store.append(_record(fold=i % 5, seed=worker, key=f"w{worker}-{i}"))


def test_concurrent_writers_never_corrupt_a_file(tmp_path):
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(tmp_path, w, 15)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    lines = (tmp_path / "toy" / "cgcnn.jsonl").read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == 61
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not one torn or unreadable line
        assert len(RecordStore(tmp_path).load()) == 60


def test_a_record_imported_into_an_empty_mlflow_store_comes_back_the_same(tmp_path):
    from bench.records.mlflow_sync import finished_keys, import_records, record_from_run
    from bench.tracking import Tracker

    tracker = Tracker("imp", f"sqlite:///{tmp_path / 'mlflow.db'}")
    record = _record(fold=3)
    assert import_records(tracker, [record]) == [record["cell_key"]]
    assert import_records(tracker, [record]) == []  # already there: not imported twice
    assert finished_keys(tracker) == {record["cell_key"]}
    run = tracker.finished_run(record["cell_key"])
    assert run.info.run_name == "cgcnn|lattice|toy|fold3|seed0" and run.data.tags["bench.source"] == "record"
    back = record_from_run(tracker, run)
    for field in ("finished_at", "mlflow_run_id"):
        back.pop(field), record.pop(field)
    assert back == record
