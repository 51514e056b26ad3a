"""minires.viz: the DOT text of known graphs (counts, labels, a residual join, gradient flow),
modules collapsed into nodes, rendering with and without Graphviz, and examples/show_graph.py.
"""
import importlib
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy
import pytest

import minires
import minires.functional as F
from minires import nn, viz
from minires.models import ResNet50_layer4
from minires.models.resnet import ResidualBlock

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
       "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
NODE = re.compile(r'^  (\w+) \[label="((?:[^"\\]|\\.)*)"(.*)\];$', re.M)
EDGE = re.compile(r"^  (\w+) -> (\w+)(?: \[(.*)\])?;$", re.M)


def parse(dot):
    """(labels {node id: label with real newlines}, edges [(source, target, attributes)])."""
    assert dot.startswith("digraph minires {\n") and dot.endswith("}\n")
    labels = {node: label.replace("\\n", "\n") for node, label, _ in NODE.findall(dot)}
    edges = EDGE.findall(dot)
    assert all(a in labels and b in labels for a, b, _ in edges), "an edge to an undeclared node"
    return labels, edges


def kinds(labels):
    """Node count per kind: f Function, p leaf, i input without grad, m module, s seed."""
    return Counter(node[0] for node in labels)


def mlp_loss():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    x = minires.Tensor(numpy.ones((2, 4), dtype=numpy.float32))
    return model, F.cross_entropy(model(x), numpy.array([0, 2]))


def block_output():
    """A bottleneck block (projection shortcut) on an input that requires grad: (params, output)."""
    block = ResidualBlock(in_channels=4, middle_channels=2, out_channels=8)
    x = minires.Tensor(numpy.ones((2, 4, 3, 3), dtype=numpy.float32), requires_grad=True)
    return {"x": x, **dict(block.named_parameters())}, block(x)


def node_named(labels, first_line):
    [node] = [n for n, label in labels.items() if label.split("\n")[0] == first_line]
    return node


# ---------------------------------------------------------------- the DOT text of known graphs

def test_mlp_graph_has_a_node_per_function_and_leaf_and_edges_in_data_flow_order():
    model, loss = mlp_loss()
    labels, edges = parse(viz.to_dot(loss, params=dict(model.named_parameters())))
    # Linear, ReLU, Linear, CrossEntropy; 2 weights + 2 biases; the input batch (needs no grad)
    assert kinds(labels) == {"f": 4, "p": 4, "i": 1}
    assert len(edges) == 3 + 1 + 3 + 1
    assert [labels[f"f{i}"].split("\n")[0] for i in range(4)] == \
        ["LinearBackward", "ReLUBackward", "LinearBackward", "CrossEntropyBackward"]   # data-flow order
    assert sorted(label.split("\n")[0] for n, label in labels.items() if n[0] == "f") == \
        ["CrossEntropyBackward", "LinearBackward", "LinearBackward", "ReLUBackward"]
    assert labels[node_named(labels, "0.weight")] == "0.weight\n(8, 4) float32"
    assert labels[node_named(labels, "2.bias")] == "2.bias\n(3,) float32"
    assert labels[node_named(labels, "input, no grad")] == "input, no grad\n(2, 4) float32"
    assert labels[node_named(labels, "ReLUBackward")] == "ReLUBackward\n(2, 8)"
    # data flow: input -> Linear -> ReLU -> Linear -> CrossEntropy, the loss's creator marked
    chain = [node_named(labels, "input, no grad")]
    while any(a == chain[-1] for a, _, _ in edges):
        [following] = [b for a, b, _ in edges if a == chain[-1]]
        chain.append(following)
    assert [labels[n].split("\n")[0] for n in chain[1:]] == \
        ["LinearBackward", "ReLUBackward", "LinearBackward", "CrossEntropyBackward"]
    assert "darkolivegreen1" in re.search(rf"^  {chain[-1]} .*$", viz.to_dot(loss), re.M).group(0)
    assert loss.grad_fn is loss.creator and type(loss.grad_fn).__name__ == "CrossEntropy"


def test_leaves_are_named_from_params_or_called_leaf_and_shapes_can_be_left_out():
    model, loss = mlp_loss()
    labels, _ = parse(viz.to_dot(loss))
    assert sorted(label for n, label in labels.items() if n[0] == "p") == \
        ["leaf\n(3, 8) float32", "leaf\n(3,) float32", "leaf\n(8, 4) float32", "leaf\n(8,) float32"]
    bare, _ = parse(viz.to_dot(loss, params=dict(model.named_parameters()), show_shapes=False))
    assert sorted(bare.values()) == ["0.bias", "0.weight", "2.bias", "2.weight", "CrossEntropyBackward",
                                     "LinearBackward", "LinearBackward", "ReLUBackward", "input, no grad"]


def test_residual_join_is_an_add_with_two_incoming_paths_from_the_same_input():
    params, out = block_output()
    labels, edges = parse(viz.to_dot(out, params=params))
    # 4 units (conv, batch norm, ReLU) and the Add; 4 x (conv weight, bias, bn weight, bias) and x
    assert kinds(labels) == {"f": 13, "p": 17}
    assert len(edges) == 4 * (3 + 3 + 1) + 2
    add, x = node_named(labels, "AddBackward"), node_named(labels, "x")
    assert labels[add] == "AddBackward\n(2, 8, 3, 3)"
    incoming = [a for a, b, _ in edges if b == add]
    assert len(incoming) == 2 and len(set(incoming)) == 2
    assert all(labels[a].startswith("ReLUBackward") for a in incoming)
    assert len([b for a, b, _ in edges if a == x]) == 2       # x feeds both paths

    def reaches_x(node):
        sources = [a for a, b, _ in edges if b == node]
        return node == x or any(reaches_x(a) for a in sources)
    assert all(reaches_x(a) for a in incoming)


def test_backward_drawing_sends_gradients_with_shapes_from_the_seed_to_every_grad():
    params, out = block_output()
    loss = out.sum()
    labels, edges = parse(viz.to_dot(loss, params=params, direction="backward"))
    assert kinds(labels) == {"f": 14, "p": 17, "s": 1}
    seed = node_named(labels, "backward()")
    assert labels[seed] == "backward()\ngy = 1" and [(a, b) for a, b, _ in edges if a == seed] == \
        [(seed, node_named(labels, "SumBackward"))]
    x_grad = node_named(labels, "x.grad")
    into_x = [(a, attributes) for a, b, attributes in edges if b == x_grad]
    assert len(into_x) == 2 and {labels[a].split("\n")[0] for a, _ in into_x} == {"Conv2dBackward"}
    assert all(attributes == 'label="(2, 4, 3, 3)"' for _, attributes in into_x)
    weight = node_named(labels, "layer.0.0.weight.grad")
    assert [attributes for _, b, attributes in edges if b == weight] == ['label="(2, 4, 1, 1)"']
    assert not any(labels[b].startswith("SumBackward") for a, b, _ in edges if a != seed)

    model, loss = mlp_loss()
    labels, edges = parse(viz.to_dot(loss, direction="backward"))
    images = node_named(labels, "input, no grad")
    [(source, attributes)] = [(a, attrs) for a, b, attrs in edges if b == images]
    assert labels[source].startswith("LinearBackward") and attributes == 'style=dashed, label="no grad"'


def test_to_dot_refuses_a_freed_graph_and_a_bad_direction():
    _, loss = mlp_loss()
    with pytest.raises(ValueError, match="direction"):
        viz.to_dot(loss, direction="sideways")
    loss.backward()
    with pytest.raises(ValueError, match="freed by backward"):
        viz.to_dot(loss)


def test_a_leaf_alone_is_one_node():
    w = minires.Tensor(numpy.zeros((3, 2), dtype=numpy.float32), requires_grad=True)
    labels, edges = parse(viz.to_dot(w, params={"w": w}))
    assert labels == {"p0": "w\n(3, 2) float32"} and edges == []


# ---------------------------------------------------------------- modules collapsed into nodes

@pytest.fixture(scope="module")
def course_graph():
    """ResNet50_layer4 on 2 images with its modules recorded: (model, loss)."""
    minires.manual_seed(0)
    model = ResNet50_layer4()
    x = minires.Tensor(numpy.random.default_rng(0).random((2, 3, 32, 32), dtype=numpy.float32))
    with viz.record_modules(model):
        loss = F.cross_entropy(model(x), numpy.array([3, 5]))
    return model, loss


@pytest.mark.slow
def test_course_network_full_graph_has_177_functions_and_214_parameters(course_graph):
    model, loss = course_graph
    labels, edges = parse(viz.to_dot(loss, params=dict(model.named_parameters())))
    # 53 conv-BN-ReLU units (159), 13 residual Adds, max and average pooling, Reshape, Linear
    # and CrossEntropy: 177 Functions; the estimate was "about 270"
    assert kinds(labels) == {"f": 177, "p": 214, "i": 1}
    names = Counter(label.split("\n")[0] for node, label in labels.items() if node[0] == "f")
    assert names["Conv2dBackward"] == names["BatchNorm2dBackward"] == names["ReLUBackward"] == 53
    assert names["AddBackward"] == 13
    assert len(edges) == 53 * 7 + 13 * 2 + 1 + 1 + 1 + 3 + 1
    assert len({label for node, label in labels.items() if node[0] == "p"}) == 214


@pytest.mark.slow
def test_group_by_collapses_the_course_network_into_readable_nodes(course_graph):
    model, loss = course_graph
    labels, edges = parse(viz.to_dot(loss, group_by=model, depth=1))
    assert kinds(labels) == {"m": 7, "f": 1, "i": 1}       # 7 children, the loss, the images
    assert len(edges) == 8
    assert labels[node_named(labels, "layer2")] == \
        "layer2\nSequential\n39 functions\n349,824 parameters\n(2, 256, 4, 4)"
    assert labels[node_named(labels, "flatten")] == "flatten\nFlatten\n1 function\n(2, 1024)"
    assert sum(int(label.split("\n")[2].split()[0]) for n, label in labels.items() if n[0] == "m") == 176

    labels, edges = parse(viz.to_dot(loss, group_by=model))        # depth=2: blocks and layers
    assert kinds(labels) == {"m": 17 + 3, "f": 1, "i": 1} and len(edges) == 21
    assert labels[node_named(labels, "layer2.0")].startswith("layer2.0\nResidualBlock\n13 functions\n")

    labels, edges = parse(viz.to_dot(loss, group_by=model, depth=3))   # the residual joins open
    assert kinds(labels) == {"m": 4 + 13 * 2 + 3, "f": 13 + 1, "i": 1}
    for add in [n for n, label in labels.items() if label.startswith("AddBackward")]:
        sources = {labels[a].split("\n")[0].rsplit(".", 1)[1] for a, b, _ in edges if b == add}
        assert sources in ({"layer", "make_equal_channel"}, {"layer", "downsize"})


def test_record_modules_gives_each_function_to_the_innermost_module_and_removes_its_hooks(course_graph):
    model, loss = course_graph
    owners = viz.modules.module_names(model)
    from minires.autograd import topological_order
    functions = topological_order(loss.creator)
    by_name = {type(f).__name__: owners.get(f) for f in functions}
    assert by_name["CrossEntropy"] is None                  # made outside the model
    assert by_name["Linear"] == "fc" and by_name["MaxPool2d"] == "layer1.3"
    assert Counter(owners[f] for f in functions if type(f).__name__ == "Add") == \
        Counter(name for name, m in model.named_modules() if isinstance(m, ResidualBlock))
    assert all(len(m._forward_hooks) == 0 for m in model.modules())


def test_group_by_without_a_recorded_forward_pass_says_how_to_record():
    model, loss = mlp_loss()
    with pytest.raises(ValueError, match=r"record_modules\(model\)"):
        viz.to_dot(loss, group_by=model)
    with viz.record_modules(model):
        loss = F.cross_entropy(model(minires.Tensor(numpy.ones((2, 4), dtype=numpy.float32))),
                               numpy.array([1, 1]))
    labels, _ = parse(viz.to_dot(loss, group_by=model, depth=1))
    assert sorted(label.split("\n")[:2] for n, label in labels.items() if n[0] == "m") == \
        [["0", "Linear"], ["1", "ReLU"], ["2", "Linear"]]
    with pytest.raises(ValueError, match="depth"):
        viz.to_dot(loss, group_by=model, depth=0)


# ---------------------------------------------------------------- rendering, optional packages

@pytest.mark.slow
def test_import_minires_imports_no_optional_package():
    code = ("import sys, minires, minires.viz; "
            "print(sorted(m for m in ('matplotlib', 'graphviz', 'PIL') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def test_render_without_the_graphviz_package_says_what_to_install(monkeypatch, tmp_path):
    real_import = importlib.import_module

    def no_graphviz(name, *args):
        if name == "graphviz":
            raise ImportError("No module named 'graphviz'")
        return real_import(name, *args)
    monkeypatch.setattr(importlib, "import_module", no_graphviz)
    with pytest.raises(RuntimeError) as error:
        viz.render("digraph { a -> b }", tmp_path / "g.svg")
    assert 'pip install -e ".[viz]"' in str(error.value) and "apt-get install graphviz" in str(error.value)
    assert not (tmp_path / "g.svg").exists()
    with pytest.raises(ValueError, match=r"\.svg, \.png or \.pdf"):
        viz.render("digraph { a -> b }", tmp_path / "g.gif")


def test_render_without_the_dot_program_says_what_to_install(monkeypatch, tmp_path):
    pytest.importorskip("graphviz")
    monkeypatch.setenv("PATH", str(tmp_path))               # no dot on it
    with pytest.raises(RuntimeError, match="dot program.*apt-get install graphviz"):
        viz.render("digraph { a -> b }", tmp_path / "g.svg")


def needs_graphviz():
    pytest.importorskip("graphviz")
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot program is not installed (apt-get install graphviz)")


@pytest.mark.slow
def test_render_writes_svg_and_png_of_the_course_network(course_graph, tmp_path):
    needs_graphviz()
    model, loss = course_graph
    svg = viz.render(viz.to_dot(loss, params=dict(model.named_parameters())), tmp_path / "full.svg")
    text = svg.read_text()
    assert text.count('class="node"') == 177 + 214 + 1 and "layer4.5.layer.2.0.weight" in text
    png = viz.render(viz.to_dot(loss, group_by=model, depth=1), tmp_path / "stages.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and 5_000 < png.stat().st_size < 500_000


# ---------------------------------------------------------------- examples/show_graph.py

def run_show_graph(*args, env=ENV):
    return subprocess.run([sys.executable, str(REPO / "examples" / "show_graph.py"), *map(str, args)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_show_graph_draws_the_mlp_and_the_block_forward_and_backward(tmp_path):
    needs_graphviz()
    result = run_show_graph("-o", tmp_path, "--format", "svg")
    assert result.returncode == 0, result.stderr
    names = [f"{net}_{way}" for net in ("mlp", "block") for way in ("forward", "backward")]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{n}.dot" for n in names] + [f"{n}.svg" for n in names])
    for name in names:
        assert 2_000 < (tmp_path / f"{name}.svg").stat().st_size < 200_000
    block = (tmp_path / "block_backward.dot").read_text()
    labels, edges = parse(block)
    assert len([b for a, b, _ in edges if b == node_named(labels, "x.grad")]) == 2


@pytest.mark.slow
def test_show_graph_without_dot_writes_the_dot_files_and_exits_2(tmp_path):
    result = run_show_graph("-o", tmp_path, env={**ENV, "PATH": str(tmp_path)})
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "apt-get install graphviz" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(list(tmp_path.glob("*.dot"))) == 4
