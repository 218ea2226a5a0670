"""Task registry: every data set the suite runs, behind one interface.

``get_task(name).load()`` returns a :class:`TaskData` (structures, targets, five
folds, sha256, verification label). Importing this package registers the nine
Matbench v0.1 structure tasks, ``perovskites_cdvae`` and the synthetic tasks
(``tasks.synthetic``: five periodicity probes, ``alloys_emt``, ``alloys_emt_stable``).
``TASK_GROUPS`` maps a group name (``probes``, ``synthetic``, ``matbench``) to its task names.
"""
from __future__ import annotations

from tasks.base import (
    TASKS,
    DataFormatError,
    DataUnavailableError,
    DataVerificationError,
    Fold,
    Task,
    TaskData,
    VerifiedCopy,
)
from tasks import matbench as _matbench  # noqa: F401  (registers the Matbench tasks)
from tasks import perovskites as _perovskites  # noqa: F401  (registers perovskites_cdvae)
from tasks import synthetic as _synthetic  # noqa: F401  (registers the synthetic tasks)
from tasks.matbench import MATBENCH_TASKS, matbench_recorder
from tasks.synthetic import TASK_GROUPS as _SYNTHETIC_GROUPS

#: Names that stand for several tasks on the command line (``--tasks probes``).
TASK_GROUPS: dict[str, list[str]] = {**_SYNTHETIC_GROUPS, "matbench": list(MATBENCH_TASKS)}


def get_task(name: str) -> Task:
    """The registered task ``name``; unknown names raise an error listing the choices."""
    return TASKS.get(name)


__all__ = [
    "TASKS", "get_task", "Task", "TaskData", "Fold", "VerifiedCopy",
    "DataVerificationError", "DataFormatError", "DataUnavailableError",
    "MATBENCH_TASKS", "matbench_recorder", "TASK_GROUPS",
]
