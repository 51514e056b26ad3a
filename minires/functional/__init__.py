"""Differentiable functions with ``torch.nn.functional``'s names and arguments.

    import minires.functional as F
    y = F.relu(F.conv2d(x, weight, bias, stride=1, padding=1))
"""
from minires.functional.basic import flatten, linear, relu
from minires.functional.conv import conv2d
from minires.functional.loss import cross_entropy, log_softmax
from minires.functional.norm import batch_norm
from minires.functional.pool import avg_pool2d, max_pool2d

__all__ = ["avg_pool2d", "batch_norm", "conv2d", "cross_entropy", "flatten", "linear",
           "log_softmax", "max_pool2d", "relu"]
