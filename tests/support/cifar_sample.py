"""The course's real CIFAR-10 sample (../shared/data), extracted once for the tests that use it.

Tests that need it skip cleanly when ../shared is missing (users' clones do not have it).
"""
import os
from pathlib import Path

import pytest

from minires.data import extract

SAMPLE_NAME = "cifar-10-binary-sample.tar.gz"


def shared_data_dir():
    """``../shared/data`` beside the repository, or $MINIRES_SHARED_DATA."""
    return Path(os.environ.get("MINIRES_SHARED_DATA",
                               Path(__file__).resolve().parents[3] / "shared" / "data"))


def sample_archive():
    """The sample archive's path, or a skip."""
    archive = shared_data_dir() / SAMPLE_NAME
    if not archive.is_file():
        pytest.skip(f"real CIFAR-10 sample not found at {archive} (set MINIRES_SHARED_DATA)")
    return archive


def extracted_sample(tmp_path_factory):
    """A data folder holding the sample's cifar-10-batches-bin/ (846 test images), or a skip."""
    data_dir = tmp_path_factory.mktemp("cifar-sample")
    extract(sample_archive(), data_dir)
    return data_dir
