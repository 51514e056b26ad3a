"""Process groups: which processes train together, and how arrays travel between them.

A group knows this process's ``rank`` (0 .. world_size - 1), the ``world_size``
and ``local_rank`` (the rank among the processes of this machine, which picks
its GPU), and changes arrays in place across its processes:

    all_reduce(array, op)     every process ends with the sum (max, min) over all of them
    broadcast(array, src)     every process ends with the array of process ``src``
    barrier()                 nobody leaves until everybody has arrived

Two groups live here, the third in ``nccl.py``:

    SingleProcess   no launcher: one process, and every collective leaves arrays as they are
    MPIGroup        the processes ``mpiexec -n N`` started, through mpi4py; host (NumPy) arrays
    NcclGroup       the same processes, one GPU each; device arrays go through NCCL

Collectives are matched by order: every process must call the same ones in the
same order (a process that calls one more waits for ever, which is why a rank
that fails must abort them all, ``abort``).
"""
import os

import numpy

# Set by the launchers in every process they start (MPICH's and Intel MPI's Hydra,
# Open MPI, MVAPICH): read without importing mpi4py, so a process started without
# a launcher never loads MPI.
LAUNCHER_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
LAUNCHER_RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK")

INSTALL_MPI = ('pip install -e ".[mpi]" (mpi4py and the MPICH wheel), '
               'then start it with mpiexec -n N python ...')


def launched_world_size():
    """How many processes the MPI launcher that started this one started; None without one."""
    return _launcher_number(LAUNCHER_SIZE_VARIABLES)


def launched_rank():
    """This process's rank as its MPI launcher numbered it (0 without one), before any MPI call."""
    return _launcher_number(LAUNCHER_RANK_VARIABLES) or 0


def _launcher_number(names):
    for name in names:
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return None


class Work:
    """A collective started with ``async_op=True`` (PyTorch's name): ``wait()`` for its result."""

    def __init__(self, wait=None, test=None):
        self._wait, self._test = wait, test

    def wait(self):
        if self._wait is not None:
            self._wait()
            self._wait = self._test = None

    def is_completed(self):
        """True once done; with MPI, asking also moves the transfer on (MPI progresses inside its calls)."""
        if self._test is not None and self._test():
            self.wait()
        return self._wait is None


class SingleProcess:
    """The group of one process: nothing to exchange."""
    rank, world_size, local_rank = 0, 1, 0

    def all_reduce(self, array, op="sum", async_op=False):
        return Work() if async_op else None

    def broadcast(self, array, src=0):
        pass

    def barrier(self):
        pass

    def abort(self, status=1):
        os._exit(status)


class MPIGroup:
    """The processes started by an MPI launcher (``MPI.COMM_WORLD``); host arrays, in place."""

    def __init__(self, expected_size):
        try:
            from mpi4py import MPI
        except ImportError:
            raise RuntimeError(f"a world of {expected_size} processes needs mpi4py, which is not "
                               f"installed: {INSTALL_MPI}") from None
        self.MPI, self.comm = MPI, MPI.COMM_WORLD
        self.rank, self.world_size = self.comm.Get_rank(), self.comm.Get_size()
        # the processes that share this machine's memory, ranked among themselves
        self.local_rank = self.comm.Split_type(MPI.COMM_TYPE_SHARED).Get_rank()
        self.ops = {"sum": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}

    def all_reduce(self, array, op="sum", async_op=False):
        buffer = _contiguous_host(array)
        if async_op:
            request = self.comm.Iallreduce(self.MPI.IN_PLACE, buffer, op=self.ops[op])
            return Work(wait=lambda: (request.Wait(), _copy_back(array, buffer)), test=request.Test)
        self.comm.Allreduce(self.MPI.IN_PLACE, buffer, op=self.ops[op])
        _copy_back(array, buffer)

    def broadcast(self, array, src=0):
        buffer = _contiguous_host(array)
        self.comm.Bcast(buffer, root=src)
        _copy_back(array, buffer)

    def barrier(self):
        self.comm.Barrier()

    def abort(self, status=1):
        self.comm.Abort(status)


def _contiguous_host(array):
    """``array`` itself if MPI can read its memory as one block, else a contiguous copy."""
    if not isinstance(array, numpy.ndarray):
        raise TypeError(f"the MPI backend exchanges host (NumPy) arrays, got {type(array).__name__}; "
                        "with the cupy backend use init_process_group('nccl')")
    # a conv weight is a transposed view of channels-last memory: MPI wants one C-order block
    return array if array.flags.c_contiguous else numpy.ascontiguousarray(array)


def _copy_back(array, buffer):
    if buffer is not array:
        array[...] = buffer
