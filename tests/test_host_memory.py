"""minires keeps freed host memory for reuse (see minires/host_memory.py)."""
import ctypes
import os
import subprocess
import sys

import pytest

# Allocate and free a 64 MB array ten times and count the page faults it costs.
PROGRAM = """
import resource, numpy, minires
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    a = numpy.ones(16 * 1024 * 1024, dtype=numpy.float32)
    del a
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(keep):
    env = dict(os.environ, MINIRES_KEEP_FREED_MEMORY="1" if keep else "0")
    result = subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True,
                            text=True, check=True)
    return int(result.stdout.split()[-1])


@pytest.mark.skipif(not hasattr(ctypes.CDLL(None), "mallopt"), reason="needs glibc's mallopt")
def test_freed_memory_is_reused_without_page_faults_and_can_be_switched_off():
    kept, returned = page_faults(keep=True), page_faults(keep=False)
    # kept: paged in once, then reused; returned: paged in again at every allocation
    # (counts depend on the page size: 4 KB pages, or 2 MB with transparent huge pages)
    assert returned > 3 * kept, (kept, returned)
