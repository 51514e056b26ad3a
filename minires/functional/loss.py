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
    """x - max(x) - log(sum(exp(x - max(x)))) along ``axis``: three GPU kernels (``backend.fuse``).

    The fused functions reduce over the last axis (a fused function takes no axis
    argument: it is part of the kernel), so ``axis`` is moved there and back, as views.
    """
    xp = backend.get_array_module()
    x_last = xp.moveaxis(x, axis, -1)                         # (..., K)
    top = _last_max(x_last)[..., None]                        # (..., 1) max(x)
    log_sum = _log_sum_exp_shifted(x_last, top)[..., None]    # (..., 1) log(sum(exp(x - max)))
    return xp.moveaxis(_subtract_both(x_last, top, log_sum), -1, axis)


@backend.fuse
def _last_max(x):
    return backend.get_array_module().amax(x, -1)


@backend.fuse
def _log_sum_exp_shifted(x, top):
    xp = backend.get_array_module()
    return xp.log(xp.sum(xp.exp(x - top), -1))


@backend.fuse
def _subtract_both(x, top, log_sum):
    return x - top - log_sum


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
        self.log_p, self.target_read = log_p, target              # for backward
        self.keep, self.w_t = keep, w_t
        if self.reduction == "none":
            return losses
        if self.reduction == "sum":
            return losses.sum()                                   # ()
        self.total = w_t.sum()                                    # () the mean's divisor
        return losses.sum() / self.total                          # ()

    def backward(self, gy):
        xp = backend.get_array_module()
        N, K = self.log_p.shape
        hot = self.w_t if not self.e else (1 - self.e) * self.w_t   # (N,) the one-hot part of q
        if self.e:
            w_sum = K if self.weight is None else self.weight.sum()   # sum_k w_k
            q_sum = hot + (self.e / K) * w_sum * self.keep        # (N,) sum(q_n)
            w = 1.0 if self.weight is None else self.weight      # (K,) or a number
            smooth = (self.e / K) * (self.keep[:, None] * w)      # (N, K) the smoothing part of q
        else:
            q_sum, smooth = hot, 0.0
        if self.reduction == "none":
            scale = gy[:, None]                                   # (N, 1) each row its own gradient
        elif self.reduction == "sum":
            scale = gy                                            # ()
        else:
            scale = _mean_scale(gy, self.total)                   # ()
        classes = xp.arange(K)                                    # (K,)
        return _softmax_minus_target(self.log_p, q_sum[:, None], classes, self.target_read[:, None],
                                     hot[:, None], smooth, scale)   # (N, K)


@backend.fuse
def _softmax_minus_target(log_p, q_sum, classes, target, hot, smooth, scale):
    """d loss / dx = (sum(q) softmax - q) * scale, in one GPU kernel (``backend.fuse``).

    q = hot one_hot(target) + smooth: log_p (N, K), q_sum, target, hot (N, 1), classes (K,),
    smooth (N, K) or 0; scale () or, for "none", (N, 1).
    """
    q = hot * (classes == target) + smooth                        # (N, K)
    return (backend.get_array_module().exp(log_p) * q_sum - q) * scale


@backend.fuse
def _mean_scale(gy, total):
    """gy / total; every row ignored makes total 0, and gx 0 too, which PyTorch keeps (no 0/0)."""
    return gy / backend.get_array_module().where(total == 0, 1, total)


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
