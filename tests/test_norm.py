"""minires.functional.norm and nn.BatchNorm2d: batch normalisation and its running statistics.

Reference values with gradient checks (float64, random upstream gradient, gamma away from 1),
then PyTorch parity (several steps of running statistics included), then errors.
"""
import numpy
import pytest

import minires
import minires.functional as F
from minires import Tensor, nn
from minires.testing import strict_device
from tests.support.gradients import TOL, leaf
from tests.support.networks import batch
from tests.support.optional_torch import requires_torch, torch
from tests.support.parity import assert_close, check_layer, randn, rng_for, to_numpy


def images(*shape):
    return Tensor(numpy.zeros(shape, dtype=numpy.float32))


def test_batchnorm_running_statistics_update_only_in_training(rng):
    bn = nn.BatchNorm2d(3)
    x = batch(rng, 4, 3, 2, 5) * 2.0 + 1.0
    bn(x)
    values = x.numpy().transpose(1, 0, 2, 3).reshape(3, -1)
    numpy.testing.assert_allclose(bn.running_mean.numpy(), 0.1 * values.mean(axis=1), rtol=1e-5)
    numpy.testing.assert_allclose(bn.running_var.numpy(),
                                  0.9 + 0.1 * values.var(axis=1, ddof=1), rtol=1e-5)
    assert bn.num_batches_tracked.item() == 1
    bn.eval()
    stats = bn.running_mean.numpy(), bn.running_var.numpy()
    y = bn(x)
    numpy.testing.assert_array_equal(bn.running_mean.numpy(), stats[0])
    numpy.testing.assert_array_equal(bn.running_var.numpy(), stats[1])
    assert bn.num_batches_tracked.item() == 1
    expected = (x.numpy() - stats[0][:, None, None]) / numpy.sqrt(stats[1][:, None, None] + 1e-5)
    numpy.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-6)


# --- gradient checks ---------------------------------------------------------------------------

def test_batch_norm_training(rng):
    x = leaf(rng, 2, 3, 5, 4)
    gamma = Tensor(rng.uniform(0.5, 2.0, 3) * rng.choice([-1, 1], 3), requires_grad=True)
    beta = leaf(rng, 3)
    assert not numpy.allclose(gamma.numpy(), 1.0)
    def fn(x, g, b):
        return F.batch_norm(x, None, None, g, b, training=True)
    y = fn(x, gamma, beta).numpy()
    xv = x.numpy()
    mean, var = xv.mean(axis=(0, 2, 3), keepdims=True), xv.var(axis=(0, 2, 3), keepdims=True)
    expected = (xv - mean) / numpy.sqrt(var + 1e-5) * gamma.numpy()[:, None, None] \
        + beta.numpy()[:, None, None]
    numpy.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-12)
    assert minires.gradcheck(fn, [x, gamma, beta], **TOL)


def test_batch_norm_training_with_running_stats(rng):
    x, gamma, beta = leaf(rng, 2, 3, 3, 3), leaf(rng, 3), leaf(rng, 3)
    running_mean, running_var = numpy.zeros(3), numpy.ones(3)
    def fn(x, g, b):
        return F.batch_norm(x, running_mean, running_var, g, b, training=True)
    assert minires.gradcheck(fn, [x, gamma, beta], **TOL)


def test_batch_norm_eval(rng):
    x, gamma, beta = leaf(rng, 2, 3, 4, 5), leaf(rng, 3), leaf(rng, 3)
    running_mean, running_var = rng.standard_normal(3), rng.uniform(0.5, 2.0, 3)
    def fn(x, g, b):
        return F.batch_norm(x, running_mean, running_var, g, b, training=False)
    mean, var = running_mean[:, None, None], running_var[:, None, None]
    expected = (x.numpy() - mean) / numpy.sqrt(var + 1e-5) * gamma.numpy()[:, None, None] \
        + beta.numpy()[:, None, None]
    numpy.testing.assert_allclose(fn(x, gamma, beta).numpy(), expected, rtol=1e-10, atol=1e-12)
    assert minires.gradcheck(fn, [x, gamma, beta], **TOL)


# --- PyTorch parity ----------------------------------------------------------------------------

def randomised_batch_norm(torch, C, rng):
    torch_bn = torch.nn.BatchNorm2d(C)
    with torch.no_grad():
        torch_bn.weight.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, C).astype(numpy.float32)))
        torch_bn.bias.copy_(torch.from_numpy(randn(rng, C)))
        torch_bn.running_mean.copy_(torch.from_numpy(randn(rng, C)))
        torch_bn.running_var.copy_(torch.from_numpy(rng.uniform(0.5, 2.0, C).astype(numpy.float32)))
    return torch_bn


@pytest.mark.parametrize("shape, scale, offset", [
    ((4, 5, 3, 6), 3.0, 1.5),       # a mean and spread away from 0 and 1
    ((2, 3, 1, 2), 3.0, 1.5),       # 4 values per channel
    ((4, 5, 3, 6), 1.0, 100.0),     # a mean far above the spread: cancellation in x - mean
])
def test_batch_norm_train_matches_torch(torch, shape, scale, offset):
    rng = rng_for("bn train", shape, offset)
    torch_bn = randomised_batch_norm(torch, shape[1], rng)
    x = scale * randn(rng, *shape) + offset
    minires_bn, torch_bn = check_layer(nn.BatchNorm2d(shape[1]), torch_bn.train(), x)
    for name in ("running_mean", "running_var"):
        assert_close(getattr(minires_bn, name).numpy(), to_numpy(getattr(torch_bn, name)), name=name)
    assert int(minires_bn.num_batches_tracked.numpy()) == int(torch_bn.num_batches_tracked) == 1


def test_batch_norm_eval_matches_torch(torch):
    rng = rng_for("bn eval")
    torch_bn = randomised_batch_norm(torch, 5, rng).eval()
    x = 2.0 * randn(rng, 3, 5, 4, 7) - 0.5
    minires_bn = nn.BatchNorm2d(5).eval()
    minires_bn, torch_bn = check_layer(minires_bn, torch_bn, x)
    # evaluation neither moves the statistics nor counts the batch
    assert_close(minires_bn.running_mean.numpy(), to_numpy(torch_bn.running_mean), rtol=0, atol=0)
    assert int(minires_bn.num_batches_tracked.numpy()) == int(torch_bn.num_batches_tracked) == 0


def test_batch_norm_running_stats_after_five_steps_match_torch(torch):
    rng = rng_for("bn five steps")
    torch_bn = torch.nn.BatchNorm2d(6)        # momentum 0.1, unbiased running variance
    minires_bn = nn.BatchNorm2d(6)
    for step in range(5):
        x = (step + 1.0) * randn(rng, 3, 6, 4, 5) + step - 2.0   # statistics that change
        gy = randn(rng, 3, 6, 4, 5)
        torch_bn(torch.tensor(x, requires_grad=True)).backward(torch.from_numpy(gy))
        minires_bn(minires.Tensor(x, requires_grad=True)).backward(gy)
    for name in ("running_mean", "running_var"):
        assert_close(getattr(minires_bn, name).numpy(), to_numpy(getattr(torch_bn, name)), name=name)
    count = minires_bn.state_dict()["num_batches_tracked"]
    assert count.dtype == numpy.int64 and count.shape == () and int(count) == 5
    assert int(torch_bn.num_batches_tracked) == 5


# --- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_wrong_channel_count(training):
    bn = nn.BatchNorm2d(4).train(training)
    bn.running_mean.data[...] = [1.0, 2.0, 3.0, 4.0]
    with pytest.raises(ValueError) as caught:
        bn(images(2, 3, 4, 4))
    message = str(caught.value)
    assert "BatchNorm2d(4)" in message
    assert "expected input (N, 4, H, W), got (2, 3, 4, 4)" in message
    # a refused batch leaves the running statistics alone
    numpy.testing.assert_array_equal(bn.running_mean.numpy(), [1.0, 2.0, 3.0, 4.0])
    assert bn.num_batches_tracked.item() == 0


def test_batchnorm_needs_more_than_one_value_per_channel_in_training():
    bn = nn.BatchNorm2d(3)
    with pytest.raises(ValueError, match="more than one value per channel"):
        bn(images(1, 3, 1, 1))
    assert bn.eval()(images(1, 3, 1, 1)).shape == (1, 3, 1, 1)


def test_batch_norm_eval_needs_running_statistics():
    with pytest.raises(ValueError, match="running_mean and running_var"):
        F.batch_norm(images(2, 3, 4, 4), None, None, training=False)




def pair_of_layers(kind, C, **options):
    """The same layer in both frameworks, float64, with randomised gamma and beta."""
    theirs = getattr(torch.nn, kind)(C, **options).double()
    mine = getattr(nn, kind)(C, **options).double()
    rng = numpy.random.default_rng(C)
    with torch.no_grad():
        if theirs.weight is not None:
            theirs.weight.copy_(torch.from_numpy(rng.uniform(0.5, 2.0, C) * rng.choice([-1, 1], C)))
            theirs.bias.copy_(torch.from_numpy(rng.standard_normal(C)))
    mine.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    return mine, theirs


def step_both(mine, theirs, x, seed):
    """One forward and backward of both layers: compare y, x.grad and the parameters' grads."""
    x_m, x_t = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y_m, y_t = mine(x_m), theirs(x_t)
    gy = numpy.random.default_rng(seed).standard_normal(tuple(y_t.shape))
    y_m.backward(gy)
    y_t.backward(torch.from_numpy(gy))
    numpy.testing.assert_allclose(y_m.numpy(), y_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    numpy.testing.assert_allclose(x_m.grad, x_t.grad.numpy(), rtol=1e-9, atol=1e-11)
    theirs_parameters = dict(theirs.named_parameters())
    assert [name for name, _ in mine.named_parameters()] == list(theirs_parameters)
    for name, parameter in mine.named_parameters():
        numpy.testing.assert_allclose(parameter.grad, theirs_parameters[name].grad.numpy(),
                                      rtol=1e-10, atol=1e-12, err_msg=name)


def assert_same_state(mine, theirs):
    theirs_state = theirs.state_dict()
    assert list(mine.state_dict()) == list(theirs_state)
    for key, value in mine.state_dict().items():
        numpy.testing.assert_allclose(value, theirs_state[key].numpy(), rtol=1e-12, atol=1e-14,
                                      err_msg=key)


OPTIONS = [dict(), dict(affine=False), dict(track_running_stats=False), dict(momentum=None),
           dict(affine=False, momentum=None), dict(affine=False, track_running_stats=False),
           dict(momentum=0.3, eps=1e-3)]


@requires_torch
@pytest.mark.parametrize("kind, shape", [("BatchNorm2d", (4, 3, 5, 2)), ("BatchNorm1d", (6, 3)),
                                         ("BatchNorm1d", (4, 3, 5))])
@pytest.mark.parametrize("options", OPTIONS, ids=repr)
def test_batch_norm_options_match_torch_over_training_and_evaluation(kind, shape, options):
    """Three training steps (running statistics and count after each), then evaluation."""
    mine, theirs = pair_of_layers(kind, shape[1], **options)
    assert_same_state(mine, theirs)                         # the keys, as torch's state_dict
    rng = numpy.random.default_rng(len(shape))
    for step in range(3):
        x = rng.standard_normal(shape) * (step + 1) + step   # the statistics move between steps
        step_both(mine, theirs, x, seed=step)
        assert_same_state(mine, theirs)
    mine.eval(), theirs.eval()
    step_both(mine, theirs, rng.standard_normal(shape) * 2 + 1, seed=9)
    assert_same_state(mine, theirs)                          # evaluation changes nothing


def test_affine_false_has_no_parameters_and_torchs_keys():
    bn = nn.BatchNorm2d(3, affine=False)
    assert list(bn.parameters()) == [] and bn.weight is None and bn.bias is None
    assert list(bn.state_dict()) == ["running_mean", "running_var", "num_batches_tracked"]


def test_track_running_stats_false_keeps_no_buffers_and_uses_batch_statistics_in_eval(rng):
    bn = nn.BatchNorm2d(3, track_running_stats=False).eval()
    assert list(bn.state_dict()) == ["weight", "bias"] and bn.running_mean is None
    x = rng.standard_normal((4, 3, 2, 2)) * 3 + 5
    y = bn.double()(Tensor(x)).numpy()
    numpy.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0.0, atol=1e-12)    # batch mean removed


def test_momentum_none_is_the_plain_average_of_the_batch_statistics(rng):
    bn = nn.BatchNorm1d(2, momentum=None).double()
    batches = [rng.standard_normal((5, 2)) * (k + 1) + k for k in range(4)]
    for x in batches:
        bn(Tensor(x))
    numpy.testing.assert_allclose(bn.running_mean.numpy(), numpy.mean([b.mean(axis=0) for b in batches],
                                                                      axis=0), rtol=1e-12)
    numpy.testing.assert_allclose(bn.running_var.numpy(),
                                  numpy.mean([b.var(axis=0, ddof=1) for b in batches], axis=0),
                                  rtol=1e-12)
    assert bn.num_batches_tracked.item() == 4


def test_momentum_none_reads_nothing_back_from_the_device():
    """The count stays on the device: 1 / (n + 1) is a 0-d device array, not float(n)."""
    x = numpy.random.default_rng(0).standard_normal((4, 3, 2, 2)).astype(numpy.float32)
    with strict_device.installed() as device:
        bn = nn.BatchNorm2d(3, momentum=None)
        x_device = Tensor(device.asarray(x), requires_grad=True)
        with strict_device.counting() as counts:
            for _ in range(2):
                bn(x_device).sum().backward()
        assert (counts.d2h, counts.implicit, counts.h2d) == (0, 0, 0)
        assert bn.num_batches_tracked.item() == 2


@pytest.mark.parametrize("shape", [(5, 3), (3, 3, 4)])
def test_batch_norm1d_gradcheck(rng, shape):
    x = Tensor(rng.standard_normal(shape), requires_grad=True)
    gamma = Tensor(rng.uniform(0.5, 2.0, 3) * rng.choice([-1, 1], 3), requires_grad=True)
    beta = Tensor(rng.standard_normal(3), requires_grad=True)
    running = numpy.zeros(3), numpy.ones(3)
    def fn(x, g, b):
        return F.batch_norm(x, *running, g, b, training=True)
    assert minires.gradcheck(fn, [x, gamma, beta], **TOL)
    def fn(x, g, b):
        return F.batch_norm(x, *running, g, b, training=False)
    assert minires.gradcheck(fn, [x, gamma, beta], **TOL)


@pytest.mark.parametrize("options", [dict(affine=False), dict(track_running_stats=False),
                                     dict(momentum=None)], ids=repr)
def test_batch_norm_options_gradcheck(rng, options):
    bn = nn.BatchNorm2d(3, **options).double()
    x = Tensor(rng.standard_normal((2, 3, 3, 2)), requires_grad=True)
    inputs = [x] + list(bn.parameters())
    assert minires.gradcheck(lambda x, *parameters: bn(x), inputs, **TOL)
    if options.get("track_running_stats") is False:
        bn.eval()           # still batch statistics: the gradient flows through mean and var
        assert minires.gradcheck(lambda x, *parameters: bn(x), inputs, **TOL)


def test_batch_norm_reprs_show_the_options():
    assert repr(nn.BatchNorm1d(3, affine=False, momentum=None)) == \
        "BatchNorm1d(3, eps=1e-05, momentum=None, affine=False)"
    assert repr(nn.BatchNorm2d(3, track_running_stats=False)) == \
        "BatchNorm2d(3, eps=1e-05, momentum=0.1, track_running_stats=False)"


@pytest.mark.parametrize("kind, shape, expected", [
    ("BatchNorm1d", (2, 3, 4, 4), r"BatchNorm1d\(3\): expected input \(N, 3\) or \(N, 3, L\), "
                                  r"got \(2, 3, 4, 4\)"),
    ("BatchNorm1d", (2, 4), r"BatchNorm1d\(3\): expected input \(N, 3\) or \(N, 3, L\), "
                            r"got \(2, 4\)"),
    ("BatchNorm2d", (2, 3, 4), r"BatchNorm2d\(3\): expected input \(N, 3, H, W\), got \(2, 3, 4\)"),
])
def test_batch_norm_wrong_input_names_the_layer(kind, shape, expected):
    layer = getattr(nn, kind)(3)
    with pytest.raises(ValueError, match=expected):
        layer(Tensor(numpy.zeros(shape, dtype=numpy.float32)))
    assert layer.num_batches_tracked.item() == 0        # a refused batch is not counted


def test_batch_norm1d_needs_more_than_one_value_per_channel_in_training():
    with pytest.raises(ValueError, match=r"BatchNorm1d\(3\): training needs more than one value"):
        nn.BatchNorm1d(3)(Tensor(numpy.zeros((1, 3), dtype=numpy.float32)))
    assert nn.BatchNorm1d(3)(Tensor(numpy.zeros((1, 3, 2), dtype=numpy.float32))).shape == (1, 3, 2)


def test_batch_norm_evaluates_an_empty_batch(rng):
    """As PyTorch: N = 0 in evaluation gives an empty result and empty/zero gradients."""
    x = Tensor(numpy.zeros((0, 3, 4, 4)), requires_grad=True)
    gamma, beta = leaf(rng, 3), leaf(rng, 3)
    y = F.batch_norm(x, numpy.zeros(3), numpy.ones(3), gamma, beta, training=False)
    assert y.shape == (0, 3, 4, 4)
    y.sum().backward()
    assert x.grad.shape == (0, 3, 4, 4)
    numpy.testing.assert_array_equal(gamma.grad, numpy.zeros(3))
    numpy.testing.assert_array_equal(beta.grad, numpy.zeros(3))


@pytest.mark.parametrize("argument, value, message", [
    ("running_mean", numpy.zeros(4), "running_mean must have shape (3,), got (4,)"),
    ("running_var", numpy.ones(2), "running_var must have shape (3,), got (2,)"),
    ("bias", Tensor(numpy.zeros(5)), "bias must have shape (3,), got (5,)"),
    ("running_mean", numpy.zeros((3, 1)), "running_mean must be 1-D"),
    ("running_var", [1.0, 1.0, 1.0], "running_var must be an array or a Tensor, got list"),
])
def test_batch_norm_refuses_a_misshapen_vector_before_moving_the_running_statistics(
        rng, argument, value, message):
    running = {"running_mean": numpy.full(3, 0.5), "running_var": numpy.full(3, 2.0)}
    arguments = {**running, "weight": Tensor(numpy.ones(3)), "bias": Tensor(numpy.zeros(3)),
                 argument: value}
    before = {name: numpy.array(array, copy=True) for name, array in arguments.items()
              if isinstance(array, numpy.ndarray)}
    with pytest.raises((ValueError, TypeError)) as raised:
        F.batch_norm(leaf(rng, 4, 3, 2, 2), training=True, **arguments)
    assert message in str(raised.value)
    for name, array in before.items():
        numpy.testing.assert_array_equal(arguments[name], array, err_msg=name)
