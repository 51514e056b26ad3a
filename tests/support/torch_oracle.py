"""A helper for the operation tests: the same operation in minires and in PyTorch.

``same_as_torch(minires_fn, torch_fn, *arrays)`` runs both on the same inputs
(floating ones require a gradient), checks the output's dtype and values, then
seeds both backward passes with the same random upstream gradient and compares
every input's gradient (one PyTorch leaves as None counts as zeros). Checks run
in float64 unless the inputs say otherwise; nan and inf must agree in place.
Only the tests import torch, and only when it is installed.
"""
import numpy
import pytest

import minires


def same_as_torch(minires_fn, torch_fn, *arrays, rtol=1e-10, atol=1e-12, seed=0, grad=True):
    torch = pytest.importorskip("torch")
    arrays = [numpy.asarray(a) for a in arrays]
    needs = [grad and a.dtype.kind == "f" for a in arrays]
    xs_m = [minires.Tensor(a.copy(), requires_grad=n) for a, n in zip(arrays, needs)]
    xs_t = [torch.tensor(a.copy(), requires_grad=n) for a, n in zip(arrays, needs)]
    y_m, y_t = minires_fn(*xs_m), torch_fn(*xs_t)
    expected = y_t.detach().numpy()
    assert y_m.dtype == expected.dtype, f"dtype {y_m.dtype}, torch {expected.dtype}"
    assert y_m.shape == expected.shape, f"shape {y_m.shape}, torch {expected.shape}"
    numpy.testing.assert_allclose(y_m.numpy(), expected, rtol=rtol, atol=atol)
    if not y_t.requires_grad:
        assert not y_m.requires_grad
        return y_m
    gy = numpy.random.default_rng(seed).standard_normal(expected.shape).astype(expected.dtype)
    y_m.backward(gy)
    y_t.backward(torch.tensor(gy))
    for position, (x_m, x_t) in enumerate(zip(xs_m, xs_t)):
        if not x_t.requires_grad:
            continue
        g_t = numpy.zeros(x_t.shape, expected.dtype) if x_t.grad is None else x_t.grad.numpy()
        g_m = numpy.zeros(x_m.shape, expected.dtype) if x_m.grad is None else x_m.grad
        assert g_m.dtype == g_t.dtype, f"input {position}: gradient dtype {g_m.dtype}, torch {g_t.dtype}"
        numpy.testing.assert_allclose(g_m, g_t, rtol=rtol, atol=atol,
                                      err_msg=f"gradient of input {position}")
    return y_m
