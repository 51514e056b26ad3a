"""minires.speed.keep_freed_host_memory keeps freed host memory for reuse; importing minires does not."""
import ctypes
import subprocess
import sys

import pytest

# Fill a 64 MB array, free it, and print how much resident memory the free gave back
# to the OS (MB). Given back, the next array of that size must be paged in again.
PROGRAM = """
import os, sys, numpy, minires
if sys.argv[1] == "keep":
    minires.speed.keep_freed_host_memory()

def resident_mb():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

a = numpy.ones(16 * 2**20, dtype=numpy.float32)
before = resident_mb()
del a
print(before - resident_mb())
"""


def returned_mb(setting):
    result = subprocess.run([sys.executable, "-c", PROGRAM, setting], capture_output=True,
                            text=True, check=True)
    return float(result.stdout.split()[-1])


@pytest.mark.skipif(not (sys.platform.startswith("linux") and hasattr(ctypes.CDLL(None), "mallopt")),
                    reason="needs Linux and glibc's mallopt")
@pytest.mark.slow
def test_freed_memory_stays_in_the_process_only_when_switched_on():
    assert returned_mb("keep") < 8             # kept for the next array
    assert returned_mb("import-only") > 56     # importing minires left glibc's default alone
