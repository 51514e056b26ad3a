"""minires.factories: zeros, ones, full, empty, *_like, rand, randn, randint, arange, linspace,
eye and tensor, with torch's dtypes and values."""
import numpy
import pytest

import minires


def _same(got, expected):
    assert str(got.dtype) == str(expected.dtype).replace("torch.", ""), (got.dtype, expected.dtype)
    assert got.shape == tuple(expected.shape)
    numpy.testing.assert_array_equal(got.numpy(), expected.numpy())


def test_factories_match_torch():
    torch = pytest.importorskip("torch")
    like = torch.zeros(2, 3, dtype=torch.float64)
    cases = [
        ("zeros", (2, 3), {}), ("zeros", ((2, 3),), {"dtype": "int64"}), ("ones", (4,), {}),
        ("full", ((2, 2), 7), {}), ("full", ((2,), 1.5), {}), ("full", ((2,), True), {}),
        ("arange", (5,), {}), ("arange", (1, 2, 0.25), {}), ("arange", (2, 11, 3), {"dtype": "float64"}),
        ("linspace", (0, 1, 5), {}), ("eye", (3,), {}), ("eye", (2, 3), {"dtype": "float64"}),
        ("tensor", ([1, 2],), {}), ("tensor", ([1.0, 2.5],), {}), ("tensor", ([True, False],), {}),
        ("tensor", (numpy.arange(3, dtype=numpy.float64),), {}),
        ("tensor", ([[1, 2]],), {"dtype": "float64"}),
    ]
    for name, args, kwargs in cases:
        torch_kwargs = {k: getattr(torch, v) for k, v in kwargs.items()}
        _same(getattr(minires, name)(*args, **kwargs), getattr(torch, name)(*args, **torch_kwargs))
    for name in ("zeros_like", "ones_like"):
        _same(getattr(minires, name)(minires.Tensor(numpy.zeros((2, 3)))), getattr(torch, name)(like))
    _same(minires.full_like(minires.Tensor(numpy.zeros((2, 3))), 4), torch.full_like(like, 4))


def test_random_factories_have_torchs_dtypes_shapes_and_ranges_and_follow_the_seed():
    minires.manual_seed(3)
    first = [minires.rand(2, 3), minires.randn((4,), dtype=minires.float64), minires.randint(5, (100,)),
             minires.randint(-2, 2, (3, 3))]
    assert [(t.dtype, t.shape) for t in first] == [(minires.float32, (2, 3)), (minires.float64, (4,)),
                                                   (minires.int64, (100,)), (minires.int64, (3, 3))]
    assert 0 <= first[0].numpy().min() and first[0].numpy().max() < 1
    assert set(first[2].numpy()) <= set(range(5)) and set(first[3].numpy().ravel()) <= {-2, -1, 0, 1}
    minires.manual_seed(3)
    again = [minires.rand(2, 3), minires.randn((4,), dtype=minires.float64)]
    for a, b in zip(first, again):
        numpy.testing.assert_array_equal(a.numpy(), b.numpy())
    assert minires.empty(2, 2).shape == (2, 2) and minires.zeros(2, requires_grad=True).requires_grad


def test_tensor_copies_and_the_device_must_be_the_active_one():
    values = numpy.arange(3.0)
    made = minires.tensor(values)
    values[0] = 9
    assert made.numpy()[0] == 0
    assert minires.zeros(2, device="cpu").shape == (2,)
    with pytest.raises(ValueError, match="set_backend"):
        minires.ones(2, device="cuda")
