"""``perovskites_cdvae``: the 18,928 Castelli perovskites from the CDVAE release.

Same materials as ``matbench_perovskites`` but another row order and slightly
different targets (see ``$BENCH_DATA/perov_5/README.md``), so it gets its own folds
made with Matbench's recipe and is not leaderboard-comparable.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bench.defaults import shared_data_dir
from tasks.base import TASKS, DataUnavailableError, Task, VerifiedCopy

FILE_NAME = "castelli_perovskites_cdvae.json.gz"


@dataclass(frozen=True)
class PerovskitesCDVAETask(Task):
    """The CDVAE Perov-5 file in matminer's layout; ids are ``perov-<material_id>``."""

    def folder(self, data_dir: str | os.PathLike | None = None) -> Path:
        return Path(data_dir) if data_dir is not None else shared_data_dir() / "perov_5"

    def how_to_obtain(self) -> str:
        return (f"The verified file is {FILE_NAME} from the shared data folder "
                "(perov_5/, README there); set BENCH_DATA to the folder holding perov_5/.")

    def locate(self, data_dir: str | os.PathLike | None = None) -> Path:
        path = self.folder(data_dir) / FILE_NAME
        if not path.is_file():
            raise DataUnavailableError(
                f"{self.name}: the data file {path} is not on this machine. It is not "
                "downloadable by the suite; set BENCH_DATA to the folder that holds "
                f"perov_5/{FILE_NAME} (default ../shared/data), or pass data_dir."
            )
        return path

    def make_ids(self, df) -> list[str]:
        # the file is sorted by material_id with index = material_id - 1 (its README)
        return [f"perov-{int(i) + 1}" for i in df.index]


PEROVSKITES_CDVAE = TASKS.register("perovskites_cdvae", PerovskitesCDVAETask(
    name="perovskites_cdvae",
    target="e_form",
    unit="eV/cell",  # heat of formation of the whole 5-atom cell (CDVAE heat_all)
    problem_type="regression",
    n_samples=18928,
    leaderboard_comparable=False,
    description=(
        "Castelli cubic perovskites (18,928 ABX3, 5-atom cells), heat of formation per "
        "cell, from the CDVAE Perov-5 release. Same materials as matbench_perovskites "
        "but another row order and slightly different targets (MAD 0.5643 vs 0.5660): "
        "own folds KFold(5, shuffle=True, random_state=18012019) over row order; "
        "not leaderboard-comparable."
    ),
    citation=(
        "Castelli et al., Energy Environ. Sci. 5, 9034 (2012), doi:10.1039/C2EE22341D; "
        "Xie et al., Crystal Diffusion Variational Autoencoder (CDVAE), ICLR 2022 "
        "(data release, MIT licence)."
    ),
    verified_copies=(VerifiedCopy(
        "0ed671f0f6ab887f3105ed064962d49ebebd0d1b8f1b139d62c528501f2b4a10",
        "CDVAE perov_5.zip (JiaoHuang111/RLFEF@bc74fa0) converted to matminer layout; "
        "shared/data/perov_5/README.md"),),
))
