"""minires against PyTorch, the oracle: the same layer, weights, input and upstream gradient.

Both frameworks get the same weights (copied from the torch module with ``load_state_dict``),
the same inputs and the same random upstream gradient ``gy`` (a gradient of ones would hide
errors that cancel), and we compare the forward output, the input gradient and every parameter
gradient.

Tolerances (float32, machine epsilon 6e-8): rtol 1e-4 and an absolute 1e-5 * max(1,
max|expected|). A float32 sum of K terms carries an absolute error of about eps * sqrt(K) *
(size of the terms), not of the result, so entries that cancel to near zero need an absolute
floor that scales with the data; 1e-5 is ~100x eps * sqrt(K) for the longest sums here
(K ~ 1,000). The whole network has its own bounds (tests/test_models.py).

Tests that use these take the ``torch`` fixture (tests/conftest.py), which skips them when
PyTorch is not installed; this module imports torch only inside ``check_layer``.
"""
import zlib

import numpy

import minires


def assert_close(actual, expected, rtol=1e-4, atol=1e-5, name=""):
    """allclose with an absolute floor scaled by the data: atol * max(1, max|expected|)."""
    actual, expected = numpy.asarray(actual), numpy.asarray(expected)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    scale = max(1.0, float(numpy.abs(expected).max())) if expected.size else 1.0
    numpy.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * scale, err_msg=name)


def to_numpy(tensor):
    return tensor.detach().numpy()


def check_layer(minires_layer, torch_layer, x, gy=None, exact=False, **tolerances):
    """Same weights, same x, same gy: compare y, x.grad and each parameter's grad by name."""
    import torch
    minires_layer.load_state_dict({k: to_numpy(v) for k, v in torch_layer.state_dict().items()})
    x_t = torch.tensor(x, requires_grad=True)
    y_t = torch_layer(x_t)
    x_m = minires.Tensor(x, requires_grad=True)
    y_m = minires_layer(x_m)
    if gy is None:
        gy = numpy.random.default_rng(1).standard_normal(tuple(y_t.shape)).astype(x.dtype)
    y_t.backward(torch.from_numpy(gy))
    y_m.backward(gy)

    def compare(actual, expected, name):
        if exact:
            numpy.testing.assert_array_equal(actual, expected, err_msg=name)
        else:
            assert_close(actual, expected, name=name, **tolerances)

    compare(y_m.numpy(), to_numpy(y_t), name="output")
    compare(x_m.grad, x_t.grad.numpy(), name="input gradient")
    torch_parameters = dict(torch_layer.named_parameters())
    minires_parameters = dict(minires_layer.named_parameters())
    assert list(minires_parameters) == list(torch_parameters)
    for name, parameter in minires_parameters.items():
        compare(parameter.grad, torch_parameters[name].grad.numpy(), name=f"grad of {name}")
    return minires_layer, torch_layer


def rng_for(*key):
    """A generator seeded by the test's own key (crc32, stable across runs unlike hash())."""
    return numpy.random.default_rng(zlib.crc32(repr(key).encode()))


def randn(rng, *shape):
    return rng.standard_normal(shape).astype(numpy.float32)
