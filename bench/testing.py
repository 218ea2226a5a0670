"""Invariance test helpers for architecture authors (in the spirit of e3nn's ``assert_equivariant``).

Transform a pymatgen structure (rotate, translate, permute, supercell, shear the
basis), rebuild its graph, run the model, and compare outputs. Plugins use these in
their own tests; the suite's architecture test mixin is built on them.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from pymatgen.core import Lattice, Structure
from torch_geometric.data import Batch, Data

from bench.graphs import build_graph

StructureTransform = Callable[[Structure], Structure]


def random_rotation(rng: np.random.Generator, proper: bool = True) -> np.ndarray:
    """A uniformly random 3x3 rotation matrix (det +1), or an improper one (det -1)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q if proper else -q


def rotate(structure: Structure, matrix: np.ndarray) -> Structure:
    """Rotate cell and positions together: x -> R x (Cartesian, Å)."""
    lattice = Lattice(structure.lattice.matrix @ matrix.T)
    return Structure(lattice, structure.species, structure.cart_coords @ matrix.T, coords_are_cartesian=True)


def translate(structure: Structure, shift: np.ndarray) -> Structure:
    """Move every atom by ``shift`` (Å) without wrapping."""
    return Structure(structure.lattice, structure.species, structure.cart_coords + np.asarray(shift),
                     coords_are_cartesian=True)


def permute(structure: Structure, order: np.ndarray) -> Structure:
    return Structure(structure.lattice, [structure.species[i] for i in order], structure.frac_coords[order])


def supercell(structure: Structure, scaling: tuple[int, int, int] = (2, 1, 1)) -> Structure:
    return structure * scaling


def shear_basis(structure: Structure) -> Structure:
    """Same crystal, other basis: b' = a + b (positions unchanged, wrapped into the new cell)."""
    a, b, c = structure.lattice.matrix
    return Structure(Lattice(np.array([a, a + b, c])), structure.species, structure.cart_coords,
                     coords_are_cartesian=True, to_unit_cell=True)


def to_double(data: Data) -> Data:
    data = data.clone()
    data.pos = data.pos.double()
    data.cell = data.cell.double()
    return data


def predict_structures(model: torch.nn.Module, structures: list[Structure], variant: str, dtype=torch.float64,
                       **graph_kwargs) -> torch.Tensor:
    """Model output [len(structures), out_dim] for graphs built with ``variant``."""
    graphs = [build_graph(s, variant, structure_id=f"test-{i}", **graph_kwargs) for i, s in enumerate(structures)]
    if dtype == torch.float64:
        graphs = [to_double(g) for g in graphs]
    return model(Batch.from_data_list(graphs))


def assert_invariant(model: torch.nn.Module, structure: Structure, transform: StructureTransform, variant: str,
                     atol: float = 1e-8, rtol: float = 1e-6, **graph_kwargs) -> None:
    """Assert ``model`` gives the same output for ``structure`` and ``transform(structure)``."""
    before = predict_structures(model, [structure], variant, **graph_kwargs)
    after = predict_structures(model, [transform(structure)], variant, **graph_kwargs)
    torch.testing.assert_close(after, before, atol=atol, rtol=rtol,
                               msg=lambda m: f"{type(model).__name__} on {variant!r} is not invariant: {m}")


def output_difference(model: torch.nn.Module, structure: Structure, transform: StructureTransform, variant: str,
                      **graph_kwargs) -> float:
    """Largest absolute change of the output under ``transform`` (to assert an expected break)."""
    before = predict_structures(model, [structure], variant, **graph_kwargs)
    after = predict_structures(model, [transform(structure)], variant, **graph_kwargs)
    return float((after - before).detach().abs().max())
