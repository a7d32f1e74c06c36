"""Every Python example of docs/python.md runs as written and prints what the page says: the
trailing comment of an unindented print(...) line, and full-line comments starting with "# ->",
are expected lines of its output, in order."""

import os
import pathlib
import re
import subprocess
import sys

import pytest

import qkv

PAGE = pathlib.Path(__file__).resolve().parents[2] / "docs" / "python.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)


# The examples import the qkv these tests import, from any working directory.
ENV = dict(os.environ, PYTHONPATH=str(pathlib.Path(qkv.__file__).resolve().parents[1]))


def expected_lines(code):
    for line in code.splitlines():
        if line.startswith("# -> "):
            yield line[len("# -> "):]
        elif line.startswith("print(") and "  # " in line:
            yield line.split("  # ", 1)[1].strip()


def test_the_page_has_examples():
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example_runs_as_written(index, tmp_path):
    code = BLOCKS[index]
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120, env=ENV)
    assert run.returncode == 0, f"example {index} of {PAGE.name} failed:\n{code}\n{run.stderr}"
    output = iter(run.stdout.splitlines())
    for want in expected_lines(code):
        assert any(line == want for line in output), (
            f"example {index}: expected the line {want!r} in the output:\n{run.stdout}")
