"""Invariance test helpers for architecture authors (in the spirit of e3nn's ``assert_equivariant``).

Transform a pymatgen structure (rotate, translate, permute, supercell, shear the
basis), rebuild its graph, run the model, and compare outputs. Plugins use these in
their own tests; the suite's architecture test mixin is built on them.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch
from pymatgen.core import Lattice, Structure
from torch_geometric.data import Batch, Data

from bench.graphs import build_graph

if TYPE_CHECKING:
    from e3nn import o3

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


def graph_float64(structure: Structure, variant: str, **graph_kwargs) -> Data:
    """``build_graph`` with ``pos`` and ``cell`` taken from ``structure`` in float64.

    ``build_graph`` stores float32 geometry; rounding a rotated copy independently moves
    edge vectors by ~3e-7 Å, which would hide (or fake) errors at float64 tolerances.
    """
    data = build_graph(structure, variant, **graph_kwargs)
    data.pos = torch.tensor(structure.cart_coords, dtype=torch.float64)
    data.cell = torch.tensor(structure.lattice.matrix, dtype=torch.float64).unsqueeze(0)
    return data


def predict_structures(model: torch.nn.Module, structures: list[Structure], variant: str, dtype=torch.float64,
                       **graph_kwargs) -> torch.Tensor:
    """Model output [len(structures), out_dim] for graphs built with ``variant``."""
    if dtype == torch.float64:
        graphs = [graph_float64(s, variant, structure_id=f"test-{i}", **graph_kwargs) for i, s in enumerate(structures)]
    else:
        graphs = [build_graph(s, variant, structure_id=f"test-{i}", **graph_kwargs) for i, s in enumerate(structures)]
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


#: ``(name, irreps, features)`` of one internal layer: node features [N, irreps.dim] whose
#: columns transform by ``irreps.D_from_matrix(R)`` (e3nn's basis: for ``1o``, D(R) = R).
LayerFeatures = tuple[str, "o3.Irreps", torch.Tensor]


def layer_features(model: torch.nn.Module, structure: Structure, variant: str, **graph_kwargs) -> list[LayerFeatures]:
    """Per-layer node features of ``structure`` through ``model.node_features(batch)`` (float64)."""
    graph = graph_float64(structure, variant, structure_id="equivariance-test", **graph_kwargs)
    return model.node_features(Batch.from_data_list([graph]))


def wigner_d(irreps: o3.Irreps, rotation: torch.Tensor) -> torch.Tensor:
    """``irreps.D_from_matrix`` in float64 throughout (e3nn builds its generators in the
    default dtype, which in float32 puts ~4e-7 errors into D even for a float64 R)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return irreps.D_from_matrix(rotation.to(torch.float64))
    finally:
        torch.set_default_dtype(previous)


def assert_equivariant(model: torch.nn.Module, structure: Structure, variant: str, rotation: np.ndarray,
                       atol: float = 1e-9, rtol: float = 1e-7, **graph_kwargs) -> int:
    """Assert every internal layer of ``model`` is equivariant under ``rotation`` (proper or improper).

    The model exposes ``node_features(batch) -> list[(name, e3nn Irreps, Tensor [N, irreps.dim])]``.
    Rotating the crystal (cell and positions) must map each layer's features ``f`` to
    ``f @ D(R).T``, with ``D = irreps.D_from_matrix(R)`` from e3nn, which includes parity for
    an improper ``R``. Returns the number of layers checked (so a test can assert it is > 0).
    """
    before = layer_features(model, structure, variant, **graph_kwargs)
    after = layer_features(model, rotate(structure, rotation), variant, **graph_kwargs)
    if not before:
        raise AssertionError(f"{type(model).__name__}.node_features returned no layers")
    R = torch.as_tensor(rotation, dtype=torch.float64)
    for (name, irreps, f), (_, _, g) in zip(before, after):
        if f.shape[-1] != irreps.dim:
            raise AssertionError(f"layer {name!r}: {f.shape[-1]} columns but irreps {irreps} have dim {irreps.dim}")
        expected = f @ wigner_d(irreps, R).to(f.dtype).T
        torch.testing.assert_close(g, expected, atol=atol, rtol=rtol, msg=lambda m, name=name, irreps=irreps: (
            f"{type(model).__name__} layer {name!r} ({irreps}) on {variant!r} is not equivariant: {m}"))
    return len(before)
