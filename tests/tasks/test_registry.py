"""The task registry and its metadata, against the installed matbench package."""
from __future__ import annotations

import pytest

from bench.registry import UnknownNameError
from tasks import TASKS, Task, get_task
from tasks.matbench import MATBENCH_TASKS

NINE = {
    "matbench_dielectric", "matbench_jdft2d", "matbench_log_gvrh", "matbench_log_kvrh",
    "matbench_mp_e_form", "matbench_mp_gap", "matbench_mp_is_metal",
    "matbench_perovskites", "matbench_phonons",
}


def test_registry_holds_nine_matbench_tasks_and_perovskites():
    assert set(MATBENCH_TASKS) == NINE
    assert set(TASKS.names()) >= NINE | {"perovskites_cdvae"}
    assert all(isinstance(get_task(n), Task) for n in TASKS.names())


def test_unknown_task_lists_choices():
    with pytest.raises(UnknownNameError) as err:
        get_task("nope")
    msg = str(err.value)
    assert "nope" in msg and "matbench_jdft2d" in msg and "perovskites_cdvae" in msg


@pytest.mark.parametrize("name", sorted(NINE))
def test_metadata_matches_matbench_package(name):
    from matbench.metadata import mbv01_metadata
    from matminer.datasets import get_dataset_attribute

    meta, task = mbv01_metadata[name], get_task(name)
    assert task.name == name
    assert task.target == meta.target
    assert task.problem_type == meta.task_type
    assert task.n_samples == meta.n_samples == meta.num_entries
    assert task.unit == (meta.unit or "")
    assert task.upstream_sha256 == get_dataset_attribute(name, "hash")
    assert task.leaderboard_comparable
    assert "Dunn" in task.citation and task.description


def test_problem_types():
    assert get_task("matbench_mp_is_metal").problem_type == "classification"
    assert all(get_task(n).problem_type == "regression" for n in NINE - {"matbench_mp_is_metal"})


def test_perovskites_cdvae_metadata():
    task = get_task("perovskites_cdvae")
    assert task.target == "e_form" and task.unit == "eV/cell"
    assert task.n_samples == 18928 and task.problem_type == "regression"
    assert task.leaderboard_comparable is False
    assert "not leaderboard-comparable" in task.description
    assert len(task.verified_copies) == 1
