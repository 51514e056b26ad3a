"""All parameters of an optimizer in one flat array, and their gradients in another.

An update rule is element-wise, so it can run over every parameter at once if
they share one array: a handful of whole-array operations however many
parameters the model has (214 in ResNet50_layer4), instead of a handful per
parameter. On a GPU each operation is a kernel launch: Adam's step is 13
launches instead of 13 x 214 = 2,782. On the CPU the flat arrays can be cut
into cache-sized blocks on every core (``blockwise.py``).

The contract, stated once:
- After ``bind()``, each parameter's ``.data`` and ``.grad`` are views into
  ``data`` and ``grad``: writing either writes the flat array, and the other way round.
- Code that *replaces* ``.data`` or ``.grad`` (``module.zero_grad()`` sets grads
  to None, ``Module.to`` casts) breaks the link; ``bind()`` mends it, copying the
  new values in. The optimizer calls it before every step and ``zero_grad``;
  it costs two identity tests per parameter when nothing was replaced.
- So code that *accumulates* into ``.grad`` must do it in place (``grad += g``),
  as ``autograd`` does, and ``load_state_dict`` copies into ``.data`` in place.
"""
from minires import backend


class FlatParameters:
    """The flat ``data`` and ``grad`` arrays (P,) behind a list of parameters."""

    def __init__(self, params):
        xp = backend.get_array_module()
        self.params = params
        total = sum(p.numel() for p in params)
        self.data = xp.empty(total, dtype=params[0].dtype)       # (P,) every parameter
        self.grad = xp.zeros(total, dtype=params[0].dtype)       # (P,) every gradient
        self.data_views, self.grad_views, offset = [], [], 0
        for p in params:
            self.data_views.append(_view_like(self.data[offset:offset + p.numel()], p.data))
            self.grad_views.append(_view_like(self.grad[offset:offset + p.numel()], p.data))
            offset += p.numel()
        self.bind()

    def bind(self):
        """Make each parameter's data and grad the views into the flat arrays again (see above)."""
        for p, data_view, grad_view in zip(self.params, self.data_views, self.grad_views):
            if p.data is not data_view:
                data_view[...] = p.data
                p.data = data_view
            if p.grad is not grad_view:
                if p.grad is None:
                    grad_view[...] = 0
                else:
                    grad_view[...] = p.grad
                p.grad = grad_view

    def zero_grad(self):
        """Every gradient to zero: one operation on the flat array."""
        self.bind()
        self.grad.fill(0)


def _view_like(flat, array):
    """``flat`` seen with the shape of ``array`` and the same memory order.

    A conv weight is (OC, C, KH, KW) with channels-last memory (see
    ``nn.layers.Conv2d``); its view into the flat buffer keeps that order, so the
    convolution still reads it without a copy.
    """
    memory_order = sorted(range(array.ndim), key=lambda axis: -array.strides[axis])
    in_memory_order = flat.reshape([array.shape[axis] for axis in memory_order])
    undo_order = sorted(range(array.ndim), key=memory_order.__getitem__)
    return in_memory_order.transpose(undo_order)
