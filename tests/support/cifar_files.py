"""A CIFAR-10 folder in the official binary layout, written for the script's tests (no network).

Each record is 1 label byte + 3,072 pixel bytes (3 x 32 x 32, channel-major).
"""
from pathlib import Path

import numpy

TRAIN_FILES = [f"data_batch_{i}.bin" for i in range(1, 6)]
CLASS_NAMES = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n"


def write_cifar_folder(data_dir, records_per_file=8, seed=0, test_images=None, test_labels=None):
    """``data_dir/cifar-10-batches-bin`` with random records in the five training files and in
    test_batch.bin, or there the given uint8 ``test_images`` (N, 3, 32, 32) and ``test_labels``
    (N,). Returns ``Path(data_dir)``."""
    folder = Path(data_dir) / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    rng = numpy.random.default_rng(seed)
    for name in TRAIN_FILES + ([] if test_images is not None else ["test_batch.bin"]):
        records = rng.integers(0, 256, size=(records_per_file, 3073), dtype=numpy.uint8)
        records[:, 0] = rng.integers(0, 10, size=records_per_file)      # labels 0..9
        records.tofile(folder / name)
    if test_images is not None:
        records = numpy.concatenate([test_labels.astype(numpy.uint8)[:, None],
                                     test_images.reshape(len(test_images), -1)], axis=1)
        records.tofile(folder / "test_batch.bin")                       # (N, 3073)
    (folder / "batches.meta.txt").write_text(CLASS_NAMES)
    return Path(data_dir)
