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
from minires.functional.dropout import dropout
from minires.functional.linear import linear
from minires.functional.loss import cross_entropy, log_softmax
from minires.functional.norm import batch_norm
from minires.functional.pool import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from minires.functional.shaping import flatten

__all__ = ["adaptive_avg_pool2d", "avg_pool2d", "batch_norm", "conv2d", "cross_entropy", "dropout",
           "flatten", "leaky_relu", "linear", "log_softmax", "max_pool2d", "relu", "sigmoid",
           "softmax", "tanh"]
