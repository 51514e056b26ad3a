"""Three Adam steps of a small conv net in float64, in N processes or one; run by test_distributed.py.

    mpiexec -n 2 python tests/mpi_programs/equivalence.py OUT.npz [--sync-bn] [--overlap] [--options]

Every rank trains on its rows of the same global batches of 8 (``DistributedSampler``'s rows)
and writes ``OUT.rank{r}.npz``: the global loss of each step, the averaged gradients after each
backward, and the parameters and buffers at the end. The test imports this file too, for the
model and the batches, and computes its single-process references in its own process.

Steps 1 and 3 set the gradients to None (``zero_grad()``), so backward writes each into its slot
of the optimizer's flat array; step 2 zeroes them there (``set_to_none=False``) and backward adds
into them. Either way DDP reduces slices of that array in place. Buckets are tiny
(``bucket_cap_mb``) so the model spans several. ``--options``: the first batch norm averages
all batches (``momentum=None``), the second has no weight and bias and no running statistics.
"""
import sys

import numpy

import minires
import minires.functional as F
from minires import distributed as dist
from minires import nn, optim
from minires.data import DistributedSampler

GLOBAL_BATCH, STEPS, LR = 8, 3, 1e-2


def make_model(sync_bn=False, options=False):
    """Conv (no bias: batch norm removes any constant) -> BN -> ReLU, twice, then a linear layer."""
    minires.manual_seed(3)
    first, second = ({"momentum": None}, {"affine": False, "track_running_stats": False}) \
        if options else ({}, {})
    model = nn.Sequential(
        nn.Conv2d(in_channels=3, out_channels=4, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(4, **first), nn.ReLU(),
        nn.Conv2d(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(6, **second), nn.ReLU(),
        nn.Flatten(), nn.Linear(in_features=6 * 4 * 4, out_features=5)).double()
    return nn.SyncBatchNorm.convert_sync_batchnorm(model) if sync_bn else model


def batches():
    """STEPS global batches: float64 images (8, 3, 8, 8) with a large mean, and labels (8,)."""
    rng = numpy.random.default_rng(11)
    return [(3.0 + rng.standard_normal((GLOBAL_BATCH, 3, 8, 8)), rng.integers(0, 5, GLOBAL_BATCH))
            for _ in range(STEPS)]


def zero_grad(step, optimizer):
    optimizer.zero_grad(set_to_none=step != 1)


def main(out, sync_bn, overlap, options):
    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    model = nn.parallel.DistributedDataParallel(make_model(sync_bn, options), bucket_cap_mb=0.0005,
                                                overlap=overlap)
    optimizer = optim.Adam(model.parameters(), lr=LR)
    rows = DistributedSampler().rows()
    record = {"buckets": len(model._buckets)}
    for step, (x, y) in enumerate(batches()):
        x, y = x[rows], y[rows]
        loss = F.cross_entropy(model(minires.Tensor(x)), y)
        zero_grad(step, optimizer)
        loss.backward()
        record[f"flat_buckets_{step}"] = sum(b._flat is not None for b in model._buckets)
        global_loss = numpy.array([loss.item() * len(y) / GLOBAL_BATCH])
        dist.all_reduce(global_loss)
        record[f"loss_{step}"] = global_loss[0]
        for name, p in model.module.named_parameters():
            record[f"grad_{step}/{name}"] = numpy.array(p.grad)
        optimizer.step()
    state = model.module.state_dict()
    record.update({f"state/{key}": numpy.array(value) for key, value in state.items()})
    record["world"] = world
    numpy.savez(out.replace(".npz", f".rank{rank}.npz"), **record)


if __name__ == "__main__":
    main(sys.argv[1], "--sync-bn" in sys.argv, "--overlap" in sys.argv, "--options" in sys.argv)
