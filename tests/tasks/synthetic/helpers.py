"""Graph comparisons shared by the probe tests."""
from __future__ import annotations

import numpy as np
import torch

from bench.graphs import build_graph, edge_vectors

CUTOFF, CAP = 8.0, 12  # the suite's defaults, which the probes' expectations assume


def graph(structure, variant: str):
    return build_graph(structure, variant, cutoff=CUTOFF, max_neighbors=CAP)


def same_graph_except_cell(g1, g2) -> bool:
    """Identical atoms, positions, edges, shifts, types and edge vectors (float32)."""
    if g1.edge_index.shape != g2.edge_index.shape:
        return False
    return (torch.equal(g1.z, g2.z) and torch.equal(g1.pos, g2.pos) and torch.equal(g1.edge_index, g2.edge_index)
            and torch.equal(g1.edge_shift, g2.edge_shift) and torch.equal(g1.edge_type, g2.edge_type)
            and torch.allclose(edge_vectors(g1), edge_vectors(g2), atol=1e-5))


def neighbour_multisets(structure, variant: str, decimals: int = 4) -> list[tuple]:
    """Sorted list over atoms of (element, sorted edge lengths per edge type): basis-free."""
    g = build_graph(structure, variant, cutoff=CUTOFF, max_neighbors=CAP)
    g64 = g.clone()
    g64.pos = torch.tensor(structure.cart_coords, dtype=torch.float64)
    g64.cell = torch.tensor(structure.lattice.matrix, dtype=torch.float64).unsqueeze(0)
    length = edge_vectors(g64).norm(dim=1).numpy()
    dst, etype = g.edge_index[1].numpy(), g.edge_type.numpy()
    out = []
    for i in range(g.num_nodes):
        per_type = tuple(tuple(np.round(np.sort(length[(dst == i) & (etype == t)]), decimals)) for t in (0, 1))
        out.append((int(g.z[i]), per_type))
    return sorted(out)
