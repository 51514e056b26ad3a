"""Dropout: in training, zero each element with probability p and scale the rest by 1 / (1 - p).

    y = x * mask,   mask = keep / (1 - p),   keep ~ Bernoulli(1 - p) per element

so the expected value of y is x, and evaluation (no dropout) needs no rescaling.
The backward is the same product: gx = gy * mask.

The masks come from a generator of the active backend, so on a GPU they are drawn
there: a host generator would copy every mask to the device, one transfer as
large as the activation, per layer and step. It is seeded from the generator of
``minires.manual_seed`` (which it follows when that is reseeded or the backend
changes), so a seed repeats a run; NumPy and CuPy draw different masks from it.
"""
from minires import backend, seeding
from minires.arguments import check_bool, check_number, check_tensor
from minires.autograd import Function, refuse_write_to_copied_view


class Dropout(Function):
    def __init__(self, mask, inplace=False):
        self.mask, self.inplace = mask, inplace     # mask: 0 or 1 / (1 - p), kept for backward

    def forward(self, x):
        xp = backend.get_array_module()
        return xp.multiply(x, self.mask, out=x if self.inplace else None)

    def backward(self, gy):
        return gy * self.mask


def dropout(input, p=0.5, training=True, inplace=False):
    """Zero each element of ``input`` with probability ``p`` and scale the rest by 1 / (1 - p).

    Args:
        input: a Tensor of any shape (float32 or float64).
        p: the probability of zeroing an element, in [0, 1].
        training: without it (evaluation) the input comes back unchanged.
        inplace: overwrite the input's array instead of making a new one.
    Returns:
        a Tensor of the input's shape (the input itself when not training or p is 0).
    """
    check_tensor("dropout", "input", input)
    check_number("dropout", "p", p, low=0, high=1)
    check_bool("dropout", "training", training)
    check_bool("dropout", "inplace", inplace)
    if not training or p == 0:
        return input
    if inplace and input.requires_grad and input.creator is None:
        raise RuntimeError("dropout(inplace=True) on a leaf tensor that requires grad would "
                           "overwrite the values its gradient is for; use inplace=False")
    if inplace:
        refuse_write_to_copied_view("dropout(inplace=True)", input)
    xp = backend.get_array_module()
    keep = _generator().random(input.shape, dtype=xp.float32) >= p     # True with probability 1 - p
    scale = 0.0 if p == 1 else 1.0 / (1.0 - p)
    return Dropout(keep.astype(input.dtype) * scale, inplace)(input)


class _MaskGenerator:
    generator = None
    seeded_from = None      # (the manual_seed generator, the array module) it was made from


_masks = _MaskGenerator()


def _generator():
    """The active backend's generator of masks, made anew after ``manual_seed`` or a backend switch."""
    source = (seeding.init_generator(), backend.get_array_module())
    if source != _masks.seeded_from:
        seed = int(source[0].integers(2 ** 63))
        _masks.generator, _masks.seeded_from = source[1].random.default_rng(seed), source
    return _masks.generator
