"""Dropout as a module: active in training mode, the identity in evaluation mode."""
from minires import functional as F
from minires.arguments import check_bool, check_number
from minires.nn.module import Module


class Dropout(Module):
    """Zero each element with probability ``p`` and scale the rest by 1 / (1 - p), in training only.

    See ``minires.functional.dropout``; ``model.eval()`` turns it off.
    """

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        self.p = check_number("Dropout", "p", p, low=0, high=1)
        self.inplace = check_bool("Dropout", "inplace", inplace)

    def forward(self, x):
        return F.dropout(x, self.p, self.training, self.inplace)

    def __repr__(self):
        return f"Dropout(p={self.p}, inplace={self.inplace})"
