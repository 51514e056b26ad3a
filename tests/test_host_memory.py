"""minires keeps freed host memory for reuse (see minires/host_memory.py)."""
import ctypes
import os
import subprocess
import sys

import pytest

# Fill a 64 MB array, free it, and print how much resident memory the free gave back
# to the OS (MB). Given back, the next array of that size must be paged in again.
PROGRAM = """
import os, numpy, minires

def resident_mb():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

a = numpy.ones(16 * 2**20, dtype=numpy.float32)
before = resident_mb()
del a
print(before - resident_mb())
"""


def returned_mb(keep):
    env = dict(os.environ, MINIRES_KEEP_FREED_MEMORY="1" if keep else "0")
    result = subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True,
                            text=True, check=True)
    return float(result.stdout.split()[-1])


@pytest.mark.skipif(not (sys.platform.startswith("linux") and hasattr(ctypes.CDLL(None), "mallopt")),
                    reason="needs Linux and glibc's mallopt")
def test_freed_memory_stays_in_the_process_unless_switched_off():
    assert returned_mb(keep=True) < 8          # kept for the next array
    assert returned_mb(keep=False) > 56        # handed back to the OS (glibc's default)
