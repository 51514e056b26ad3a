"""Every Python block of README.md runs, so an example cannot drift from the API.

The blocks run in order in one fresh process, inside an empty folder, after "The API in one
example" (the README says the other blocks use its names). That block loads the course's
checkpoint `resnet50_epoch285.ckpt`, which users bring: the test writes a small stand-in, a
freshly initialised ResNet50_layer4 in PyTorch's format.
"""
import re
import shutil
import subprocess
import sys

import pytest

from tests.support.scripts import ENV, REPO

BLOCK = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)
SECTION = re.compile(r"^#+ ", re.MULTILINE)


def readme_blocks():
    """(heading of its section, code) for each Python block of README.md, in order."""
    text = (REPO / "README.md").read_text()
    blocks = []
    for match in BLOCK.finditer(text):
        headings = [line for line in text[:match.start()].splitlines() if SECTION.match(line)]
        blocks.append((headings[-1].lstrip("# "), match.group(1)))
    return blocks


def test_the_readme_has_the_api_example_and_blocks_that_use_it():
    headings = [heading for heading, _ in readme_blocks()]
    assert headings.count("The API in one example") == 1
    assert len(headings) >= 4


@pytest.mark.slow
def test_every_python_block_of_the_readme_runs(tmp_path):
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed (apt-get install graphviz): a README block renders")
    pytest.importorskip("graphviz", reason="a README block renders a graph: pip install -e \".[viz]\"")
    blocks = readme_blocks()
    first = [code for heading, code in blocks if heading == "The API in one example"]
    others = [code for heading, code in blocks if heading != "The API in one example"]
    program = "\n".join([
        "import minires",
        "from minires.models import ResNet50_layer4",
        "minires.save_torch_state_dict(ResNet50_layer4().state_dict(), 'resnet50_epoch285.ckpt')",
        *first, *others,
        f"print('README blocks ran:', {len(blocks)})",
    ])
    result = subprocess.run([sys.executable, "-c", program], cwd=tmp_path, env=ENV,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"README blocks ran: {len(blocks)}" in result.stdout
    assert (tmp_path / "model.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
    assert "Conv2d" in result.stdout                  # the profiler's table was printed
