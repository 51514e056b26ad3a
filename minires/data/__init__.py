"""Datasets and batches: CIFAR-10 on disk (``cifar10``, and ``cifar10_python`` for the pickled
python version), fetched by ``downloading`` and unpacked by ``extraction``, and mini-batch loading
(``loader``)."""
from .cifar10 import (
    ARCHIVE_NAME,
    CIFAR10_MD5,
    CIFAR10_URL,
    CLASSES,
    FOLDER_NAME,
    extract,
    load_cifar10,
    read_records,
)
from .cifar10_python import PYTHON_FOLDER_NAME
from .downloading import DownloadError, download, parse_md5
from .extraction import DatasetError
from .loader import CIFAR10_MEAN, CIFAR10_STD, BatchLoader, normalize, random_crop_flip
from .sampler import DistributedSampler

__all__ = [
    "ARCHIVE_NAME", "CIFAR10_MD5", "CIFAR10_URL", "CLASSES", "FOLDER_NAME", "PYTHON_FOLDER_NAME",
    "DatasetError", "DownloadError", "download", "extract", "load_cifar10", "parse_md5",
    "read_records", "CIFAR10_MEAN", "CIFAR10_STD", "BatchLoader", "normalize",
    "random_crop_flip", "DistributedSampler",
]
