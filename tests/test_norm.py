"""Batch-norm options (issue 10): affine=False, track_running_stats=False, momentum=None
(cumulative average), and BatchNorm1d for (N, C) and (N, C, L) input.

Each against PyTorch in float64 (output, input and parameter gradients with a random upstream
gradient, running statistics, state-dict keys) and against central differences.
"""
import os
import sys

import numpy
import pytest

import minires
import minires.functional as F
from minires import Tensor, nn

torch = pytest.importorskip("torch")
sys.path.insert(0, os.path.dirname(__file__))
import strict_device  # noqa: E402  (a test helper living next to this file)

TOL = dict(eps=1e-6, atol=1e-6, rtol=1e-4)


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
    fn = lambda x, g, b: F.batch_norm(x, *running, g, b, training=True)  # noqa: E731
    assert minires.gradcheck(fn, [x, gamma, beta], **TOL)
    fn = lambda x, g, b: F.batch_norm(x, *running, g, b, training=False)  # noqa: E731
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
