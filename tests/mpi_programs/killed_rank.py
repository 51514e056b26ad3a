"""Rank 1 is killed (SIGKILL) in the middle of training; rank 0 goes on into the next all-reduce.

    mpiexec -n 2 python tests/mpi_programs/killed_rank.py

The launcher must notice and end rank 0 too: the test checks that mpiexec exits, non-zero,
within seconds, instead of rank 0 waiting for rank 1 for ever.
"""
import os
import signal

import numpy

import minires
import minires.functional as F
from minires import distributed as dist
from minires import nn, optim

dist.init_process_group("mpi")
model = nn.parallel.DistributedDataParallel(nn.Linear(in_features=4, out_features=3))
optimizer = optim.SGD(model.parameters(), lr=0.1)
x, y = minires.Tensor(numpy.ones((2, 4), dtype=numpy.float32)), numpy.array([0, 1])
for step in range(1000):
    if step == 3 and dist.get_rank() == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
print("rank", dist.get_rank(), "trained 1000 steps without rank 1", flush=True)
