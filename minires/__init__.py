"""minires: a small deep-learning library on NumPy, with CuPy as a drop-in GPU backend.

    import minires
    import minires.functional as F
    from minires import nn, optim

    model = minires.models.ResNet50_layer4()
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    loss = F.cross_entropy(model(minires.Tensor(images)), labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()

The dtype names (``minires.float32``, ``int64``, ``bool``, ...) are PyTorch's; they are
left out of ``__all__`` so that ``from minires import *`` hides no builtin.

Importing minires changes nothing outside it: the speed settings of the whole
process (``minires.speed``) are the caller's to switch on.
"""
from minires import distributed, functional, models, nn, optim, speed, viz
from minires.autograd import Function, Tensor, backward, is_grad_enabled, no_grad
from minires.backend import Device as device
from minires.backend import get_backend, set_backend, to_device, to_host
from minires.checkpoint import load_checkpoint, save_checkpoint
from minires.dtypes import *  # noqa: F403 (minires.float32, minires.int64, ...)
from minires.errors import ShapeError
from minires.factories import (
    arange,
    empty,
    eye,
    full,
    full_like,
    linspace,
    ones,
    ones_like,
    rand,
    randint,
    randn,
    tensor,
    zeros,
    zeros_like,
)
from minires.functional.arithmetic import log1p, square
from minires.functional.einsum import einsum
from minires.functional.joining import cat, chunk, split, stack
from minires.functional.ordering import argsort, sort, topk
from minires.functional.reduction import cumsum, logsumexp, norm, prod, std, var
from minires.functional.rounding import (
    ceil,
    floor,
    floor_divide,
    remainder,
    round,  # noqa: F401  (not in __all__: it would hide the builtin)
    sign,
)
from minires.functional.selection import (
    gather,
    index_select,
    masked_fill,
    maximum,
    minimum,
    scatter,
    scatter_add,
    where,
)
from minires.functional.shaping import clone, flip, roll, tril, triu
from minires.functional.trigonometry import cos, sin
from minires.gradcheck import GradcheckError, gradcheck
from minires.seeding import manual_seed
from minires.speed import profiler
from minires.summary import summary
from minires.torch_format import load_torch_optimizer_state, load_torch_state_dict, save_torch_state_dict

__all__ = [
    "Function", "GradcheckError", "ShapeError", "Tensor", "arange", "argsort", "backward", "cat", "ceil",
    "chunk", "clone", "cos", "cumsum", "device", "distributed", "einsum", "empty", "eye", "flip",
    "floor", "floor_divide", "full", "full_like", "functional", "gather", "get_backend", "gradcheck",
    "index_select", "is_grad_enabled", "linspace", "load_checkpoint", "load_torch_optimizer_state",
    "load_torch_state_dict", "log1p",
    "logsumexp", "manual_seed", "masked_fill", "maximum", "minimum", "models", "nn", "no_grad", "norm",
    "ones", "ones_like", "optim", "prod", "profiler", "rand", "randint", "randn", "remainder", "roll",
    "save_checkpoint", "save_torch_state_dict", "scatter", "scatter_add", "set_backend", "sign", "sin",
    "sort", "speed", "split", "square", "stack", "std", "summary", "tensor", "to_device", "to_host",
    "topk", "tril", "triu", "var", "viz", "where", "zeros", "zeros_like",
]
