"""Log-softmax and cross entropy, computed stably.

N batch, K classes. log_softmax(x) = x - max(x) - log(sum(exp(x - max(x)))):
subtracting the row maximum first keeps exp() from overflowing.
"""
import numpy

from minires import backend
from minires.autograd import Function, Tensor


def _log_softmax(x, axis):
    xp = backend.get_array_module()
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


class LogSoftmax(Function):
    def __init__(self, axis):
        self.axis = axis

    def forward(self, x):
        self.y = _log_softmax(x, self.axis)
        return self.y

    def backward(self, gy):
        xp = backend.get_array_module()
        return gy - xp.exp(self.y) * gy.sum(axis=self.axis, keepdims=True)


def log_softmax(input, dim=-1):
    """PyTorch's ``F.log_softmax`` along ``dim``."""
    return LogSoftmax(dim)(input)


class CrossEntropy(Function):
    """-log softmax(x)[n, t_n] per example, then the mean, the sum or each (``reduction``).

    x: (N, K) logits, t: (N,) integers. d loss_n / d x_n = softmax(x_n) - one_hot(t_n).
    """

    def __init__(self, target, reduction):
        self.target, self.reduction = target, reduction

    def forward(self, x):
        xp = backend.get_array_module()
        log_p = _log_softmax(x, axis=1)                           # (N, K)
        rows = xp.arange(len(x))                                  # (N,)
        self.p, self.rows = xp.exp(log_p), rows                   # softmax, for backward
        losses = -log_p[rows, self.target]                        # (N,)
        if self.reduction == "none":
            return losses
        return losses.mean() if self.reduction == "mean" else losses.sum()   # ()

    def backward(self, gy):
        gx = self.p.copy()                                        # (N, K)
        gx[self.rows, self.target] -= 1                           # softmax - one_hot(t)
        if self.reduction == "none":
            gx *= gy[:, None]                                     # each row its own gradient
        else:
            gx *= gy / len(gx) if self.reduction == "mean" else gy
        return gx


def cross_entropy(input, target, reduction="mean"):
    """PyTorch's ``F.cross_entropy`` (class-index targets).

    Args:
        input: (N, K) Tensor of logits.
        target: (N,) integer class indices in [0, K), as an array or Tensor. Labels
            on the host are range-checked here; labels already on a GPU are not
            (checking would cost a device sync, and CuPy wraps an index that is out
            of range instead of raising), so check them before moving them.
        reduction: "mean" (default), "sum" or "none".
    Returns:
        a 0-d Tensor, the mean or sum of the losses, or their (N,) vector for "none".
    """
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"cross_entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if isinstance(target, Tensor):
        target = target.data
    elif not hasattr(target, "dtype"):
        target = numpy.asarray(target)
    if input.ndim != 2:
        raise ValueError(f"cross_entropy: expected input (N, K) logits, got {tuple(input.shape)}")
    N, K = input.shape
    if not numpy.issubdtype(target.dtype, numpy.integer):
        raise TypeError(f"cross_entropy: target must hold integer class indices, got dtype "
                        f"{target.dtype}; convert labels with .astype('int64')")
    if tuple(target.shape) != (N,):
        raise ValueError(f"cross_entropy: expected target of shape ({N},), got {tuple(target.shape)}")
    if isinstance(target, numpy.ndarray):
        _check_class_range(target, K)      # host labels: checking them costs no device sync
        target = backend.to_device(target)
    return CrossEntropy(target, reduction)(input)


def _check_class_range(target, K):
    if len(target) and (target.min() < 0 or target.max() >= K):
        bad = target[(target < 0) | (target >= K)][0]
        raise ValueError(f"cross_entropy: target {bad} is outside [0, {K}) for {K} classes")
