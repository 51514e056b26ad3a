"""Log-softmax and cross entropy, computed stably.

N batch, K classes. log_softmax(x) = x - max(x) - log(sum(exp(x - max(x)))):
subtracting the row maximum first keeps exp() from overflowing.
"""
import numpy

from minires import backend
from minires.arguments import check_loss_arguments, check_tensor
from minires.autograd import Function, Tensor
from minires.functional import soft_targets
from minires.functional.shaping import wrap_dim


def _log_softmax(x, axis):
    xp = backend.get_array_module()
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


class LogSoftmax(Function):
    saves_output = True         # backward reads log softmax back

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
    check_tensor("log_softmax", "input", input)
    wrap_dim(dim, input.ndim, "log_softmax")
    return LogSoftmax(dim)(input)


class CrossEntropy(Function):
    """Cross entropy against a target distribution q, per example, then the mean, the sum or each:

        loss_n = -sum_k q_nk log softmax(x_n)_k
        q_n    = (1 - e) w[t_n] one_hot(t_n) + (e / K) w,   or 0 if t_n is ignore_index

    with w the class weights (all 1 by default) and e the label smoothing (0 by
    default, when q_n is one_hot(t_n)). "mean" divides the sum by the kept rows'
    sum of w[t_n] (N by default), as PyTorch does. The gradient is
    d loss_n / d x_n = sum(q_n) softmax(x_n) - q_n: softmax - one_hot(t_n) by default.

    x: (N, K) logits, t: (N,) integers, w: (K,) or None.
    """

    def __init__(self, target, weight, ignore_index, reduction, label_smoothing):
        self.target, self.weight, self.ignore_index = target, weight, ignore_index
        self.reduction, self.e = reduction, label_smoothing

    def forward(self, x):
        xp = backend.get_array_module()
        N, K = x.shape
        log_p = _log_softmax(x, axis=1)                           # (N, K)
        kept = self.target != self.ignore_index                   # (N,) bool
        target = xp.where(kept, self.target, 0)                   # (N,) ignored rows read class 0 ...
        keep = kept.astype(x.dtype)                               # (N,) ... and weigh it 0
        w_t = keep if self.weight is None else self.weight[target] * keep   # (N,) w[t_n]
        rows = xp.arange(N)                                       # (N,)
        losses = -(1 - self.e) * w_t * log_p[rows, target]        # (N,) the one-hot part of q
        if self.e:
            # the smoothing part of q: (e / K) w on every class
            w_log_p = log_p.sum(axis=1) if self.weight is None else log_p @ self.weight  # (N,)
            losses -= (self.e / K) * keep * w_log_p               # (N,)
        self.p, self.rows, self.target_read = xp.exp(log_p), rows, target  # softmax, for backward
        self.keep, self.w_t = keep, w_t
        if self.reduction == "none":
            return losses
        if self.reduction == "sum":
            return losses.sum()                                   # ()
        self.total = w_t.sum()                                    # () the mean's divisor
        return losses.sum() / self.total                          # ()

    def backward(self, gy):
        K = self.p.shape[1]
        w_sum = K if self.weight is None else self.weight.sum()   # sum_k w_k
        q_sum = (1 - self.e) * self.w_t + (self.e / K) * w_sum * self.keep   # (N,) sum(q_n)
        gx = self.p * q_sum[:, None]                              # (N, K) sum(q_n) softmax
        gx[self.rows, self.target_read] -= (1 - self.e) * self.w_t   # minus the one-hot part of q
        if self.e:
            w = 1.0 if self.weight is None else self.weight      # (K,) or a number
            gx -= (self.e / K) * (self.keep[:, None] * w)         # (N, K) minus the smoothing part
        if self.reduction == "none":
            gx *= gy[:, None]                                     # each row its own gradient
        elif self.reduction == "sum":
            gx *= gy
        else:
            # every row ignored: total is 0 and so is gx, which PyTorch keeps (no 0/0)
            xp = backend.get_array_module()
            gx *= gy / xp.where(self.total == 0, 1, self.total)
        return gx


def cross_entropy(input, target, weight=None, *, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0):
    """PyTorch's ``F.cross_entropy``: class-index targets here; class probabilities and
    (N, C, d1, ...) inputs in ``soft_targets.py``.

    Args:
        input: (N, K) Tensor of logits.
        target: (N,) integer class indices in [0, K), as an array or Tensor. Labels
            on the host are range-checked here; labels already on a GPU are not
            (checking would cost a device sync, and CuPy wraps an index that is out
            of range instead of raising), so check them before moving them.
        weight: (K,) weight of each class (array or Tensor), or None for 1. The
            third argument, as in PyTorch; the others are keyword-only.
        ignore_index: rows with this target add nothing, not even to the mean's count.
        reduction: "mean" (default: the sum divided by the kept rows' total weight,
            sum_n w[t_n]; nan if every row is ignored, as in PyTorch), "sum" or "none".
        label_smoothing: e in [0, 1]: the target becomes (1 - e) one_hot + e / K.
    Returns:
        a 0-d Tensor, the mean or sum of the losses, or their (N,) vector for "none".
    """
    check_tensor("cross_entropy", "input", input)
    if isinstance(weight, str):
        raise TypeError(f"cross_entropy: the third argument is weight, as in PyTorch, got "
                        f"{weight!r}; pass reduction={weight!r} by keyword")
    check_loss_arguments("cross_entropy", ignore_index, reduction, label_smoothing)
    if isinstance(target, Tensor):
        target = target.data
    elif not hasattr(target, "dtype"):
        target = numpy.asarray(target)
    if soft_targets.is_probability_target(input, target):          # issue 17: functional/soft_targets.py
        return soft_targets.cross_entropy_of_probabilities(input, target, weight, reduction, label_smoothing)
    if input.ndim > 2:
        return soft_targets.cross_entropy_per_position(cross_entropy, input, target, weight, reduction,
                                                       ignore_index=ignore_index,
                                                       label_smoothing=label_smoothing)
    if input.ndim != 2:
        raise ValueError(f"cross_entropy: expected input (N, K) logits, got {tuple(input.shape)}")
    N, K = input.shape
    if not numpy.issubdtype(target.dtype, numpy.integer):
        raise TypeError(f"cross_entropy: target must hold integer class indices, got dtype "
                        f"{target.dtype}; convert labels with .astype('int64')")
    if tuple(target.shape) != (N,):
        raise ValueError(f"cross_entropy: expected target of shape ({N},), got {tuple(target.shape)}")
    if weight is not None:
        weight = _class_weights(weight, K, input.dtype)
    if isinstance(target, numpy.ndarray):
        _check_class_range(target, K, ignore_index)   # host labels: checking costs no device sync
        target = backend.to_device(target)
    return CrossEntropy(target, weight, ignore_index, reduction, label_smoothing)(input)


def _class_weights(weight, K, dtype):
    """The (K,) class weights as an array of the logits' dtype on the active backend."""
    check_tensor("cross_entropy", "weight", weight, floating=False)
    weight = backend.to_device(weight.data if isinstance(weight, Tensor) else weight, dtype=dtype)
    if tuple(weight.shape) != (K,):
        raise ValueError(f"cross_entropy: weight must have one entry per class, shape ({K},), "
                         f"got {tuple(weight.shape)}")
    return weight


def _check_class_range(target, K, ignore_index):
    outside = ((target < 0) | (target >= K)) & (target != ignore_index)
    if outside.any():
        raise ValueError(f"cross_entropy: target {target[outside][0]} is outside [0, {K}) for {K} "
                         f"classes (and is not ignore_index={ignore_index})")
