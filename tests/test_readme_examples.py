"""The README's "Add an architecture" and "Add an edge variant" code runs as written."""
import re
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


def _block_containing(marker: str) -> str:
    (block,) = [b for b in _python_blocks() if marker in b]
    return block


def test_readme_plugins_register_and_run(tmp_path):
    (tmp_path / "readme_arch.py").write_text(_block_containing("@register("))
    (tmp_path / "readme_variant.py").write_text(_block_containing("@VARIANTS.decorator("))
    script = textwrap.dedent("""
        import torch
        from torch_geometric.data import Batch
        from bench.cli import main
        from bench.plugins import load_plugins
        from bench.graphs import build_graph
        from tests import crystals
        import architectures

        load_plugins(["readme_arch", "readme_variant"])
        sc = crystals.simple_cubic(3.0)
        g = build_graph(sc, "no_self_images", cutoff=5.0, max_neighbors=None)
        assert g.edge_index.shape[1] == 0, "a one-atom cell has only self-images"
        g2 = build_graph(sc * (2, 1, 1), "no_self_images", cutoff=3.5, max_neighbors=None)
        assert (g2.edge_index[0] != g2.edge_index[1]).all() and g2.edge_index.shape[1] == 4
        model = architectures.create("mymodel", out_dim=2)
        out = model(Batch.from_data_list([g, g2]))
        assert out.shape == (2, 2)
        print("OK")
    """)
    env = {"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().endswith("OK")
    listed = subprocess.run([sys.executable, "-m", "bench", "list", "--plugin", "readme_arch", "--plugin", "readme_variant"],
                            env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert "mymodel" in listed.stdout and "no_self_images" in listed.stdout
