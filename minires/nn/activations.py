"""Activation functions as modules, each a thin wrapper over its function in ``minires.functional``.

(``ReLU``, the course network's, lives in ``layers.py``.)
"""
from minires import functional as F
from minires.arguments import check_int, check_number
from minires.nn.module import Module


class Sigmoid(Module):
    """1 / (1 + exp(-x)) element-wise, any shape."""

    def forward(self, x):
        return F.sigmoid(x)

    def __repr__(self):
        return "Sigmoid()"


class Tanh(Module):
    """tanh(x) element-wise, any shape."""

    def forward(self, x):
        return F.tanh(x)

    def __repr__(self):
        return "Tanh()"


class LeakyReLU(Module):
    """x where x > 0, else negative_slope * x, element-wise, any shape."""

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = check_number("LeakyReLU", "negative_slope", negative_slope)

    def forward(self, x):
        return F.leaky_relu(x, negative_slope=self.negative_slope)

    def __repr__(self):
        return f"LeakyReLU(negative_slope={self.negative_slope})"


class Softmax(Module):
    """exp(x) / sum(exp(x)) along ``dim``, which must be given (PyTorch's guess when it is
    not is deprecated there): ``nn.Softmax(dim=1)`` for (N, classes) scores."""

    def __init__(self, dim):
        super().__init__()
        self.dim = check_int("Softmax", "dim", dim)

    def forward(self, x):
        return F.softmax(x, self.dim)

    def __repr__(self):
        return f"Softmax(dim={self.dim})"
