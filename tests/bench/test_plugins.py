"""An architecture defined outside the package runs through every command like a built-in one."""
from __future__ import annotations

import textwrap

import pandas as pd
import pytest

import architectures
from bench.cli import main
from bench.plugins import load_plugins
from bench.tracking import Tracker

#: A user's module: one tiny architecture, registered on import. Its name is unique to
#: this test so the process-wide registry never sees it twice.
TOY_MODULE = textwrap.dedent('''
    import torch
    from torch import nn
    from architectures.common import aggregate, edge_lengths, mean_pool
    from architectures.registry import register

    @register("toy_plugin_net", defaults={"hidden": 8, "cutoff": 8.0},
              search_space={"hidden": {"type": "categorical", "choices": [4, 8]}})
    class ToyPluginNet(nn.Module):
        """Toy plugin: one distance-weighted sum of embeddings."""
        def __init__(self, out_dim, hidden, cutoff):
            super().__init__()
            self.embed = nn.Embedding(119, hidden)
            self.out = nn.Linear(hidden, out_dim)
            self.cutoff = cutoff
        def forward(self, data):
            _, dist = edge_lengths(data)
            src, dst = data.edge_index
            h = self.embed(data.z)
            h = h + aggregate(h[src] * torch.relu(1 - dist / self.cutoff)[:, None], dst, h.shape[0])
            return self.out(mean_pool(h, data))
''')


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "toy_plugin_arch.py").write_text(TOY_MODULE)
    return tmp_path


def test_entry_point_plugin_is_loaded(plugin_dir):
    # an installed distribution that declares the plugin in the bench.plugins group
    dist = plugin_dir / "site" / "toy_plugin_dist-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-plugin-dist\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[bench.plugins]\ntoy = toy_plugin_arch\n")
    assert "toy_plugin_arch" in load_plugins()
    assert "toy_plugin_net" in architectures.REGISTRY


def test_plugin_architecture_runs_through_train_ablation_and_table(plugin_dir, capsys):
    uri = f"sqlite:///{plugin_dir / 'mlflow.db'}"
    common = ["--plugin", "toy_plugin_arch", "--tasks", "matbench_jdft2d", "--tracking-uri", uri, "--no-progress", "--experiment", "plug",
              "--set", "train.epochs=1"]
    assert main(["list", "architectures", "--plugin", "toy_plugin_arch"]) == 0
    assert "toy_plugin_net" in capsys.readouterr().out

    assert main(["train", "--architecture", "toy_plugin_net", "--variant", "lattice", "--fold", "1", *common]) == 0
    assert "toy_plugin_net|lattice|fold1" in capsys.readouterr().out

    grid = ["--architectures", "toy_plugin_net", "--variants", "distance", "--folds", "0", "--seeds", "0",
            "--results-dir", str(plugin_dir / "results")]
    assert main(["ablation", *grid, *common]) == 0
    assert main(["table", *grid, *common]) == 0
    table = pd.read_csv(plugin_dir / "results" / "plug" / "tables" / "matbench_jdft2d_leaderboard.csv")
    assert ("toy_plugin_net", "distance") in set(zip(table.architecture, table.variant))
    runs = Tracker("plug", uri).search("attributes.status = 'FINISHED'")
    assert {r.data.tags["bench.architecture"] for r in runs} == {"toy_plugin_net", "dummy"}
    assert {r.data.params["hp.hidden"] for r in runs if "hp.hidden" in r.data.params} == {"8"}

    # a misspelt plugin architecture is an unknown name that lists the registered ones
    assert main(["train", "--architecture", "toy_plugin_nett", *common]) == 2
    assert "toy_plugin_net" in capsys.readouterr().err
