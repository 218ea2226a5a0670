"""Saved models (bench/models.py) and `bench predict` (bench/predict.py)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from ase.io import write as ase_write
from mlflow.entities import LoggedModelStatus
from mlflow.tracking import MlflowClient
from pymatgen.io.ase import AseAtomsAdaptor
from torch_geometric.data import Batch

import architectures
from bench.cell import Cell, run_cell
from bench.cli import main
from bench.config import load_config
from bench.graphs import build_graph
from bench.models import MODEL_ID_TAG, ModelFormatError, load_model, save_model
from bench.tracking import Tracker
from bench.training import TargetScaler
from tests import crystals
from tests.bench.toy import toy_task

SMALL = {"cgcnn": {"hidden": 8, "num_layers": 1, "fc_hidden": 8, "num_gaussians": 10}}


def _spec(name: str, hparams: dict, variant: str = "lattice") -> dict:
    return {"architecture": name, "hparams": hparams, "preset": None, "out_dim": 1, "problem_type": "regression",
            "target_scaler": {"mean": 1.5, "std": 2.0},
            "graph": {"variant": variant, "cutoff": 5.0, "max_neighbors": 12}, "task": {"name": "toy"}}


@pytest.mark.parametrize("name", sorted(n for n, s in architectures.REGISTRY.items() if s.cls.__module__.startswith("architectures")))
def test_every_architecture_round_trips_through_a_saved_model(name, tmp_path):
    """Default (matched) size: the rebuilt model gives the same outputs from a tensors-only file."""
    torch.manual_seed(0)
    hparams = architectures.resolve_hparams(name)
    model = architectures.create(name, **hparams).eval()
    graphs = [build_graph(s, "lattice", cutoff=5.0, structure_id=str(i))
              for i, s in enumerate((crystals.fcc(), crystals.rocksalt(), crystals.hcp()))]
    batch = Batch.from_data_list(graphs)
    with torch.no_grad():
        expected = model(batch)
    save_model(tmp_path, model, _spec(name, hparams))
    torch.load(tmp_path / "weights.pt", weights_only=True)  # no pickled code in the file
    loaded = load_model(tmp_path)
    with torch.no_grad():
        assert torch.allclose(loaded.model(batch), expected)
    assert loaded.graph == ("lattice", 5.0, 12) and loaded.scaler == TargetScaler(1.5, 2.0)
    assert json.loads((tmp_path / "model.json").read_text())["hparams"] == json.loads(json.dumps(hparams))


def test_a_changed_or_mismatched_model_is_refused(tmp_path):
    hparams = {**architectures.resolve_hparams("cgcnn"), **SMALL["cgcnn"]}
    save_model(tmp_path, architectures.create("cgcnn", **hparams), _spec("cgcnn", hparams))
    spec = json.loads((tmp_path / "model.json").read_text())
    (tmp_path / "model.json").write_text(json.dumps({**spec, "hparams": {**hparams, "hidden": 16}}))
    with pytest.raises(ModelFormatError, match="do not fit the architecture's current code"):
        load_model(tmp_path)
    (tmp_path / "weights.pt").write_bytes(b"tampered")
    with pytest.raises(ModelFormatError, match="sha256 differs"):
        load_model(tmp_path)
    with pytest.raises(ModelFormatError, match="model.json is missing"):
        load_model(tmp_path / "nowhere")


@pytest.fixture
def trained(tmp_path):
    """Two toy cells (folds 0 and 1) whose models were logged by run_cell."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = load_config(None, ["train.epochs=2", "train.batch_size=4", "graph.cutoff=5.0", "train.device=cpu",
                             "experiment=models"])
    cfg.hparams = SMALL
    data = toy_task()
    graphs = [build_graph(s, "multi_edge", cutoff=5.0, structure_id=i) for s, i in zip(data.structures, data.ids)]
    tracker = Tracker("models", uri)
    outcomes = [run_cell(Cell("toy", f, "cgcnn", "multi_edge", 0), cfg, data, graphs, tracker, progress=False)
                for f in (0, 1)]
    return uri, data, outcomes


def test_cells_log_models_that_predict_their_own_test_fold(trained, tmp_path, capsys):
    uri, data, outcomes = trained
    client = MlflowClient(uri)
    run = client.get_run(outcomes[0].run_id)
    model = client.get_logged_model(run.data.tags[MODEL_ID_TAG])
    assert model.source_run_id == run.info.run_id and model.status == LoggedModelStatus.READY
    assert [o.model_id for o in run.outputs.model_outputs] == [model.model_id]  # the UI's "Logged models" column
    # the test structures of fold 0 as an extxyz file: bench predict gives the logged test predictions
    test = data.folds[0].test
    atoms = [AseAtomsAdaptor.get_atoms(data.structures[i]) for i in test]
    for a, i in zip(atoms, test):
        a.info["id"] = data.ids[i]
    ase_write(str(tmp_path / "test.extxyz"), atoms, format="extxyz")
    out = tmp_path / "pred.csv"
    assert main(["predict", str(tmp_path / "test.extxyz"), "--run-id", run.info.run_id, "--tracking-uri", uri,
                 "--output", str(out), "--no-progress"]) == 0
    logged = pd.read_csv(client.download_artifacts(run.info.run_id, "predictions.csv", str(tmp_path)))
    got = pd.read_csv(out)
    assert list(got.id) == list(logged.id) and list(got.columns) == ["id", "source", "y_pred"]
    np.testing.assert_allclose(got.y_pred, logged.y_pred, rtol=1e-4, atol=1e-4)

    # an ensemble over the configuration's folds: mean and std of the two models
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "test.extxyz"), "--experiment", "models", "--task", "toy",
                 "--architecture", "cgcnn", "--variant", "multi_edge", "--ensemble", "--tracking-uri", uri]) == 0
    captured = capsys.readouterr()
    ens = pd.read_csv(pd.io.common.StringIO(captured.out))
    assert list(ens.n_models) == [2] * len(test) and "with 2 model(s)" in captured.err
    other = pd.read_csv(client.download_artifacts(outcomes[1].run_id, "predictions.csv", str(tmp_path / "o")))
    assert other.y_pred.notna().all()
    single = [pd.read_csv(out).y_pred.to_numpy()]
    assert main(["predict", str(tmp_path / "test.extxyz"), "--run-id", outcomes[1].run_id, "--tracking-uri", uri,
                 "--output", str(tmp_path / "p1.csv")]) == 0
    single.append(pd.read_csv(tmp_path / "p1.csv").y_pred.to_numpy())
    np.testing.assert_allclose(ens.y_pred, np.mean(single, axis=0), rtol=1e-5)
    np.testing.assert_allclose(ens.y_std, np.std(single, axis=0), rtol=1e-4, atol=1e-6)


def test_predict_errors_are_clear_and_exit_2(trained, tmp_path, capsys):
    uri, _, outcomes = trained
    bad = tmp_path / "bad.cif"
    bad.write_text("data_nothing\n")
    assert main(["predict", str(bad), "--run-id", outcomes[0].run_id, "--tracking-uri", uri]) == 2
    assert "bad.cif" in capsys.readouterr().err
    molecule = AseAtomsAdaptor.get_atoms(crystals.fcc())
    good = molecule.copy()
    molecule.pbc = False
    ase_write(str(tmp_path / "mol.xyz"), [good, molecule], format="extxyz")
    assert main(["predict", str(tmp_path / "mol.xyz"), "--run-id", outcomes[0].run_id, "--tracking-uri", uri]) == 2
    assert "mol.xyz: structure 1: not periodic" in capsys.readouterr().err
    crystals.fcc().to(filename=str(tmp_path / "ok.cif"))
    # several cells match and neither --fold nor --ensemble says which
    assert main(["predict", str(tmp_path / "ok.cif"), "--experiment", "models", "--task", "toy",
                 "--architecture", "cgcnn", "--variant", "multi_edge", "--tracking-uri", uri]) == 2
    assert "2 cells match (fold0/seed0, fold1/seed0)" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "ok.cif"), "--experiment", "models", "--task", "toy",
                 "--architecture", "schnet", "--variant", "multi_edge", "--tracking-uri", uri]) == 2
    assert "no finished cell toy|schnet|multi_edge" in capsys.readouterr().err
    with Tracker("models", uri).run("from before models were saved", {"kind": "cell", "task": "toy"}, {}) as log:
        pass
    assert main(["predict", str(tmp_path / "ok.cif"), "--run-id", log.run_id, "--tracking-uri", uri]) == 2
    assert f"run {log.run_id} (from before models were saved) has no saved model" in capsys.readouterr().err
