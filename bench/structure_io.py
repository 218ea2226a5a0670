"""Read crystal structures from the files users have: CIF, POSCAR, extended XYZ, matminer JSON.

``read_structures(paths)`` takes files and folders and returns :class:`StructureRecord`\\ s
(id, pymatgen ``Structure``, source file) in a stable order. Used by ``bench predict`` and by
user tasks (:mod:`tasks.user`).

Formats (by file name, or forced with ``fmt``):

- ``cif``: ``*.cif`` (pymatgen ``CifParser``; every data block is one structure);
- ``poscar``: ``POSCAR*``, ``CONTCAR*``, ``*.vasp``, ``*.poscar`` (pymatgen ``Poscar``);
- ``extxyz``: ``*.xyz``, ``*.extxyz`` (ASE; every frame is one structure, which must be
  periodic in all three directions);
- ``json``: ``*.json``, ``*.json.gz`` in matminer's format (a frame with a ``structure``
  column, as ``matminer.utils.io.store_dataframe_as_json`` writes and Matbench ships).

Ids: a file with one structure is named by its path (relative to the folder it was found
in) without the format suffix; the structures of a multi-structure file are
``<name>:<k>`` (k from 0), unless the file gives ids (extxyz ``id`` in a frame's info, a
JSON frame's string index or ``id`` column). Any unreadable file or structure raises
:class:`StructureFileError` naming the file and the structure.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pymatgen.core import Structure

FORMATS = ("cif", "poscar", "extxyz", "json")
_SUFFIXES = {".cif": "cif", ".vasp": "poscar", ".poscar": "poscar", ".xyz": "extxyz", ".extxyz": "extxyz",
             ".json": "json", ".json.gz": "json"}
#: ids an extxyz frame or a JSON frame may carry, looked for in this order
ID_KEYS = ("id", "material_id", "mbid", "name")


class StructureFileError(ValueError):
    """A structure file cannot be read, or one of its structures is not a usable crystal."""


@dataclass(frozen=True)
class StructureRecord:
    """One structure read from ``source`` (``index``: its position in that file)."""

    id: str
    structure: Structure
    source: Path
    index: int = 0
    info: dict | None = None  # per-structure properties a file carries (extxyz info, JSON columns)


def detect_format(path: Path) -> str | None:
    """The format of ``path`` from its name, or None when the name says nothing."""
    name = path.name.lower()
    if name.endswith(".json.gz"):
        return "json"
    if name.startswith(("poscar", "contcar")):
        return "poscar"
    return _SUFFIXES.get(path.suffix.lower())


def _stem(path: Path, root: Path | None) -> str:
    rel = path.relative_to(root) if root is not None else Path(path.name)
    name = rel.as_posix()
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def check_structure(structure: Structure, where: str) -> Structure:
    """Refuse what no model can take: no sites, a flat or non-finite cell, non-finite positions."""
    if len(structure) == 0:
        raise StructureFileError(f"{where}: has no atoms")
    volume = float(structure.lattice.volume)
    if not math.isfinite(volume) or volume < 1e-6:
        raise StructureFileError(f"{where}: cell volume {volume:.3g} Å^3; a crystal needs three independent "
                                 "lattice vectors")
    if not np.isfinite(structure.cart_coords).all():
        raise StructureFileError(f"{where}: has non-finite atom positions")
    return structure


def _read_cif(path: Path) -> list[tuple[Structure, dict]]:
    from pymatgen.io.cif import CifParser

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen warns about rounded occupancies etc. on ordinary files
        parser = CifParser(str(path))
        structures = parser.parse_structures(primitive=False)
    if not structures:
        raise StructureFileError(f"{path}: no structure could be read from this CIF file")
    return [(s, {}) for s in structures]


def _read_poscar(path: Path) -> list[tuple[Structure, dict]]:
    from pymatgen.io.vasp import Poscar

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [(Poscar.from_file(str(path), check_for_potcar=False).structure, {})]


def _read_extxyz(path: Path) -> list[tuple[Structure, dict]]:
    from ase.io import iread
    from pymatgen.io.ase import AseAtomsAdaptor

    out: list[tuple[Structure, dict]] = []
    frames = iread(str(path), index=":", format="extxyz")
    while True:
        k = len(out)
        try:
            atoms = next(frames)
        except StopIteration:
            break
        except Exception as exc:  # ASE raises many types for malformed frames
            raise StructureFileError(f"{path}: structure {k}: not readable as extended XYZ "
                                     f"({type(exc).__name__}: {exc})") from exc
        if not all(atoms.pbc):
            raise StructureFileError(f"{path}: structure {k}: not periodic in all directions (pbc={list(atoms.pbc)}); "
                                     "a crystal needs a Lattice= with pbc=\"T T T\"")
        info = {**atoms.info}
        info.pop("pbc", None)
        # ASE reads per-structure energy, stress etc. into a calculator, not into info
        results = getattr(atoms.calc, "results", None) or {}
        info.update({key: float(value) for key, value in results.items() if np.ndim(value) == 0})
        out.append((AseAtomsAdaptor.get_structure(atoms), info))
    if not out:
        raise StructureFileError(f"{path}: no structure in this extended XYZ file")
    return out


def _read_json(path: Path) -> list[tuple[Structure, dict]]:
    from matminer.utils.io import load_dataframe_from_json

    try:
        df = load_dataframe_from_json(str(path), pbar=False)
    except Exception as exc:  # json, gzip, monty decoding
        raise StructureFileError(f"{path}: not a readable matminer JSON file ({type(exc).__name__}: {exc})") from exc
    if "structure" not in df.columns:
        raise StructureFileError(f"{path}: has no 'structure' column (columns: {list(df.columns)})")
    out = []
    for k, (index, row) in enumerate(df.iterrows()):
        s = row["structure"]
        if isinstance(s, dict):
            try:
                s = Structure.from_dict(s)
            except Exception as exc:
                raise StructureFileError(f"{path}: structure {k} (index {index!r}): not a pymatgen Structure "
                                         f"({type(exc).__name__}: {exc})") from exc
        if not isinstance(s, Structure):
            raise StructureFileError(f"{path}: structure {k} (index {index!r}): not a pymatgen Structure "
                                     f"(got {type(s).__name__})")
        info = {c: row[c] for c in df.columns if c != "structure"}
        if isinstance(index, str):
            info.setdefault("id", index)
        out.append((s, info))
    return out


_READERS = {"cif": _read_cif, "poscar": _read_poscar, "extxyz": _read_extxyz, "json": _read_json}


def read_file(path: str | Path, fmt: str | None = None, root: Path | None = None) -> list[StructureRecord]:
    """Every structure in one file; ``root`` is the folder ids are made relative to."""
    path = Path(path)
    fmt = fmt or detect_format(path)
    if fmt not in _READERS:
        raise StructureFileError(
            f"{path}: unknown structure format{f' {fmt!r}' if fmt else ''}; name files *.cif, POSCAR/CONTCAR/*.vasp, "
            f"*.xyz/*.extxyz or *.json/*.json.gz (matminer), or choose one of {', '.join(FORMATS)}")
    if not path.is_file():
        raise StructureFileError(f"{path}: no such file")
    try:
        items = _READERS[fmt](path)
    except StructureFileError:
        raise
    except Exception as exc:  # parsers raise anything from ValueError to IndexError on bad input
        raise StructureFileError(f"{path}: not readable as {fmt} ({type(exc).__name__}: {exc})") from exc
    base = _stem(path, root)
    records = []
    for k, (structure, info) in enumerate(items):
        given = next((str(info[key]) for key in ID_KEYS if key in info and info[key] is not None), None)
        sid = given or (base if len(items) == 1 else f"{base}:{k}")
        where = f"{path}: structure {k} ({sid!r})"
        records.append(StructureRecord(sid, check_structure(structure, where), path, k, info or None))
    return records


def structure_files(folder: Path) -> list[Path]:
    """Files under ``folder`` (recursively, sorted) whose names say a structure format."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and detect_format(p) is not None)


def read_structures(paths: list[str | Path], fmt: str | None = None) -> list[StructureRecord]:
    """Structures of files and folders (a folder: every structure file in it), ids unique."""
    records: list[StructureRecord] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            files = structure_files(path)
            if not files:
                raise StructureFileError(f"{path}: no structure files in this folder (looked for *.cif, POSCAR*, "
                                         "CONTCAR*, *.vasp, *.xyz, *.extxyz, *.json, *.json.gz)")
            for f in files:
                records += read_file(f, fmt, root=path)
        elif path.exists():
            records += read_file(path, fmt)
        else:
            raise StructureFileError(f"{path}: no such file or folder")
    seen: dict[str, Path] = {}
    for r in records:
        if r.id in seen:
            raise StructureFileError(f"structure id {r.id!r} appears twice ({seen[r.id]} and {r.source}); "
                                     "ids must be unique")
        seen[r.id] = r.source
    return records
