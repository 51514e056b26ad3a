"""Bad input gets an exception of the right type whose message says what went wrong."""
import numpy
import pytest

import minires
import minires.functional as F
from minires import Tensor, backend, nn, optim


def images(*shape):
    return Tensor(numpy.zeros(shape, dtype=numpy.float32))


# --- layers ------------------------------------------------------------------------------------

def test_conv2d_wrong_channel_count_names_the_layer():
    conv = nn.Conv2d(3, 64, 7)
    with pytest.raises(ValueError) as caught:
        conv(images(8, 1, 32, 32))
    message = str(caught.value)
    assert "expected input (N, 3, H, W), got (8, 1, 32, 32)" in message
    assert "Conv2d(3, 64" in message


def test_conv2d_three_dimensional_input():
    with pytest.raises(ValueError, match=r"Conv2d\(3, 8.*expected input \(N, 3, H, W\), "
                                         r"got \(3, 32, 32\)"):
        nn.Conv2d(3, 8, 3)(images(3, 32, 32))


def test_conv2d_input_too_small_for_the_kernel():
    with pytest.raises(ValueError, match=r"Conv2d\(3, 4.*too small for a 7x7 kernel"):
        nn.Conv2d(3, 4, 7)(images(1, 3, 5, 5))
    assert nn.Conv2d(3, 4, 7, padding=1)(images(1, 3, 5, 5)).shape == (1, 4, 1, 1)  # fits


def test_conv2d_bad_stride():
    with pytest.raises(ValueError, match="stride must be >= 1"):
        nn.Conv2d(3, 4, 3, stride=0)(images(1, 3, 5, 5))


def test_pooling_input_too_small_and_padding_too_large():
    with pytest.raises(ValueError, match=r"MaxPool2d.*too small for a 3x3 kernel"):
        F.max_pool2d(images(1, 2, 2, 2), 3)
    with pytest.raises(ValueError, match=r"AvgPool2d.*at most half the kernel size"):
        F.avg_pool2d(images(1, 2, 6, 6), 2, padding=2)
    with pytest.raises(ValueError,
                       match=r"MaxPool2d.*expected input \(N, C, H, W\), got \(2, 6, 6\)"):
        nn.MaxPool2d(2)(images(2, 6, 6))


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


@pytest.mark.parametrize("shape", [(2, 5), (2, 4, 1), (5,)])
def test_linear_wrong_feature_count(shape):
    with pytest.raises(ValueError, match=rf"Linear\(4, 3\): expected input \(N, 4\), "
                                         rf"got {re_tuple(shape)}"):
        nn.Linear(4, 3)(Tensor(numpy.zeros(shape, dtype=numpy.float32)))


def re_tuple(shape):
    return str(tuple(shape)).replace("(", r"\(").replace(")", r"\)")


def test_resnet_wrong_image_size():
    model = minires.models.ResNet50_layer4()
    with pytest.raises(ValueError, match=r"ResNet50_layer4: expected input \(N, 3, 32, 32\), "
                                         r"got \(2, 3, 28, 28\)"):
        model(images(2, 3, 28, 28))


# --- cross entropy -----------------------------------------------------------------------------

def logits(N=4, K=10):
    return Tensor(numpy.zeros((N, K), dtype=numpy.float32), requires_grad=True)


def test_cross_entropy_float_labels():
    with pytest.raises(TypeError, match="integer class indices.*float"):
        F.cross_entropy(logits(), numpy.array([0.0, 1.0, 2.0, 3.0]))
    with pytest.raises(TypeError, match="integer class indices"):
        F.cross_entropy(logits(), Tensor([0, 1, 2, 3]))     # a list becomes float32


@pytest.mark.parametrize("bad", [10, -1])
def test_cross_entropy_label_out_of_range(bad):
    with pytest.raises(ValueError, match=rf"target {bad} is outside \[0, 10\) for 10 classes"):
        F.cross_entropy(logits(), numpy.array([0, bad, 2, 3]))


@pytest.mark.parametrize("target_shape", [(4, 1), (3,), (1, 4)])
def test_cross_entropy_wrong_target_shape(target_shape):
    with pytest.raises(ValueError, match=r"expected target of shape \(4,\)"):
        F.cross_entropy(logits(), numpy.zeros(target_shape, dtype=numpy.int64))


def test_cross_entropy_wrong_logits_shape():
    with pytest.raises(ValueError, match=r"expected input \(N, K\) logits, got \(10,\)"):
        F.cross_entropy(Tensor(numpy.zeros(10, dtype=numpy.float32)), numpy.array([1]))


# --- state dicts -------------------------------------------------------------------------------

def small_model():
    return nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.Flatten(), nn.Linear(3, 2))


def test_load_state_dict_names_every_problem_and_copies_nothing():
    model = small_model()
    before = {key: value.copy() for key, value in model.state_dict().items()}
    state = {key: numpy.ones_like(value) for key, value in model.state_dict().items()}
    del state["1.running_var"]
    state["1.extra"] = numpy.zeros(3)
    state["3.weight"] = numpy.zeros((3, 2))
    with pytest.raises(RuntimeError) as caught:
        model.load_state_dict(state)
    message = str(caught.value)
    assert "missing keys: ['1.running_var']" in message
    assert "unexpected keys: ['1.extra']" in message
    assert "3.weight: expected (2, 3), got (3, 2)" in message
    for key, value in model.state_dict().items():
        numpy.testing.assert_array_equal(value, before[key])


def test_load_state_dict_not_strict_reports_missing_and_unexpected():
    model = small_model()
    state = dict(model.state_dict())
    del state["0.bias"]
    state["unknown"] = numpy.zeros(1)
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert missing == ["0.bias"] and unexpected == ["unknown"]
    state["3.bias"] = numpy.zeros(5)
    with pytest.raises(RuntimeError, match=r"3.bias: expected \(2,\), got \(5,\)"):
        model.load_state_dict(state, strict=False)


def test_optimizer_state_of_another_model():
    optimizer = optim.Adam(small_model().parameters())
    state = optimizer.state_dict()
    state["exp_avg"] = numpy.zeros(3)
    with pytest.raises(ValueError, match="optimizer state 'exp_avg': expected shape"):
        optimizer.load_state_dict(state)


# --- backends ----------------------------------------------------------------------------------

def test_unknown_backend():
    with pytest.raises(ValueError, match=r"unknown backend 'tpu'.*numpy.*cupy"):
        minires.set_backend("tpu")
    assert minires.get_backend() == "numpy"


def test_cupy_without_a_usable_gpu_is_explained():
    if backend.cupy_problem() is None:
        pytest.skip("a usable GPU is present")
    with pytest.raises(Exception) as caught:
        minires.set_backend("cupy")
    assert type(caught.value) is RuntimeError          # not ImportError or a CUDA error type
    message = str(caught.value)
    assert "--backend numpy" in message
    assert "Traceback" not in message and "\n" not in message
    assert minires.get_backend() == "numpy"


# --- autograd ----------------------------------------------------------------------------------

def test_backward_twice():
    x = Tensor(numpy.ones(3), requires_grad=True)
    y = (x * 2).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="already been freed"):
        y.backward()


def test_backward_on_a_non_scalar_without_gradient():
    x = Tensor(numpy.ones((2, 3)), requires_grad=True)
    with pytest.raises(RuntimeError,
                       match=r"one-element tensor, got shape \(2, 3\); pass gradient="):
        (x * 2).backward()


def test_backward_with_a_wrongly_shaped_gradient():
    x = Tensor(numpy.ones((2, 3)), requires_grad=True)
    w = Tensor(numpy.ones((2, 3)))
    with pytest.raises(RuntimeError, match=r"\(3,\).*\(2, 3\)"):
        (x * w).backward(numpy.ones(3))     # would broadcast silently to (2, 3)


def test_backward_without_requires_grad():
    with pytest.raises(RuntimeError, match="does not require grad"):
        (Tensor(numpy.ones(2)) * 2).sum().backward()


def test_item_of_many_elements():
    with pytest.raises(ValueError, match=r"one element, got shape \(2,\)"):
        Tensor(numpy.ones(2)).item()


# --- modules and optimizers --------------------------------------------------------------------

def test_module_without_super_init():
    class Forgetful(nn.Module):
        def __init__(self):
            self.weight = nn.Parameter(numpy.ones(2))

    with pytest.raises(RuntimeError, match=r"Forgetful.__init__ must call super\(\).__init__\(\)"):
        Forgetful()


def test_missing_attribute_names_the_module():
    with pytest.raises(AttributeError, match="'Linear' has no attribute 'weights'"):
        nn.Linear(2, 3).weights


def test_optimizer_arguments():
    with pytest.raises(ValueError, match="no parameter that requires a gradient"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="invalid learning rate -1"):
        optim.Adam(nn.Linear(2, 2).parameters(), lr=-1)
    mixed = [nn.Parameter(numpy.ones(2, dtype=numpy.float32)), nn.Parameter(numpy.ones(2))]
    mixed[1].data = mixed[1].data.astype(numpy.float64)
    with pytest.raises(ValueError, match="share one dtype"):
        optim.Adam(mixed)
    with pytest.raises(ValueError, match="step_size must be at least 1"):
        optim.StepLR(optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1), step_size=0)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_backward_from_a_non_finite_loss_is_refused(bad):
    w = Tensor(numpy.ones(3, dtype=numpy.float32), requires_grad=True)
    loss = (w * bad).sum()
    with pytest.raises(FloatingPointError, match="non-finite"):
        loss.backward()
    assert w.grad is None


def test_padding_same_needs_stride_one_and_an_odd_kernel():
    x = Tensor(numpy.zeros((1, 2, 6, 6), dtype=numpy.float32))
    with pytest.raises(ValueError, match="padding='same' needs stride 1"):
        F.conv2d(x, Tensor(numpy.zeros((3, 2, 2, 2), dtype=numpy.float32)), padding="same")
    with pytest.raises(ValueError, match="padding must be"):
        F.conv2d(x, Tensor(numpy.zeros((3, 2, 3, 3), dtype=numpy.float32)), padding="full")


def test_cross_entropy_unknown_reduction():
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(Tensor(numpy.zeros((2, 3), dtype=numpy.float32)), numpy.array([0, 1]), "avg")


def test_module_to_a_device_points_to_set_backend():
    with pytest.raises(ValueError, match="set_backend"):
        nn.Linear(2, 3).to("cuda")
