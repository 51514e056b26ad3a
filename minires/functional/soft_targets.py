"""Cross entropy beyond (N, K) logits and class indices, as PyTorch's ``F.cross_entropy`` takes it:
class-probability targets (mixup, distillation) and (N, C, d1, ...) inputs (a class per pixel).

Probability targets q of the input's shape, with e the label smoothing and w the class weights:

    loss_n = -sum_c w_c q'_nc log softmax(x_n)_c,   q' = (1 - e) q + e / C

and "mean" divides by the number of examples (N d1 ...), not by weights, as PyTorch.
(N, C, d1, ...) inputs with (N, d1, ...) class indices are (N d1 ..., C) rows, one per
position, handed to ``loss.cross_entropy``; "none" gives the losses back as (N, d1, ...).
Both are built from differentiable operations, so the gradients are theirs.
"""
from minires import backend
from minires.autograd import Tensor
from minires.functional import reduction as reductions
from minires.functional.shaping import reshape, transpose


def is_probability_target(input, target):
    """Whether ``target`` holds class probabilities (floats of the input's shape), not indices."""
    return target.dtype.kind == "f" and tuple(target.shape) == tuple(input.shape)


def cross_entropy_of_probabilities(input, target, weight, reduction, label_smoothing):
    """input: (N, C, *) logits, target: the same shape of probabilities -> the losses, reduced."""
    C = input.shape[1]
    q = Tensor(target if label_smoothing == 0 else target * (1 - label_smoothing) + label_smoothing / C)
    terms = q * input.log_softmax(1)                                       # (N, C, *)
    if weight is not None:
        w = backend.to_device(weight.data if isinstance(weight, Tensor) else weight, dtype=input.dtype)
        terms = terms * Tensor(w.reshape((1, C) + (1,) * (input.ndim - 2)))
    losses = -reductions.sum(terms, 1)                                     # (N, *)
    if reduction == "none":
        return losses
    return reductions.mean(losses) if reduction == "mean" else reductions.sum(losses)


def cross_entropy_per_position(cross_entropy, input, target, weight, reduction, **options):
    """input: (N, C, d1, ...), target: (N, d1, ...) class indices: one row per position."""
    expected = (input.shape[0],) + tuple(input.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(f"cross_entropy: an input of shape {tuple(input.shape)}, (N, C, d1, ...), needs "
                         f"a target of shape {expected}, (N, d1, ...), got {tuple(target.shape)}")
    C = input.shape[1]
    last = list(range(input.ndim))
    rows = reshape(transpose(input, [0, *last[2:], 1]), (-1, C))          # (N d1 ..., C)
    losses = cross_entropy(rows, target.reshape(-1), weight, reduction=reduction, **options)
    return reshape(losses, (input.shape[0],) + tuple(input.shape[2:])) if reduction == "none" else losses
