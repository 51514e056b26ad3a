"""In-place operations, PyTorch's trailing underscore: ``x.add_(y)``, ``x.mul_(2)``, ``x.zero_()``,
``x.fill_(v)``, ``x.clamp_(lo, hi)``, ``x.copy_(src)``, ``x.bernoulli_(p)``.

Each overwrites x's memory (so every view of x sees the change) and returns x.
With autograd, it is the out-of-place operation on a copy of x's old values,
written back: x's ``creator`` becomes that operation, whose backward reads the
copy, not the overwritten memory. The change counts in x's version
(``autograd.VersionCounter``), as in-place ``relu`` does, so a backward that
saved the old values of x refuses to use the new ones.

Refused, as in PyTorch or where minires cannot follow it: a leaf that requires
grad (outside ``no_grad``), the copy a ``view`` had to make (the write would not
reach its input), and, with autograd, a view in the graph (its base's gradient
would miss the change).
"""
from minires import backend, seeding
from minires.autograd import Tensor, is_grad_enabled, refuse_write_to_copied_view
from minires.functional import arithmetic, casting, selection


def _overwrite(name, x, compute):
    """Write ``compute(old)`` into ``x``, ``old`` being x's values before (a Tensor); returns x."""
    recording = is_grad_enabled()
    if recording and x.requires_grad and x.creator is None:
        raise RuntimeError(f"{name} on a leaf tensor that requires grad would overwrite the values "
                           "its gradient is for; do it under minires.no_grad(), or out of place")
    refuse_write_to_copied_view(name, x)
    if recording and x.requires_grad and x.creator.output_may_view:
        raise RuntimeError(f"{name} on a view ({type(x.creator).__name__}) of a tensor in the graph: "
                           "the gradient of the tensor it views would miss the change; use the "
                           "out-of-place form")
    old = x
    if recording:
        old = Tensor(x.data.copy())         # the values a backward may read, kept from the write
        old.requires_grad, old.creator = x.requires_grad, x.creator
    y = compute(old)
    if y.dtype.kind == "f" and x.dtype.kind != "f":
        raise RuntimeError(f"{name}: the result is {y.dtype}, which cannot be written into a "
                           f"{x.dtype} tensor (as in PyTorch)")
    x.data[...] = y.data
    x._version_counter.value += 1
    if y.creator is not None:
        x.creator, x.requires_grad = y.creator, True
    return x


def add_(x, other, alpha=1):
    return _overwrite("add_", x, lambda old: arithmetic.add(old, other if alpha == 1 else
                                                            arithmetic.mul(other, alpha)))


def sub_(x, other, alpha=1):
    return _overwrite("sub_", x, lambda old: arithmetic.sub(old, other if alpha == 1 else
                                                            arithmetic.mul(other, alpha)))


def mul_(x, other):
    return _overwrite("mul_", x, lambda old: arithmetic.mul(old, other))


def div_(x, other):
    return _overwrite("div_", x, lambda old: arithmetic.div(old, other))


def clamp_(x, min=None, max=None):
    return _overwrite("clamp_", x, lambda old: arithmetic.clamp(old, min, max))


def _replaced(new, old):
    """``new`` (broadcast) in place of ``old``, in the graph: the gradient goes to new, 0 to old."""
    everywhere = backend.get_array_module().ones((), dtype=bool)
    return selection.Where(everywhere)(new, old)


def fill_(x, value):
    """Every element to ``value``; with autograd, the old values get a zero gradient."""
    return _overwrite("fill_", x, lambda old: _replaced(Tensor(value, dtype=x.dtype), old))


def zero_(x):
    return fill_(x, 0)


def copy_(x, src):
    """The values of ``src`` (broadcast to x's shape, cast to x's dtype); the gradient goes to src."""
    source = src if isinstance(src, Tensor) else Tensor(backend.to_device(src))
    return _overwrite("copy_", x, lambda old: _replaced(casting.to(source, x.dtype), old))


def bernoulli_(x, p=0.5):
    """Each element to 1 with probability ``p`` (a number, or a Tensor of x's shape), else 0; with
    autograd, the old values get a zero gradient. Drawn on the host from ``minires.manual_seed``'s
    generator, then moved.
    """
    probability = backend.to_host(p.data) if isinstance(p, Tensor) else p
    draws = Tensor(backend.to_device(seeding.init_generator().random(x.shape) < probability))
    return _overwrite("bernoulli_", x, lambda old: _replaced(casting.to(draws, x.dtype), old))
