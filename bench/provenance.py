"""Where a result came from: git commit, package versions, device."""
from __future__ import annotations

import functools
import platform
import subprocess
from importlib import metadata

import torch

from bench import defaults

PACKAGES = ("torch", "torch_geometric", "e3nn", "pymatgen", "matminer", "matbench", "mlflow", "optuna", "numpy", "scikit-learn")


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    """HEAD commit of the project, with ``-dirty`` when tracked files are modified."""
    try:
        run = functools.partial(subprocess.run, cwd=defaults.PROJECT_ROOT, capture_output=True, text=True, timeout=10)
        head = run(["git", "rev-parse", "HEAD"]).stdout.strip()
        if not head:
            return "unknown"
        dirty = run(["git", "status", "--porcelain", "--untracked-files=no"]).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@functools.lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{platform.processor() or platform.machine()}x{torch.get_num_threads()}threads"
