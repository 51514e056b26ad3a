"""Training in several processes at once: ``torch.distributed``'s names, over MPI (and NCCL).

    mpiexec -n 2 python train.py              # two processes ("ranks"), each runs train.py

    import minires.distributed as dist
    dist.init_process_group("mpi")            # "nccl" with the cupy backend: one GPU per process
    dist.get_rank(), dist.get_world_size()    # 0 (or 1), 2
    dist.all_reduce(t)                        # t (a Tensor or an array) becomes the sum over ranks
    dist.broadcast(t, src=0)                  # t becomes rank 0's
    dist.barrier()

The processes come from the MPI launcher, ``mpiexec``, which starts them and lets
them find each other; mpi4py is MPI for Python. ``pip install -e ".[mpi]"`` brings
both from wheels (mpi4py and MPICH): no system MPI is needed. A process started
without a launcher is a world of one: ``init_process_group`` works there as it
does under ``mpiexec -n 1``, without importing mpi4py at all.

``"mpi"`` reduces host (NumPy) arrays with MPI. ``"nccl"`` puts each process on the
GPU numbered by its rank among the processes of its machine and reduces device
arrays with NVIDIA's NCCL (``nccl.py``), without a copy to the host; call it before
``minires.set_backend("cupy")``, so that each process makes its CUDA context on its
own GPU and not on GPU 0.

Built on this: ``minires.nn.parallel.DistributedDataParallel`` (gradients averaged
during backward), ``minires.nn.SyncBatchNorm`` (batch statistics over every rank)
and ``minires.data.DistributedSampler`` (each rank's rows of every batch).
"""
import sys
import time

from minires.autograd import Tensor
from minires.distributed.process_group import (
    INSTALL_MPI,
    MPIGroup,
    SingleProcess,
    Work,
    launched_rank,
    launched_world_size,
)

BACKENDS = ("mpi", "nccl")


class ReduceOp:
    """How ``all_reduce`` combines the ranks' values (PyTorch's names)."""
    SUM, MAX, MIN = "sum", "max", "min"


class _World:
    group = None        # the process group, once init_process_group() has run


_world = _World()


def init_process_group(backend="mpi", world_size=None):
    """Join the processes the MPI launcher started (a world of one without a launcher).

    Args:
        backend: ``"mpi"`` (host arrays) or ``"nccl"`` (device arrays, one GPU per process).
        world_size: the number of processes expected, checked against the launcher's;
            give it to use MPI under a launcher minires does not recognise.
    Raises:
        RuntimeError: called twice; a world of several processes without mpi4py (the
            sentence says what to install); ``"nccl"`` without CuPy or its NCCL library.
    """
    if _world.group is not None:
        raise RuntimeError("init_process_group() was already called in this process")
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    size = world_size or launched_world_size() or 1
    if size == 1:
        group = SingleProcess()
    else:
        group = MPIGroup(size)
        if group.world_size != size:
            raise RuntimeError(f"init_process_group(world_size={size}), but the launcher "
                               f"started {group.world_size} processes")
        if backend == "nccl":
            group = _nccl_group(group)
    _world.group = group


def _nccl_group(mpi_group):
    from minires import backend
    from minires.distributed.nccl import NcclGroup
    if backend.get_backend() == "cupy":         # already chosen (or a test's stand-in for CuPy)
        return NcclGroup(mpi_group, backend.get_array_module().cuda)
    # Imported here rather than through minires.backend: the backend's check that a GPU
    # works would make a CUDA context on GPU 0 in every process before NcclGroup picks
    # each its own.
    try:
        import cupy
    except ImportError:
        raise RuntimeError('init_process_group("nccl") needs CuPy: pip install -e ".[cuda]"') from None
    return NcclGroup(mpi_group, cupy.cuda)


def is_initialized():
    return _world.group is not None


def _group():
    if _world.group is None:
        raise RuntimeError("call minires.distributed.init_process_group() first")
    return _world.group


def get_rank():
    """This process's number, 0 .. world_size - 1."""
    return _group().rank


def get_world_size():
    """The number of processes training together."""
    return _group().world_size


def all_reduce(tensor, op=ReduceOp.SUM, async_op=False):
    """Replace ``tensor`` (a Tensor or an array) in every rank by its sum (max, min) over the ranks.

    With ``async_op=True`` it returns a ``Work`` at once; its ``wait()`` completes it.
    """
    return _group().all_reduce(_array(tensor), op, async_op)


def broadcast(tensor, src=0):
    """Replace ``tensor`` in every rank by rank ``src``'s."""
    _group().broadcast(_array(tensor), src)


def barrier():
    """Return once every rank has called it."""
    _group().barrier()


def abort(status=1):
    """End every process of the world now (MPI_Abort), for a rank that cannot go on.

    A rank that simply exits would leave the others waiting in their next collective
    for ever; this ends them within a second, with ``status``. What this process has
    printed is flushed first and the launcher given half a second to pass it on: under
    load, MPICH's launcher was seen to drop the end of a rank's output when it ended
    the processes at once.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    time.sleep(0.5)
    _group().abort(status)


def destroy_process_group():
    """Forget the process group (MPI itself is finalised when the process exits)."""
    _world.group = None


def _array(tensor):
    return tensor.data if isinstance(tensor, Tensor) else tensor


__all__ = ["BACKENDS", "INSTALL_MPI", "ReduceOp", "Work", "abort", "all_reduce", "barrier",
           "broadcast", "destroy_process_group", "get_rank", "get_world_size",
           "init_process_group", "is_initialized", "launched_rank", "launched_world_size"]
