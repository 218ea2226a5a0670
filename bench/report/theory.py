"""What each model can see on each encoding: ``expected_can(task, architecture, variant)``.

Whether an encoding *can* answer a probe depends on the model as much as on the graph:
a lattice loop of 12 Å tells c only to a model whose radial basis still resolves 12 Å,
or that reads the loop's direction. So the expectation is derived from two sets of
facts, both kept here:

- ``VARIANT_FACTS``: what a graph variant contains (self-images, loops, edge weights,
  whether the graph is the same for every cell of a crystal);
- ``MODEL_FACTS``: what each registered architecture reads: the longest length its
  radial basis resolves (from its registered hyperparameters: a Gaussian basis on
  [0, c] resolves up to c + 3 widths, a basis times an envelope stops at c), whether it
  reads edge directions, the cell, positions beyond the graph (reciprocal space),
  ``edge_weight``, and whether it has a parity-odd output.

and one rule per probe turns them into ``Expectation(level, reason)``, level one of
``can``, ``partly``, ``cannot``, or ``unknown`` (an architecture or probe without facts
here, e.g. a plugin). The rules assume the suite's default graph (cutoff 8 Å).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

CAN, PARTLY, CANNOT, UNKNOWN = "can", "partly", "cannot", "unknown"


@dataclass(frozen=True)
class Expectation:
    level: str
    reason: str

    @property
    def can(self) -> bool | None:
        """True for can/partly, False for cannot, None for unknown."""
        return None if self.level == UNKNOWN else self.level != CANNOT


@dataclass(frozen=True)
class VariantFacts:
    self_images: bool  # one-atom cells have edges
    loops: bool  # lattice loops (edge_type 1), mirror-closed, from the primitive lattice
    cell_invariant: bool  # the same neighbour multiset in any cell of the crystal
    weights: bool = False  # per-edge edge_weight


VARIANT_FACTS = {
    "distance": VariantFacts(self_images=False, loops=False, cell_invariant=False),
    "multi_edge": VariantFacts(self_images=True, loops=False, cell_invariant=True),
    "multi_edge_noself": VariantFacts(self_images=False, loops=False, cell_invariant=False),
    # its budget is distance's: one-atom cells are edgeless, and the budget changes with the cell
    "multi_edge_degree": VariantFacts(self_images=False, loops=False, cell_invariant=False),
    "distance_lattice": VariantFacts(self_images=False, loops=True, cell_invariant=False),
    "lattice": VariantFacts(self_images=True, loops=True, cell_invariant=True),
    "voronoi": VariantFacts(self_images=True, loops=False, cell_invariant=True, weights=True),
}


@dataclass(frozen=True)
class ModelFacts:
    basis: str  # the radial basis in words
    length_range: Callable[[dict], float]  # Å resolved on neighbour edges and loops (hparams -> Å)
    loop_range: Callable[[dict], float] | None = None  # Å on loops, when loops have their own basis
    directions: bool = False  # reads edge directions (vectors, spherical harmonics, plane waves, actions)
    reads_cell: bool = False  # reads data.cell beyond the edge vectors
    cell_invariant: bool = True  # same output for every cell of a crystal, given a cell-invariant graph
    long_range: bool = False  # sees positions beyond the graph (reciprocal space)
    edge_weight: bool = False  # reads edge_weight
    parity_odd: bool = False  # an output term that changes sign under a mirror
    # Gaussian bases without an envelope never vanish: the value of the last Gaussian at a
    # length beyond the range (hparams, Å) -> value; None for bases that are exactly 0 there
    tail: Callable[[dict, float], float] | None = None


def _gaussian(n_key: str) -> Callable[[dict], float]:
    """Gaussians on [0, cutoff], width = spacing: resolved to cutoff + 3 spacings."""
    return lambda hp: hp["cutoff"] * (1 + 3 / (hp[n_key] - 1))


def _at_cutoff(hp: dict) -> float:
    return hp["cutoff"]


def _gaussian_tail(n_key: str, half: bool = False) -> Callable[[dict, float], float]:
    """exp(-(d - cutoff)^2 / w^2) (or with 1/2: SchNet's exp(-(d - c)^2 / (2 w^2))), w = spacing."""
    return lambda hp, d: math.exp(-(d - hp["cutoff"]) ** 2 / (hp["cutoff"] / (hp[n_key] - 1)) ** 2
                                  / (2.0 if half else 1.0))


#: a basis value below this is lost next to O(1) numbers in float32 (machine epsilon 1.2e-7)
TRACE = 1e-8


MODEL_FACTS: dict[str, ModelFacts] = {
    "cgcnn": ModelFacts("Gaussians on [0, cutoff], no envelope", _gaussian("num_gaussians"),
                        tail=_gaussian_tail("num_gaussians")),
    "schnet": ModelFacts("Gaussians on [0, cutoff]; loops without envelope", _gaussian("num_gaussians"),
                         tail=_gaussian_tail("num_gaussians", half=True)),
    "matformer": ModelFacts("RBF on [0, cutoff], std sqrt(spacing / 2); loops are plain edges",
                            lambda hp: hp["cutoff"] + 3 * math.sqrt(hp["cutoff"] / (hp["num_rbf"] - 1) / 2),
                            tail=lambda hp, d: math.exp(-(d - hp["cutoff"]) ** 2 / (hp["cutoff"] / (hp["num_rbf"] - 1)))),
    "painn": ModelFacts("Bessel x cosine envelope; loops sin(n pi r / (r + c)), any length", _at_cutoff,
                        loop_range=lambda hp: math.inf, directions=True),
    "geocgnn": ModelFacts("Gaussians x envelope plus plane waves cos(k.r) on the cell's k-grid",
                          _at_cutoff, loop_range=lambda hp: math.inf, directions=True, reads_cell=True,
                          cell_invariant=False),
    "empnn": ModelFacts("learnable Gaussians below cutoff, width sqrt(step)",
                        lambda hp: hp["cutoff"] + 3 * math.sqrt(hp["basis_step"]), directions=True),
    "nequip": ModelFacts("Bessel x polynomial envelope (0 at cutoff); loops keep type and direction", _at_cutoff,
                         directions=True),
    "tfn": ModelFacts("Bessel x polynomial envelope (0 at cutoff); loops keep type and direction", _at_cutoff,
                      directions=True),
    "hienet": ModelFacts("Gaussians and Bessel x envelope (0 at cutoff); loops keep type and direction", _at_cutoff,
                         directions=True),
    "ewald_mp": ModelFacts("SchNet's Gaussians plus a reciprocal-space block over the whole crystal",
                           _gaussian("num_gaussians"), reads_cell=True, long_range=True, edge_weight=True),
    "chiral_probe": ModelFacts("Bessel x cosine envelope (0 at cutoff); both parities", _at_cutoff, directions=True,
                               parity_odd=True),
}


def _range(facts: ModelFacts, hp: dict, loops: bool = False) -> float:
    fn = facts.loop_range if loops and facts.loop_range is not None else facts.length_range
    return float(fn(hp))


def _lattice_length(m: ModelFacts, v: VariantFacts, hp: dict) -> Expectation:
    if m.reads_cell:
        return Expectation(CAN, "reads data.cell, which holds c")
    if v.loops:
        reach = _range(m, hp, loops=True)
        if reach >= 14.0:
            return Expectation(CAN, "its loop basis resolves the loop lengths c (9-14 Å)")
        if m.directions:
            return Expectation(CAN, "loop directions: the angles of ±(a±c) against ±a give c/a (an l >= 2 "
                                    "feature for e3nn models), in-plane edges give a; no loop length needed")
        if reach > 9.0:
            return Expectation(PARTLY, f"loop lengths c (9-14 Å) resolved only up to {reach:.1f} Å")
        if m.tail is not None and m.tail(hp, 9.0) > TRACE:
            return Expectation(PARTLY, f"loops (>= 9 Å) lie in the tail of its last Gaussian (value "
                                       f"{m.tail(hp, 9.0):.0e} at 9 Å): a trace of the shortest c only")
        return Expectation(CANNOT, f"loops (>= 9 Å) lie beyond its basis ({reach:.1f} Å): presence only")
    if v.weights:
        if m.edge_weight:
            return Expectation(CAN, "Voronoi face solid angles grow with c (the cell reaches halfway to the next sheet)")
        return Expectation(CANNOT, "edges identical for every c; the solid angles that change are not read")
    return Expectation(CANNOT, "no edge reaches the next sheet: identical graphs for every c, cell not read")


def _self_image(m: ModelFacts, v: VariantFacts, hp: dict) -> Expectation:
    if v.self_images:
        return Expectation(CAN, "self-image edges carry the nearest shells, which fix the lattice constant")
    if v.loops:
        return Expectation(CAN, "one-atom cells keep their loops, whose lengths (< 9 Å) give the lattice constant")
    if m.long_range:
        return Expectation(PARTLY, f"edgeless one-atom cells still have reciprocal vectors, but only cells whose "
                                   f"shortest one (1.2-2.3 1/Å here) is within k_cutoff = {hp.get('k_cutoff')} 1/Å")
    return Expectation(CANNOT, "one-atom cells are edgeless and hcp shows one A-B distance, not the self-image shells")


def _supercell(m: ModelFacts, v: VariantFacts, hp: dict) -> Expectation:
    if not v.cell_invariant:
        return Expectation(CANNOT, "the graph changes with the cell (a one-atom cell is edgeless, its supercell is not)")
    if not m.cell_invariant:
        return Expectation(CANNOT, "its features depend on the cell basis (k-grid of the cell), not only the crystal")
    return Expectation(CAN, "the same neighbour multiset in any cell, and a model that does not read the basis")


def _ewald(m: ModelFacts, v: VariantFacts, hp: dict) -> Expectation:
    if m.long_range:
        return Expectation(CAN, "the reciprocal-space block sums over every image of every atom")
    if v.weights and m.edge_weight:
        return Expectation(PARTLY, "Voronoi face solid angles carry the vacuum gaps (not the charges beyond them)")
    return Expectation(CANNOT, "every crystal of a formula has the same graph within the cutoff and the same cell")


def _chirality(m: ModelFacts, v: VariantFacts, hp: dict) -> Expectation:
    if m.parity_odd:
        return Expectation(CAN, "a pseudoscalar (0o) readout: the helix's edge directions are chiral")
    if not m.cell_invariant and m.directions:
        return Expectation(CAN, "not O(3)-invariant for a fixed cell: the mirror image in the same cell "
                                "(z -> -z) permutes its k-grid channels (k_z -> -k_z), which learned weights "
                                "tell apart")
    return Expectation(CANNOT, "invariant under all of O(3): a crystal and its mirror image give one output "
                               "(the loop set is mirror-closed)")


PROBE_RULES: dict[str, Callable[[ModelFacts, VariantFacts, dict], Expectation]] = {
    "probe_lattice_length": _lattice_length,
    "probe_self_image": _self_image,
    "probe_supercell": _supercell,
    "probe_ewald": _ewald,
    "probe_chirality": _chirality,
}


def expected_can(task: str, architecture: str, variant: str, hparams: dict | None = None) -> Expectation:
    """Whether ``architecture`` on ``variant`` can, in theory, answer probe ``task`` (module docstring).

    ``hparams`` default to the architecture's registered defaults (what the probe grids run).
    """
    rule = PROBE_RULES.get(task)
    model = MODEL_FACTS.get(architecture)
    graph = VARIANT_FACTS.get(variant)
    missing = [what for what, found in (("probe", rule), ("architecture", model), ("variant", graph)) if found is None]
    if missing:
        return Expectation(UNKNOWN, f"no facts recorded for this {' / '.join(missing)} (bench/report/theory.py)")
    if hparams is None:
        import architectures

        hparams = architectures.REGISTRY.get(architecture).defaults
    return rule(model, graph, hparams)
