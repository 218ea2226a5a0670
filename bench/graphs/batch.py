"""Building the graphs of many structures at once: the batch, the packed chunk.

A ``StructureBatch`` numbers the atoms of its structures consecutively (structure b
owns atoms ``offsets[b] .. offsets[b + 1] - 1``), so the edge lists of a whole batch
are single arrays and every numpy operation after the per-structure neighbour call
runs once per batch instead of once per structure. ``build_chunk`` turns a batch into
a ``Chunk``: the graphs' tensors concatenated, with per-graph node and edge counts,
which is both what the cache stores and what ``build_graph`` slices one graph from.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from pymatgen.core import Structure

from bench.graphs.errors import GraphError
from bench.graphs.neighbors import Neighbors
from bench.graphs.registry import EDGE_ATTRIBUTES, VARIANTS


def structure_label(structure: Structure, structure_id: str | None) -> str:
    """How error messages name a structure: its id, else its formula."""
    return repr(structure_id) if structure_id is not None else f"{structure.composition.reduced_formula} (no id)"


@dataclass
class StructureBatch:
    """Structures with their float64 positions [N_b, 3] (Å), cells [3, 3] (rows, Å), z and labels."""

    structures: Sequence[Structure]
    positions: list[np.ndarray]
    cells: list[np.ndarray]
    z: list[list[int]]
    labels: list[str]
    offsets: np.ndarray = field(init=False)  # [B + 1] first atom of each structure, then the total

    def __post_init__(self) -> None:
        self.offsets = np.concatenate([[0], np.cumsum([len(p) for p in self.positions])]).astype(np.int64)

    @property
    def n_atoms(self) -> int:
        return int(self.offsets[-1])

    def locate(self, atom: int) -> tuple[int, int]:
        """(structure index, atom index within it) of a batch atom number."""
        b = int(np.searchsorted(self.offsets, atom, side="right")) - 1
        return b, int(atom - self.offsets[b])

    def structure_of(self, atoms: np.ndarray) -> np.ndarray:
        """[E] structure index of each batch atom number."""
        return np.searchsorted(self.offsets, atoms, side="right") - 1


def make_batch(structures: Sequence[Structure], ids: Sequence[str | None] | None = None,
               positions: Sequence[np.ndarray] | None = None, cells: Sequence[np.ndarray] | None = None
               ) -> StructureBatch:
    """Extract what the variants need; a disordered structure is a ``GraphError`` naming it.

    ``positions`` / ``cells`` default to ``structure.cart_coords`` / ``lattice.matrix``.
    """
    ids = list(ids) if ids is not None else [None] * len(structures)
    pos_out, cell_out, z_out, labels = [], [], [], []
    for k, structure in enumerate(structures):
        label = repr(ids[k]) if ids[k] is not None else None
        try:  # ``site.specie`` is the ordered-site check (it raises for a disordered site)
            z = [site.specie.Z for site in structure]
        except AttributeError:
            raise GraphError(f"structure {label or structure_label(structure, None)} is disordered; "
                             "z needs one element per site") from None
        pos = structure.cart_coords if positions is None else positions[k]
        cell = structure.lattice.matrix if cells is None else cells[k]
        pos_out.append(np.array(pos, dtype=np.float64).reshape(-1, 3))  # copies: pymatgen arrays are read-only
        cell_out.append(np.array(cell, dtype=np.float64).reshape(3, 3))
        z_out.append(z)
        labels.append(label if label is not None else _LazyLabel(structure))
    return StructureBatch(structures, pos_out, cell_out, z_out, labels)


class _LazyLabel:
    """A structure's formula label, computed only when an error message needs it."""

    def __init__(self, structure: Structure) -> None:
        self.structure = structure

    def __str__(self) -> str:
        return structure_label(self.structure, None)

    __repr__ = __str__


@dataclass
class Chunk:
    """Graphs concatenated: z [N] int64, pos [N, 3] float32 (Å), cell [B, 3, 3] float32,
    edge_index [2, E] int64 (within each graph), edge_shift [E, 3] int64, edge_type [E] int64,
    num_nodes [B], num_edges [B] int64, and the variant's per-edge attributes
    (``EDGE_ATTRIBUTES``: name -> [E] float32; empty for most variants)."""

    z: np.ndarray
    pos: np.ndarray
    cell: np.ndarray
    edge_index: np.ndarray
    edge_shift: np.ndarray
    edge_type: np.ndarray
    num_nodes: np.ndarray
    num_edges: np.ndarray
    edge_attrs: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.num_nodes.shape[0])


def assemble(batch: StructureBatch, parts: Sequence[tuple[Neighbors, int]]) -> Chunk:
    """The chunk of a batch from its edge parts (batch atom numbers, each part receiver-sorted).

    Graph b's edges are its edges of the first part, then of the second, ..., each in
    the part's order: exactly what one structure's ``to_tensors(parts)`` concatenates.
    """
    src = np.concatenate([nb.src for nb, _ in parts] + [np.zeros(0, np.int64)])
    dst = np.concatenate([nb.dst for nb, _ in parts] + [np.zeros(0, np.int64)])
    shift = np.concatenate([nb.shift for nb, _ in parts] + [np.zeros((0, 3), np.int64)])
    etype = np.concatenate([np.full(nb.num_edges, t, np.int64) for nb, t in parts] + [np.zeros(0, np.int64)])
    graph = batch.structure_of(dst)
    if len(parts) > 1:  # parts are each grouped by graph; interleave them graph by graph
        order = np.argsort(graph, kind="stable")
        src, dst, shift, etype, graph = src[order], dst[order], shift[order], etype[order], graph[order]
    first = batch.offsets[graph]
    return Chunk(
        z=np.fromiter((z for zs in batch.z for z in zs), dtype=np.int64, count=batch.n_atoms),
        pos=np.concatenate(batch.positions).astype(np.float32),
        cell=np.stack(batch.cells).astype(np.float32),
        edge_index=np.stack([src - first, dst - first]),
        edge_shift=shift.reshape(-1, 3),
        edge_type=etype,
        num_nodes=np.diff(batch.offsets),
        num_edges=np.bincount(graph, minlength=len(batch.positions)).astype(np.int64),
    )


def build_chunk(structures: Sequence[Structure], variant: str, cutoff: float, max_neighbors: int | None,
                ids: Sequence[str | None] | None = None) -> Chunk:
    """The graphs of several structures as one chunk (parameters already validated).

    Built-in variants run batched (``variant_fn.batch``); a variant registered as a
    per-structure function is called structure by structure.
    """
    batch = make_batch(structures, ids)
    fn = VARIANTS.get(variant)
    batch_fn = getattr(fn, "batch", None)
    if batch_fn is not None:
        return assemble(batch, batch_fn(batch, cutoff=cutoff, max_neighbors=max_neighbors))
    parts, attrs = [], []
    for b, structure in enumerate(structures):
        edge_index, edge_shift, edge_type, *extra = fn(
            structure, batch.positions[b], batch.cells[b], cutoff=cutoff, max_neighbors=max_neighbors,
            structure_id=str(batch.labels[b]))
        src, dst = edge_index.numpy().astype(np.int64) + batch.offsets[b]
        parts.append((src, dst, edge_shift.numpy().astype(np.int64).reshape(-1, 3), edge_type.numpy()))
        attrs.append(_edge_attributes(variant, extra[0] if extra else {}, edge_type.shape[0]))
    src, dst, shift, etype = (np.concatenate([p[k] for p in parts]) for k in range(4))
    chunk = assemble(batch, [(Neighbors(src, dst, shift, np.zeros(src.size)), 0)])
    chunk.edge_type = etype.astype(np.int64)
    keys = {k for a in attrs for k in a}
    if any(set(a) != keys for a in attrs):
        raise ValueError(f"variant {variant!r} returned per-edge attributes {sorted(keys)} for some structures only")
    chunk.edge_attrs = {k: np.concatenate([a[k] for a in attrs]) for k in sorted(keys)}
    return chunk


def _edge_attributes(variant: str, extra: dict, num_edges: int) -> dict[str, np.ndarray]:
    """A variant's per-edge attributes as float32 arrays, checked against the contract."""
    out = {}
    for key, value in extra.items():
        value = np.asarray(value, dtype=np.float32)
        if key not in EDGE_ATTRIBUTES or value.shape != (num_edges,):
            raise ValueError(f"variant {variant!r} returned per-edge attribute {key!r} of shape {value.shape}; "
                             f"known: {sorted(EDGE_ATTRIBUTES)}, shape [E] = ({num_edges},)")
        out[key] = value
    return out
