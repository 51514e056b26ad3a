"""Batch normalisation over the (N, H, W) axes of each channel.

N batch, C channels, H/W size, M = N*H*W values per channel. BatchNorm1d's
(N, C) and (N, C, L) inputs are the same computation on (N, C, 1, 1) and
(N, C, L, 1) images: M = N and M = N*L.

Training:  x_hat = (x - mean) / sqrt(var + eps) with the batch's mean and biased
           variance; y = gamma * x_hat + beta. The running statistics move by
           ``momentum`` towards the batch mean and the *unbiased* variance
           var * M / (M - 1), as PyTorch does: r <- (1 - momentum) r + momentum v.
           (momentum = 1/n after n batches makes r the average of all n, the
           layers' ``momentum=None``.)
Eval:      the same with the running statistics in place of the batch's (and eps
           added once).

The pixels are the rows of an (M, C) matrix (see ``rows.py``), so every
per-channel statistic is a column sum.
"""
from minires import backend
from minires.arguments import check_image_input, check_number
from minires.autograd import Function, Tensor
from minires.functional.rows import (
    centred_square_sums,
    column_means,
    column_sums_and_dots,
    from_rows,
    to_rows,
)


class BatchNorm2d(Function):
    """Forward and backward in few passes over the (M, C) data, and few GPU launches.

    The per-channel arithmetic (inv_std, the factors of backward) happens inside fused
    functions (``backend.fuse``) with the passes over the data: on a GPU each is one
    kernel, 4 launches forward and 3 backward in training, 1 forward in evaluation.
    Both modes describe the variance as V * f: the sum of squared deviations and 1 / M
    in training, the running variance and 1 in evaluation.
    """
    saves_inputs = True         # x_rows is a view of x

    def __init__(self, running_mean, running_var, training, momentum, eps):
        self.running_mean, self.running_var = running_mean, running_var
        self.training, self.momentum, self.eps = training, momentum, eps

    def forward(self, x, gamma, beta):
        N, C, H, W = x.shape
        x_rows = to_rows(x)                                       # (M, C)
        M = len(x_rows)
        if self.training:
            mean = column_means(x_rows)                           # (C,)
            V, f = centred_square_sums(x_rows, mean), 1.0 / M     # (C,) sum((x - mean)^2); var = V f
            if self.running_mean is not None:
                # towards the unbiased variance V / (M - 1)
                _move_running_stats(self.running_mean, self.running_var, mean, V, 1 - self.momentum,
                                    self.momentum, self.momentum / (M - 1))
            y_rows = _normalise_batch(x_rows, mean, V, f, gamma, beta, self.eps)   # (M, C)
        else:
            mean, V, f = self.running_mean, self.running_var, 1.0    # (C,), (C,), var = V
            y_rows = _normalise(x_rows, mean, V, gamma, beta, self.eps)   # (M, C)
        # keep x rather than x_hat = (x - mean) * inv_std: the same (M, C) memory, and
        # forward never has to write x_hat; backward folds it into per-channel factors
        self.x_rows, self.mean, self.V, self.f, self.gamma = x_rows, mean, V, f, gamma
        return from_rows(y_rows, N, H, W)                         # (N, C, H, W)

    def backward(self, gy):
        xp = backend.get_array_module()
        gy_rows = to_rows(gy)                                     # (M, C)
        # sum(gy * x_hat) = inv_std * (sum(gy * x) - mean * sum(gy)), with no (M, C) temporary
        gy_sum, gy_x = column_sums_and_dots(gy_rows, self.x_rows)  # (C,) sum(gy), (C,) sum(gy * x)
        # ggamma and gbeta go straight into the optimizer's flat gradient array where it
        # offers their places (Function.grad_slot)
        ggamma, gbeta = self.grad_slot(1), self.grad_slot(2)
        ggamma = xp.empty_like(gy_sum) if ggamma is None else ggamma   # (C,)
        gbeta = xp.empty_like(gy_sum) if gbeta is None else gbeta      # (C,)
        _gamma_beta_grads(gy_sum, gy_x, self.mean, self.V, self.f, self.eps, ggamma, gbeta)
        if self.training:
            gx_rows = _input_grad(gy_rows, self.x_rows, self.mean, self.V, self.f, self.gamma,
                                  ggamma, gbeta, self.eps)        # (M, C)
        else:
            gx_rows = _scaled(gy_rows, self.V, self.gamma, self.eps)   # (M, C)
        N, C, H, W = gy.shape
        return from_rows(gx_rows, N, H, W), ggamma, gbeta         # (N, C, H, W), (C,), (C,)


# --- the fused functions: y, gx and the running statistics each in one GPU kernel ----------
# y and gx are (M, C), every other array (C,) (or a 0-d momentum); f, eps and the
# factors are numbers passed in, so one compiled kernel serves every layer.

@backend.fuse
def _normalise_batch(x, mean, V, f, gamma, beta, eps):
    """Training: (x - mean) * gamma / sqrt(V f + eps) + beta, centring first (no cancellation
    of x * scale against a large constant when |mean| >> std)."""
    y = x - mean                                                  # (M, C)
    y *= gamma * (V * f + eps) ** -0.5
    y += beta
    return y


@backend.fuse
def _normalise(x, mean, var, gamma, beta, eps):
    """Evaluation: (x - mean) * scale + beta with scale = gamma / sqrt(var + eps), as
    x * scale + (beta - mean * scale): one pass less than centring first."""
    scale = gamma * (var + eps) ** -0.5                           # (C,)
    y = x * scale                                                 # (M, C)
    y += beta - mean * scale
    return y


@backend.fuse
def _gamma_beta_grads(gy_sum, gy_x, mean, V, f, eps, ggamma, gbeta):
    """ggamma <- sum(gy * x_hat) = inv_std * (sum(gy * x) - mean * sum(gy)), gbeta <- sum(gy)."""
    ggamma[...] = (V * f + eps) ** -0.5 * (gy_x - mean * gy_sum)
    gbeta[...] = gy_sum


@backend.fuse
def _input_grad(gy, x, mean, V, f, gamma, ggamma, gbeta, eps):
    """Training: gx, differentiating through the batch's mean and variance too.

    gx = scale * (gy - mean(gy) - x_hat * mean(gy * x_hat)), per channel an affine
    function of gy and of the centred input: gx = (x - mean) * b + gy * a + c, with
    a = scale, b = scale * inv_std * ggamma * (-1/M), c = a * gbeta * (-1/M) (f = 1/M;
    the minus sign goes on arrays: CuPy's fusion would compute -f, a number alone, in
    float16). (Centring first avoids the cancellation of x * b against a large constant
    when |mean| >> std.)
    """
    inv_std = (V * f + eps) ** -0.5                               # (C,)
    a = gamma * inv_std                                           # (C,) scale
    b = -((a * inv_std) * (ggamma * f))                           # (C,)
    c = -(a * (gbeta * f))                                        # (C,)
    gx = x - mean                                                 # (M, C)
    gx *= b
    gx += gy * a
    gx += c
    return gx


@backend.fuse
def _scaled(gy, var, gamma, eps):
    """Evaluation: gx = gy * scale, the statistics being constants."""
    return gy * (gamma * (var + eps) ** -0.5)                     # (M, C)


@backend.fuse
def _move_running_stats(running_mean, running_var, mean, V, decay, weight, var_weight):
    """r <- decay r + weight v, in place (decay = 1 - momentum, weight = momentum), with
    var_weight = momentum * var / V for the variance, all worked out before the call."""
    running_mean *= decay
    running_mean += weight * mean
    running_var *= decay
    running_var += var_weight * V


def update_running_stats(running_mean, running_var, momentum, mean, var, M):
    """Move the running statistics (in place) by ``momentum`` towards the batch's mean and
    unbiased variance var * M / (M - 1), as PyTorch does; nothing if they are None.

    M, the values per channel, is at least 2 in training (``batch_norm`` checks it); it may
    be a device scalar (SyncBatchNorm counts the global batch on the device).
    """
    if running_mean is None:
        return
    _move_running_stats(running_mean, running_var, mean, var, 1 - momentum, momentum,
                        momentum * M / (M - 1))


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """PyTorch's ``F.batch_norm`` for (N, C, H, W) images, and (N, C) or (N, C, L) input.

    Args:
        input: (N, C, H, W), (N, C) or (N, C, L).
        running_mean, running_var: (C,) arrays or Tensors, updated in place when
            ``training``; may be None in training (then only batch statistics are used).
        weight (gamma), bias (beta): (C,) Tensors, or None for 1 and 0.
        momentum: a number, or a 0-d device array (the layers' ``momentum=None``
            passes 1/num_batches_tracked without reading the count back to the host).
    Returns:
        the input's shape.
    """
    if not isinstance(input, Tensor) or input.dtype.kind != "f":
        raise TypeError(f"batch_norm: input must be a floating-point Tensor, got "
                        f"{getattr(input, 'dtype', type(input).__name__)}")
    shape = tuple(input.shape)
    layer = "BatchNorm1d" if len(shape) in (2, 3) else "BatchNorm2d"
    vectors = {"running_mean": running_mean, "running_var": running_var, "weight": weight,
               "bias": bias}
    for argument, value in vectors.items():
        if value is not None and not hasattr(value, "shape"):
            raise TypeError(f"{layer}: {argument} must be an array or a Tensor, got "
                            f"{type(value).__name__}")
        if value is not None and len(value.shape) != 1:
            raise ValueError(f"{layer}: {argument} must be 1-D, (C,), got shape {tuple(value.shape)}")
    # the layer's channels, so that the message blames what disagrees with them: the weight's,
    # else the running statistics' if they agree, else the input's
    statistics = {len(v) for v in (running_mean, running_var) if v is not None}
    C = (len(weight) if weight is not None else statistics.pop() if len(statistics) == 1
         else shape[1] if len(shape) in (2, 3, 4) else None)
    # every check before the running statistics move: a call that raises changes nothing
    check_number(layer, "eps", eps, low=0)
    for argument, value in vectors.items():
        if value is not None and tuple(value.shape) != (C,):
            raise ValueError(f"{layer}({C}): {argument} must have shape ({C},), got "
                             f"{tuple(value.shape)}")
    if layer == "BatchNorm1d":
        if shape[1] != C:
            raise ValueError(f"BatchNorm1d({C}): expected input (N, {C}) or (N, {C}, L), got {shape}")
        image = input.reshape(shape[0], C, shape[2] if len(shape) == 3 else 1, 1)  # (N, C, L, 1)
    else:
        image = input
    check_image_input(lambda: f"{layer}({C})", image, C, (1, 1), (0, 0))
    if training and image.shape[0] * image.shape[2] * image.shape[3] < 2:
        raise ValueError(f"{layer}({C}): training needs more than one value per channel, "
                         f"got input {shape}")
    if not training and running_mean is None:
        raise ValueError(f"{layer}({C}): evaluation needs running_mean and running_var")
    xp = backend.get_array_module()
    running_mean, running_var = _array_or_none(running_mean), _array_or_none(running_var)
    if weight is None:
        weight = xp.ones(C, dtype=input.dtype)                # (C,)
    if bias is None:
        bias = xp.zeros(C, dtype=input.dtype)                 # (C,)
    y = BatchNorm2d(running_mean, running_var, training, momentum, eps)(image, weight, bias)
    return y if image is input else y.reshape(shape)


def _array_or_none(value):
    return value.data if isinstance(value, Tensor) else value
