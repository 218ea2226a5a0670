"""``probe_chirality``: helical chains and their mirror images, labelled by handedness.

Each of ``N_PAIRS`` random helices (n = 3, 4 or 6 atoms per turn of one element from
``ELEMENTS``, bond length 2.2-2.8 Å, rise 1.0-1.6 Å per atom, one turn per cell
along c, chain axes a = 2 r + 3-4 Å apart in a tetragonal cell, atoms rattled by up to
``RATTLE`` Å) appears twice: as generated (label 1 = right-handed, positive torsion
along the chain) and mirrored through the ab plane (z -> -z, label 0). The mirror
keeps the cell (an orthogonal cell is its own mirror image, so ``data.cell`` is
identical) and maps every distance onto an equal one: every edge-length multiset of
every variant is the same for the two members of a pair. Models invariant under
O(3) (distance-based, or E(3)-equivariant with parity and even-scalar outputs) must
sit at chance; only parity-aware models (SO(3) but not O(3), pseudoscalar features)
can do better (the registered positive control: ``chiral_probe``, with a 0o readout). The
lattice loops are mirror-closed (docs/design.md), so they add no handedness of their own.
Folds are made over pairs, so each fold is exactly balanced.
"""
from __future__ import annotations

import functools

import numpy as np

from tasks.base import TASKS
from tasks.synthetic.base import Generated, SyntheticTask, make_structure

VERSION = "1"
SEED = 8105
N_PAIRS = 150
TURN_SIZES = (3, 4, 6)
ELEMENTS = ("S", "Se", "Te")
BOND_RANGE = (2.2, 2.8)  # Å, between consecutive atoms of the chain
RISE_RANGE = (1.0, 1.6)  # Å per atom along the axis
GAP_RANGE = (3.0, 4.0)  # Å, a = helix diameter + gap (closest approach of two chains)
RATTLE = 0.05  # Å


def helix(n: int, radius: float, rise: float, handed: int) -> np.ndarray:
    """[n, 3] Cartesian positions (Å) of one turn of a helix along z; ``handed`` +1 right, -1 left."""
    k = np.arange(n)
    phi = handed * 2.0 * np.pi * k / n
    return np.column_stack([radius * np.cos(phi), radius * np.sin(phi), rise * k])


def mirror(frac: np.ndarray) -> np.ndarray:
    """Fractional positions mirrored through the ab plane (z -> -z), wrapped."""
    return np.mod(frac * np.array([1.0, 1.0, -1.0]), 1.0)


@functools.lru_cache(maxsize=2)
def generate(seed: int = SEED) -> Generated:
    """``N_PAIRS`` (right-handed, mirror) pairs; groups = pair index; label 1 = right-handed."""
    rng = np.random.default_rng(seed)
    ids, structures, targets, groups = [], [], [], []
    for pair in range(N_PAIRS):
        n = int(TURN_SIZES[pair % len(TURN_SIZES)])
        bond, rise = rng.uniform(*BOND_RANGE), rng.uniform(*RISE_RANGE)
        radius = np.sqrt(max(bond**2 - rise**2, 0.25)) / (2.0 * np.sin(np.pi / n))
        a = 2.0 * radius + rng.uniform(*GAP_RANGE)
        c = n * rise
        pos = helix(n, radius, rise, +1) + rng.uniform(-RATTLE, RATTLE, size=(n, 3))
        pos = pos + np.array([a / 2, a / 2, 0.0])
        cell = np.diag([a, a, c])
        frac = np.mod(pos / np.array([a, a, c]), 1.0)
        element = str(rng.choice(ELEMENTS))
        for label, f in ((1.0, frac), (0.0, mirror(frac))):
            hand = "right" if label else "left"
            ids.append(f"chirality-{pair:03d}/{hand}")
            structures.append(make_structure(cell, [element] * n, f))
            targets.append(label)
            groups.append(pair)
    return Generated(tuple(ids), tuple(structures), np.array(targets), np.array(groups, dtype=np.int64))


PROBE_CHIRALITY = TASKS.register("probe_chirality", SyntheticTask(
    name="probe_chirality",
    target="right_handed",
    unit="",
    problem_type="classification",
    n_samples=2 * N_PAIRS,
    leaderboard_comparable=False,
    description=(
        "Periodicity probe: 150 random helical chains (3, 4 or 6 atoms per turn, S/Se/Te) and their "
        "mirror images (z -> -z, same cell); label 1 = right-handed. Mirror images have identical "
        "edge-length multisets under every variant, so O(3)-invariant models sit at chance (ROC-AUC "
        "0.5); only parity-aware models (the positive control chiral_probe) can separate them. Folds over "
        "pairs (exactly balanced)."
    ),
    citation="",
    generator="chirality", version=VERSION, seed=SEED, generate=generate,
    question="tell a helix from its mirror image",
))
