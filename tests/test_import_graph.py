"""minires's imports of its own modules: no cycle, data flowing one way, nothing extra on import.

The graph comes from minires.testing.import_graph (``python -m minires.testing.import_graph``
prints it): every import statement of every module, at module level or inside a function.
That ``import minires`` leaves the C allocator alone is tested in test_host_memory.py.
"""
import subprocess
import sys

import pytest

from minires.testing.import_graph import find_cycle, import_graph, main, reachable
from tests.support.scripts import REPO


def test_the_cycle_check_finds_a_ring_and_names_it():
    ring = {"a": ["b"], "b": ["c", "d"], "c": ["a"], "d": []}
    assert find_cycle(ring) == ["a", "b", "c", "a"]
    assert find_cycle({"a": ["b", "c"], "b": ["c"], "c": []}) is None       # a diamond is fine
    assert reachable(ring, "d") == set() and reachable(ring, "b") == {"a", "b", "c", "d"}


def test_the_graph_sees_function_level_and_relative_imports(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("from pkg import a\n")
    (package / "a.py").write_text("def f():\n    from pkg.sub import b\n    return b\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "b.py").write_text("from .. import a\nfrom . import c\nimport pkg.sub\n")
    (package / "sub" / "c.py").write_text("from pkg.a import f\n")
    assert import_graph(package) == {
        "pkg": ["pkg.a"], "pkg.a": ["pkg.sub.b"], "pkg.sub": [],
        "pkg.sub.b": ["pkg.a", "pkg.sub", "pkg.sub.c"], "pkg.sub.c": ["pkg.a"]}
    assert find_cycle(import_graph(package)) == ["pkg.a", "pkg.sub.b", "pkg.a"]


@pytest.mark.slow
def test_minires_has_no_import_cycle(capsys):
    graph = import_graph()
    assert "minires.autograd" in graph and "minires.functional.conv" in graph
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)
    assert main() == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[-1] == f"no import cycle among {len(graph)} modules"
    assert "minires.autograd -> minires.backend" in printed


@pytest.mark.slow
def test_autograd_imports_no_layer_above_it():
    """Data flows one way: backend -> autograd -> functional -> nn -> models; optim beside nn."""
    above = ("minires.functional", "minires.nn", "minires.optim", "minires.models")
    reached = reachable(import_graph(), "minires.autograd")
    assert not [m for m in reached if m.startswith(above)], sorted(reached)


@pytest.mark.slow
def test_the_library_never_imports_its_testing_tools():
    graph = import_graph()
    library = [m for m in graph if not m.startswith("minires.testing")]
    assert not [m for m in library if any(t.startswith("minires.testing") for t in graph[m])]


@pytest.mark.slow
def test_import_minires_imports_neither_torch_nor_the_testing_tools():
    code = ("import sys, minires\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'"
            " or m.startswith('minires.testing')))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]", result.stdout
