"""Host memory: keep what NumPy frees for reuse instead of handing it back to the OS.

A setting of the whole process, not of minires's arrays, so minires never makes
it by itself: a training script calls ``keep_freed_host_memory()`` once at start
(``examples/train_cifar.py`` and the benchmarks do).
"""
import ctypes


def keep_freed_host_memory():
    """Ask the C allocator (glibc) to keep freed memory for reuse instead of returning it.

    By default glibc serves each large array with fresh pages from the OS and
    hands them back when the array is freed, so the next array of that size
    page-faults them in again, zero-filled. A training step of ResNet50_layer4 at
    batch 100 frees and re-allocates its activations every step: 47,000 page
    faults, 0.2 s of a 0.7 s step on the project's 2-core machine. Keeping freed
    memory in the process removes them; the peak resident memory stays the same
    (592 MB in both cases). It changes the allocator of the whole process, which
    is why it is the caller's choice.
    Returns True if the allocator took the settings (False off glibc, e.g. macOS).
    """
    libc = ctypes.CDLL(None)       # the symbols already loaded in this process, libc's among them
    if not hasattr(libc, "mallopt"):
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    never = 1 << 30         # 1 GiB: no array of minires comes near it
    return bool(libc.mallopt(M_MMAP_THRESHOLD, never)) and bool(libc.mallopt(M_TRIM_THRESHOLD, never))
