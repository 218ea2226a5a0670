"""Code-aware cell keys: an architecture's module and what it imports key its cells; a docstring,
a comment or formatting keeps every key; editing one architecture makes exactly its cells pending."""
import shutil

import pytest

from bench import defaults
from bench.cells import Cell, cell_identity, grid_cells
from bench.config import load_config
from bench.fingerprint import architecture_fingerprint, module_closure, module_fingerprint, source_digest

CODE = '''"""Module docstring."""
import math


def area(r):
    """Area of a circle."""
    return math.pi * r ** 2  # square
'''


def test_docstrings_comments_and_formatting_keep_the_digest():
    same = CODE.replace('"""Area of a circle."""', '"""Area of a disc (units: r^2)."""').replace("# square", "")
    same = same.replace("math.pi * r ** 2", "math.pi*r**2").replace("\n\n\n", "\n\n\n\n")
    assert source_digest(same) == source_digest(CODE)
    assert source_digest(CODE.replace("r ** 2", "r ** 3")) != source_digest(CODE)
    assert source_digest(CODE.replace("def area(r)", "def area(radius)").replace("* r", "* radius")) != \
        source_digest(CODE)  # renaming is a code change: the fingerprint does not prove equivalence


def test_the_closure_follows_project_imports_and_stops_at_versioned_code():
    closure = module_closure("architectures.cgcnn", (defaults.PROJECT_ROOT,))
    assert {"architectures.cgcnn", "architectures.common", "architectures.registry"} <= set(closure)
    assert closure["bench.graphs.cache:GRAPH_CODE_VERSION"].startswith("version:")
    assert "architectures" not in closure  # the package __init__ imports every architecture: never followed
    modules = [name for name in closure if ":" not in name]  # "module:VERSION" entries aside
    assert not any(name.startswith(("architectures.schnet", "torch", "bench.graphs")) for name in modules)


@pytest.fixture
def project_copy(tmp_path, monkeypatch):
    """A copy of the project's packages that the fingerprints read instead of the checkout."""
    for package in ("architectures", "bench"):
        shutil.copytree(defaults.PROJECT_ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(defaults, "PROJECT_ROOT", tmp_path)
    module_fingerprint.cache_clear()
    yield tmp_path
    module_fingerprint.cache_clear()


def _edit(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    module_fingerprint.cache_clear()


def test_editing_one_architecture_changes_only_its_keys(project_copy):
    cfg = load_config(None, ["architectures=[cgcnn,schnet]", "variants=[distance,lattice]", "folds=[0,1]"])
    cells = grid_cells(cfg, "matbench_jdft2d")

    def keys():
        return {c: cell_identity(c, cfg, "sha")[2] for c in cells}

    before = keys()
    assert architecture_fingerprint("cgcnn") != architecture_fingerprint("schnet")
    cgcnn = project_copy / "architectures" / "cgcnn.py"
    _edit(cgcnn, '"""', '"""A re-worded docstring.\n\n')  # documentation only
    assert keys() == before
    _edit(cgcnn, "import torch\n", "import torch\n\n_UNUSED = 1  # any change of code counts\n")
    after = keys()
    changed = {c.architecture for c in cells if after[c] != before[c]}
    assert changed == {"cgcnn"}  # the dummy and every schnet cell keep their keys
    assert all(after[c] != before[c] for c in cells if c.architecture == "cgcnn")
    # a module both import (architectures/common.py) changes both
    _edit(project_copy / "architectures" / "common.py", "import torch\n", "import torch\n\n_UNUSED = 2\n")
    again = keys()
    assert {c.architecture for c in cells if again[c] != after[c]} == {"cgcnn", "schnet"}


def test_code_versions_and_run_settings_are_in_the_key(monkeypatch):
    import bench.graphs.cache
    import bench.training

    cfg = load_config(None)
    cell = Cell("matbench_jdft2d", 0, "cgcnn", "lattice", 0)
    settings, _, key = cell_identity(cell, cfg, "sha")
    assert settings["code"] == {"architecture": architecture_fingerprint("cgcnn"),
                                "graphs": bench.graphs.cache.GRAPH_CODE_VERSION,
                                "training": bench.training.TRAINING_CODE_VERSION}
    assert settings["threads"] == cfg.executor.threads and settings["device"] in ("cpu", "cuda")
    assert settings["train"]["deterministic"] is True
    monkeypatch.setattr(bench.training, "TRAINING_CODE_VERSION", "bumped")
    assert cell_identity(cell, cfg, "sha")[2] != key
    monkeypatch.undo()
    monkeypatch.setattr(bench.graphs.cache, "GRAPH_CODE_VERSION", "bumped")
    assert cell_identity(cell, cfg, "sha")[2] != key
    monkeypatch.undo()
    assert cell_identity(cell, load_config(None, ["executor.threads=2"]), "sha")[2] != key
    assert cell_identity(cell, load_config(None, ["train.num_threads=4"]), "sha")[2] != key
