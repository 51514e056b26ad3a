"""Layers and containers with ``torch.nn``'s names."""
from minires.nn import init, parallel, utils
from minires.nn.activations import ELU, GELU, LeakyReLU, Sigmoid, SiLU, Softmax, Softplus, Tanh
from minires.nn.containers import Identity, ModuleDict, ModuleList, ParameterList
from minires.nn.dropout import Dropout
from minires.nn.embedding_layers import Embedding, GroupNorm, LayerNorm
from minires.nn.layers import (
                               AdaptiveAvgPool2d,
                               AdaptiveMaxPool2d,
                               AvgPool2d,
                               BatchNorm1d,
                               BatchNorm2d,
                               Conv2d,
                               ConvTranspose2d,
                               CrossEntropyLoss,
                               Flatten,
                               Linear,
                               MaxPool2d,
                               MaxUnpool2d,
                               ReLU,
                               Sequential,
                               Unflatten,
                               Upsample,
)
from minires.nn.losses import BCELoss, BCEWithLogitsLoss, L1Loss, MSELoss, NLLLoss, SmoothL1Loss
from minires.nn.module import Module, Parameter
from minires.nn.sync_batchnorm import SyncBatchNorm

__all__ = ["AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "AvgPool2d", "BCELoss", "BCEWithLogitsLoss",
           "BatchNorm1d", "BatchNorm2d", "Conv2d", "ConvTranspose2d", "CrossEntropyLoss", "Dropout",
           "ELU", "Embedding", "Flatten", "GELU", "GroupNorm", "Identity", "L1Loss", "LayerNorm",
           "LeakyReLU", "Linear", "MSELoss", "MaxPool2d", "MaxUnpool2d", "Module", "ModuleDict",
           "ModuleList", "NLLLoss", "Parameter", "ParameterList", "ReLU", "Sequential", "SiLU",
           "Sigmoid", "SmoothL1Loss", "Softmax", "Softplus", "SyncBatchNorm", "Tanh", "Unflatten",
           "Upsample", "init", "parallel", "utils"]
