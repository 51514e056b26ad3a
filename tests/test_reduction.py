"""minires.functional.reduction: sum, mean, max over any axes, with keepdims.

Reference values, then gradient checks (float64, random upstream gradient), then dtypes.
"""


import numpy
import pytest

import minires
import minires.functional as F
from minires import Tensor
from tests.support.gradients import TOL, distinct
from tests.support.torch_oracle import same_as_torch


def test_max_shares_the_gradient_between_ties():
    """As PyTorch's amax: tied maxima split the gradient, which still sums to the upstream one."""
    x = Tensor(numpy.array([[1.0, 1.0, 0.0], [2.0, 0.0, 2.0], [0.0, 3.0, 1.0]]), requires_grad=True)
    x.amax(axis=1).sum().backward()
    numpy.testing.assert_array_equal(x.grad, [[0.5, 0.5, 0.0], [0.5, 0.0, 0.5], [0.0, 1.0, 0.0]])
    y = Tensor(numpy.ones((2, 2), dtype=numpy.float32), requires_grad=True)
    y.max().backward()
    assert y.grad.dtype == numpy.float32
    numpy.testing.assert_array_equal(y.grad, numpy.full((2, 2), 0.25))


# --- gradient checks ---------------------------------------------------------------------------

AXES = [(None, False), (None, True), (0, False), (1, True), (-1, False), ((0, 2), False),
        ((0, 2), True)]


@pytest.mark.parametrize("axis, keepdims", AXES)
@pytest.mark.parametrize("reduction, numpy_name", [("sum", "sum"), ("mean", "mean"), ("amax", "max")])
def test_reductions(rng, reduction, numpy_name, axis, keepdims):
    x = distinct(rng, 2, 3, 4)      # no ties, so max has one winner
    def fn(x):
        return getattr(x, reduction)(axis=axis, keepdims=keepdims)
    expected = getattr(x.numpy(), numpy_name)(axis=axis, keepdims=keepdims)
    numpy.testing.assert_allclose(fn(x).numpy(), expected)
    assert minires.gradcheck(fn, [x], **TOL)


# --- dtypes ------------------------------------------------------------------------------------

def test_reduction_to_a_scalar_keeps_the_dtype():
    for dtype in (numpy.float32, numpy.float64):
        x = Tensor(numpy.asarray([[1.0, 2.0], [3.0, 4.0]], dtype=dtype), requires_grad=True)
        assert x.sum().dtype == dtype
        assert x.mean().dtype == dtype
        assert x.max().dtype == dtype
        assert F.cross_entropy(x, numpy.array([0, 1])).dtype == dtype


def distinct_near_zero(rng, *shape):
    """float64 values without ties, so every maximum has one winner (gradcheck needs that)."""
    values = rng.permutation(int(numpy.prod(shape))).reshape(shape) / 10.0 - 1.0
    return Tensor(values, requires_grad=True)


TIES = numpy.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, -1.0, 2.0], [0.0, -5.0, 4.0, 4.0]])


# --- issue 10, API item 1: the accuracy idiom ----------------------------------------------------
def test_the_accuracy_idiom_matches_torch(rng):
    torch = pytest.importorskip("torch")
    logits = rng.standard_normal((8, 5))
    labels = rng.integers(0, 5, 8)
    values, indices = Tensor(logits).max(1)
    expected_values, expected_indices = torch.tensor(logits).max(1)
    numpy.testing.assert_array_equal(values.numpy(), expected_values.numpy())
    numpy.testing.assert_array_equal(indices.numpy(), expected_indices.numpy())
    assert indices.dtype == numpy.int64
    correct = (indices == Tensor(labels)).sum()
    assert correct.dtype == numpy.int64
    assert correct.item() == (expected_indices == torch.tensor(labels)).sum().item()
    accuracy = (Tensor(logits).argmax(dim=1) == labels).float().mean()
    assert accuracy.dtype == numpy.float32
    assert accuracy.item() == pytest.approx((logits.argmax(1) == labels).mean())


@pytest.mark.parametrize("dim, keepdim", [(0, False), (1, False), (-1, True), (1, True)])
def test_max_and_min_along_a_dim_match_torch_with_ties(dim, keepdim):
    for name in ("max", "min"):
        got = same_as_torch(lambda x: getattr(x, name)(dim, keepdim).values,
                            lambda x: getattr(x, name)(dim, keepdim).values, TIES)
        assert got.shape == getattr(TIES, name)(axis=dim, keepdims=keepdim).shape
        torch = pytest.importorskip("torch")
        ours = getattr(Tensor(TIES), name)(dim=dim, keepdim=keepdim).indices.numpy()
        theirs = getattr(torch.tensor(TIES), name)(dim=dim, keepdim=keepdim).indices.numpy()
        numpy.testing.assert_array_equal(ours, theirs)      # the first of tied maxima


def test_max_and_min_over_everything_are_0d_and_share_ties_as_torch():
    same_as_torch(lambda x: x.max(), lambda x: x.max(), TIES)
    same_as_torch(lambda x: x.min(), lambda x: x.min(), TIES)
    same_as_torch(lambda x: x.amax(1), lambda x: x.amax(1), TIES)
    same_as_torch(lambda x: x.amin(dim=0, keepdim=True), lambda x: x.amin(dim=0, keepdim=True), TIES)
    same_as_torch(lambda x: x.amax((0, 1)), lambda x: x.amax((0, 1)), TIES)


def test_argmax_and_argmin_match_torch():
    torch = pytest.importorskip("torch")
    x, x_t = Tensor(TIES), torch.tensor(TIES)
    for name in ("argmax", "argmin"):
        for kwargs in ({}, {"dim": 0}, {"dim": 1}, {"dim": -1, "keepdim": True}):
            got, expected = getattr(x, name)(**kwargs), getattr(x_t, name)(**kwargs).numpy()
            assert got.dtype == numpy.int64 and got.shape == expected.shape, (name, kwargs)
            numpy.testing.assert_array_equal(got.numpy(), expected, err_msg=f"{name} {kwargs}")
            assert not got.requires_grad


def test_max_min_along_a_dim_and_amin_gradcheck(rng):
    x = distinct_near_zero(rng, 3, 4)
    assert minires.gradcheck(lambda x: x.max(1).values, [x], **TOL)
    assert minires.gradcheck(lambda x: x.min(0, keepdim=True).values, [x], **TOL)
    assert minires.gradcheck(lambda x: x.amin(-1), [x], **TOL)
    assert minires.gradcheck(lambda x: x.min(), [x], **TOL)


def test_sum_and_mean_take_dim_and_keepdim_as_torch(rng):
    x = rng.standard_normal((2, 3, 4))
    same_as_torch(lambda x: x.sum(), lambda x: x.sum(), x)
    same_as_torch(lambda x: x.mean(), lambda x: x.mean(), x)
    for dim, keepdim in [(1, False), (-1, True), ((0, 2), False), ((0, 1), True)]:
        same_as_torch(lambda x: x.sum(dim=dim, keepdim=keepdim),
                      lambda x: x.sum(dim=dim, keepdim=keepdim), x)
        same_as_torch(lambda x: x.mean(dim, keepdim), lambda x: x.mean(dim, keepdim), x)


def test_sum_and_mean_over_dims_gradcheck(rng):
    x = Tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
    assert minires.gradcheck(lambda x: x.sum(dim=(0, 2), keepdim=True), [x], **TOL)
    assert minires.gradcheck(lambda x: x.mean(dim=[1, 2]), [x], **TOL)
    assert minires.gradcheck(lambda x: x.mean(-2, True), [x], **TOL)


def test_numpy_spellings_stay_aliases(rng):
    x = Tensor(rng.standard_normal((2, 3)))
    numpy.testing.assert_array_equal(x.sum(axis=1, keepdims=True).numpy(), x.sum(1, True).numpy())
    numpy.testing.assert_array_equal(x.mean(axis=0).numpy(), x.mean(dim=0).numpy())
    numpy.testing.assert_array_equal(F.reduction.amax(x, axis=1, keepdims=True).numpy(),
                                     x.amax(1, keepdim=True).numpy())


@pytest.mark.parametrize("name", ["max", "min"])
def test_axis_is_another_name_for_dim_in_max_and_min_as_in_torch(rng, name):
    """Issue 17, idiom 6: ``x.max(axis=1)`` is (values, indices) in PyTorch, so [0] is the values."""
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((3, 4))
    for kwargs in (dict(axis=1), dict(axis=0, keepdims=True), dict(dim=1, keepdim=True)):
        got = getattr(Tensor(x), name)(**kwargs)
        torch_kwargs = {"dim": kwargs.get("axis", kwargs.get("dim")),
                        "keepdim": kwargs.get("keepdims", kwargs.get("keepdim", False))}
        expected = getattr(torch.tensor(x), name)(**torch_kwargs)
        numpy.testing.assert_array_equal(got[0].numpy(), expected[0].numpy())
        numpy.testing.assert_array_equal(got[1].numpy(), expected[1].numpy())


def test_any_and_all_take_dim_keepdim_and_tuples_as_torch():
    torch = pytest.importorskip("torch")
    x = numpy.array([[[0, 1], [0, 0]], [[1, 1], [1, 0]]])
    for reduction in ("any", "all"):
        for dim, keepdim in ((1, False), ((0, 2), True), (-1, True)):
            got = getattr(Tensor(x), reduction)(dim=dim, keepdim=keepdim)
            expected = getattr(torch.tensor(x), reduction)(dim=dim, keepdim=keepdim)
            numpy.testing.assert_array_equal(got.numpy(), expected.numpy())
        numpy.testing.assert_array_equal(getattr(Tensor(x), reduction)(axis=1, keepdims=True).numpy(),
                                         getattr(torch.tensor(x), reduction)(1, True).numpy())


def test_reducing_a_0d_tensor_over_dim_0_and_the_mean_of_nothing_as_torch():
    """sum(0) of a 0-d tensor is the element (its backward divided by zero); a mean over a
    zero-size dimension is nan (it raised ZeroDivisionError)."""
    torch = pytest.importorskip("torch")
    for reduction in ("sum", "mean", "amax"):
        for dim in (0, -1):
            x = Tensor(numpy.float64(3.0), requires_grad=True)
            x_t = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
            y, y_t = getattr(x, reduction)(dim), getattr(x_t, reduction)(dim)
            y.backward(numpy.float64(0.7))
            y_t.backward(torch.tensor(0.7, dtype=torch.float64))
            assert y.shape == tuple(y_t.shape) == ()
            assert y.item() == y_t.item() and x.grad == x_t.grad.item(), (reduction, dim)
    empty = numpy.ones((0, 3))
    for dim in (0, None, (0, 1)):
        got = Tensor(empty).mean() if dim is None else Tensor(empty).mean(dim)
        expected = torch.tensor(empty).mean() if dim is None else torch.tensor(empty).mean(dim)
        numpy.testing.assert_array_equal(got.numpy(), expected.numpy())
    assert Tensor(empty).mean(1).shape == (0,)


def test_integer_sums_are_int64_and_integer_means_are_refused_as_in_torch():
    torch = pytest.importorskip("torch")
    for dtype in ("bool", "uint8", "int32"):
        values = numpy.array([[200, 100], [1, 0]]).astype(dtype)
        got, expected = Tensor(values).sum(), torch.tensor(values).sum()
        assert got.dtype == numpy.int64 and got.item() == expected.item(), dtype
        numpy.testing.assert_array_equal(Tensor(values).sum(0).numpy(), torch.tensor(values).sum(0))
    with pytest.raises(RuntimeError, match=r"x.float\(\).mean\(\)"):
        Tensor(numpy.array([1, 2])).mean()


def test_reduction_argument_errors():
    x = Tensor(numpy.zeros((2, 3)))
    with pytest.raises(TypeError, match="dim or axis, not both"):
        x.sum(dim=0, axis=1)
    with pytest.raises(TypeError, match="dim or axis, not both"):
        x.max(0, axis=1)
    with pytest.raises(IndexError):
        x.max(2)
    with pytest.raises(IndexError):
        x.argmax(dim=-3)


# --- issue 17: var and std ----------------------------------------------------------------------

@pytest.mark.parametrize("kwargs", [{}, {"dim": 1}, {"dim": (0, 2), "keepdim": True}, {"unbiased": False},
                                    {"dim": 0, "correction": 0}, {"dim": -1, "correction": 2}])
def test_var_and_std_match_torch(rng, kwargs):
    pytest.importorskip("torch")
    x = rng.standard_normal((3, 4, 5))
    same_as_torch(lambda x: x.var(**kwargs), lambda x: x.var(**kwargs), x)
    same_as_torch(lambda x: x.std(**kwargs), lambda x: x.std(**kwargs), x)


def test_var_and_std_gradcheck(rng):
    x = Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    assert minires.gradcheck(lambda x: x.var(1), [x], **TOL)
    assert minires.gradcheck(lambda x: x.std(dim=0, unbiased=False, keepdim=True), [x], **TOL)


@pytest.mark.filterwarnings("ignore:var()", "ignore:invalid value")
def test_var_of_one_element_is_nan_as_torch():
    torch = pytest.importorskip("torch")
    assert numpy.isnan(Tensor(numpy.ones(1)).var().item()) and torch.ones(1).var().isnan()


# --- issue 17: prod, logsumexp, cumsum, norm ----------------------------------------------------

def test_prod_logsumexp_cumsum_norm_gradcheck(rng):
    x = Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    with_zero = Tensor(numpy.array([[1.5, 0.0, -2.0], [0.0, 0.0, 3.0]]), requires_grad=True)
    assert minires.gradcheck(lambda x: x.prod(1), [x], **TOL)
    assert minires.gradcheck(lambda x: x.prod(), [x], **TOL)
    assert minires.gradcheck(lambda x: x.prod(dim=1), [with_zero], **TOL)     # one zero, two zeros
    assert minires.gradcheck(lambda x: x.logsumexp(1), [x], **TOL)
    assert minires.gradcheck(lambda x: x.cumsum(0), [x], **TOL)
    for p in (2, 1, 3, float("inf")):
        assert minires.gradcheck(lambda x: x.norm(p, dim=1), [x], **TOL)
    assert minires.gradcheck(lambda x: x.norm(), [x], **TOL)


@pytest.mark.filterwarnings("ignore:divide by zero")     # the log of 0 of a row of -inf
def test_prod_logsumexp_cumsum_norm_match_torch(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((3, 4))
    x[1, 2] = 0.0
    for call in (lambda x: x.prod(), lambda x: x.prod(0), lambda x: x.prod(1, keepdim=True),
                 lambda x: x.logsumexp(1), lambda x: x.logsumexp((0, 1), keepdim=True),
                 lambda x: x.cumsum(1), lambda x: x.cumsum(-2), lambda x: x.norm(),
                 lambda x: x.norm(2, 1), lambda x: x.norm(1, dim=0, keepdim=True),
                 lambda x: x.norm(float("inf"), 1), lambda x: (x * 0).norm(dim=1)):
        same_as_torch(call, call, x)
    for values in (numpy.array([[1, 2], [3, 4]], numpy.int32), numpy.array([True, True, False])):
        for call in (lambda x: x.prod(), lambda x: x.cumsum(0)):
            got, expected = call(Tensor(values)), call(torch.tensor(values))
            assert str(got.dtype) == str(expected.dtype).replace("torch.", "")
            numpy.testing.assert_array_equal(got.numpy(), expected.numpy())
    big = numpy.array([[1000.0, 1000.0], [-numpy.inf, -numpy.inf]])
    same_as_torch(lambda x: x.logsumexp(1), lambda x: x.logsumexp(1), big, grad=False)
