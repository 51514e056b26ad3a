"""A layer-by-layer table of output shapes and parameter counts.

    minires.summary(model, (3, 32, 32))

For every convolution and pooling layer it also shows the output-size formula
at work, D2 = (D1 + 2P - K) // S + 1, with the layer's own numbers (and with
the dilation D, D2 = (D1 + 2P - D*(K - 1) - 1) // S + 1; with ceil_mode, ceil(...)).
"""
import math

import numpy

from minires.arguments import conv_padding, output_size, pair
from minires.autograd import Tensor, no_grad


def _formula(module, input_shape):
    """'(32 + 2*3 - 7) // 2 + 1 = 16' for the height of a conv or pooling layer, else ''."""
    if not hasattr(module, "kernel_size") or len(input_shape) != 4:
        return ""
    K = pair(module.kernel_size)[0]
    S = pair(module.stride or module.kernel_size)[0]
    D = pair(getattr(module, "dilation", 1))[0]
    ceil_mode = getattr(module, "ceil_mode", False)
    H = input_shape[2]
    if isinstance(module.padding, str):         # a convolution's "same" or "valid"
        (P, _), (E, _) = conv_padding(lambda: "", module.padding, (K, K), (S, S), (D, D))
    else:
        P, E = pair(module.padding)[0], 0
    padding = f"2*{P}" + (f" + {E}" if E else "")       # E: 'same' puts an odd one at the bottom
    span = f"{K}" if D == 1 else f"{D}*({K} - 1) - 1"
    out = output_size(H + E, K, S, P, D, ceil_mode)
    if not ceil_mode:
        return f"({H} + {padding} - {span}) // {S} + 1 = {out}"
    # PyTorch drops a last window that would start in the right padding
    dropped = " - 1" if out < math.ceil((H + 2 * P - D * (K - 1) - 1) / S) + 1 else ""
    return f"ceil(({H} + {padding} - {span}) / {S}) + 1{dropped} = {out}"


def summary(model, input_shape, depth=2, batch_size=1, print_fn=print):
    """Print, for each module down to ``depth``, its output shape and parameter count.

    Args:
        model: a Module.
        input_shape: one example's shape, e.g. (3, 32, 32).
        depth: how many levels of submodules to list (1: the model's children).
        batch_size: the N of the dummy batch pushed through the model.
    Returns:
        the rows as a list of dicts (name, type, input_shape, output_shape, parameters, formula)
        and the totals as a dict.
    """
    if not hasattr(model, "named_modules"):
        raise TypeError(f"summary: model must be a Module, got {type(model).__name__}")
    if not (isinstance(input_shape, (tuple, list)) and input_shape
            and all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in input_shape)):
        raise TypeError(f"summary: input_shape must be one example's shape, a tuple of ints >= 1 "
                        f"such as (3, 32, 32), got {input_shape!r}")
    for argument, value in (("depth", depth), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"summary: {argument} must be an int >= 1, got {value!r}")
    seen = {}

    def record(module, inputs, output):
        seen[id(module)] = (tuple(inputs[0].shape), tuple(output.shape))

    listed = [(name, module) for name, module in model.named_modules()
              if name and name.count(".") < depth]
    handles = [module.register_forward_hook(record) for _, module in listed]
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            model(Tensor(numpy.zeros((batch_size, *input_shape), dtype=numpy.float32)))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()

    rows = []
    for name, module in listed:
        in_shape, out_shape = seen.get(id(module), ((), ()))
        rows.append({"name": name, "type": type(module).__name__, "input_shape": in_shape,
                     "output_shape": out_shape, "parameters": module.num_parameters(),
                     "formula": _formula(module, in_shape)})
    totals = {"parameters": model.num_parameters(),
              "state_dict_entries": len(model.state_dict())}

    print_fn(f"{'layer':<34}{'type':<19}{'output shape':<22}{'params':>12}  H formula")
    for row in rows:
        indent = "  " * row["name"].count(".")
        print_fn(f"{indent + row['name']:<34}{row['type']:<19}{str(row['output_shape']):<22}"
                 f"{row['parameters']:>12,}  {row['formula']}")
    print_fn(f"total parameters: {totals['parameters']:,}; "
             f"state-dict entries: {totals['state_dict_entries']}")
    return rows, totals
