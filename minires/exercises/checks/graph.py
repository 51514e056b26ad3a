"""Checks of chapter 1, the graph: ``topological_order`` and ``ReLU.backward``."""
import numpy

import minires
import minires.functional as F
from minires.autograd import topological_order

from .compare import Wrong, assert_close, assert_torch_parity, check_gradients, host


def _graphs():
    """(what it is, {id(Function): the line that made it}, root Function) for small graphs."""
    x = minires.Tensor(numpy.arange(1.0, 7.0).reshape(2, 3), requires_grad=True)
    made = {}

    def note(tensor, line):
        made[id(tensor.creator)] = line
        return tensor
    a = note(x * 2.0, "a = x * 2")
    b = note(a + 1.0, "b = a + 1")
    c = note(a * a, "c = a * a")
    d = note(b + c, "d = b + c")                     # a diamond: a feeds d along two paths
    r = note(F.relu(d), "r = relu(d)")
    e = note(r + d, "e = relu(d) + d")               # a residual block: d used twice
    yield "a diamond and a residual block", made, e.creator
    chain = {}
    y = x
    for step in range(6):
        y = y * 1.5 if step % 2 else y + 1.0
        chain[id(y.creator)] = f"step {step} of a chain"
    yield "a chain", chain, y.creator


def _order_is_topological(what, made, root):
    order = topological_order(root)
    if not isinstance(order, list):
        raise Wrong(f"{what}: topological_order returned a {type(order).__name__}, expected a list")
    position = {}
    for k, function in enumerate(order):
        if id(function) in position:
            raise Wrong(f"{what}: {made.get(id(function), function)} appears twice, at "
                        f"{position[id(function)]} and {k}")
        position[id(function)] = k
    missing = [line for key, line in made.items() if key not in position]
    if missing:
        raise Wrong(f"{what}: {missing[0]} is missing from the order ({len(order)} of "
                    f"{len(made)} Functions)")
    if len(order) != len(made):
        raise Wrong(f"{what}: {len(order)} Functions, expected {len(made)}")
    for function in order:
        for edge in function.inputs or ():
            if edge.creator is not None and position[id(edge.creator)] > position[id(function)]:
                raise Wrong(f"{what}: {made[id(function)]} (at {position[id(function)]}) comes before "
                            f"{made[id(edge.creator)]} (at {position[id(edge.creator)]}), which feeds it")
    if order[-1] is not root:
        raise Wrong(f"{what}: the root, {made[id(root)]}, is at {position[id(root)]}, expected last")


def order_of_small_graphs():
    for what, made, root in _graphs():
        _order_is_topological(what, made, root)


def no_recursion_limit():
    x = minires.Tensor(numpy.ones(1), requires_grad=True)
    y = x
    for _ in range(5000):
        y = y + 1.0
    try:
        order = topological_order(y.creator)
    except RecursionError:
        raise Wrong("RecursionError on a chain of 5000 Functions: walk the graph with an "
                    "explicit stack, not by recursion") from None
    if len(order) != 5000:
        raise Wrong(f"a chain of 5000 Functions gave an order of {len(order)}")


def _diamond(x):
    a = x * x
    return (a + 1.0) * a + F.relu(a - 0.5)


def backward_through_a_diamond():
    check_gradients(_diamond, {"x": numpy.random.default_rng(2).standard_normal((2, 3))})


def diamond_against_torch():
    return assert_torch_parity(_diamond, lambda x: (x * x + 1.0) * (x * x) + (x * x - 0.5).relu(),
                               {"x": numpy.random.default_rng(3).standard_normal((2, 3))})


def _away_from_zero(shape, seed):
    """Random float64 values with |x| >= 0.1, so that eps never moves one across 0."""
    x = numpy.random.default_rng(seed).standard_normal(shape)
    return numpy.where(numpy.abs(x) < 0.1, 0.5, x)


def relu_gradcheck():
    check_gradients(F.relu, {"input": _away_from_zero((3, 4), 4)})
    check_gradients(lambda input: F.relu(input * 1.0, inplace=True), {"input": _away_from_zero((5,), 5)})


def relu_against_numpy():
    rng = numpy.random.default_rng(6)
    x = rng.standard_normal((2, 3, 4, 5))
    x[0, 0, 0, :3] = 0.0                    # at 0 the gradient is 0, as PyTorch's
    gy = rng.standard_normal(x.shape)
    leaf = minires.Tensor(x, requires_grad=True)
    F.relu(leaf).backward(gy)
    if leaf.grad is None:
        raise Wrong("no gradient reached input")
    assert_close("gradient of input (2, 3, 4, 5)", host(leaf.grad), gy * (x > 0), atol=0, rtol=0)


def relu_against_torch():
    return assert_torch_parity(F.relu, lambda input: input.relu(), {"input": _away_from_zero((3, 5), 7)})


CHECKS = {
    "topological_order": [
        ("every Function once, each after those that feed it, root last", order_of_small_graphs),
        ("a chain of 5000 Functions, no recursion limit", no_recursion_limit),
        ("backward through a diamond: finite differences", backward_through_a_diamond),
        ("backward through a diamond: PyTorch", diamond_against_torch),
    ],
    "ReLU.backward": [
        ("gradcheck, float64, random gy (also inplace=True)", relu_gradcheck),
        ("gy * (x > 0), NumPy, with x = 0", relu_against_numpy),
        ("PyTorch", relu_against_torch),
    ],
}
