"""SyncBatchNorm: batch normalisation with the statistics of the global batch, over every rank.

N batch (this rank's), C channels, H/W size, M = N*H*W values per channel on this
rank, M_all the sum of M over the ranks.

Under data parallelism each rank sees B/world of the B images of a step. Plain
BatchNorm2d would normalise with the mean and variance of those B/world images;
SyncBatchNorm uses those of all B, so N ranks compute what one process at batch B
computes (``functional/norm.py``), up to the order of float additions.

Forward: one all-reduce of per-channel sums, (2C + 1) numbers:
    S1 = sum(x - K),  S2 = sum((x - K)^2),  M_all
    mean = K + S1 / M_all,  var = S2 / M_all - (S1 / M_all)^2    (biased)
K is the running mean, the same on every rank (zero for a layer that keeps no
running statistics). Once it has caught up with the data, shifting by it before
squaring keeps S2 / M_all and (S1 / M_all)^2 small, so their difference does not
cancel the digits of the variance away when |mean| >> std (the textbook
E[x^2] - E[x]^2 would). Then y = gamma * (x - mean) / sqrt(var + eps) + beta, as
BatchNorm2d.

Backward: one all-reduce of 2C sums over the ranks,
    sum(gy)  and  sum(gy * x_hat),
then, as in ``functional/norm.py`` but with the global sums and M_all,
    gx = gamma / sqrt(var + eps) * (gy - sum(gy) / M_all - x_hat * sum(gy * x_hat) / M_all).
ggamma and gbeta are this rank's own sums: DistributedDataParallel averages
them with every other parameter gradient.

Why a file of its own rather than a branch in ``functional/norm.py``: the
statistics here are sums that cross processes (norm.py's are means of one
array), the count M_all is a device number (the ranks' batches may differ), and
the backward needs its sums from every rank before it can form gx. The shape
helpers are shared (``functional/rows.py``).

Running statistics move as BatchNorm2d's, towards the global mean and the
unbiased global variance var * M_all / (M_all - 1), so every rank keeps the same.
"""
from minires import backend
from minires import distributed as dist
from minires.arguments import check_image_input
from minires.autograd import Function
from minires.functional.norm import update_running_stats
from minires.functional.rows import column_sums, from_rows, to_rows
from minires.nn.layers import BatchNorm2d


class SyncBatchNormFunction(Function):
    """Training-mode batch norm with statistics summed over the ranks (see the module docstring)."""

    def __init__(self, running_mean, running_var, momentum, eps):
        self.running_mean, self.running_var = running_mean, running_var
        self.momentum, self.eps = momentum, eps

    def forward(self, x, gamma, beta):
        xp = backend.get_array_module()
        N, C, H, W = x.shape
        x_rows = to_rows(x)                                              # (M, C)
        # K: the running mean, equal on every rank (zero without running statistics)
        shift = (self.running_mean if self.running_mean is not None
                 else xp.zeros(C, dtype=x.dtype))                        # (C,)
        y_rows = x_rows - shift                                          # (M, C) x - K, becomes y
        sums = xp.empty(2 * C + 1, dtype=x.dtype)                        # (2C + 1,) S1, S2, M
        sums[:C] = column_sums(y_rows)                                   # (C,) S1
        sums[C:2 * C] = xp.einsum("mc,mc->c", y_rows, y_rows)            # (C,) S2
        sums[2 * C] = len(x_rows)                                        # exact in float32 up to 2^24
        dist.all_reduce(sums)                                            # (2C + 1,) over all ranks
        M_all = sums[2 * C]                                              # () stays on the device
        shifted_mean = sums[:C] / M_all                                  # (C,) mean - K
        var = sums[C:2 * C] / M_all - shifted_mean * shifted_mean        # (C,) biased
        mean = shift + shifted_mean                                      # (C,)
        update_running_stats(self.running_mean, self.running_var, self.momentum, mean, var, M_all)
        inv_std = (var + self.eps) ** -0.5                               # (C,)
        scale = gamma * inv_std                                          # (C,)
        y_rows -= shifted_mean                                           # (M, C) x - mean
        y_rows *= scale
        y_rows += beta
        # keep x, not x_hat: the same (M, C) memory, and backward folds x_hat into factors
        self.x_rows, self.mean, self.inv_std, self.scale, self.M_all = x_rows, mean, inv_std, scale, M_all
        return from_rows(y_rows, N, H, W)                                # (N, C, H, W)

    def backward(self, gy):
        xp = backend.get_array_module()
        gy_rows = to_rows(gy)                                            # (M, C)
        C = gy_rows.shape[1]
        gbeta = column_sums(gy_rows)                                     # (C,) this rank's
        gy_x = xp.einsum("mc,mc->c", gy_rows, self.x_rows)               # (C,) sum(gy * x)
        ggamma = self.inv_std * (gy_x - self.mean * gbeta)               # (C,) sum(gy * x_hat), this rank's
        sums = xp.concatenate([gbeta, ggamma])                           # (2C,)
        dist.all_reduce(sums)                                            # (2C,) over all ranks
        # gx = (x - mean) * b + gy * a + c per channel, as functional/norm.py, with global sums
        a = self.scale                                                   # (C,)
        b = (self.scale * self.inv_std) * (sums[C:] * (-1.0 / self.M_all))   # (C,)
        c = a * (sums[:C] * (-1.0 / self.M_all))                         # (C,)
        gx_rows = self.x_rows - self.mean                                # (M, C)
        gx_rows *= b
        gx_rows += gy_rows * a
        gx_rows += c
        N, C, H, W = gy.shape
        return from_rows(gx_rows, N, H, W), ggamma, gbeta                # (N, C, H, W), (C,), (C,)


class SyncBatchNorm(BatchNorm2d):
    """BatchNorm2d whose batch statistics cover the global batch (every rank); PyTorch's name.

    With the same options as BatchNorm2d. Wherever BatchNorm2d would use running
    statistics, or in a world of one process, it is BatchNorm2d exactly. Its state-dict
    keys are BatchNorm2d's, so checkpoints move between the two.
    """

    def forward(self, x):
        batch_statistics = self.training or not self.track_running_stats
        if not batch_statistics or not dist.is_initialized() or dist.get_world_size() == 1:
            return super().forward(x)
        check_image_input(lambda: repr(self), x, self.num_features, (1, 1), (0, 0))
        xp = backend.get_array_module()
        C = self.num_features
        update = self.training and self.track_running_stats
        momentum = self.momentum
        if update and momentum is None:         # the average of all batches: 1/n at the n-th
            momentum = 1.0 / (self.num_batches_tracked.data + 1)
        running = (self.running_mean.data, self.running_var.data) if update else (None, None)
        gamma = self.weight if self.affine else xp.ones(C, dtype=x.dtype)     # (C,)
        beta = self.bias if self.affine else xp.zeros(C, dtype=x.dtype)       # (C,)
        y = SyncBatchNormFunction(*running, momentum, self.eps)(x, gamma, beta)
        if update:
            self.num_batches_tracked.data += 1
        return y

    @classmethod
    def convert_sync_batchnorm(cls, module):
        """``module`` with every BatchNorm2d replaced by a SyncBatchNorm sharing its parameters and buffers.

        Returns the new root if ``module`` itself is a BatchNorm2d, else ``module``,
        changed in place. Convert before creating the optimizer (PyTorch's advice too).
        """
        if isinstance(module, BatchNorm2d) and not isinstance(module, SyncBatchNorm):
            sync = cls(module.num_features, eps=module.eps, momentum=module.momentum,
                       affine=module.affine, track_running_stats=module.track_running_stats)
            if module.affine:
                sync.weight, sync.bias = module.weight, module.bias
            for name, buffer in module._buffers.items():
                setattr(sync, name, buffer)
            sync.train(module.training)
            return sync
        for name, child in list(module._modules.items()):
            setattr(module, name, cls.convert_sync_batchnorm(child))
        return module
