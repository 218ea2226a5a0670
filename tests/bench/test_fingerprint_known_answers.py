"""Known answers that hold the behaviour versions honest.

Every model cell's key carries ``GRAPH_CODE_VERSION`` (bench/graphs/cache.py) and
``TRAINING_CODE_VERSION`` (bench/training.py) instead of a fingerprint of that code, so a
refactor there keeps every finished cell. In exchange, these tests pin what the code puts
out, per version: when a test fails, the output changed. If the change is intended, bump
the version (finished cells become pending, as they should) and pin the new values under
the new version below; if it is not, the refactor changed behaviour.

Pinned values were measured with this suite's code at the version they are filed under
(torch 2.13 CPU, one thread); floats are compared with a relative tolerance of 1e-6, so
other CPUs pass while any real change fails.
"""
import hashlib

import numpy as np
import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.nn import global_mean_pool

import architectures
import bench.graphs.cache
import bench.training
from bench.config import TrainConfig
from bench.graphs import build_graph, edge_vectors
from tests import crystals

# (crystal, variant) -> (edges, sha256[:16] of z, edge_index, edge_shift, edge_type in graph order,
#                        sum of edge lengths in Å, sum of positions, sum of the cell)
GRAPHS = {
    "2": {
        ("hcp", "distance"): (2, "9d986aa672e4c0e7", 5.000000476837158, 7.497546494007111, 7.497546434402466),
        ("hcp", "multi_edge"): (24, "6b20f0afee802a97", 60.00000023841858, 7.497546494007111, 7.497546434402466),
        ("hcp", "lattice"): (48, "57332dd9023ad40f", 144.6270182132721, 7.497546494007111, 7.497546434402466),
        ("rocksalt", "distance"): (56, "c645f1cf651243e7", 202.46903610229492, 33.839999198913574,
                                   16.919999599456787),
        ("rocksalt", "multi_edge"): (144, "93543e5af382ab9b", 518.2158851623535, 33.839999198913574,
                                     16.919999599456787),
        ("rocksalt", "lattice"): (240, "1b1be51c47745b64", 1041.2067546844482, 33.839999198913574,
                                  16.919999599456787),
    },
    "3": {  # lattice loops mirror-closed: 18 per atom (distance and multi_edge unchanged)
        ("hcp", "distance"): (2, "9d986aa672e4c0e7", 5.000000476837158, 7.497546494007111, 7.497546434402466),
        ("hcp", "multi_edge"): (24, "6b20f0afee802a97", 60.00000023841858, 7.497546494007111, 7.497546434402466),
        ("hcp", "lattice"): (60, "17e30ae8309edebf", 200.2446129322052, 7.497546494007111, 7.497546434402466),
        ("rocksalt", "distance"): (56, "c645f1cf651243e7", 202.46903610229492, 33.839999198913574,
                                   16.919999599456787),
        ("rocksalt", "multi_edge"): (144, "93543e5af382ab9b", 518.2158851623535, 33.839999198913574,
                                     16.919999599456787),
        ("rocksalt", "lattice"): (288, "08dbf6f056aadb03", 1232.6346988677979, 33.839999198913574,
                                  16.919999599456787),
    },
}
# a 2-epoch fit of a fixed tiny model: per epoch (train_loss, val_score, lr), best epoch, sum |weights|
TRAINING = {
    "1": {"history": [(0.9635955840349197, 0.9480668902397156, 0.01), (0.9015649259090424, 0.8971378207206726, 0.01)],
          "best_epoch": 1, "abs_weight_sum": 25.503216619603336},
    # "2" adds the monitored score (val_window) and lr_schedule; with their defaults this fit is unchanged
    "2": {"history": [(0.9635955840349197, 0.9480668902397156, 0.01), (0.9015649259090424, 0.8971378207206726, 0.01)],
          "best_epoch": 1, "abs_weight_sum": 25.503216619603336},
}
CRYSTALS = {"hcp": crystals.hcp, "rocksalt": crystals.rocksalt}


def _graph_answer(name: str, variant: str):
    g = build_graph(CRYSTALS[name](), variant, cutoff=5.0, max_neighbors=12)
    ints = np.concatenate([g.z.numpy().ravel(), g.edge_index.numpy().ravel(), g.edge_shift.numpy().ravel(),
                           g.edge_type.numpy().ravel()]).astype(np.int64)
    digest = hashlib.sha256(ints.tobytes()).hexdigest()[:16]
    lengths = float(edge_vectors(g).norm(dim=-1).double().sum())
    return g.edge_index.shape[1], digest, lengths, float(g.pos.double().sum()), float(g.cell.double().sum())


@pytest.mark.parametrize(("name", "variant"), sorted(GRAPHS["3"]))
def test_graph_output_is_pinned_for_its_code_version(name, variant):
    version = bench.graphs.cache.GRAPH_CODE_VERSION
    assert version in GRAPHS, (f"GRAPH_CODE_VERSION {version!r} has no pinned graphs: pin the values of "
                               f"_graph_answer() under {version!r} in this file")
    edges, digest, lengths, pos, cell = _graph_answer(name, variant)
    n_edges, want_digest, want_lengths, want_pos, want_cell = GRAPHS[version][(name, variant)]
    hint = (f"the graph of {name}/{variant} changed at GRAPH_CODE_VERSION {version!r}: if intended, bump "
            "GRAPH_CODE_VERSION in bench/graphs/cache.py and pin the new values here")
    assert edges == n_edges, hint
    assert digest == want_digest, hint  # the integer arrays, in the order the graph holds them
    assert lengths == pytest.approx(want_lengths, rel=1e-6), hint
    assert (pos, cell) == pytest.approx((want_pos, want_cell), rel=1e-6), hint


class _TinyNet(torch.nn.Module):
    """Embedding of z, mean over atoms, tanh, linear: fixed here, so only training code can change the fit."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(10, 4)
        self.out = torch.nn.Linear(4, 1)

    def forward(self, batch):
        return self.out(torch.tanh(global_mean_pool(self.embed(batch.z), batch.batch)))


def test_training_output_is_pinned_for_its_code_version(monkeypatch):
    version = bench.training.TRAINING_CODE_VERSION
    assert version in TRAINING, (f"TRAINING_CODE_VERSION {version!r} has no pinned fit: pin its values under "
                                 f"{version!r} in this file")
    rng = np.random.default_rng(0)
    graphs = [Data(z=torch.tensor(rng.integers(1, 10, size=n)), num_nodes=int(n)) for n in rng.integers(1, 5, size=24)]
    targets = np.array([float(g.z.float().mean()) for g in graphs])
    monkeypatch.setattr(architectures, "create", lambda name, out_dim=1, **hp: _TinyNet())
    threads = torch.get_num_threads()
    try:
        cfg = TrainConfig(epochs=2, batch_size=4, lr=0.01, patience=5, device="cpu", num_threads=1)
        result = bench.training.fit("tiny", {}, graphs[:16], targets[:16], graphs[16:], targets[16:], "regression",
                                    cfg, seed=3, progress=False)
    finally:
        torch.set_num_threads(threads)
    want = TRAINING[version]
    hint = (f"a 2-epoch fit changed at TRAINING_CODE_VERSION {version!r}: if intended, bump TRAINING_CODE_VERSION "
            "in bench/training.py and pin the new values here")
    history = [(h["train_loss"], h["val_score"], h["lr"]) for h in result.history]
    assert len(history) == len(want["history"]) and result.best_epoch == want["best_epoch"], hint
    for got, pinned in zip(history, want["history"]):
        assert got == pytest.approx(pinned, rel=1e-6), hint
    weights = sum(float(p.detach().double().abs().sum()) for p in result.model.parameters())
    assert weights == pytest.approx(want["abs_weight_sum"], rel=1e-6), hint
    assert not result.stopped_early  # 2 epochs of budget 2: the budget ended it
