"""Dead workers' claims, orphan runs, the end-of-grid account, Ctrl-C deferral, threads and the
ETA, on real SQLite stores (fast; the subprocess kill / concurrency / Ctrl-C tests are in
test_reliability_slow.py)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa
import torch

import tasks
from bench import interrupts
from bench.cell import DUMMY, NO_VARIANT, Cell, cell_identity, cell_settings, run_cell
from bench.claims import CLAIMS, ClaimStore, machine_token, owner_gone
from bench.config import GridError, load_config, stable_hash
from bench.eta import CellCosts, GridETA
from bench.lifecycle import end_of_grid, run_claimed
from bench.tracking import TAG_PREFIX, Tracker
from tests.bench.toy import toy_task


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory):
    """One MLflow store for the module (creating one costs seconds); one experiment per test."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def store(tmp_path):
    return ClaimStore(f"sqlite:///{tmp_path / 'claims.db'}")


@pytest.fixture
def tracker(mlflow_uri, request):
    return Tracker(request.node.name[:60], mlflow_uri)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _plant(store: ClaimStore, key: str, owner: str, age_s: float = 0.0) -> None:
    with store.engine.begin() as conn:
        conn.execute(CLAIMS.insert().values(key=key, owner=owner, heartbeat=store.now(conn) - age_s))


def test_a_claim_of_a_dead_process_on_this_machine_is_taken_over_at_once(store):
    dead = f"thishost:{_dead_pid()}:deadbeef:{machine_token()}"
    _plant(store, "cell", dead)  # a fresh heartbeat: only the PID tells that its worker is gone
    assert owner_gone(dead)
    assert store.try_claim("cell")
    assert store.taken_over == {"cell": dead}
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(CLAIMS.c.owner)).scalar_one() == store.owner


def test_live_or_remote_holders_keep_their_claims(store):
    _plant(store, "here", f"thishost:{os.getpid()}:cafe0000:{machine_token()}")  # alive: this process
    _plant(store, "remote", f"otherhost:{_dead_pid()}:cafe0001:0therbox")  # PID means nothing there
    assert not store.try_claim("here") and not store.try_claim("remote")
    assert set(store.live_claims()) == {"here", "remote"}


def test_a_zombie_worker_counts_as_dead():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # exited but not reaped: a zombie
        try:
            state = open(f"/proc/{proc.pid}/stat").read().rsplit(")", 1)[-1].split()[0]
        except OSError:
            pytest.skip("no /proc")
        if state == "Z":
            break
        time.sleep(0.05)
    try:
        assert owner_gone(f"h:{proc.pid}:n:{machine_token()}")
    finally:
        proc.wait()


def test_a_remote_claim_is_taken_over_after_its_heartbeat_stops(store):
    _plant(store, "cell", "otherhost:1:cafe:0therbox", age_s=store.stale_after + 5)
    row = store.rows()[0]
    assert not row.live and "no heartbeat" in row.reason
    assert store.try_claim("cell")


def test_run_claimed_closes_the_dead_workers_run_and_skips_when_stopping(tracker, store):
    cell = Cell("toy", 0, DUMMY, NO_VARIANT, 0)
    orphan = tracker.client.create_run(tracker.experiment_id, tags={f"{TAG_PREFIX}cell_key": "k",
                                                                     f"{TAG_PREFIX}kind": "cell"})
    _plant(store, "k", f"h:{_dead_pid()}:n:{machine_token()}")
    outcome = run_claimed(cell, "k", store, tracker, lambda: run_cell(cell, load_config(None), toy_task(), None,
                                                                      tracker, progress=False))
    assert not outcome.skipped and "took_over" in outcome.extra
    assert tracker.client.get_run(orphan.info.run_id).info.status == "KILLED"
    assert store.rows() == []  # released after the FINISHED run was written
    interrupts.request_stop()
    try:
        assert run_claimed(cell, "k2", store, tracker, lambda: pytest.fail("must not start")).extra == \
            {"interrupted": True}
    finally:
        interrupts.reset()


def test_end_of_grid_accounts_for_every_cell_and_closes_orphans(tracker, store):
    cells = {k: Cell("t", i, "cgcnn", "distance", 0) for i, k in enumerate("ABCD")}
    with tracker.run("A", {"cell_key": "A", "kind": "cell"}, {}):
        pass  # A is done
    orphan = tracker.client.create_run(tracker.experiment_id, tags={f"{TAG_PREFIX}cell_key": "B",
                                                                     f"{TAG_PREFIX}kind": "cell"})
    parent = tracker.client.create_run(tracker.experiment_id, tags={f"{TAG_PREFIX}parent_key": "P",
                                                                     f"{TAG_PREFIX}kind": "parent"})
    other = ClaimStore(store.url)
    assert other.try_claim("C")  # C runs in a live worker (this process)
    end = end_of_grid(cells, {"P": ["A", "B"]}, tracker, store)
    assert end.done == [cells["A"]] and set(end.running) == {cells["C"]}
    assert set(end.lost) == {cells["B"], cells["D"]}
    assert "KILLED" in end.lost[cells["B"]] and end.lost[cells["D"]] == "not run"
    assert tracker.client.get_run(orphan.info.run_id).info.status == "KILLED"
    assert tracker.client.get_run(parent.info.run_id).info.status == "KILLED"  # FINISHED once B is
    assert "t|cgcnn|distance|fold3|seed0: not run" in end.summary()


def test_end_of_grid_drops_the_claim_of_a_finished_cell_whose_worker_died(tracker, store):
    # SIGKILL after a cell's run was FINISHED but before its worker released the claim
    cells = {"A": Cell("t", 0, "cgcnn", "distance", 0)}
    with tracker.run("A", {"cell_key": "A", "kind": "cell"}, {}):
        pass
    _plant(store, "A", f"thishost:{_dead_pid()}:deadbeef:{machine_token()}")
    _plant(store, "B", f"thishost:{_dead_pid()}:deadbeef:{machine_token()}")  # unfinished: left to the next run
    end = end_of_grid(cells, {}, tracker, store)
    assert end.done == [cells["A"]]
    assert [r.key for r in store.rows()] == ["B"]


def test_the_second_interrupt_waits_for_a_critical_section():
    with interrupts.graceful(lambda: "first"):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.1)
        assert interrupts.stop_requested()  # the first only asks to stop
        reached_end_of_block = False
        with pytest.raises(KeyboardInterrupt):
            with interrupts.deferred():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.1)
                reached_end_of_block = True
        assert reached_end_of_block
    interrupts.reset()


def test_threads_are_one_rule_in_the_key_and_the_device_tag(tracker):
    one = load_config(None)
    two = load_config(None, ["executor.threads=2"])
    cell = Cell("t", 0, "cgcnn", "distance", 0)
    assert one.threads == one.train.num_threads == 1 and two.train.num_threads == 2
    assert cell_settings(cell, one)["threads"] == 1 and cell_settings(cell, two)["threads"] == 2
    assert stable_hash(cell_settings(cell, one)) != stable_hash(cell_settings(cell, two))
    torch.set_num_threads(2)  # what a main process had before: torch's default
    outcome = run_cell(Cell("toy", 0, DUMMY, NO_VARIANT, 0), one, toy_task(), None, tracker, progress=False)
    assert tracker.client.get_run(outcome.run_id).data.tags["bench.threads"] == "1"
    assert torch.get_num_threads() == 1


def test_eta_prices_each_task_and_architecture():
    costs = CellCosts({"small": 100.0, "big": 200.0})
    costs.add("small", "cgcnn", 10.0)
    assert costs.expected("small", "cgcnn") == 10.0
    assert costs.expected("big", "cgcnn") == pytest.approx(20.0)  # seconds per atom x atoms
    assert costs.expected("big", "tfn") == pytest.approx(20.0)  # unknown architecture: the mean rate
    costs.add("small", "tfn", 40.0)
    assert costs.expected("big", "tfn") == pytest.approx(80.0)
    assert costs.expected("big", DUMMY) == 0.0
    eta = GridETA([("big", "cgcnn")] * 4 + [("big", "tfn")] * 2, costs, parallel=2)
    assert eta.seconds_left() == pytest.approx((4 * 20 + 2 * 80) / 2)
    eta.finished("big", "tfn", 100.0)  # its cost updates the price of the remaining tfn cell
    assert eta.seconds_left() == pytest.approx((4 * 20 + 100) / 2)
    assert GridETA([("x", "cgcnn")], CellCosts({}), 1).text().startswith("eta ?")


def test_eta_for_a_grid_reads_earlier_cells_of_the_same_settings(tracker):
    cfg = load_config(None, ["tasks=[toy]", "architectures=[cgcnn]", "variants=[distance]", "folds=[0,1]"])
    data = toy_task()
    done = Cell("toy", 0, "cgcnn", "distance", 0)
    _, config_hash, _ = cell_identity(done, cfg, data.sha256)
    with tracker.run("done", {"config_hash": config_hash, "kind": "cell"}, {}) as log:
        log.log_metrics({"wall_time_s": 30.0})
    eta = GridETA.for_grid(cfg, [Cell("toy", 1, "cgcnn", "distance", 0)], {"toy": data}, tracker, parallel=1)
    assert eta.seconds_left() == pytest.approx(30.0)


@pytest.fixture
def grid_cfg(tmp_path, monkeypatch):
    import tests.bench.reliability_plugin  # noqa: F401  (sound_rows, nan_output)

    monkeypatch.setenv("BENCH_TEST_DATA", str(tmp_path / "data"))
    return load_config(None, ["tasks=[sound_rows]", "architectures=[nan_output]", "variants=[distance]",
                              "folds=[0]", "train.epochs=1", "allow_unverified_data=true", "executor.workers=1"])


def test_a_grid_with_a_failed_unit_names_its_cells_and_closes_its_parent(grid_cfg, mlflow_uri, tmp_path):
    from bench.grid import run_grid

    grid_cfg.experiment = "failed-unit"
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    with pytest.raises(GridError, match=r"sound_rows\|nan_output\|distance\|fold0: ModelOutputError.*non-finite"):
        run_grid(grid_cfg, mlflow_uri, progress=False, storage=storage)
    tracker = Tracker("failed-unit", mlflow_uri)
    status = sorted((r.data.tags["bench.kind"], r.data.tags.get("bench.architecture", ""), r.info.status)
                    for r in tracker.search())
    assert status == [("cell", "dummy", "FINISHED"), ("cell", "nan_output", "FAILED"), ("parent", "nan_output", "FAILED")]
    assert ClaimStore(storage).rows() == []


def test_a_grid_whose_cell_runs_in_a_live_worker_elsewhere_succeeds_and_says_so(grid_cfg, mlflow_uri, tmp_path,
                                                                                    capsys):
    from bench.grid import run_grid

    grid_cfg.experiment = "elsewhere"
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    data = tasks.get_task("sound_rows").load(allow_unverified=True)
    key = cell_identity(Cell("sound_rows", 0, "nan_output", "distance", 0), grid_cfg, data.sha256)[2]
    _plant(ClaimStore(storage), key, "otherhost:1:cafe:0therbox")  # a live worker on another machine
    run_grid(grid_cfg, mlflow_uri, progress=False, storage=storage)  # no exception: nothing is lost
    out = capsys.readouterr().out
    assert "1 cell(s) still running in other workers" in out and "otherhost:1" in out
