"""Dropout as a module: active in training mode, the identity in evaluation mode."""
from minires import functional as F
from minires.nn.module import Module


class Dropout(Module):
    """Zero each element with probability ``p`` and scale the rest by 1 / (1 - p), in training only.

    See ``minires.functional.dropout``; ``model.eval()`` turns it off.
    """

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p, self.inplace = p, inplace

    def forward(self, x):
        return F.dropout(x, self.p, self.training, self.inplace)

    def __repr__(self):
        return f"Dropout(p={self.p}, inplace={self.inplace})"
