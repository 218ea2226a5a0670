"""Reading structures from CIF, POSCAR, extended XYZ and matminer JSON; clear errors for bad files."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from ase.io import write as ase_write
from pymatgen.io.ase import AseAtomsAdaptor

from bench.structure_io import StructureFileError, read_file, read_structures
from tests import crystals


def _same(a, b) -> bool:
    return len(a) == len(b) and np.allclose(a.lattice.matrix, b.lattice.matrix, atol=1e-4) and \
        [s.specie.Z for s in a] == [s.specie.Z for s in b] and np.allclose(a.cart_coords, b.cart_coords, atol=1e-4)


def test_every_format_reads_back_the_written_structures(tmp_path):
    nacl, cu, mg = crystals.rocksalt(), crystals.fcc(), crystals.hcp()
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    nacl.to(filename=str(folder / "nacl.cif"))
    cu.to(filename=str(folder / "sub" / "POSCAR"), fmt="poscar")
    atoms = [AseAtomsAdaptor.get_atoms(s) for s in (cu, mg)]
    atoms[0].info["energy"] = -1.5
    ase_write(str(tmp_path / "two.extxyz"), atoms, format="extxyz")
    from matminer.utils.io import store_dataframe_as_json

    store_dataframe_as_json(pd.DataFrame({"structure": [mg, nacl], "gap": [0.0, 5.0]}, index=["m-1", "m-2"]),
                            str(tmp_path / "frame.json.gz"), compression="gz")

    records = read_structures([folder, tmp_path / "two.extxyz", tmp_path / "frame.json.gz"])
    assert [r.id for r in records] == ["nacl", "sub/POSCAR", "two:0", "two:1", "m-1", "m-2"]
    for record, expected in zip(records, (nacl, cu, cu, mg, mg, nacl)):
        assert _same(record.structure, expected), record.id
    assert records[2].info["energy"] == -1.5  # extxyz properties travel (user tasks read targets from them)
    assert records[5].info["gap"] == 5.0 and records[5].source.name == "frame.json.gz"


def test_extxyz_ids_from_the_file_and_duplicates_refused(tmp_path):
    a = AseAtomsAdaptor.get_atoms(crystals.fcc())
    b = AseAtomsAdaptor.get_atoms(crystals.bcc())
    a.info["id"], b.info["id"] = "cu-fcc", "fe-bcc"
    ase_write(str(tmp_path / "x.xyz"), [a, b], format="extxyz")
    assert [r.id for r in read_file(tmp_path / "x.xyz")] == ["cu-fcc", "fe-bcc"]
    crystals.fcc().to(filename=str(tmp_path / "cu-fcc.cif"))
    with pytest.raises(StructureFileError, match="'cu-fcc' appears twice"):
        read_structures([tmp_path / "x.xyz", tmp_path / "cu-fcc.cif"])


@pytest.mark.parametrize("name, content, message", [
    ("broken.cif", "data_x\n_cell_length_a 3\n", r"broken\.cif: not readable as cif"),
    ("POSCAR", "not a poscar\n1.0\n", r"POSCAR: not readable as poscar"),
    ("bad.json", "{not json", r"bad\.json: not a readable matminer JSON file"),
    ("notes.txt", "hello", r"notes\.txt: unknown structure format"),
])
def test_unreadable_files_name_the_file(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(StructureFileError, match=message):
        read_file(path)


def test_bad_structures_name_the_file_and_the_structure(tmp_path):
    periodic = AseAtomsAdaptor.get_atoms(crystals.fcc())
    molecule = periodic.copy()
    molecule.pbc = False
    ase_write(str(tmp_path / "mixed.extxyz"), [periodic, molecule], format="extxyz")
    with pytest.raises(StructureFileError, match=r"mixed\.extxyz: structure 1: not periodic"):
        read_file(tmp_path / "mixed.extxyz")
    flat = periodic.copy()
    flat.cell[2] = [0, 0, 0]
    ase_write(str(tmp_path / "flat.extxyz"), [flat], format="extxyz")
    with pytest.raises(StructureFileError, match=r"flat\.extxyz"):
        read_file(tmp_path / "flat.extxyz")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(StructureFileError, match="no structure files in this folder"):
        read_structures([empty])
    with pytest.raises(StructureFileError, match="no such file or folder"):
        read_structures([tmp_path / "missing.cif"])
