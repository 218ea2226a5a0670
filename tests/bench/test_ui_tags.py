"""The MLflow UI opens the suite's experiments on the training-runs view (not the GenAI one)."""
from __future__ import annotations

from mlflow.tracking import MlflowClient

from bench.tracking import EXPERIMENT_KIND, Tracker


def test_experiments_are_tagged_as_model_development_new_and_old(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    tracker = Tracker("fresh", uri)
    assert client.get_experiment(tracker.experiment_id).tags[EXPERIMENT_KIND[0]] == "custom_model_development"
    old = client.create_experiment("made-before-the-tag")  # a store from an earlier version
    assert EXPERIMENT_KIND[0] not in client.get_experiment(old).tags
    assert Tracker("made-before-the-tag", uri).experiment_id == old
    assert client.get_experiment(old).tags[EXPERIMENT_KIND[0]] == "custom_model_development"
