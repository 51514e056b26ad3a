"""Tests of minires.data.loader: normalisation, crop + flip, batches, seeding, prefetch thread."""
import threading

import numpy
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from minires import backend
from minires.data import loader
from minires.data.loader import CIFAR10_MEAN, CIFAR10_STD, BatchLoader, normalize, random_crop_flip


def random_images(n, seed=0):
    return numpy.random.default_rng(seed).integers(0, 256, size=(n, 3, 32, 32), dtype=numpy.uint8)


def prefetch_threads():
    return [thread for thread in threading.enumerate() if thread.name == "minires-prefetch"]


def epoch(batch_loader):
    """All batches of one epoch as host arrays."""
    return [(backend.to_host(x), backend.to_host(y)) for x, y in batch_loader]


# ---------------------------------------------------------------- normalize

def test_normalize_matches_the_formula():
    images = random_images(8)
    x = normalize(images)
    mean = numpy.array(CIFAR10_MEAN).reshape(1, 3, 1, 1)
    std = numpy.array(CIFAR10_STD).reshape(1, 3, 1, 1)
    expected = (images / 255.0 - mean) / std                 # float64 reference
    assert x.dtype == numpy.float32 and x.shape == images.shape
    numpy.testing.assert_allclose(x, expected, rtol=0, atol=1e-5)
    assert images.dtype == numpy.uint8                       # the input is untouched


def test_course_statistics():
    assert CIFAR10_MEAN == (0.4914, 0.4822, 0.4465)
    assert CIFAR10_STD == (0.2023, 0.1994, 0.2010)


# ---------------------------------------------------------------- random_crop_flip

def find_crop(image, padded):
    """(top, left, flipped) of the window of ``padded`` (C, 40, 40) equal to ``image``, or None."""
    windows = sliding_window_view(padded, (32, 32), axis=(1, 2))       # (C, 9, 9, 32, 32)
    for flipped, candidate in ((False, image), (True, image[..., ::-1])):
        equal = (windows == candidate[:, None, None]).all(axis=(0, 3, 4))  # (9, 9)
        if equal.any():
            top, left = numpy.argwhere(equal)[0]
            return int(top), int(left), flipped
    return None


def test_crop_flip_outputs_are_crops_of_the_padded_images():
    rng = numpy.random.default_rng(0)
    tops, lefts, flips = set(), set(), set()
    for draw in range(8):
        images = random_images(32, seed=draw)
        before = images.copy()
        out = random_crop_flip(images, rng)
        assert out.shape == images.shape and out.dtype == numpy.uint8
        numpy.testing.assert_array_equal(images, before)
        padded = numpy.pad(images, ((0, 0), (0, 0), (4, 4), (4, 4)))  # (N, C, 40, 40)
        for n in range(len(images)):
            found = find_crop(out[n], padded[n])
            assert found is not None, f"output {n} is no crop of its padded input"
            tops.add(found[0])
            lefts.add(found[1])
            flips.add(found[2])
    assert tops == set(range(9)) and lefts == set(range(9))
    assert flips == {False, True}


def test_crop_flip_uses_the_documented_draws():
    images = random_images(16)
    out = random_crop_flip(images, numpy.random.default_rng(5))
    rng = numpy.random.default_rng(5)
    top, left, flip = rng.integers(0, 9, 16), rng.integers(0, 9, 16), rng.random(16) < 0.5
    padded = numpy.pad(images, ((0, 0), (0, 0), (4, 4), (4, 4)))
    for n in range(16):
        expected = padded[n, :, top[n]:top[n] + 32, left[n]:left[n] + 32]
        if flip[n]:
            expected = expected[..., ::-1]
        numpy.testing.assert_array_equal(out[n], expected)


def test_crop_without_padding_only_flips():
    images = random_images(64)
    out = random_crop_flip(images, numpy.random.default_rng(1), padding=0)
    same = (out == images).all(axis=(1, 2, 3))
    mirrored = (out == images[..., ::-1]).all(axis=(1, 2, 3))
    assert (same | mirrored).all() and same.any() and mirrored.any()


# ---------------------------------------------------------------- batches

def test_batches_cover_a_permutation_once_per_epoch():
    images, labels = random_images(250), numpy.arange(250)   # the label names the image
    batches = BatchLoader(images, labels, batch_size=100, shuffle=True,
                          rng=numpy.random.default_rng(0))
    assert len(batches) == 3
    orders = []
    for _ in range(2):
        got = epoch(batches)
        assert [len(y) for _, y in got] == [100, 100, 50]
        for x, y in got:
            assert x.dtype == numpy.float32 and y.dtype == numpy.int64
            numpy.testing.assert_array_equal(x, normalize(images[y]))   # x and y stay paired
        order = numpy.concatenate([y for _, y in got])
        numpy.testing.assert_array_equal(numpy.sort(order), numpy.arange(250))
        orders.append(order)
    assert not numpy.array_equal(orders[0], numpy.arange(250))
    assert not numpy.array_equal(orders[0], orders[1])      # a new order each epoch


def test_no_shuffle_keeps_the_order():
    images, labels = random_images(30), numpy.arange(30)
    got = epoch(BatchLoader(images, labels, batch_size=8))
    numpy.testing.assert_array_equal(numpy.concatenate([y for _, y in got]), numpy.arange(30))


def test_drop_last():
    images, labels = random_images(250), numpy.arange(250)
    kept = BatchLoader(images, labels, batch_size=100, drop_last=True)
    assert len(kept) == 2
    assert [len(y) for _, y in epoch(kept)] == [100, 100]
    assert len(BatchLoader(images, labels, batch_size=50, drop_last=True)) == 5


def test_one_device_copy_per_array_per_batch(monkeypatch):
    calls = []

    def counting_to_device(array, dtype=None):
        calls.append(array.dtype)
        return numpy.asarray(array, dtype=dtype)

    monkeypatch.setattr(backend, "to_device", counting_to_device)
    batches = BatchLoader(random_images(50), numpy.arange(50), batch_size=20, augment=True,
                          rng=numpy.random.default_rng(0))
    assert sum(1 for _ in batches) == 3
    assert calls == [numpy.float32, numpy.int64] * 3


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="uint8"):
        BatchLoader(random_images(4).astype(numpy.float32), numpy.arange(4))
    with pytest.raises(ValueError, match="labels"):
        BatchLoader(random_images(4), numpy.arange(5))


# ---------------------------------------------------------------- seeding and prefetch

def make_loader(seed, prefetch):
    return BatchLoader(random_images(130), numpy.arange(130) % 10, batch_size=32, shuffle=True,
                       augment=True, rng=numpy.random.default_rng(seed), prefetch=prefetch)


def assert_same_epochs(a, b):
    assert len(a) == len(b)
    for (xa, ya), (xb, yb) in zip(a, b):
        numpy.testing.assert_array_equal(xa, xb)
        numpy.testing.assert_array_equal(ya, yb)


def test_equal_seeds_give_identical_batches():
    first, second = make_loader(3, prefetch=True), make_loader(3, prefetch=True)
    assert_same_epochs(epoch(first), epoch(second))
    other = epoch(make_loader(4, prefetch=True))
    assert not numpy.array_equal(epoch(make_loader(3, prefetch=True))[0][0], other[0][0])


def test_prefetch_changes_nothing():
    on, off = make_loader(7, prefetch=True), make_loader(7, prefetch=False)
    for _ in range(2):
        assert_same_epochs(epoch(on), epoch(off))
        assert on.rng.bit_generator.state == off.rng.bit_generator.state


def test_early_break_stops_the_worker():
    batches = make_loader(0, prefetch=True)
    for _ in batches:
        assert len(prefetch_threads()) == 1
        break
    assert prefetch_threads() == []
    with pytest.raises(ZeroDivisionError):
        for _ in batches:
            1 / 0
    assert prefetch_threads() == []
    iterator = iter(batches)
    next(iterator)
    iterator.close()
    assert prefetch_threads() == []


def test_worker_exception_reaches_the_caller(monkeypatch):
    calls = []

    def failing_normalize(images):
        calls.append(len(images))
        if len(calls) == 2:
            raise RuntimeError("broken batch")
        return images.astype(numpy.float32)

    monkeypatch.setattr(loader, "normalize", failing_normalize)
    received = []
    with pytest.raises(RuntimeError, match="broken batch"):
        for _, y in make_loader(0, prefetch=True):
            received.append(len(y))
    assert received == [32]
    assert prefetch_threads() == []
