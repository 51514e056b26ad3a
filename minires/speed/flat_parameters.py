"""All parameters of an optimizer in one flat array, and their gradients in another.

An update rule is element-wise, so it can run over every parameter at once if
they share one array: a handful of whole-array operations however many
parameters the model has (214 in ResNet50_layer4), instead of a handful per
parameter. On a GPU each operation is a kernel launch: Adam's step is 13
launches instead of 13 x 214 = 2,782. On the CPU the flat arrays can be cut
into cache-sized blocks on every core (``blockwise.py``).

The contract, stated once:
- After ``bind()``, each parameter's ``.data`` is a view into ``data``, and its
  ``.grad`` a view into ``grad`` or None: writing a view writes the flat array,
  and the other way round.
- A ``.grad`` of None means "no gradient this step", as in PyTorch: ``bind()``
  leaves it None and reports it, and the optimizer skips that parameter (its
  slice of ``grad`` holds nothing meaningful).
- Code that *replaces* ``.data`` or ``.grad`` (``zero_grad()`` sets grads to
  None, backward then gives each used parameter a fresh gradient array,
  ``Module.to`` casts) breaks the link; ``bind()`` mends it, copying the new
  values in. The optimizer calls it before every step; it costs two identity
  tests per parameter when nothing was replaced. A cast to another dtype cannot
  be mended (the flat arrays and the optimizer's state keep theirs): ``bind()``
  refuses it, and the model keeps its new dtype.
- So code that *accumulates* into ``.grad`` must do it in place (``grad += g``),
  as ``autograd`` does, and ``load_state_dict`` copies into ``.data`` in place.
- Each parameter's ``grad_slot`` is its view into ``grad``: backward writes a
  parameter's first gradient there rather than into a new array (the layers'
  backward computes it straight into the slot, ``Function.grad_slot``), so after
  ``zero_grad()`` (None) and backward the gradients already sit in the flat array
  with no copy, and ``bind()`` copies nothing (on a GPU: 214 copy kernels a step fewer).
- Each parameter's ``flat_place`` is (a weak reference to its FlatParameters, its index), so
  ``nn.utils.clip_grad_norm_`` can find the one slice of ``grad`` that holds the gradients.
"""
import weakref

from minires import backend


class FlatParameters:
    """The flat ``data`` and ``grad`` arrays (P,) behind a list of parameters.

    Parameter ``i`` occupies ``data[offsets[i]:offsets[i + 1]]`` (and the same slice of ``grad``).
    """

    def __init__(self, params):
        xp = backend.get_array_module()
        self.params = params
        total = sum(p.numel() for p in params)
        self.data = xp.empty(total, dtype=params[0].dtype)       # (P,) every parameter
        self.grad = xp.zeros(total, dtype=params[0].dtype)       # (P,) every gradient
        self.data_views, self.grad_views, self.offsets = [], [], [0]
        for p in params:
            start, stop = self.offsets[-1], self.offsets[-1] + p.numel()
            self.data_views.append(view_like(self.data[start:stop], p.data))
            self.grad_views.append(view_like(self.grad[start:stop], p.data))
            p.grad_slot = self.grad_views[-1]
            p.flat_place = (weakref.ref(self), len(self.offsets) - 1)     # for clip_grad_norm_
            self.offsets.append(stop)
        self.bind()

    def bind(self):
        """Make each parameter's data and grad the views into the flat arrays again (see above).

        Returns:
            a list of bools, one per parameter: True if it has a gradient (``.grad`` is not None)
        """
        for p, data_view in zip(self.params, self.data_views):
            # checked before anything is copied: model.double() after the optimizer was built
            # would otherwise be cast back to the old dtype here without a word
            if p.data is not data_view and p.data.dtype != self.data.dtype:
                raise TypeError(f"optimizer: its parameters were {self.data.dtype} when it was built "
                                f"and one is now {p.data.dtype}; change the model's dtype "
                                f"(model.double()) before building the optimizer")
        has_grad = []
        for p, data_view, grad_view in zip(self.params, self.data_views, self.grad_views):
            if p.data is not data_view:
                data_view[...] = p.data
                p.data = data_view
            if p.grad is not None and p.grad is not grad_view:
                grad_view[...] = p.grad
                p.grad = grad_view
            has_grad.append(p.grad is not None)
        return has_grad

    def zero_grad(self, set_to_none=True):
        """PyTorch's ``zero_grad``: every ``.grad`` to None, or (``set_to_none=False``) to zeros.

        With ``set_to_none=False`` a gradient that is None stays None, as in PyTorch;
        the others are zeroed by one operation on the flat array.
        """
        if set_to_none:
            for p in self.params:
                p.grad = None
        else:
            self.bind()
            self.grad.fill(0)


def view_like(flat, array):
    """``flat`` seen with the shape of ``array`` and the same memory order.

    A conv weight is (OC, C, KH, KW) with channels-last memory (see
    ``nn.layers.Conv2d``); its view into the flat buffer keeps that order, so the
    convolution still reads it without a copy.
    """
    memory_order = sorted(range(array.ndim), key=lambda axis: -array.strides[axis])
    in_memory_order = flat.reshape([array.shape[axis] for axis in memory_order])
    undo_order = sorted(range(array.ndim), key=memory_order.__getitem__)
    return in_memory_order.transpose(undo_order)
