"""Every results table the README quotes is a verbatim copy of a file `bench report` wrote.

A block ``<!-- answer: <file> <task> ... -->`` ... ``<!-- /answer -->`` must equal the
``## <task>`` section of ``<file>`` (``tables/answer.md`` of a committed grid), so a README
number cannot drift from the run records it came from.
"""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"<!-- answer: (\S+) (\S+)[^\n]*-->\n(.*?)<!-- /answer -->", flags=re.S)


def _section(path: Path, task: str) -> str:
    sections = re.split(r"^## (\S+)\n\n", path.read_text(), flags=re.M)
    found = dict(zip(sections[1::2], sections[2::2]))
    assert task in found, f"{path} has no section '## {task}' (has {sorted(found)})"
    return found[task].strip()


def test_readme_answer_blocks_are_copies_of_the_committed_answer_tables():
    blocks = BLOCK.findall((ROOT / "README.md").read_text())
    assert blocks, "the README quotes no answer table"
    for file, task, body in blocks:
        expected = _section(ROOT / file, task)
        assert body.strip() == expected, (f"README block for {file} {task} differs from the file: "
                                          f"paste the '## {task}' section of {file} between the markers")
