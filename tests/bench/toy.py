"""A toy regression task made in the tests (cubic crystals, target = lattice constant)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.model_selection import KFold

from tasks import Fold, TaskData
from tests import crystals


def toy_task(n: int = 20, seed: int = 0, problem_type: str = "regression") -> TaskData:
    rng = np.random.default_rng(seed)
    a = rng.uniform(2.6, 3.6, size=n)
    structures = [crystals.bcc(x) if i % 2 else crystals.fcc(x) for i, x in enumerate(a)]
    targets = a if problem_type == "regression" else (a > 3.1).astype(float)
    folds = [Fold(train, test) for train, test in KFold(5, shuffle=True, random_state=0).split(a)]
    return TaskData(name="toy", ids=[f"toy-{i}" for i in range(n)], structures=structures, targets=targets,
                    problem_type=problem_type, folds=folds, sha256=f"toy-sha-{n}-{seed}-{problem_type}",
                    source=Path("generated-in-tests"), verification="generated-in-tests")
