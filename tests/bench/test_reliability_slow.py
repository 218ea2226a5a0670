"""Real `bench ablation` processes killed, interrupted and run side by side (make test-slow).

A tiny grid on the real matbench_jdft2d data: CGCNN (small), two variants, folds 0-1, three
epochs (twelve in the SIGKILL and Ctrl-C tests, so that a signal finds a cell mid-training):
4 model cells + 2 dummy cells. The stores are read directly with sqlite3 so that the
test's own polling does not touch MLflow's code paths.
"""
from __future__ import annotations

import os
import platform
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
N_CELLS = 6
pytestmark = pytest.mark.slow


def _argv(store: Path, workers: int, epochs: int) -> list[str]:
    return [sys.executable, "-m", "bench", "ablation", "--tasks", "matbench_jdft2d", "--architectures", "cgcnn",
            "--variants", "distance,lattice", "--folds", "0,1", "--experiment", "rel", "--no-progress",
            "--workers", str(workers), "--set", f"train.epochs={epochs}", "--set", "train.patience=100",
            "--set", "hparams={cgcnn: {hidden: 16, num_layers: 1, fc_hidden: 16}}",
            "--tracking-uri", f"sqlite:///{store / 'mlflow.db'}", "--results-dir", str(store / "results")]


def _start(store: Path, workers: int = 2, epochs: int = 3) -> subprocess.Popen:
    # a session of its own: signals go to the whole group, as a terminal's Ctrl-C does
    return subprocess.Popen(_argv(store, workers, epochs), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def _query(db: Path, sql: str) -> list[tuple]:
    if not db.exists():
        return []
    with sqlite3.connect(db, timeout=60) as conn:
        try:
            return conn.execute(sql).fetchall()
        except sqlite3.OperationalError:  # tables not created yet
            return []


def cell_runs(store: Path) -> list[tuple[str, str]]:
    """(cell key, status) of every final-cell run (not deleted)."""
    return _query(store / "mlflow.db", """
        select k.value, r.status from runs r
        join tags k on k.run_uuid = r.run_uuid and k.key = 'bench.cell_key'
        join tags c on c.run_uuid = r.run_uuid and c.key = 'bench.kind' and c.value = 'cell'
        where r.lifecycle_stage = 'active'""")


def claims(store: Path) -> list[tuple]:
    return _query(store / "mlartifacts" / "optuna.db", "select key, owner from bench_claims")


def _wait_until_training(store: Path, proc: subprocess.Popen, timeout: float = 600) -> None:
    """Until a model cell's run is RUNNING (a cell is mid-training), then a moment more."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = _query(store / "mlflow.db", """
            select r.run_uuid from runs r join tags a on a.run_uuid = r.run_uuid
            and a.key = 'bench.architecture' and a.value = 'cgcnn' join tags c on c.run_uuid = r.run_uuid
            and c.key = 'bench.kind' and c.value = 'cell' where r.status = 'RUNNING'""")
        if running:
            time.sleep(0.3)  # a little into its training
            return
        if proc.poll() is not None:
            pytest.fail(f"the grid ended before a cell started:\n{proc.stdout.read()}")
        time.sleep(0.2)
    pytest.fail("no cell started in time")


def _finish(proc: subprocess.Popen, timeout: float = 900) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def account(store: Path) -> dict:
    """Cells finished, duplicated (more than one FINISHED run), and runs left RUNNING."""
    runs = cell_runs(store)
    finished = Counter(k for k, s in runs if s == "FINISHED")
    return {"finished": len(finished), "duplicated": sum(n > 1 for n in finished.values()),
            "running": sum(s == "RUNNING" for _, s in runs), "killed": sum(s == "KILLED" for _, s in runs)}


def _sigkill_mid_cell(store: Path, epochs: int, attempts: int = 3) -> dict:
    """SIGKILL a grid while a cell is mid-training; the store's account just after.

    A cell can end between the poll that saw it RUNNING and the kill (a fast machine trains a
    tiny cell in well under a second), so a kill that left no orphan is tried again: the next
    start resumes the grid and is killed in its turn.
    """
    for _ in range(attempts):
        proc = _start(store, epochs=epochs)
        _wait_until_training(store, proc)
        os.killpg(proc.pid, signal.SIGKILL)  # the main process and its pool workers, mid-cell
        proc.wait()
        before = account(store)
        if before["running"]:
            return before
    pytest.fail(f"no SIGKILL in {attempts} attempts caught a cell mid-training")


def test_sigkill_mid_cell_then_an_immediate_rerun_finishes_every_cell_once(tmp_path):
    epochs = 12  # cells of several seconds, so that the kill finds one mid-training
    before = _sigkill_mid_cell(tmp_path, epochs)
    assert before["running"] >= 1 and claims(tmp_path)  # orphan runs and claims of dead workers

    start = time.monotonic()
    code, out = _finish(_start(tmp_path, epochs=epochs))
    rerun_s = time.monotonic() - start
    after = account(tmp_path)
    print(f"kill/rerun: expected {N_CELLS}, finished before kill {before['finished']}, after rerun "
          f"{after['finished']}, duplicated {after['duplicated']}, orphans closed {after['killed']}, "
          f"rerun {rerun_s:.0f} s")
    assert code == 0, out
    assert "running in another worker" not in out  # dead workers' claims were taken over at once
    assert after == {"finished": N_CELLS, "duplicated": 0, "running": 0, "killed": before["running"]}
    assert claims(tmp_path) == []
    # pool workers, the in-process last unit and the dummies all trained with the one thread count
    devices = _query(tmp_path / "mlflow.db", """
        select d.value from tags d join tags a on a.run_uuid = d.run_uuid and a.key = 'bench.architecture'
        and a.value != 'dummy' where d.key = 'bench.device'""")  # a dummy cell runs no model: device 'none'
    assert {d for (d,) in devices} == {f"cpu:{platform.processor() or platform.machine()}x1threads"}


def test_two_first_starts_on_a_new_store_both_succeed_and_run_each_cell_once(tmp_path):
    first, second = _start(tmp_path, workers=1), _start(tmp_path, workers=1)
    (code1, out1), (code2, out2) = _finish(first), _finish(second)
    result = account(tmp_path)
    print(f"concurrency: expected {N_CELLS}, finished {result['finished']}, duplicated {result['duplicated']}")
    assert code1 == 0, out1
    assert code2 == 0, out2
    assert result == {"finished": N_CELLS, "duplicated": 0, "running": 0, "killed": 0}
    assert len(cell_runs(tmp_path)) == N_CELLS  # no cell was even started twice
    assert claims(tmp_path) == []


def test_ctrl_c_stops_handing_out_work_and_twice_stops_at_once(tmp_path):
    epochs = 12  # cells of several seconds: the second interrupt must find one mid-training
    proc = _start(tmp_path, epochs=epochs)
    _wait_until_training(tmp_path, proc)
    os.killpg(proc.pid, signal.SIGINT)  # once: the running cells finish, no new one starts
    code, out = _finish(proc)
    once = account(tmp_path)
    assert code == 130, out
    assert "no new cell starts" in out and "not run" in out
    assert once["running"] == 0 and once["killed"] == 0 and claims(tmp_path) == []
    assert once["finished"] < N_CELLS  # something was left for the rerun

    proc = _start(tmp_path, epochs=epochs)
    _wait_until_training(tmp_path, proc)
    os.killpg(proc.pid, signal.SIGINT)
    time.sleep(0.2)
    stopped = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)  # twice: the running cells end now, KILLED, claims released
    code, out = _finish(proc)
    exit_s = time.monotonic() - stopped
    twice = account(tmp_path)
    print(f"ctrl-c: once finished {once['finished']}/{N_CELLS}; twice exited {exit_s:.1f} s after the second "
          f"interrupt, {twice['killed']} cell run(s) KILLED")
    assert code == 130, out
    assert exit_s < 60
    assert twice["running"] == 0 and twice["killed"] >= 1 and claims(tmp_path) == []

    code, out = _finish(_start(tmp_path, epochs=epochs))
    assert code == 0, out
    final = account(tmp_path)
    assert final["finished"] == N_CELLS and final["duplicated"] == 0 and final["running"] == 0
