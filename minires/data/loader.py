"""Mini-batches for training: shuffling, augmentation, normalisation, background prefetch.

Everything here works on host NumPy arrays; a finished batch crosses to the active
backend with one ``minires.backend.to_device`` call per array. The recipe is the
course's (torchvision): RandomCrop(32, padding=4) with zero padding, RandomHorizontalFlip,
scale to [0, 1], Normalize(CIFAR10_MEAN, CIFAR10_STD).

Dimensions: N batch, C = 3 channels, H/W image size (32), P padding.

    rng = numpy.random.default_rng(0)
    train = BatchLoader(images, labels, batch_size=100, shuffle=True, augment=True, rng=rng)
    for x, y in train:               # x float32 (100, 3, 32, 32), y int64 (100,), on the device
        ...
"""
import queue
import threading

import numpy
from numpy.lib.stride_tricks import sliding_window_view

from .. import backend
from ..arguments import check_bool, check_int

# The course's values, kept for parity with the course's checkpoints. The std is the
# mean of the per-image standard deviations, not the std of the whole dataset, which
# is (0.2470, 0.2435, 0.2616) (pytorch-cifar issues 16 and 19).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2023, 0.1994, 0.2010)


def normalize(images):
    """Scale uint8 images to [0, 1], then standardise each channel.

    Args:
        images: uint8 (N, 3, H, W), host NumPy.

    Returns:
        float32 (N, 3, H, W): ``(images / 255 - CIFAR10_MEAN[c]) / CIFAR10_STD[c]``
        for channel c, computed in float32 throughout (no float64 temporaries).
    """
    _check_images("normalize", images)
    mean = numpy.array(CIFAR10_MEAN, dtype=numpy.float32).reshape(1, 3, 1, 1)  # (1, C, 1, 1)
    std = numpy.array(CIFAR10_STD, dtype=numpy.float32).reshape(1, 3, 1, 1)    # (1, C, 1, 1)
    x = images.astype(numpy.float32)                                           # (N, C, H, W)
    # In place: one float32 buffer for the whole batch instead of three temporaries.
    x /= 255
    x -= mean
    x /= std
    return x


def random_crop_flip(images, rng, padding=4):
    """Random crop of the zero-padded image, then a horizontal flip with probability 1/2.

    The same augmentation as torchvision's RandomCrop(H, padding=P) followed by
    RandomHorizontalFlip(), done for the whole batch at once: image n is cropped at
    rows ``top[n] : top[n] + H`` and columns ``left[n] : left[n] + W`` of its padded
    copy, with ``top[n]``, ``left[n]`` uniform in 0..2P.

    Args:
        images: uint8 (N, C, H, W), host NumPy (left unchanged).
        rng: ``numpy.random.Generator``; draws, in this order, N tops, N lefts and N flips.
        padding: P, zero pixels added on each side before cropping.

    Returns:
        uint8 (N, C, H, W).
    """
    _check_images("random_crop_flip", images)
    if not isinstance(rng, numpy.random.Generator):
        raise TypeError(f"random_crop_flip: rng must be a numpy.random.Generator, got "
                        f"{type(rng).__name__}")
    check_int("random_crop_flip", "padding", padding, least=0)
    N, C, H, W = images.shape
    P = padding
    padded = numpy.pad(images, ((0, 0), (0, 0), (P, P), (P, P)))   # (N, C, H + 2P, W + 2P)
    # A view (no copy) of every H x W window of every padded image.
    windows = sliding_window_view(padded, (H, W), axis=(2, 3))      # (N, C, 2P + 1, 2P + 1, H, W)
    top = rng.integers(0, 2 * P + 1, size=N)                        # (N,)
    left = rng.integers(0, 2 * P + 1, size=N)                       # (N,)
    flip = rng.random(N) < 0.5                                      # (N,)
    # Window (top[n], left[n]) of image n. NumPy puts the (N,) shape of the index
    # arrays first, then the sliced axes, which here is exactly (N, C, H, W).
    crops = windows[numpy.arange(N), :, top, left]                  # (N, C, H, W), a copy
    crops[flip] = crops[flip][..., ::-1]                            # (N_flipped, C, H, W) mirrored
    return crops


class BatchLoader:
    """Iterate over ``(x, y)`` mini-batches of a dataset held in host memory.

    Each epoch (each ``for`` loop over the loader) draws from ``rng``, in this order:
    one permutation of the N images (if ``shuffle``), then for every batch the
    crop offsets and flips (if ``augment``). So two loaders given generators with
    equal seeds yield identical batches, and the generator ends an epoch in the
    same state whether ``prefetch`` is on or off. During an epoch the generator
    belongs to the loader (its worker thread draws from it): do not share it.

    With ``prefetch``, a background thread prepares the next batch (indexing,
    augmentation, normalisation) while the caller trains on the current one. An
    exception in that thread is raised in the caller. Leaving the loop early (break,
    exception) stops and joins the thread when the iterator is closed, which CPython
    does as soon as the loop drops it; call ``close()`` on the iterator to be explicit.

    Args:
        images: uint8 (N, 3, H, W), host NumPy.
        labels: integer (N,), host NumPy.
        batch_size: B, images per batch.
        shuffle: visit the images in a new random order each epoch.
        augment: apply ``random_crop_flip`` (training only).
        rng: ``numpy.random.Generator``; a fresh unseeded one if None.
        drop_last: skip the last batch when it has fewer than B images.
        prefetch: prepare the next batch in a background thread.
        sampler: a ``DistributedSampler``: every batch is drawn (order, augmentation) as
            without it, then only this rank's rows of it are yielded (``sampler.py``).

    Yields:
        x: float32 (B, 3, H, W) normalised, y: int64 (B,), both on the active backend
        (the last batch may be smaller unless ``drop_last``; with a sampler, this rank's
        rows of each: B / num_replicas of them).
    """

    def __init__(self, images, labels, batch_size=100, shuffle=False, augment=False,
                 rng=None, drop_last=False, prefetch=True, sampler=None):
        images, labels = numpy.asarray(images), numpy.asarray(labels)
        if images.dtype != numpy.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"BatchLoader: images must be uint8 (N, 3, H, W), "
                             f"got {images.dtype} {images.shape}")
        if labels.shape != (len(images),) or labels.dtype.kind not in "iu":
            raise ValueError(f"BatchLoader: labels must be integers of shape ({len(images)},), got "
                             f"{labels.dtype} {labels.shape}")
        check_int("BatchLoader", "batch_size", batch_size, least=1)
        for argument, value in (("shuffle", shuffle), ("augment", augment), ("drop_last", drop_last),
                                ("prefetch", prefetch)):
            check_bool("BatchLoader", argument, value)
        if (shuffle or augment) and rng is not None and not isinstance(rng, numpy.random.Generator):
            raise TypeError(f"BatchLoader: rng must be a numpy.random.Generator, got "
                            f"{type(rng).__name__}")
        self.images = images                                  # (N, 3, H, W) uint8
        self.labels = labels.astype(numpy.int64, copy=False)  # (N,)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.augment = augment
        self.rng = numpy.random.default_rng() if rng is None else rng
        self.drop_last = drop_last
        self.prefetch = prefetch
        self.sampler = sampler

    def __len__(self):
        """Number of batches in one epoch."""
        N, B = len(self.labels), self.batch_size
        return N // B if self.drop_last else (N + B - 1) // B

    def __iter__(self):
        batches = self._host_batches()
        if self.prefetch:
            # Preparing 100 augmented images takes about 1 ms on one CPU core (measured);
            # in the thread it overlaps the training step (a 5 ms step took 5.3 ms per batch
            # instead of 7.7 ms), which matters when the step is short, as on a GPU.
            batches = _prefetched(batches)
        try:
            for x, y in batches:
                # The copy to the device is made here, in the caller's thread: CuPy's
                # current device is per thread, and the caller's is the model's.
                yield backend.to_device(x), backend.to_device(y)
        finally:
            batches.close()      # stops and joins the prefetch thread on an early exit

    def _host_batches(self):
        """The epoch's batches as host arrays; every draw from ``self.rng`` happens here."""
        N, B = len(self.labels), self.batch_size
        order = self.rng.permutation(N) if self.shuffle else numpy.arange(N)  # (N,)
        for b in range(len(self)):
            index = order[b * B:(b + 1) * B]                  # (B,)
            images = self.images[index]                       # (B, 3, H, W) uint8
            if self.augment:
                images = random_crop_flip(images, self.rng)   # (B, 3, H, W) uint8
            if self.sampler is not None:
                # the whole batch was augmented, so each image got its single-process draws
                # (the crops of 100 images take under 1 ms); this rank keeps its rows
                rows = self.sampler.rows()
                images, index = images[rows], index[rows]     # (B / replicas, 3, H, W), (B / replicas,)
            yield normalize(images), self.labels[index]       # (B, 3, H, W) float32, (B,)


def _prefetched(items):
    """Run the generator ``items`` in a background thread, one item ahead of the caller.

    The worker hands over ``("item", x)``, then ``("end", None)`` or ``("error", e)``
    through a queue of size 1, so at most one finished item waits while the caller
    works and the worker prepares the next. Closing this generator (early exit of the
    caller) sets ``stop``; the worker notices it within 0.05 s of its next hand-over
    and returns, and we join it, so no thread outlives the loop.
    """
    handover = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(message):
        """Hand ``message`` over; False if the caller stopped listening meanwhile."""
        while not stop.is_set():
            try:
                handover.put(message, timeout=0.05)
                return True
            except queue.Full:
                pass
        return False

    def work():
        try:
            for item in items:
                if not put(("item", item)):
                    return
            put(("end", None))
        except BaseException as error:         # raised again in the caller's thread
            put(("error", error))

    worker = threading.Thread(target=work, name="minires-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = handover.get()
            if kind == "error":
                raise value
            if kind == "end":
                return
            yield value
    finally:
        stop.set()
        worker.join()


def _check_images(where, images):
    if not isinstance(images, numpy.ndarray) or images.dtype != numpy.uint8 or images.ndim != 4:
        raise TypeError(f"{where}: images must be a uint8 NumPy array (N, C, H, W), got "
                        f"{getattr(images, 'dtype', type(images).__name__)} "
                        f"{getattr(images, 'shape', '')}".rstrip())
