"""NcclGroup: one GPU per process, device arrays reduced by NCCL, everything else by MPI.

NVIDIA's NCCL moves GPU memory between GPUs directly (NVLink, PCIe, InfiniBand)
with no copy through the host. Its processes find each other through a unique
id that rank 0 makes and sends to the others; here it travels over MPI, which
started the processes anyway (as in ChainerMN and Horovod). CuPy wraps NCCL as
``cupy.cuda.nccl``: its calls take raw device pointers (``array.data.ptr``),
element counts, type and operation codes, and the CUDA stream to run on.

Each collective is queued on the current stream, after the kernels that wrote
the array and before those that read it, so no explicit synchronisation is
needed and the host never waits: it goes on queueing the rest of backward while
the GPU reduces. Host arrays (a stop flag, a count) still go through MPI.
"""
import numpy

from minires.distributed.process_group import Work

NCCL_TYPES = {"float16": "NCCL_FLOAT16", "float32": "NCCL_FLOAT32", "float64": "NCCL_FLOAT64",
              "int32": "NCCL_INT32", "int64": "NCCL_INT64", "uint8": "NCCL_UINT8"}
NCCL_OPS = {"sum": "NCCL_SUM", "max": "NCCL_MAX", "min": "NCCL_MIN"}
INSTALL_NCCL = 'pip install "nvidia-nccl-cu12>=2.18.1,<3"'


class NcclGroup:
    """The processes of ``mpi_group``, each on the GPU numbered by its local rank.

    Args:
        mpi_group: the MPIGroup of the processes (it carries the unique id and host arrays).
        cuda: ``cupy.cuda`` (or a stand-in with the same names: ``Device``,
            ``get_current_stream``, ``nccl``).
    """

    def __init__(self, mpi_group, cuda):
        if not getattr(cuda.nccl, "available", True):
            raise RuntimeError(f"CuPy cannot load the NCCL library: {INSTALL_NCCL}")
        self.mpi, self.cuda, self.nccl = mpi_group, cuda, cuda.nccl
        self.rank, self.world_size, self.local_rank = (mpi_group.rank, mpi_group.world_size,
                                                       mpi_group.local_rank)
        # before anything touches a GPU, so that each process makes its context on its own one
        cuda.Device(self.local_rank).use()
        unique_id = self.nccl.get_unique_id() if self.rank == 0 else None
        unique_id = mpi_group.comm.bcast(unique_id, root=0)     # a tuple of bytes, pickled
        self.comm = self.nccl.NcclCommunicator(self.world_size, unique_id, self.rank)

    def all_reduce(self, array, op="sum", async_op=False):
        if isinstance(array, numpy.ndarray):
            return self.mpi.all_reduce(array, op, async_op)
        buffer = _contiguous(array)
        self.comm.allReduce(buffer.data.ptr, buffer.data.ptr, buffer.size, self._type(buffer),
                            getattr(self.nccl, NCCL_OPS[op]), self._stream())
        if buffer is not array:
            array[...] = buffer
        return Work() if async_op else None     # queued on the stream: later kernels see the sum

    def broadcast(self, array, src=0):
        if isinstance(array, numpy.ndarray):
            return self.mpi.broadcast(array, src)
        buffer = _contiguous(array)
        self.comm.bcast(buffer.data.ptr, buffer.size, self._type(buffer), src, self._stream())
        if buffer is not array:
            array[...] = buffer

    def barrier(self):
        self.mpi.barrier()

    def abort(self, status=1):
        self.mpi.abort(status)

    def _type(self, array):
        if array.dtype.name not in NCCL_TYPES:
            raise TypeError(f"NCCL cannot reduce {array.dtype} arrays")
        return getattr(self.nccl, NCCL_TYPES[array.dtype.name])

    def _stream(self):
        return self.cuda.get_current_stream().ptr


def _contiguous(array):
    """``array`` if NCCL can read it as one block of device memory, else a C-order copy."""
    return array if array.flags.c_contiguous else array.copy()
