"""What DistributedDataParallel does with gradients off the plain path; run by test_distributed.py.

    mpiexec -n 2 python tests/mpi_programs/ddp_semantics.py OUT.npz

Three convolutions (weights stored channels-last): ``shared`` used on every rank, ``rank0_only``
used on rank 0 only (``find_unused_parameters=True``), ``unused`` never. Rank 0 has an
optimizer, so its gradients sit in the optimizer's flat array and DDP reduces slices of it;
rank 1 has none, so DDP packs its buckets: the two must still add the same elements together.
Then two backward passes under ``no_sync()`` and one synced. Each rank writes OUT.rank{r}.npz:
its gradients after one synced backward ("first/"), after one local one ("local/", for the test
to average) and after the three ("synced/"), with NaN where a gradient is None.
"""
import sys

import numpy

import minires
from minires import distributed as dist
from minires import nn, optim


class Branches(nn.Module):
    def __init__(self):
        super().__init__()
        self.shared = nn.Conv2d(in_channels=2, out_channels=3, kernel_size=2)
        self.rank0_only = nn.Conv2d(in_channels=2, out_channels=3, kernel_size=2)
        self.unused = nn.Conv2d(in_channels=2, out_channels=3, kernel_size=2)

    def forward(self, x):
        y = self.shared(x)
        return y + self.rank0_only(x) if dist.get_rank() == 0 else y


def gradients(model, prefix):
    return {f"{prefix}/{name}": numpy.full(p.shape, numpy.nan) if p.grad is None
            else numpy.array(p.grad) for name, p in model.named_parameters()}


def main(out):
    dist.init_process_group("mpi")
    rank = dist.get_rank()
    minires.manual_seed(0)
    model = nn.parallel.DistributedDataParallel(Branches().double(), bucket_cap_mb=0.0001,
                                                overlap=True, find_unused_parameters=True)
    if rank == 0:
        optimizer = optim.SGD(model.parameters(), lr=0.1)
        optimizer.zero_grad()
    x = minires.Tensor(numpy.random.default_rng(rank).standard_normal((2, 2, 3, 3)))
    (model(x) * (rank + 1.0)).sum().backward()
    record = gradients(model.module, "first")
    record["flat_buckets"] = sum(b._flat is not None for b in model._buckets)
    model.module.zero_grad()
    with model.no_sync():
        (model(x) * (rank + 1.0)).sum().backward()
        record.update(gradients(model.module, "local"))
        (model(x) * (rank + 1.0)).sum().backward()
    (model(x) * (rank + 1.0)).sum().backward()
    record.update(gradients(model.module, "synced"))
    numpy.savez(out.replace(".npz", f".rank{rank}.npz"), **record)


if __name__ == "__main__":
    main(sys.argv[1])
