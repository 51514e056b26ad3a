"""Gradient clipping, ``torch.nn.utils``'s: ``clip_grad_norm_`` and ``clip_grad_value_``.

    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    optimizer.step()

Both change the parameters' ``.grad`` in place (so gradients that are views of an
optimizer's flat buffer stay views) and skip parameters without a gradient. Where
the gradients already lie in one flat buffer (``speed/flat_parameters.py``), one
pass over that buffer would do; here it is one pass per parameter, as PyTorch's
foreach-free path.
"""
import math
import numbers

from minires import backend
from minires.arguments import check_bool, check_number
from minires.autograd import Tensor


def _gradients(where, parameters):
    """The gradients of ``parameters`` (a Tensor or an iterable of them) that have one."""
    if not isinstance(parameters, Tensor) and not hasattr(parameters, "__iter__"):
        raise TypeError(f"{where}: parameters must be a Tensor or an iterable of Tensors, got "
                        f"{type(parameters).__name__}")
    parameters = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for index, p in enumerate(parameters):
        if not isinstance(p, Tensor):
            raise TypeError(f"{where}: parameters[{index}] must be a Tensor, got {type(p).__name__}")
    return [p.grad for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale all gradients together so that their joint ``norm_type`` norm is at most ``max_norm``.

    The norm is that of all gradients as one vector (``inf``: the largest |g|); the
    factor is max_norm / (norm + 1e-6), applied only when it is below 1, as PyTorch.
    Returns the norm before clipping, as a 0-d Tensor.
    """
    xp = backend.get_array_module()
    check_number("clip_grad_norm_()", "max_norm", max_norm, low=0)
    if norm_type != "inf" and (isinstance(norm_type, bool) or not isinstance(norm_type, numbers.Real)
                               or math.isnan(norm_type)):
        raise TypeError(f"clip_grad_norm_(): norm_type must be a number (inf or 'inf' too), got "
                        f"{norm_type!r}")
    check_bool("clip_grad_norm_()", "error_if_nonfinite", error_if_nonfinite)
    grads = _gradients("clip_grad_norm_()", parameters)
    if not grads:
        return Tensor(xp.zeros((), dtype=xp.float32))
    norm_type = float(norm_type)
    if math.isinf(norm_type):
        total = xp.stack([xp.abs(g).max() for g in grads]).max()
    else:
        total = xp.stack([(xp.abs(g) ** norm_type).sum() for g in grads]).sum() ** (1.0 / norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(f"clip_grad_norm_(): the total norm of order {norm_type} of the gradients "
                           "is non-finite; pass error_if_nonfinite=False to clip anyway")
    factor = xp.minimum(max_norm / (total + 1e-6), 1.0)     # on the device: no read of the norm
    for g in grads:
        g *= factor.astype(g.dtype)
    return Tensor(total)


def clip_grad_value_(parameters, clip_value):
    """Clamp every gradient element into [-clip_value, clip_value], in place."""
    xp = backend.get_array_module()
    check_number("clip_grad_value_()", "clip_value", clip_value, low=0)
    for g in _gradients("clip_grad_value_()", parameters):
        xp.clip(g, -clip_value, clip_value, out=g)
