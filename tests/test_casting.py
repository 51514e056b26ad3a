"""Casts (x.float(), x.long(), x.to(dtype)) and PyTorch's result_type."""
import numpy
import pytest

import minires
from minires import Tensor
from minires.functional.casting import result_type
from tests.support.torch_oracle import same_as_torch


def test_casts_give_the_dtypes_of_torch():
    x = Tensor(numpy.array([1.7, -2.2, 0.0], dtype=numpy.float32))
    expected = {"float": numpy.float32, "double": numpy.float64, "long": numpy.int64,
                "int": numpy.int32, "bool": numpy.bool_}
    for name, dtype in expected.items():
        assert getattr(x, name)().dtype == dtype, name
    numpy.testing.assert_array_equal(x.long().numpy(), [1, -2, 0])       # toward zero, as torch
    numpy.testing.assert_array_equal(x.bool().numpy(), [True, True, False])
    assert x.float() is x and x.to("float32") is x                       # as torch: no copy


def test_a_floating_cast_keeps_the_gradient_in_the_inputs_dtype(rng):
    x = Tensor(rng.standard_normal(3).astype(numpy.float32), requires_grad=True)
    y = (x.double() * Tensor(numpy.arange(3.0))).sum()
    assert y.dtype == numpy.float64
    y.backward()
    assert x.grad.dtype == numpy.float32
    numpy.testing.assert_array_equal(x.grad, [0.0, 1.0, 2.0])
    same_as_torch(lambda x: x.double() * 3.0, lambda x: x.double() * 3.0,
                  rng.standard_normal(3).astype(numpy.float32))
    same_as_torch(lambda x: x.to("float32") * x, lambda x: x.float() * x, rng.standard_normal(3),
                  rtol=1e-6, atol=1e-7)


def test_an_integer_cast_has_no_gradient():
    x = Tensor(numpy.array([0.5, 2.5]), requires_grad=True)
    assert not x.long().requires_grad and x.long().creator is None


def test_to_refuses_what_is_not_a_dtype_or_the_active_device():
    with pytest.raises(ValueError, match="set_backend"):
        Tensor(numpy.zeros(2)).to("cuda")
    with pytest.raises(TypeError, match="expected a dtype"):
        Tensor(numpy.zeros(2)).to("flaot64")


def test_to_the_active_device_is_a_no_op_and_dtypes_go_with_it_as_in_torch():
    """Issue 17, idiom 3: ``inputs.to(device)`` with device 'cpu' on NumPy, and the other forms."""
    torch = pytest.importorskip("torch")
    x = Tensor(numpy.arange(3.0), requires_grad=True)
    for device in ("cpu", minires.device("cpu"), torch.device("cpu"), x.device):
        assert x.to(device) is x and x.to(device=device) is x
    assert x.cpu() is x and str(x.device) == "cpu" and x.device == minires.device("cpu")
    with pytest.raises(ValueError, match="set_backend"):
        x.cuda()
    with pytest.raises(ValueError, match="set_backend"):
        x.to(torch.device("cuda", 1))
    for got, expected in ((x.to("cpu", "float32"), torch.tensor(x.numpy()).to("cpu", torch.float32)),
                          (x.to(minires.int64), torch.tensor(x.numpy()).to(torch.int64)),
                          (x.to(device="cpu", dtype=minires.float32), torch.tensor(x.numpy()).float()),
                          (x.to(Tensor(numpy.zeros(1, numpy.float32))), torch.tensor(x.numpy()).float())):
        assert str(got.dtype) == str(expected.dtype).replace("torch.", "")
        numpy.testing.assert_array_equal(got.numpy(), expected.numpy())
    copied = x.to("cpu", copy=True)
    assert copied is not x and not numpy.shares_memory(copied.data, x.data)


def test_result_type_follows_torch():
    torch = pytest.importorskip("torch")
    cases = [(numpy.zeros(2, "int32"), 1.5), (numpy.zeros(2, "uint8"), 1), (numpy.zeros(2, bool), 1),
             (numpy.zeros(2, "float32"), numpy.zeros(2, "float64")),
             (numpy.zeros(2, "float32"), numpy.zeros((), "float64")),
             (numpy.zeros(2, "int64"), numpy.zeros((), "float64")),
             (numpy.zeros(2, "int64"), numpy.zeros(2, "float16")),
             (numpy.zeros(2, "uint8"), numpy.zeros(2, "int8")), (numpy.zeros(2, bool), True)]
    for a, b in cases:
        wrap = [torch.tensor(v) if isinstance(v, numpy.ndarray) else v for v in (a, b)]
        expected = torch.empty(0, dtype=torch.result_type(*wrap)).numpy().dtype
        assert result_type(*[Tensor(v) if isinstance(v, numpy.ndarray) else v for v in (a, b)]) \
            == expected, (a.dtype, b)
