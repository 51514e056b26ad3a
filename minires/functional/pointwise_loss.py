"""Losses that compare input and target element by element: mse_loss, l1_loss, smooth_l1_loss,
binary_cross_entropy and binary_cross_entropy_with_logits; and nll_loss, which picks each
row's target entry.

Each gives the per-element losses l (input's shape), then ``reduction``: "mean" (the default,
over all elements), "sum", or "none" (l itself), as PyTorch. They are built from minires's
differentiable operations, so their gradients are those operations' gradients:

    mse:       l = (x - y)^2                         dl/dx = 2 (x - y)
    l1:        l = |x - y|                           dl/dx = sign(x - y)
    smooth l1: l = (x - y)^2 / (2 beta) if |x - y| < beta, else |x - y| - beta / 2
    bce:       l = -w (y log p + (1 - y) log(1 - p))  (log clamped at -100, as PyTorch)
    bce with logits: l = -w (P y log s(x) + (1 - y) log(1 - s(x))), s the sigmoid, computed as
               (1 - y) x + (1 + (P - 1) y) softplus(-x), which never overflows
"""
import numbers

from minires import backend
from minires.arguments import check_choice, check_indices, check_int, check_number, check_tensor
from minires.autograd import Tensor
from minires.functional import arithmetic, selection
from minires.functional import reduction as reductions

REDUCTIONS = ("mean", "sum", "none")


def _reduced(name, losses, how):
    if how not in REDUCTIONS:
        raise ValueError(f"{name}(): reduction must be one of {REDUCTIONS}, got {how!r}")
    if how == "none":
        return losses
    return reductions.mean(losses) if how == "mean" else reductions.sum(losses)


def _checked_target(name, input, target, reduction):
    """The target as a Tensor of input's shape, after checking input and reduction."""
    check_tensor(f"{name}()", "input", input)
    check_choice(f"{name}()", "reduction", reduction, REDUCTIONS)
    if not isinstance(target, (list, tuple)):
        check_tensor(f"{name}()", "target", target, floating=False)
    target = target if isinstance(target, Tensor) else Tensor(backend.to_device(target), dtype=input.dtype)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"{name}(): target of shape {tuple(target.shape)} for input of shape "
                         f"{tuple(input.shape)}; give them the same shape")
    return target


def _check_weight(name, argument, weight, input):
    """A per-element weight: a number, or a Tensor that broadcasts to input's shape."""
    if weight is None or isinstance(weight, numbers.Number):
        return
    shape, input_shape = tuple(check_tensor(f"{name}()", argument, weight).shape), tuple(input.shape)
    if len(shape) > len(input_shape) or any(w not in (1, x) for w, x in zip(shape[::-1], input_shape[::-1])):
        raise ValueError(f"{name}(): {argument} of shape {shape} does not broadcast to input's shape "
                         f"{input_shape}")


def mse_loss(input, target, reduction="mean"):
    """PyTorch's ``F.mse_loss``: (input - target)^2, reduced."""
    difference = input - _checked_target("mse_loss", input, target, reduction)
    return _reduced("mse_loss", difference * difference, reduction)


def l1_loss(input, target, reduction="mean"):
    """PyTorch's ``F.l1_loss``: |input - target|, reduced."""
    return _reduced("l1_loss", arithmetic.abs(input - _checked_target("l1_loss", input, target, reduction)),
                    reduction)


def smooth_l1_loss(input, target, reduction="mean", beta=1.0):
    """PyTorch's ``F.smooth_l1_loss``: quadratic below ``beta``, linear above (Huber / beta)."""
    check_number("smooth_l1_loss()", "beta", beta, low=0)
    difference = arithmetic.abs(input - _checked_target("smooth_l1_loss", input, target, reduction))
    if beta == 0:
        return _reduced("smooth_l1_loss", difference, reduction)
    losses = selection.where(difference < beta, difference * difference * (0.5 / beta),
                             difference - 0.5 * beta)
    return _reduced("smooth_l1_loss", losses, reduction)


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """PyTorch's ``F.binary_cross_entropy`` of probabilities ``input`` in [0, 1]."""
    target = _checked_target("binary_cross_entropy", input, target, reduction)
    _check_weight("binary_cross_entropy", "weight", weight, input)
    log_p = arithmetic.clamp(arithmetic.log(input), min=-100)           # as PyTorch: never -inf
    log_q = arithmetic.clamp(arithmetic.log(1 - input), min=-100)
    losses = -(target * log_p + (1 - target) * log_q)
    return _reduced("binary_cross_entropy", losses if weight is None else losses * weight, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    """PyTorch's ``F.binary_cross_entropy_with_logits``: sigmoid and binary cross entropy in one,
    stable for any logit; ``pos_weight`` weighs the positive term (per class)."""
    target = _checked_target("binary_cross_entropy_with_logits", input, target, reduction)
    _check_weight("binary_cross_entropy_with_logits", "weight", weight, input)
    _check_weight("binary_cross_entropy_with_logits", "pos_weight", pos_weight, input)
    softplus_minus_x = _softplus(-input)                                  # -log sigmoid(x)
    if pos_weight is None:
        losses = (1 - target) * input + softplus_minus_x
    else:
        losses = (1 - target) * input + (1 + (pos_weight - 1) * target) * softplus_minus_x
    return _reduced("binary_cross_entropy_with_logits",
                    losses if weight is None else losses * weight, reduction)


def _softplus(x):
    """log(1 + e^x), stable: max(x, 0) + log1p(e^-|x|)."""
    return selection.maximum(x, Tensor(backend.get_array_module().zeros((), dtype=x.dtype))) \
        + arithmetic.log1p(arithmetic.exp(-arithmetic.abs(x)))


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """PyTorch's ``F.nll_loss`` of log-probabilities: l_n = -w[t_n] input[n, t_n].

    input: (N, C) (or (C,) for one example); target: (N,) class indices (or a 0-d one);
    weight: (C,) or None. Rows whose target is ``ignore_index`` give 0 and, with
    "mean", the sum is divided by the kept rows' sum of w[t_n], as PyTorch does.
    """
    xp = backend.get_array_module()
    where = "nll_loss()"
    check_tensor(where, "input", input)
    check_int(where, "ignore_index", ignore_index)
    check_choice(where, "reduction", reduction, REDUCTIONS)
    target = target.data if isinstance(target, Tensor) else backend.to_device(target)
    if input.ndim == 1:
        input, target = input.reshape((1, -1)), target.reshape(1)
    if input.ndim != 2 or target.shape != input.shape[:1]:
        raise ValueError(f"nll_loss(): expected input (N, C) and target (N,), got "
                         f"{tuple(input.shape)} and {tuple(target.shape)}")
    C = input.shape[1]
    if weight is not None and tuple(check_tensor(where, "weight", weight).shape) != (C,):
        raise ValueError(f"{where}: weight must be (C,) = ({C},), one per class, got shape "
                         f"{tuple(weight.shape)}")
    kept = target != ignore_index                                        # (N,)
    safe = check_indices(where, "target", xp.where(kept, target, 0), C)  # (N,) an index everywhere
    w = xp.ones(input.shape[1], dtype=input.dtype) if weight is None else \
        (weight.data if isinstance(weight, Tensor) else backend.to_device(weight)).astype(input.dtype)
    row_weight = w[safe] * kept                                          # (N,) 0 where ignored
    picked = selection.gather(input, 1, safe.reshape(-1, 1)).reshape((-1,))   # (N,) input[n, t_n]
    losses = -picked * Tensor(row_weight)
    if reduction == "mean":       # over the kept rows' weights, not over N
        return reductions.sum(losses) / Tensor(row_weight.sum())
    return _reduced("nll_loss", losses, reduction)
