"""Layer normalisation: each example normalised over its last dimensions (Ba et al., 2016).

M rows (the leading dimensions, flattened), D = prod(normalized_shape) entries per row:

    mu = mean(x),  var = mean((x - mu)^2)          per row (the biased variance, as PyTorch)
    x_hat = (x - mu) / sqrt(var + eps),   y = x_hat * w + b        w, b: normalized_shape

Backward, per row, with g = gy * w (the gradient reaching x_hat):

    gx = (g - mean(g) - x_hat * mean(g * x_hat)) / sqrt(var + eps)
    gw = sum over rows of gy * x_hat,   gb = sum over rows of gy
"""
import math

from minires import backend
from minires.arguments import check_int, check_number, check_tensor
from minires.autograd import Function


class LayerNorm(Function):
    """x: (*, *normalized_shape) -> y: x's shape; w, b: normalized_shape (optional)."""

    def __init__(self, D, eps):
        self.D, self.eps = D, eps

    def forward(self, x, w=None, b=None):
        xp = backend.get_array_module()
        rows = x.reshape(-1, self.D)                                        # (M, D)
        mu = rows.mean(axis=1, keepdims=True)                               # (M, 1)
        centred = rows - mu                                                 # (M, D)
        self.inv_std = 1.0 / xp.sqrt((centred * centred).mean(axis=1, keepdims=True) + self.eps)  # (M, 1)
        self.x_hat = centred * self.inv_std                                 # (M, D), kept for backward
        self.x_shape, self.w = x.shape, w
        y = self.x_hat.reshape(x.shape)
        if w is not None:
            y = y * w
        return y if b is None else y + b

    def backward(self, gy):
        rows = gy.reshape(-1, self.D)                                       # (M, D)
        g = rows if self.w is None else rows * self.w.reshape(1, -1)         # (M, D)
        gx = (g - g.mean(axis=1, keepdims=True)
              - self.x_hat * (g * self.x_hat).mean(axis=1, keepdims=True)) * self.inv_std  # (M, D)
        grads = [gx.reshape(self.x_shape)]
        if self.w is not None:
            grads.append((rows * self.x_hat).sum(axis=0).reshape(self.w.shape))   # normalized_shape
        if len(self.needs_input_grad) == 3:
            grads.append(rows.sum(axis=0).reshape(self.w.shape))                   # normalized_shape
        return tuple(grads)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """PyTorch's ``F.layer_norm`` over the last ``len(normalized_shape)`` dimensions."""
    where = "layer_norm()"
    check_tensor(where, "input", input)
    shape = normalized_shape if isinstance(normalized_shape, (tuple, list)) else (normalized_shape,)
    shape = tuple(check_int(where, "normalized_shape", size, least=1) for size in shape)
    for argument, value in (("weight", weight), ("bias", bias)):
        if value is not None and tuple(check_tensor(where, argument, value).shape) != shape:
            raise ValueError(f"{where}: {argument} must have normalized_shape {shape}, got shape "
                             f"{tuple(value.shape)}")
    check_number(where, "eps", eps, low=0)
    if tuple(input.shape[input.ndim - len(shape):]) != shape:
        raise ValueError(f"layer_norm(): input of shape {tuple(input.shape)} does not end in "
                         f"normalized_shape {shape}")
    if bias is not None and weight is None:
        raise ValueError("layer_norm(): a bias needs a weight here; pass weight=ones")
    tensors = [t for t in (weight, bias) if t is not None]
    return LayerNorm(math.prod(shape), eps)(input, *tensors)
