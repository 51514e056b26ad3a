"""minires.functional.inplace: add_, sub_, mul_, div_, clamp_, fill_, zero_, copy_, bernoulli_.

Each overwrites the tensor's memory (its views see it), returns the tensor, counts in its
version, and, in a graph, gives PyTorch's gradients; what PyTorch refuses is refused.
"""
import numpy
import pytest

import minires
import minires.functional as F
from minires import Tensor

OPERATIONS = {   # name: (minires's call, torch's call), both on (x, other)
    "add_": (lambda x, o: x.add_(o, alpha=2), lambda x, o: x.add_(o, alpha=2)),
    "sub_": (lambda x, o: x.sub_(o), lambda x, o: x.sub_(o)),
    "mul_": (lambda x, o: x.mul_(o), lambda x, o: x.mul_(o)),
    "div_": (lambda x, o: x.div_(o + 3), lambda x, o: x.div_(o + 3)),
    "clamp_": (lambda x, o: x.mul_(o).clamp_(-0.5, 0.5), lambda x, o: x.mul_(o).clamp_(-0.5, 0.5)),
    "fill_": (lambda x, o: x.fill_(2.5) * o, lambda x, o: x.fill_(2.5) * o),
    "zero_": (lambda x, o: x.zero_() + o, lambda x, o: x.zero_() + o),
    "copy_": (lambda x, o: x.copy_(o * 2) * x, lambda x, o: x.copy_(o * 2) * x),
}


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_in_place_operations_in_a_graph_match_torch(rng, name):
    """On a non-leaf x (made from a leaf a), with a leaf operand o: values and both gradients."""
    torch = pytest.importorskip("torch")
    a, o, gy = rng.standard_normal((3, 4)), rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    ours, theirs = OPERATIONS[name]
    results = []
    for make, call in ((lambda v: Tensor(v, requires_grad=True), ours),
                       (lambda v: torch.tensor(v, requires_grad=True), theirs)):
        a_, o_ = make(a), make(o)
        x = a_ * 1.5
        y = call(x, o_)
        y.backward(gy if isinstance(a_, Tensor) else torch.tensor(gy))
        to_numpy = (lambda t: t.numpy()) if isinstance(a_, Tensor) else (lambda t: t.detach().numpy())
        grads = [g if isinstance(a_, Tensor) else (numpy.zeros_like(a) if g is None else g.numpy())
                 for g in (a_.grad, o_.grad)]
        results.append((to_numpy(y), to_numpy(x), *[numpy.zeros_like(a) if g is None else g for g in grads]))
    for got, expected, what in zip(results[0], results[1], ("result", "x", "grad of a", "grad of o")):
        numpy.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12, err_msg=what)


def test_in_place_writes_reach_views_count_in_the_version_and_return_the_tensor():
    base = Tensor(numpy.zeros((2, 3)))
    row = base[1]
    assert row.add_(2.0) is row and row.mul_(3) is row
    numpy.testing.assert_array_equal(base.numpy(), [[0, 0, 0], [6, 6, 6]])
    assert base._version == 2
    base.zero_()
    assert row.numpy().sum() == 0 and base._version == 3


def test_a_backward_that_read_the_old_values_refuses_as_in_torch():
    x = Tensor(numpy.array([1.0, 2.0]), requires_grad=True)
    y = x.exp()             # exp's backward reads its output
    y.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_what_torch_refuses_is_refused():
    leaf = Tensor(numpy.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        leaf.add_(1)
    with minires.no_grad():
        leaf.mul_(2).clamp_(max=1.5)        # allowed under no_grad, as in PyTorch
    numpy.testing.assert_array_equal(leaf.numpy(), [1.5, 1.5, 1.5])
    with pytest.raises(RuntimeError, match="cannot be written into a int64"):
        Tensor(numpy.arange(3)).add_(0.5)
    image = F.max_pool2d(Tensor(numpy.ones((1, 2, 2, 2))), 1)
    with pytest.raises(RuntimeError, match="would not reach the input"):
        image.view(1, -1).zero_()
    with pytest.raises(RuntimeError, match="view"):
        (leaf * 1.0)[0].mul_(2)


def test_bernoulli_draws_zeros_and_ones_with_probability_p():
    minires.manual_seed(0)
    x = Tensor(numpy.zeros(20000))
    assert x.bernoulli_(0.3) is x
    assert set(numpy.unique(x.numpy())) == {0.0, 1.0}
    assert abs(x.numpy().mean() - 0.3) < 0.02      # 4.6 standard deviations of the mean
    p = Tensor(numpy.array([0.0, 1.0] * 5))
    numpy.testing.assert_array_equal(Tensor(numpy.zeros(10)).bernoulli_(p).numpy(), p.numpy())


def test_in_place_chains_gradcheck(rng):
    from tests.support.gradients import TOL, leaf

    def chain(a, o):
        x = a * 1.0
        return x.mul_(o).add_(a, alpha=0.5).div_(o * o + 1).clamp_(-2, 2)
    assert minires.gradcheck(chain, [leaf(rng, 3, 2), leaf(rng, 3, 2)], **TOL)
    assert minires.gradcheck(lambda a, o: (a * 1.0).copy_(o).mul_(a), [leaf(rng, 3), leaf(rng, 1)], **TOL)
