"""Large element-wise work, cut into cache-sized blocks shared by the CPU cores.

An element-wise expression such as Adam's update makes NumPy pass over whole
arrays many times, each pass writing a temporary as large as the arrays. For
arrays larger than the cache every pass goes to main memory, and memory, not
arithmetic, sets the speed. Cut into blocks of 256K elements (1 MB of float32),
each block's temporaries stay in the cache; and since NumPy releases Python's
lock (the GIL) inside its loops, threads working on different blocks run on
different cores at once. Measured on the project's 2-core machine: one Adam
step over ResNet50_layer4's 14.7 M parameters, 46 ms as whole-array
operations, 17 ms in blocks.

The threads are the machine's cores, or OMP_NUM_THREADS when it is set (as BLAS
reads it), e.g. one per process when ``mpiexec`` runs one process per core.
(The layers' element-wise passes stay whole: measured in blocks on 2 threads, ReLU's
and batch norm's were no faster, and ReLU's backward slower, 64 -> 98 ms over 3 steps at
batch 100, since each pass is short and bound by the memory both cores share.)

On a GPU none of this applies (one kernel already spans the device): the
function is called once on the whole arrays.
"""
import contextvars
import os
from concurrent.futures import ThreadPoolExecutor

from minires import backend

BLOCK_ELEMENTS = 1 << 18    # 256K elements: a block and its temporaries fit the cache
MIN_ELEMENTS = 1 << 20      # smaller arrays are not worth the threads


class _Threads:
    executor = None     # started on first use: importing minires starts no thread


_threads = _Threads()


def thread_count():
    """Threads for blockwise work: OMP_NUM_THREADS if set, else the machine's cores."""
    return max(1, int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1))


def blockwise(function, *arrays):
    """Call ``function(*blocks)`` on matching blocks of ``arrays``, in threads, on the CPU.

    The arrays share their first dimension; each call gets the same rows of every
    array (views) and must write its results into them, so no two calls touch the
    same memory. On a GPU, or for arrays under a million elements, it is one call
    on the whole arrays; with one thread, the blocks are done one after the other.
    """
    if not backend.is_host() or arrays[0].size < MIN_ELEMENTS:
        function(*arrays)
        return
    rows = len(arrays[0])
    per_block = max(1, BLOCK_ELEMENTS * rows // arrays[0].size)
    blocks = [[a[start:start + per_block] for a in arrays] for start in range(0, rows, per_block)]
    if thread_count() == 1:
        # one after the other, still in blocks: 67 -> 41 ms for Adam's step on one core
        for block in blocks:
            function(*block)
        return
    if _threads.executor is None:
        _threads.executor = ThreadPoolExecutor(max_workers=thread_count(),
                                               thread_name_prefix="minires-block")
    # each block runs in a copy of the caller's context, so a numpy.errstate set by the
    # caller (e.g. silencing overflow warnings of a diverging run) holds in the threads too
    futures = [_threads.executor.submit(contextvars.copy_context().run, function, *block)
               for block in blocks]
    for future in futures:
        future.result()         # re-raises a thread's exception here
