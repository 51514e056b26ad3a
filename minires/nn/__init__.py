"""Layers and containers with ``torch.nn``'s names."""
from minires.nn import init, parallel
from minires.nn.activations import LeakyReLU, Sigmoid, Softmax, Tanh
from minires.nn.containers import Identity, ModuleList
from minires.nn.dropout import Dropout
from minires.nn.layers import (
                               AdaptiveAvgPool2d,
                               AvgPool2d,
                               BatchNorm1d,
                               BatchNorm2d,
                               Conv2d,
                               CrossEntropyLoss,
                               Flatten,
                               Linear,
                               MaxPool2d,
                               ReLU,
                               Sequential,
)
from minires.nn.module import Module, Parameter
from minires.nn.sync_batchnorm import SyncBatchNorm

__all__ = ["AdaptiveAvgPool2d", "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "Conv2d",
           "CrossEntropyLoss", "Dropout", "Flatten", "Identity", "LeakyReLU", "Linear",
           "MaxPool2d", "Module", "ModuleList", "Parameter", "ReLU", "Sequential", "Sigmoid",
           "Softmax", "SyncBatchNorm", "Tanh", "init", "parallel"]
