"""What DistributedDataParallel does with gradients that are not the plain case; run by the tests.

    mpiexec -n 2 python tests/mpi_programs/ddp_semantics.py OUT.npz

Three linear layers: ``shared`` used on every rank, ``rank0_only`` used on rank 0 only, ``unused``
never. Then two backward passes under ``no_sync()`` and one synced. Each rank writes
OUT.rank{r}.npz with the gradients it ends with, and its local ones for the test to average.
"""
import sys

import numpy

import minires
from minires import distributed as dist
from minires import nn


class Branches(nn.Module):
    def __init__(self):
        super().__init__()
        self.shared = nn.Linear(in_features=3, out_features=2)
        self.rank0_only = nn.Linear(in_features=3, out_features=2)
        self.unused = nn.Linear(in_features=3, out_features=2)

    def forward(self, x):
        y = self.shared(x)
        return y + self.rank0_only(x) if dist.get_rank() == 0 else y


def main(out):
    dist.init_process_group("mpi")
    rank = dist.get_rank()
    minires.manual_seed(0)
    model = nn.parallel.DistributedDataParallel(Branches().double(), overlap=True)
    x = minires.Tensor(numpy.arange(12.0).reshape(4, 3) * (rank + 1))
    record = {}
    (model(x) * (rank + 1.0)).sum().backward()
    for name, p in model.module.named_parameters():
        record[f"first/{name}"] = numpy.zeros(p.shape) if p.grad is None else numpy.array(p.grad)
    model.module.zero_grad()
    with model.no_sync():
        for _ in range(2):
            model(x).sum().backward()
    for name, p in model.module.named_parameters():
        record[f"local/{name}"] = numpy.array(p.grad) if p.grad is not None else numpy.zeros(p.shape)
    model(x).sum().backward()
    for name, p in model.module.named_parameters():
        record[f"synced/{name}"] = numpy.array(p.grad)
    numpy.savez(out.replace(".npz", f".rank{rank}.npz"), **record)


if __name__ == "__main__":
    main(sys.argv[1])
