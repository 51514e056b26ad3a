"""DistributedDataParallel: one copy of the model per process, gradients averaged in backward.

Data parallelism: every process (rank) holds the whole model and runs forward and
backward on its own rows of each global batch (``minires.data.DistributedSampler``).
The gradient of the batch's mean loss is the mean of the ranks' gradients, so once
backward has averaged them, every rank takes the same optimizer step and the copies
stay equal, step after step.

    dist.init_process_group("mpi")                 # under mpiexec -n N
    model = DistributedDataParallel(ResNet50_layer4())
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    loss = F.cross_entropy(model(x), y)            # x: this rank's B/N images
    optimizer.zero_grad()
    loss.backward()                                 # gradients averaged over the ranks on the way
    optimizer.step()

How, step by step:

1. At construction rank 0's parameters and buffers are broadcast: every copy starts equal.
2. Buckets. The parameters, last first (the order in which backward reaches them),
   are cut into buckets of about ``bucket_cap_mb``: one all-reduce per bucket rather
   than one per parameter (214 in ResNet50_layer4), each long enough to run at the
   link's bandwidth rather than its latency. The first bucket is kept to 1 MB so that
   communication can start early in backward (as PyTorch does).
3. Ready. Each forward counts, in the graph it has just built, how many gradients
   will flow into each parameter; a hook on each parameter
   (``Tensor.register_post_accumulate_grad_hook``) counts them down during backward.
   A bucket is ready when all its parameters have all of theirs.
4. In order. Collectives are matched by the order of the calls, so every rank
   reduces bucket k only after bucket k - 1, whatever order they became ready in.
5. No copy. The optimizer keeps every gradient in one flat array, in the order of
   ``model.parameters()`` (``speed/flat_parameters.py``), and each parameter's
   ``grad_slot`` is its place there, where backward writes its gradient. DDP finds
   out at its first backward that a bucket's slots lie back to back in one 1-D
   array, so the bucket is one contiguous slice of it, reduced in place. Without
   such slots (no optimizer yet, or a bucket astride two optimizers) the bucket packs
   its gradients into an array of its own, in the same element order (each
   parameter's memory order, which is the flat array's), and unpacks the result:
   correct, but more passes over memory (measured for ResNet50_layer4's 59 MB of
   gradients in one process: 21 ms per step to pack, unpack and let the optimizer
   copy them into its array, against 2.6 ms for the division in place).
6. When the last gradient has arrived, DDP waits for the reductions and divides by
   the number of ranks: a sum of means becomes the mean.

Overlap. With ``overlap=True`` a bucket is sent as soon as it is ready (a
non-blocking all-reduce) while backward computes the rest; with ``overlap=False``
all buckets are reduced after the last gradient. On the project's 2-core machine
(2 ranks, one core each, MPI over shared memory) the reduction is itself work for
the same cores (copies and additions: 20 to 50 ms for the 59 MB), and MPICH moves
a non-blocking transfer on only inside MPI calls, so there is nothing for it to
hide behind. Measured (``benchmarks/distributed_speed.py``, four sittings, batches
100 and 256, SyncBatchNorm): overlap won 4 of 8 comparisons, by -7 % to +31 %, on
a machine other jobs were loading; no difference the noise lets one see, so the
simpler order is the default. Over NCCL the buckets are queued on the compute
stream, where they run in order with backward's kernels either way; hiding them
needs a second CUDA stream (not done: it needs a GPU to measure). Across machines
over MPI, where the wire rather than the core is the bottleneck, try ``overlap=True``.

Gradients that are None, as PyTorch's DDP. A parameter that this backward did
not reach has no gradient (``.grad`` None, after ``zero_grad()``); it adds zeros to
its bucket's sum and stays None, and the optimizer skips it. That is right when
every rank builds the same graph, the default. If the ranks' graphs differ (a
branch taken on some ranks only), pass ``find_unused_parameters=True``: the ranks
then also tell each other which parameters had a gradient (one more all-reduce of a
flag per parameter, over MPI), and a parameter with a gradient on some rank gets
the average everywhere, the ranks without one counting zeros, while one that no
rank reached stays None.

Buffers. As PyTorch does (``broadcast_buffers=True``), every forward starts by
copying rank 0's buffers (BatchNorm's running statistics) to the others: without
``SyncBatchNorm`` each rank normalises with its own batch's statistics, and the
running statistics that all ranks keep are rank 0's. They travel packed, one
broadcast per dtype rather than one per buffer (ResNet50_layer4 has 159), and a
SyncBatchNorm's are left out: every rank computes them from the same all-reduced
sums, so they are equal already.
"""
import contextlib

import numpy

from minires import autograd, backend
from minires import distributed as dist
from minires.nn.module import Module
from minires.nn.sync_batchnorm import SyncBatchNorm

FIRST_BUCKET_MB = 1.0
OVERLAP = False         # no measurable gain on the project's machine: see the module's docstring


class DistributedDataParallel(Module):
    """Wraps ``module``; its forward runs the module, its backward averages the gradients.

    Args:
        module: the model; built the same way on every rank (rank 0's values win).
        bucket_cap_mb: size of a gradient bucket in MB (the first is 1 MB).
        broadcast_buffers: copy rank 0's buffers to all ranks at every forward.
        overlap: reduce each bucket as soon as it is ready, during backward (see above).
        find_unused_parameters: the ranks' graphs may differ (see "Gradients that are None").
    The wrapped model is ``self.module``: save ``model.module.state_dict()`` to get
    the single-process keys (DDP's own keys start with ``module.``, as PyTorch's).
    """

    def __init__(self, module, bucket_cap_mb=25.0, broadcast_buffers=True, overlap=OVERLAP,
                 find_unused_parameters=False):
        super().__init__()
        if not dist.is_initialized():
            raise RuntimeError("DistributedDataParallel needs minires.distributed.init_process_group() first")
        self.module = module
        self.broadcast_buffers, self.overlap = broadcast_buffers, overlap
        self.find_unused_parameters = find_unused_parameters
        self.require_backward_grad_sync = True          # False inside no_sync()
        self.world_size = dist.get_world_size()
        for tensor in module.state_dict().values():
            dist.broadcast(tensor, src=0)
        unequal = [b for m in module.modules() if not isinstance(m, SyncBatchNorm)
                   for b in m._buffers.values()]
        self._buffer_groups = [[b for b in unequal if b.dtype == dtype]     # one list per dtype
                               for dtype in sorted({b.dtype for b in unequal}, key=str)]
        self._params = [p for p in module.parameters() if p.requires_grad]
        self._index = {id(p): i for i, p in enumerate(self._params)}
        self._buckets = _buckets(self._params, bucket_cap_mb)
        self._bucket_of = {i: bucket for bucket in self._buckets for i in bucket.indices}
        self._pending = None      # the backward to come: counts of gradients still expected
        for p in self._params:
            p.register_post_accumulate_grad_hook(self._gradient_arrived)

    def forward(self, *inputs):
        if self._pending is not None:
            raise RuntimeError("DistributedDataParallel: a forward with gradients was not followed "
                               "by its backward; every rank must run backward after each such "
                               "forward (or run it under no_grad())")
        if self.broadcast_buffers:
            self._broadcast_buffers()
        output = self.module(*inputs)
        if (self.require_backward_grad_sync and autograd.is_grad_enabled()
                and isinstance(output, autograd.Tensor) and output.creator is not None):
            self._expect_gradients(output)
        return output

    def _broadcast_buffers(self):
        """Rank 0's buffers to every rank: one broadcast of each dtype's buffers, packed."""
        xp = backend.get_array_module()
        for group in self._buffer_groups:
            packed = xp.concatenate([b.data.reshape(-1) for b in group])      # (all their elements,)
            dist.broadcast(packed, src=0)
            if dist.get_rank() != 0:
                offset = 0
                for b in group:
                    b.data[...] = packed[offset:offset + b.numel()].reshape(b.shape)
                    offset += b.numel()

    @contextlib.contextmanager
    def no_sync(self):
        """Inside, backward only accumulates local gradients; the next synced backward averages the sum."""
        previous, self.require_backward_grad_sync = self.require_backward_grad_sync, False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    # --- backward: count gradients in, send buckets out ----------------------------------
    def _expect_gradients(self, output):
        """Count, per parameter, the graph's edges into it: the gradients backward will add."""
        expected = [0] * len(self._params)
        for function in autograd.topological_order(output.creator):   # the walk backward makes
            for edge in function.inputs:
                if edge.leaf is not None and id(edge.leaf) in self._index:
                    expected[self._index[id(edge.leaf)]] += 1
        total = sum(expected)
        if total == 0:
            return
        for bucket in self._buckets:
            bucket.waiting = sum(1 for i in bucket.indices if expected[i])
        self._pending = _Pending(expected, total)

    def _gradient_arrived(self, parameter):
        pending = self._pending
        if pending is None:         # a backward DDP did not prepare (no_sync, or the module called directly)
            return
        i = self._index[id(parameter)]
        if pending.expected[i] == 0:
            raise RuntimeError(f"DistributedDataParallel: parameter {i} ({tuple(parameter.shape)}) "
                               "received a gradient that its forward did not lead to (used outside "
                               "the wrapped module?); its bucket may already be reduced")
        pending.expected[i] -= 1
        pending.total -= 1
        if pending.expected[i] == 0:
            self._bucket_of[i].waiting -= 1
        if pending.total == 0:
            self._send(pending, len(self._buckets))
            self._finish(pending)
        elif self.overlap:
            ready = pending.launched
            while ready < len(self._buckets) and self._buckets[ready].waiting == 0:
                ready += 1
            self._send(pending, ready)
            for _, work in pending.works:
                work.is_completed()     # MPI moves a transfer on only inside its calls

    def _send(self, pending, stop):
        """Start the all-reduce of every bucket not yet sent, up to bucket ``stop``."""
        for bucket in self._buckets[pending.launched:stop]:
            array = bucket.array()
            pending.works.append((array, dist.all_reduce(array, async_op=True)))
            pending.launched += 1

    def _finish(self, pending):
        self._pending = None
        had_grad = numpy.array([has for bucket in self._buckets for has in bucket.had_grad],
                               dtype=numpy.int32)     # (parameters,) 1: a gradient here
        if self.find_unused_parameters:
            dist.all_reduce(had_grad, op=dist.ReduceOp.MAX)     # a host array: over MPI
        start = 0
        for (array, work), bucket in zip(pending.works, self._buckets):
            work.wait()
            if self.world_size > 1:
                array *= 1.0 / self.world_size    # the sum of the ranks' means -> their mean
            bucket.unpack(array, had_grad[start:start + len(bucket.params)])
            start += len(bucket.params)


class _Pending:
    """The gradients one backward still has to deliver, and the buckets already sent."""

    def __init__(self, expected, total):
        self.expected, self.total = expected, total
        self.launched, self.works = 0, []


class _Bucket:
    """Parameters ``indices`` (consecutive in model order) whose gradients travel together."""

    def __init__(self, params, indices):
        self.params, self.indices = [params[i] for i in indices], indices
        self.waiting = 0
        self.had_grad = [False] * len(indices)  # which had a gradient on this rank, when sent
        self._slots, self._flat = None, None     # the grad slots last looked at, and their flat slice

    def array(self):
        """The bucket's gradients as one array: a slice of the optimizer's flat array, else packed.

        Either way in the flat array's element order, so ranks that differ in which
        they use still add the same elements together.
        """
        self.had_grad = [p.grad is not None for p in self.params]
        slots = [getattr(p, "grad_slot", None) for p in self.params]
        if self._slots is None or any(a is not b for a, b in zip(slots, self._slots)):
            self._slots, self._flat = slots, _flat_slice(slots)
        if self._flat is not None:
            for p, slot in zip(self.params, slots):
                if p.grad is None:
                    slot[...] = 0           # no gradient: zeros to the sum (the slot keeps an old one)
                elif p.grad is not slot:    # a gradient put there by hand: into the flat array, as bind()
                    slot[...] = p.grad
                    p.grad = slot
            return self._flat
        xp = backend.get_array_module()
        return xp.concatenate([xp.zeros(p.numel(), dtype=p.dtype) if p.grad is None
                               else _in_memory_order(p.grad, p).reshape(-1)
                               for p in self.params])      # (bucket,)

    def unpack(self, array, had_grad):
        """Give each parameter that had a gradient on some rank (``had_grad``) the averaged one."""
        xp = backend.get_array_module()
        offset = 0
        for p, slot, used in zip(self.params, self._slots, had_grad):
            if used and array is self._flat:
                p.grad = slot               # (already so, unless it had none on this rank)
            elif used:
                if p.grad is None:
                    p.grad = slot if slot is not None else xp.empty_like(p.data)
                target = _in_memory_order(p.grad, p)
                target[...] = array[offset:offset + p.numel()].reshape(target.shape)
            offset += p.numel()


def _buckets(params, bucket_cap_mb):
    """Buckets of consecutive parameters, from the last parameter back to the first."""
    buckets, indices, size = [], [], 0
    cap = min(FIRST_BUCKET_MB, bucket_cap_mb) * 2 ** 20
    for i in reversed(range(len(params))):
        indices.insert(0, i)
        size += params[i].numel() * params[i].dtype.itemsize
        if size >= cap:
            buckets.append(_Bucket(params, indices))
            indices, size, cap = [], 0, bucket_cap_mb * 2 ** 20
    if indices:
        buckets.append(_Bucket(params, indices))
    return buckets


def _flat_slice(grads):
    """The 1-D array slice that holds ``grads`` (here the grad slots) back to back, dense and
    in order; else None."""
    if any(g is None for g in grads):
        return None
    flat = grads[0].base
    if flat is None or flat.ndim != 1:
        return None
    start = (_address(grads[0]) - _address(flat)) // flat.itemsize
    end = start
    for g in grads:
        if (g.base is None or _address(g.base) != _address(flat)
                or _address(g) != _address(flat) + end * flat.itemsize or not _dense(g)):
            return None
        end += g.size
    return flat[start:end]


def _in_memory_order(array, parameter):
    """``array`` (a view) with its axes in the order ``parameter``'s elements lie in memory.

    A conv weight is (OC, C, KH, KW) stored channels-last, (OC, KH, KW, C) in memory,
    and so in the optimizer's flat array; a packed bucket keeps that order too.
    """
    order = sorted(range(parameter.ndim), key=lambda axis: -parameter.data.strides[axis])
    return array.transpose(order)


def _address(array):
    """Where the first element of ``array`` lives: a host address, or a device one (CuPy)."""
    interface = getattr(array, "__cuda_array_interface__", None) or array.__array_interface__
    return interface["data"][0]


def _dense(array):
    """True if ``array`` fills its memory without gaps (C order, or a transposed view of it)."""
    sizes_strides = [(n, s) for n, s in zip(array.shape, array.strides) if n > 1]
    span = array.itemsize + sum((n - 1) * s for n, s in sizes_strides)
    return all(s > 0 for _, s in sizes_strides) and span == array.size * array.itemsize
