"""The NCCL path on the strict stand-in device: equivalence.py's run, every array on the "GPU".

    mpiexec -n 2 python tests/mpi_programs/nccl_stand_in.py OUT.npz

``strict_device`` plays CuPy (it refuses every implicit move to the host and counts the
explicit ones); ``StandInNccl`` below plays ``cupy.cuda.nccl``. Like NCCL it takes raw device
addresses; it checks that each is the memory of a device array (``strict_device.handed_out``)
and sums that memory across the processes over MPI, as NCCL would across GPUs. So the run
shows that DistributedDataParallel and SyncBatchNorm hand NCCL device memory, and that within
a training step nothing crosses to the host: no device-to-host read, no host-to-device copy,
no implicit conversion. Each rank writes OUT.rank{r}.npz as equivalence.py does, plus the counts.
"""
import ctypes
import os
import sys

import numpy
from equivalence import GLOBAL_BATCH, LR, batches, make_model, zero_grad
from mpi4py import MPI

import minires
import minires.functional as F
from minires import backend, nn, optim
from minires import distributed as dist
from minires.data import DistributedSampler
from minires.testing import strict_device


class StandInNccl:
    """``cupy.cuda.nccl`` for the stand-in device: the same calls, reduced over MPI."""
    NCCL_FLOAT16, NCCL_FLOAT32, NCCL_FLOAT64, NCCL_INT32, NCCL_INT64, NCCL_UINT8 = range(6)
    NCCL_SUM, NCCL_MAX, NCCL_MIN = range(3)
    TYPES = {0: numpy.float16, 1: numpy.float32, 2: numpy.float64, 3: numpy.int32,
             4: numpy.int64, 5: numpy.uint8}
    OPS = {0: MPI.SUM, 1: MPI.MAX, 2: MPI.MIN}
    calls = []      # (collective, elements)

    @staticmethod
    def get_unique_id():
        return tuple(os.urandom(128))

    class NcclCommunicator:
        def __init__(self, world_size, unique_id, rank):
            assert (world_size, rank) == (MPI.COMM_WORLD.Get_size(), MPI.COMM_WORLD.Get_rank())
            ids = MPI.COMM_WORLD.allgather(unique_id)
            assert all(i == ids[0] for i in ids), "the ranks got different unique ids"

        def allReduce(self, sendbuf, recvbuf, count, datatype, op, stream):
            assert sendbuf == recvbuf, "minires reduces in place"
            memory = _device_memory(sendbuf, count, datatype)
            MPI.COMM_WORLD.Allreduce(MPI.IN_PLACE, memory, op=StandInNccl.OPS[op])
            StandInNccl.calls.append(("allReduce", count))

        def bcast(self, buff, count, datatype, root, stream):
            MPI.COMM_WORLD.Bcast(_device_memory(buff, count, datatype), root=root)
            StandInNccl.calls.append(("bcast", count))


def _device_memory(address, count, datatype):
    """The stand-in device's memory at ``address`` as a NumPy array; only a device array's memory."""
    dtype = numpy.dtype(StandInNccl.TYPES[datatype])
    starts = [start for start, size in strict_device.handed_out.items()
              if start <= address and address + count * dtype.itemsize <= start + size]
    assert starts, f"NCCL was given address {address:#x}, which is no device array's memory"
    buffer = (ctypes.c_byte * (count * dtype.itemsize)).from_address(address)
    return numpy.frombuffer(buffer, dtype=dtype)


def main(out):
    strict_device.cuda.nccl = StandInNccl
    with strict_device.installed():
        dist.init_process_group("nccl")
        rank = dist.get_rank()
        model = nn.parallel.DistributedDataParallel(make_model(sync_bn=True), bucket_cap_mb=0.0005)
        optimizer = optim.Adam(model.parameters(), lr=LR)
        rows = DistributedSampler().rows()
        record = {"devices_used": numpy.array(strict_device.devices_used)}
        for step, (x, y) in enumerate(batches()):
            x, y = backend.to_device(x[rows]), backend.to_device(y[rows])
            calls_before = len(StandInNccl.calls)
            with strict_device.counting() as counts:
                loss = F.cross_entropy(model(minires.Tensor(x)), y)
                zero_grad(step, optimizer)
                loss.backward()
                optimizer.step()
            record[f"counts_{step}"] = numpy.array([counts.d2h, counts.h2d, counts.implicit])
            record[f"nccl_calls_{step}"] = len(StandInNccl.calls) - calls_before
            global_loss = numpy.array([loss.item() * len(y) / GLOBAL_BATCH])
            dist.all_reduce(global_loss)            # a host array: over MPI
            record[f"loss_{step}"] = global_loss[0]
            record[f"on_device_{step}"] = all(isinstance(p.grad, strict_device.ndarray)
                                              for p in model.parameters())
        record.update({f"state/{key}": backend.to_host(value)
                       for key, value in model.module.state_dict().items()})
        record["world"] = dist.get_world_size()
    numpy.savez(out.replace(".npz", f".rank{rank}.npz"), **record)


if __name__ == "__main__":
    main(sys.argv[1])
