"""Activation functions as modules, each a thin wrapper over its function in ``minires.functional``.

(``ReLU``, the course network's, lives in ``layers.py``.)
"""
from minires import functional as F
from minires.arguments import check_choice, check_int, check_number
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


class SiLU(Module):
    """x * sigmoid(x) element-wise (the swish), any shape."""

    def forward(self, x):
        return F.silu(x)

    def __repr__(self):
        return "SiLU()"


class ELU(Module):
    """x where x > 0, else alpha * (e^x - 1), element-wise, any shape."""

    def __init__(self, alpha=1.0):
        super().__init__()
        self.alpha = check_number("ELU", "alpha", alpha)

    def forward(self, x):
        return F.elu(x, self.alpha)

    def __repr__(self):
        return f"ELU(alpha={self.alpha})"


class Softplus(Module):
    """log(1 + e^(beta x)) / beta element-wise, linear where beta x > threshold, any shape."""

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        check_number("Softplus", "beta", beta, low=0, low_open=True)
        self.beta, self.threshold = beta, check_number("Softplus", "threshold", threshold)

    def forward(self, x):
        return F.softplus(x, self.beta, self.threshold)

    def __repr__(self):
        return f"Softplus(beta={self.beta}, threshold={self.threshold})"


class GELU(Module):
    """x * P(x) element-wise, P the standard normal CDF (``approximate="tanh"``: its tanh form)."""

    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = check_choice("GELU", "approximate", approximate, ("none", "tanh"))

    def forward(self, x):
        return F.gelu(x, self.approximate)

    def __repr__(self):
        return "GELU()" if self.approximate == "none" else f"GELU(approximate={self.approximate!r})"
