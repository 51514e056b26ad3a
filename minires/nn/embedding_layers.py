"""Layers that normalise or look up per example rather than over the batch: Embedding (a table
of vectors looked up by index), LayerNorm and GroupNorm, with ``torch.nn``'s arguments and
initialisation."""
import numpy

from minires import functional as F
from minires.arguments import check_bool, check_int, check_number
from minires.nn import init
from minires.nn.module import Module, Parameter


class Embedding(Module):
    """(*) integer indices in [0, num_embeddings) -> (*, embedding_dim) rows of ``weight``.

    weight: (num_embeddings, embedding_dim), drawn from N(0, 1) as in PyTorch; the row
    ``padding_idx`` starts at zero and gets no gradient.
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None):
        super().__init__()
        where = f"Embedding({num_embeddings!r}, {embedding_dim!r})"
        check_int(where, "num_embeddings", num_embeddings, least=1)
        check_int(where, "embedding_dim", embedding_dim, least=1)
        if padding_idx is not None and not -num_embeddings <= check_int(where, "padding_idx", padding_idx) \
                < num_embeddings:
            raise ValueError(f"{where}: padding_idx must be in [-{num_embeddings}, {num_embeddings}), "
                             f"got {padding_idx}")
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = padding_idx if padding_idx is None or padding_idx >= 0 \
            else padding_idx + num_embeddings
        self.weight = Parameter(numpy.zeros((num_embeddings, embedding_dim), dtype=numpy.float32))
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    def forward(self, input):
        return F.embedding(input, self.weight, self.padding_idx)

    def __repr__(self):
        return f"Embedding({self.num_embeddings}, {self.embedding_dim})"


class LayerNorm(Module):
    """(*, *normalized_shape) -> the same shape, each example normalised over normalized_shape;
    weight 1 and bias 0 to start (``elementwise_affine=False``: none)."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True):
        super().__init__()
        where = f"LayerNorm({normalized_shape!r})"
        shape = normalized_shape if isinstance(normalized_shape, (tuple, list)) else (normalized_shape,)
        shape = tuple(check_int(where, "normalized_shape", size, least=1) for size in shape)
        check_number(where, "eps", eps, low=0)
        check_bool(where, "elementwise_affine", elementwise_affine)
        check_bool(where, "bias", bias)
        self.normalized_shape, self.eps = shape, eps
        self.weight = Parameter(numpy.ones(shape, dtype=numpy.float32)) if elementwise_affine else None
        self.bias = Parameter(numpy.zeros(shape, dtype=numpy.float32)) \
            if elementwise_affine and bias else None

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def __repr__(self):
        return f"LayerNorm({self.normalized_shape}, eps={self.eps})"


class GroupNorm(Module):
    """(N, num_channels, *) -> the same shape, the channels of each example normalised in
    ``num_groups`` groups; weight 1 and bias 0 (C,) to start (``affine=False``: none)."""

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True):
        super().__init__()
        where = f"GroupNorm({num_groups!r}, {num_channels!r})"
        check_int(where, "num_groups", num_groups, least=1)
        check_int(where, "num_channels", num_channels, least=1)
        check_number(where, "eps", eps, low=0)
        check_bool(where, "affine", affine)
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be a multiple of "
                             f"num_groups ({num_groups})")
        self.num_groups, self.num_channels, self.eps = num_groups, num_channels, eps
        self.weight = Parameter(numpy.ones(num_channels, dtype=numpy.float32)) if affine else None
        self.bias = Parameter(numpy.zeros(num_channels, dtype=numpy.float32)) if affine else None

    def forward(self, x):
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def __repr__(self):
        return f"GroupNorm({self.num_groups}, {self.num_channels}, eps={self.eps})"
