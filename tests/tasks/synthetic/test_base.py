"""The synthetic-task machinery: registry, determinism, hashes, folds, disk cache."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tasks import TASK_GROUPS, TASKS, get_task
from tasks.synthetic import PROBES, SyntheticTask, SyntheticTaskData
from tasks.synthetic.base import canonical_sha256, group_folds, load_generated, save_generated
from tasks.synthetic import chirality, lattice_length

SYNTHETIC = [*PROBES, "alloys_emt", "alloys_emt_stable"]


def test_registered_with_groups_and_metadata():
    assert TASK_GROUPS["probes"] == PROBES and len(PROBES) == 5
    assert set(SYNTHETIC) <= set(TASKS.names())
    for name in SYNTHETIC:
        task = get_task(name)
        assert isinstance(task, SyntheticTask) and task.name == name
        assert task.leaderboard_comparable is False
        assert task.description and task.target and task.generator and task.version
        assert task.verification_label == f"generated: {task.generator}@{task.version} seed {task.seed}"
    assert get_task("probe_chirality").problem_type == "classification"
    assert get_task("alloys_emt_stable").problem_type == "classification"


@pytest.mark.parametrize("name", PROBES)
def test_probes_have_a_question_and_a_theory_rule(name):
    from bench.report.theory import PROBE_RULES

    assert get_task(name).question and name in PROBE_RULES


@pytest.mark.parametrize("name", PROBES)
def test_probe_loads_with_folds_and_label(name):
    data = get_task(name).load()
    task = get_task(name)
    assert isinstance(data, SyntheticTaskData)
    assert len(data) == task.n_samples == len(data.structures) == len(data.targets)
    assert 200 <= len(data) <= 400
    assert data.verification == task.verification_label and data.verified
    assert str(data.source) == f"generated/{task.generator}@{task.version}/seed-{task.seed}"
    assert len(set(data.ids)) == len(data)
    assert np.isfinite(data.targets).all() and data.targets.dtype == np.float64
    tests = [set(f.test.tolist()) for f in data.folds]
    assert len(tests) == 5 and set().union(*tests) == set(range(len(data)))
    assert sum(len(t) for t in tests) == len(data)
    for f in data.folds:
        assert not set(f.train.tolist()) & set(f.test.tolist())
    if data.groups is not None:  # a group never straddles train and test
        for f in data.folds:
            assert not set(data.groups[f.train].tolist()) & set(data.groups[f.test].tolist())
    # the hash is the canonical one over what was loaded
    gen = task.generate(task.seed)
    assert canonical_sha256(gen, task.generator, task.version, task.seed) == data.sha256


def test_same_seed_same_bytes_other_seed_other_data():
    for module in (lattice_length, chirality):
        a, b = module.generate.__wrapped__(module.SEED), module.generate.__wrapped__(module.SEED)
        assert a.ids == b.ids and a.targets.tobytes() == b.targets.tobytes()
        for s, t in zip(a.structures, b.structures):
            assert s.lattice.matrix.tobytes() == t.lattice.matrix.tobytes()
            assert s.frac_coords.tobytes() == t.frac_coords.tobytes()
        sha = canonical_sha256(a, "g", "1", module.SEED)
        assert sha == canonical_sha256(b, "g", "1", module.SEED)
        assert sha != canonical_sha256(a, "g", "2", module.SEED)  # the version is hashed
        other = module.generate.__wrapped__(module.SEED + 1)
        assert canonical_sha256(other, "g", "1", module.SEED) != sha


def test_other_seed_is_another_task_and_another_hash():
    task = get_task("probe_lattice_length")
    other = dataclasses.replace(task, seed=task.seed + 1).load()
    assert other.sha256 != task.load().sha256
    assert other.verification.endswith(f"seed {task.seed + 1}")


def test_load_returns_fresh_lists_over_a_cached_generation():
    task = get_task("probe_chirality")
    a, b = task.load(), task.load()
    assert a.ids == b.ids and a.ids is not b.ids
    assert a.structures[0] is b.structures[0]
    with pytest.raises(ValueError):
        a.targets[0] = 2.0


def test_group_folds_keep_groups_and_stratify():
    groups = np.repeat(np.arange(40), 3)
    labels = np.repeat(np.arange(40) % 2, 3).astype(float)
    folds = group_folds(labels, groups, stratified=True)
    for f in folds:
        assert not set(groups[f.train]) & set(groups[f.test])
        assert labels[f.test].mean() == pytest.approx(0.5)
    assert sorted(np.concatenate([f.test for f in folds]).tolist()) == list(range(120))


def test_disk_cache_round_trip_is_bit_identical(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path))
    gen = chirality.generate(chirality.SEED)
    task = dataclasses.replace(get_task("probe_chirality"), disk_cache=True)
    first, sha = task.generate_rows()
    files = list((tmp_path / "synthetic").glob("chirality-v*-seed*.npz"))
    assert len(files) == 1 and not list((tmp_path / "synthetic").glob("*.tmp"))
    back, stored = load_generated(files[0])
    assert stored == sha == canonical_sha256(gen, task.generator, task.version, task.seed)
    assert back.ids == gen.ids and np.array_equal(back.groups, gen.groups)
    for s, t in zip(back.structures, gen.structures):
        assert s.lattice.matrix.tobytes() == t.lattice.matrix.tobytes()
        assert s.cart_coords.tobytes() == t.cart_coords.tobytes()
        assert [x.symbol for x in s.species] == [x.symbol for x in t.species]
    # a corrupted file is regenerated and overwritten
    files[0].write_bytes(b"not an npz")
    again, sha2 = task.generate_rows()
    assert sha2 == sha and load_generated(files[0])[1] == sha


def test_save_generated_writes_no_pickles(tmp_path):
    gen = lattice_length.generate(lattice_length.SEED)
    path = tmp_path / "x.npz"
    save_generated(gen, path, "abc")
    with np.load(path, allow_pickle=False) as f:
        assert {"ids", "counts", "lattices", "z", "frac", "targets", "sha256", "groups"} <= set(f.files)
