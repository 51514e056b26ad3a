"""DistributedSampler: which rows of every global batch this process trains on.

Under data parallelism with N ranks, the B images of a step are shared out, B/N
to each rank. For the N ranks to compute what one process at batch B computes,
the global batch must be the very one that process would draw, with the same
augmentation for the same image. So every rank draws exactly what one process
draws, from equally seeded generators (the order of the epoch, then each batch's
crops and flips: ``loader.BatchLoader``), and keeps its own rows of the result:

    rank r of N takes rows r, r + N, r + 2N, ... of every global batch

These are the indices PyTorch's DistributedSampler gives rank r when each rank's
loader takes B/N per batch: it deals out the epoch's order as cards, one each in
turn. Over an epoch every image is used exactly once, by one rank; a last batch
that N does not divide leaves some ranks one image fewer.

    sampler = DistributedSampler(num_replicas=2, rank=1)
    BatchLoader(images, labels, batch_size=100, shuffle=True, augment=True, rng=rng,
                sampler=sampler)        # yields this rank's 50 of each batch of 100

Unlike PyTorch's, it draws no order of its own (the loader's generator does), so it
has no ``seed`` or ``set_epoch``: a generator seeded once gives each epoch a new order.
"""
from minires import distributed as dist
from minires.arguments import check_int


class DistributedSampler:
    """Rank ``rank``'s rows of every batch, out of ``num_replicas`` ranks (default: the process group's)."""

    def __init__(self, num_replicas=None, rank=None):
        if num_replicas is None:
            num_replicas = dist.get_world_size() if dist.is_initialized() else 1
        if rank is None:
            rank = dist.get_rank() if dist.is_initialized() else 0
        num_replicas = check_int("DistributedSampler", "num_replicas", num_replicas, least=1)
        rank = check_int("DistributedSampler", "rank", rank, least=0)
        if rank >= num_replicas:
            raise ValueError(f"DistributedSampler: rank {rank} is not in 0..{num_replicas - 1}")
        self.num_replicas, self.rank = num_replicas, rank

    def rows(self):
        """The rows of a global batch this rank takes: a slice, to index any array of the batch."""
        return slice(self.rank, None, self.num_replicas)

    def __repr__(self):
        return f"DistributedSampler(num_replicas={self.num_replicas}, rank={self.rank})"
