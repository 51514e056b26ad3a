"""minires.functional.norm and nn.BatchNorm2d: batch normalisation and its running statistics.

Reference values with gradient checks (float64, random upstream gradient, gamma away from 1),
then PyTorch parity (several steps of running statistics included), then errors.
"""
import numpy
import pytest

import minires
import minires.functional as F
from minires import Tensor, nn
from tests.support.gradients import TOL, leaf
from tests.support.networks import batch
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
    fn = lambda x, g, b: F.batch_norm(x, None, None, g, b, training=True)
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
    fn = lambda x, g, b: F.batch_norm(x, running_mean, running_var, g, b, training=True)
    assert minires.gradcheck(fn, [x, gamma, beta], **TOL)


def test_batch_norm_eval(rng):
    x, gamma, beta = leaf(rng, 2, 3, 4, 5), leaf(rng, 3), leaf(rng, 3)
    running_mean, running_var = rng.standard_normal(3), rng.uniform(0.5, 2.0, 3)
    fn = lambda x, g, b: F.batch_norm(x, running_mean, running_var, g, b, training=False)
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
