"""Differentiable functions with ``torch.nn.functional``'s names and arguments.

    import minires.functional as F
    y = F.relu(F.conv2d(x, weight, bias, stride=1, padding=1))

One idea per file: ``arithmetic``, ``reduction``, ``shaping``, ``linear``,
``comparison``, ``joining`` and ``casting`` (dtypes) are the general operations
(also Tensor's operators, see ``tensor_methods``); ``conv``, ``pool``, ``norm``,
``activation`` and ``loss`` the network's layers, on channels-last images
(``windows``, ``rows``).
"""
from minires.functional import tensor_methods  # noqa: F401  (gives Tensor its operators)
from minires.functional.activation import leaky_relu, relu, sigmoid, softmax, tanh
from minires.functional.conv import conv2d
from minires.functional.conv_transpose import conv_transpose2d
from minires.functional.dropout import dropout
from minires.functional.embedding import embedding, one_hot
from minires.functional.group_norm import group_norm
from minires.functional.layer_norm import layer_norm
from minires.functional.linear import linear
from minires.functional.loss import cross_entropy, log_softmax
from minires.functional.norm import batch_norm
from minires.functional.padding import pad
from minires.functional.pointwise_loss import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    l1_loss,
    mse_loss,
    nll_loss,
    smooth_l1_loss,
)
from minires.functional.pool import (
    adaptive_avg_pool2d,
    adaptive_max_pool2d,
    avg_pool2d,
    max_pool2d,
    max_unpool2d,
)
from minires.functional.shaping import flatten
from minires.functional.smooth_activation import elu, gelu, silu, softplus
from minires.functional.upsampling import interpolate

__all__ = ["adaptive_avg_pool2d", "adaptive_max_pool2d", "avg_pool2d", "batch_norm",
           "binary_cross_entropy", "binary_cross_entropy_with_logits", "conv2d", "conv_transpose2d",
           "cross_entropy", "dropout", "elu", "embedding", "flatten", "gelu", "group_norm",
           "interpolate", "l1_loss", "layer_norm", "leaky_relu", "linear", "log_softmax", "max_pool2d",
           "max_unpool2d", "mse_loss", "nll_loss", "one_hot", "pad", "relu", "sigmoid", "silu",
           "smooth_l1_loss", "softmax", "softplus", "tanh"]
