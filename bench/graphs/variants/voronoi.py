"""``voronoi``: neighbours that share a face of the periodic Voronoi tessellation, weighted by it.

The construction behind coNGN's crystal graphs (Ruff, Reiser, Stühmer & Friederich,
Digital Discovery 2024): atom j's image is a neighbour of atom i when their Voronoi
cells (of the infinite periodic crystal) share a face. Each edge carries the face's
solid angle seen from the receiver as a fraction of the full sphere:

    ``edge_weight`` [E] float32, dimensionless, Ω_face / 4π in (0, 1].

Per receiving atom the weights of its faces sum to 1 (its cell is a convex polyhedron
around it) minus the faces dropped below. The bisector plane maps i onto j's image
and keeps the face, so an edge and its reverse have the same weight.

Rules, and why:

- **Exact tessellation.** scipy's ``Voronoi`` (Qhull) runs on the atoms of the cell and
  every image within a search radius R (first the cutoff). A cell whose farthest
  vertex is ρ from its atom can only be cut by points within 2ρ, so the result is
  exact once 2ρ <= R for every atom; otherwise R doubles (up to
  ``MAX_SEARCH_RADIUS``). Self-images (i, i, s != 0) are neighbours like any other
  (in a one-atom fcc cell all 12 are).
- **Cutoff.** Faces whose neighbour lies beyond ``cutoff`` are dropped (their weight is
  lost, not redistributed), so no variant reaches farther than the others; in a
  layered crystal the faces across the vacuum go.
- **No cap.** ``max_neighbors`` is not applied: the tessellation is the neighbour
  selection (12-16 faces in dense crystals).
- **Degenerate faces.** High-symmetry lattices have neighbours that touch a cell only at
  an edge or vertex (simple cubic: 12 + 8 of them); Qhull reports zero-area ridges
  there, and any face below ``MIN_FACE_FRACTION`` of the sphere is dropped. The weight
  of a face vanishes continuously as it shrinks, so a model that scales messages by
  ``edge_weight`` sees no jump when a tiny face appears or goes.

``edge_type`` is 0 for every edge. Known coordinations (tests/bench/graphs/test_voronoi.py):
fcc and hcp 12 faces of 1/12; bcc 8 hexagons (0.098 each) + 6 squares (0.035); rock salt
6 of 1/6; diamond 4 faces holding 88 % of the sphere + 12 small second-shell faces
(0.0099 each: its cell is a triakis tetrahedron, not a tetrahedron).
"""
from __future__ import annotations

import numpy as np
import torch
from pymatgen.core import Structure
from scipy.spatial import QhullError, Voronoi

from bench.graphs.edges import neighbour_edges, to_tensors
from bench.graphs.errors import GraphError
from bench.graphs.neighbors import CUTOFF_SLACK, Neighbors, find_neighbors
from bench.graphs.registry import VARIANTS

#: Faces below this fraction of the full solid angle are dropped (zero-area ridges of
#: degenerate lattices are ~1e-12; real faces of the test crystals are >= 1e-2).
MIN_FACE_FRACTION = 1e-4
#: Å; beyond this the search for a complete tessellation gives up (a cell this sparse
#: is not a crystal the suite can use).
MAX_SEARCH_RADIUS = 64.0
#: Key of the per-edge attribute this variant adds to the graph.
EDGE_WEIGHT = "edge_weight"


def polygon_solid_angle(centre: np.ndarray, vertices: np.ndarray, normal: np.ndarray) -> float:
    """Solid angle (sr) of a planar convex polygon seen from ``centre``.

    ``vertices`` [V, 3] (Å) in any order (duplicates allowed); ``normal`` [3] the plane's
    direction. The polygon is ordered by angle about its centroid and fanned into
    triangles, each summed with Van Oosterom & Strackee's formula
    tan(Ω/2) = |a·(b×c)| / (abc + (a·b)c + (a·c)b + (b·c)a).
    """
    mid = vertices.mean(axis=0)
    u = vertices[0] - mid
    if np.linalg.norm(u) < 1e-12:
        u = np.cross(normal, [1.0, 0.0, 0.0] if abs(normal[0]) < 0.9 else [0.0, 1.0, 0.0])
    u = u / np.linalg.norm(u)
    v = np.cross(normal, u)
    rel = vertices - mid
    order = np.argsort(np.arctan2(rel @ v, rel @ u))
    ring = vertices[order] - centre
    a = mid - centre
    b, c = ring, np.roll(ring, -1, axis=0)
    la, lb, lc = np.linalg.norm(a), np.linalg.norm(b, axis=1), np.linalg.norm(c, axis=1)
    numer = np.abs(np.einsum("j,ij->i", a, np.cross(b, c)))
    denom = la * lb * lc + (b @ a) * lc + (c @ a) * lb + np.einsum("ij,ij->i", b, c) * la
    return float(np.sum(2.0 * np.arctan2(numer, denom)))


def _tessellate(pos: np.ndarray, cell: np.ndarray, radius: float):
    """Voronoi of the N atoms (points 0..N-1) and their images within ``radius``.

    Returns (vor, atom [P], shift [P, 3]), or ``None`` when the points are coplanar (a
    sheet whose next layer is beyond ``radius``): the caller then searches farther.
    Raises ``QhullError`` when Qhull fails otherwise.
    """
    nb = find_neighbors(pos, cell, radius)
    keys = np.unique(np.column_stack([nb.src, nb.shift]), axis=0)
    keys = keys[~((keys[:, 1:] == 0).all(axis=1))]  # the atoms themselves come first, once
    n = len(pos)
    atom = np.concatenate([np.arange(n), keys[:, 0]])
    shift = np.concatenate([np.zeros((n, 3), np.int64), keys[:, 1:]])
    points = pos[atom] + shift @ cell
    if len(points) < 5 or np.linalg.matrix_rank(points - points[0], tol=1e-6) < 3:
        return None
    return Voronoi(points), atom, shift


def _complete(vor: Voronoi, pos: np.ndarray, radius: float) -> bool:
    """Whether the cells of the N atoms are bounded and certified (2 rho <= radius)."""
    for i in range(len(pos)):
        region = vor.regions[vor.point_region[i]]
        if not region or -1 in region:
            return False
        rho = np.linalg.norm(vor.vertices[region] - pos[i], axis=1).max()
        if 2.0 * rho > radius:
            return False
    return True


def voronoi_faces(pos: np.ndarray, cell: np.ndarray, cutoff: float, structure_id: str) -> tuple[Neighbors, np.ndarray]:
    """Face-sharing neighbours within ``cutoff`` and their solid-angle fractions.

    Returns ``(edges, weight [E] float64)``, symmetric (each face gives the edge and its
    reverse, with one weight), in the order receiver, length, sender, shift.
    """
    neighbour_edges(pos, cell, cutoff, structure_id)  # coincident atoms / isolated atoms raise here
    radius = float(cutoff)
    while True:
        try:
            found = _tessellate(pos, cell, radius)
        except QhullError as err:
            raise GraphError(f"structure {structure_id}: the Voronoi tessellation failed: {err}") from err
        if found is not None and _complete(found[0], pos, radius):
            vor, atom, shift = found
            break
        radius *= 2.0
        if radius > MAX_SEARCH_RADIUS:
            raise GraphError(f"structure {structure_id}: a Voronoi cell reaches beyond "
                             f"{MAX_SEARCH_RADIUS / 2} Å; the crystal is too sparse for the voronoi variant")
    n = len(pos)
    src, dst, shifts, dist, weight = [], [], [], [], []
    for (p, q), ridge in zip(vor.ridge_points, vor.ridge_vertices):
        for c, other in ((p, q), (q, p)):
            if c >= n:
                continue
            j, s = int(atom[other]), shift[other]
            # each face once: from the lower atom, or from either end of a self-image pair with s > 0
            if j < c or (j == c and tuple(s) < (0, 0, 0)):
                continue
            vec = pos[j] + s @ cell - pos[c]
            d = float(np.linalg.norm(vec))
            if d > cutoff + CUTOFF_SLACK or -1 in ridge:
                continue
            frac = polygon_solid_angle(pos[c], vor.vertices[ridge], vec / d) / (4.0 * np.pi)
            if frac < MIN_FACE_FRACTION:
                continue
            src += [j, c]
            dst += [c, j]
            shifts += [s, -s]
            dist += [d, d]
            weight += [frac, frac]
    if not src:
        return Neighbors(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3), np.int64),
                         np.zeros(0)), np.zeros(0)
    nb = Neighbors(np.array(src, np.int64), np.array(dst, np.int64), np.array(shifts, np.int64).reshape(-1, 3),
                   np.array(dist))
    weight = np.array(weight)
    order = np.lexsort((nb.shift[:, 2], nb.shift[:, 1], nb.shift[:, 0], nb.src, np.round(nb.dist, 9), nb.dst))
    return nb.take(order), weight[order]


@VARIANTS.decorator("voronoi")
def voronoi(
    structure: Structure,
    pos: np.ndarray,
    cell: np.ndarray,
    *,
    cutoff: float,
    max_neighbors: int | None,
    structure_id: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """Voronoi face neighbours (``edge_type`` 0) plus ``edge_weight`` (module docstring).

    ``max_neighbors`` is accepted and not applied (the tessellation selects the neighbours).
    """
    nb, weight = voronoi_faces(pos, cell, cutoff, structure_id)
    edge_index, edge_shift, edge_type = to_tensors([(nb, 0)])
    return edge_index, edge_shift, edge_type, {EDGE_WEIGHT: torch.from_numpy(weight.astype(np.float32))}
