"""User tasks from a YAML file (tasks/user.py): folders + targets CSV, extxyz properties, folds, hashing,
and a grid run through `bench ablation --task-file` on a small data set the test writes."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from ase.io import write as ase_write
from pymatgen.io.ase import AseAtomsAdaptor

import tasks
from bench.cli import main
from bench.tracking import Tracker
from tasks.base import DataFormatError, DataVerificationError
from tasks.user import UserTask, register_task_file
from tests import crystals

N = 12


def _structures():
    """N small crystals whose target is their lattice constant (Å)."""
    a = np.linspace(2.6, 3.7, N)
    return [crystals.fcc(x) if i % 2 else crystals.bcc(x) for i, x in enumerate(a)], a


def _folder_task(root, name="mine", folds="{n_splits: 3, seed: 11}", extra=""):
    structures, a = _structures()
    (root / "cifs").mkdir(parents=True, exist_ok=True)
    for i, s in enumerate(structures):
        s.to(filename=str(root / "cifs" / f"c{i:02d}.cif"))
    pd.DataFrame({"id": [f"c{i:02d}" for i in range(N)], "a": a}).to_csv(root / "targets.csv", index=False)
    path = root / "task.yaml"
    path.write_text(f"name: {name}\ntarget: a\nunit: Å\nproblem_type: regression\nstructures: cifs\n"
                    f"targets: targets.csv\nfolds: {folds}\n{extra}")
    return path, a


@pytest.fixture
def unregister():
    """Tasks a test registers are removed afterwards (the registry is process-wide)."""
    before = set(tasks.TASKS.names())
    yield
    for name in set(tasks.TASKS.names()) - before:
        del tasks.TASKS._items[name]


def test_folder_and_csv_task_loads_with_stated_folds_and_a_hash(tmp_path, unregister):
    path, a = _folder_task(tmp_path)
    name = register_task_file(path)
    assert name == "mine" and register_task_file(path) == "mine"  # idempotent for the same file
    task = tasks.get_task("mine")
    assert isinstance(task, UserTask) and task.n_samples == N and not task.leaderboard_comparable
    data = task.load()
    assert data.ids == [f"c{i:02d}" for i in range(N)]
    np.testing.assert_allclose(data.targets, a)
    assert data.fold_source == "KFold-3-shuffle-seed11" and len(data.folds) == 3
    assert sorted(np.concatenate([f.test for f in data.folds]).tolist()) == list(range(N))
    assert data.verification == "user-data (sha256 not pinned)" and len(data.sha256) == 64
    # the hash follows the data and the fold definition
    (tmp_path / "cifs" / "c00.cif").write_text((tmp_path / "cifs" / "c01.cif").read_text())
    assert task.load().sha256 != data.sha256
    other, _ = _folder_task(tmp_path / "b", name="mine_b", folds="{n_splits: 3, seed: 12}")
    register_task_file(other)
    assert tasks.get_task("mine_b").load().sha256 != tasks.get_task("mine").load().sha256


def test_pinned_hash_split_file_and_extxyz_properties(tmp_path, unregister):
    structures, a = _structures()
    atoms = [AseAtomsAdaptor.get_atoms(s) for s in structures]
    for i, at in enumerate(atoms):
        at.info["id"], at.info["is_big"] = f"s{i}", int(a[i] > 3.1)
    ase_write(str(tmp_path / "all.extxyz"), atoms, format="extxyz")
    pd.DataFrame({"id": [f"s{i}" for i in range(N)], "fold": [i % 2 for i in range(N)]}).to_csv(
        tmp_path / "split.csv", index=False)
    spec = ("name: big\ntarget: is_big\nproblem_type: classification\nstructures: all.extxyz\n"
            "folds: {file: split.csv}\n")
    (tmp_path / "big.yaml").write_text(spec)
    register_task_file(tmp_path / "big.yaml")
    data = tasks.get_task("big").load()
    assert data.ids == [f"s{i}" for i in range(N)] and set(data.targets) == {0.0, 1.0}
    assert [sorted(f.test.tolist()) for f in data.folds] == [list(range(0, N, 2)), list(range(1, N, 2))]
    assert data.fold_source.startswith("split-file:split.csv:")
    # a pinned hash: accepted when equal, refused (or UNVERIFIED on request) when the data change
    (tmp_path / "pinned.yaml").write_text(spec.replace("name: big", "name: big_pinned") + f"sha256: {data.sha256}\n")
    register_task_file(tmp_path / "pinned.yaml")
    assert tasks.get_task("big_pinned").load().verification == "user-sha256-pinned"
    (tmp_path / "split.csv").write_text("id,fold\n" + "".join(f"s{i},{(i + 1) % 2}\n" for i in range(N)))
    with pytest.raises(DataVerificationError, match="pins"):
        tasks.get_task("big_pinned").load()
    assert tasks.get_task("big_pinned").load(allow_unverified=True).verification == "UNVERIFIED"


@pytest.mark.parametrize("mutate, error, message", [
    (lambda root: (root / "targets.csv").write_text("id,a\nc00,1.0\nzz,2.0\n"), DataFormatError, "have no structure"),
    (lambda root: (root / "targets.csv").write_text("id,b\nc00,1.0\n"), DataFormatError, "has no column 'a'"),
    (lambda root: (root / "task.yaml").write_text("name: Bad Name\n"), ValueError, "task file"),
    (lambda root: (root / "task.yaml").write_text((root / "task.yaml").read_text().replace("seed: 11", "seed: 11, file: x.csv")),
     ValueError, "either a seed"),
])
def test_bad_task_files_fail_early_and_name_the_file(tmp_path, unregister, mutate, error, message):
    path, _ = _folder_task(tmp_path)
    mutate(tmp_path)
    with pytest.raises(error, match=message):
        register_task_file(path)
    assert "mine" not in tasks.TASKS


def test_grid_runs_on_a_user_task_file(tmp_path, unregister, capsys):
    path, _ = _folder_task(tmp_path / "data")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ["ablation", "--task-file", str(path), "--architectures", "cgcnn", "--variants", "distance",
            "--folds", "0,1,2", "--experiment", "user", "--tracking-uri", uri, "--storage",
            f"sqlite:///{tmp_path / 'optuna.db'}", "--set", "train.epochs=1", "--set", "train.batch_size=4",
            "--set", "hparams={cgcnn: {hidden: 8, num_layers: 1, fc_hidden: 8, num_gaussians: 10}}",
            "--workers", "1", "--no-progress", "--results-dir", str(tmp_path / "res")]
    assert main(args) == 0
    assert "## mine" in capsys.readouterr().out
    cells = Tracker("user", uri).search("tags.`bench.kind` = 'cell' and attributes.status = 'FINISHED'")
    assert sorted((r.data.tags["bench.architecture"], r.data.tags["bench.fold"]) for r in cells) == \
        [("cgcnn", "0"), ("cgcnn", "1"), ("cgcnn", "2"), ("dummy", "0"), ("dummy", "1"), ("dummy", "2")]
    sha = tasks.get_task("mine").load().sha256
    assert {r.data.tags["bench.dataset_sha256"] for r in cells} == {sha}
    assert {r.data.tags["bench.data_verification"] for r in cells} == {"user-data (sha256 not pinned)"}
    assert main(args) == 0 and "skipped (already finished)" in capsys.readouterr().out  # resumes like any task


def test_readme_add_a_task_example_loads(tmp_path, unregister):
    """The README's "Add a task" YAML, as written, on a small data set the test writes."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", readme, flags=re.S) if "name: my_gaps" in b]
    structures, a = _structures()
    (tmp_path / "cifs").mkdir()
    for i, s in enumerate(structures):
        s.to(filename=str(tmp_path / "cifs" / f"x{i}.cif"))
    pd.DataFrame({"id": [f"x{i}" for i in range(N)], "band_gap": a}).to_csv(tmp_path / "targets.csv", index=False)
    (tmp_path / "my_gaps.yaml").write_text(block)
    assert register_task_file(tmp_path / "my_gaps.yaml") == "my_gaps"
    data = tasks.get_task("my_gaps").load()
    assert len(data.folds) == 5 and data.fold_source == "KFold-5-shuffle-seed42" and tasks.get_task("my_gaps").unit == "eV"
    np.testing.assert_allclose(data.targets, a)
