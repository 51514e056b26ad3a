"""Datasets and batches: CIFAR-10 on disk (``cifar10``) and mini-batch loading (``loader``)."""
from .cifar10 import (
    ARCHIVE_NAME,
    CIFAR10_MD5,
    CIFAR10_URL,
    CLASSES,
    FOLDER_NAME,
    DatasetError,
    DownloadError,
    download,
    extract,
    load_cifar10,
    read_records,
)
from .loader import CIFAR10_MEAN, CIFAR10_STD, BatchLoader, normalize, random_crop_flip
from .sampler import DistributedSampler

__all__ = [
    "ARCHIVE_NAME", "CIFAR10_MD5", "CIFAR10_URL", "CLASSES", "FOLDER_NAME",
    "DatasetError", "DownloadError", "download", "extract", "load_cifar10", "read_records",
    "CIFAR10_MEAN", "CIFAR10_STD", "BatchLoader", "normalize", "random_crop_flip",
    "DistributedSampler",
]
