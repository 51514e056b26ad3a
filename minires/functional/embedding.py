"""Rows of a table picked by index: embedding (a lookup table of vectors) and one_hot.

    vectors = F.embedding(tokens, weight)          # tokens: (N, L) ints, weight: (V, D) -> (N, L, D)
    targets = F.one_hot(labels, num_classes=10)    # (N,) -> (N, 10) int64

The backward of a lookup adds each gradient row back into the row it came
from; a row picked several times collects the sum (``add.at``).
"""
from minires import backend
from minires.arguments import check_indices, check_int, check_tensor
from minires.autograd import Function, Tensor


class Embedding(Function):
    """y[..., :] = W[index[...], :]; gW[v] = sum of gy over the positions where index is v.

    index: (*) ints in [0, V); W: (V, D); y: (*, D). The row ``padding_idx`` gets no gradient.
    """

    def __init__(self, index, padding_idx):
        self.index, self.padding_idx = index, padding_idx

    def forward(self, W):
        self.W_shape = W.shape
        return W[self.index]                                     # (*, D)

    def backward(self, gy):
        xp = backend.get_array_module()
        gW = xp.zeros(self.W_shape, dtype=gy.dtype)              # (V, D)
        xp.add.at(gW, self.index.reshape(-1), gy.reshape(-1, self.W_shape[1]))
        if self.padding_idx is not None:
            gW[self.padding_idx] = 0
        return gW


def embedding(input, weight, padding_idx=None):
    """PyTorch's ``F.embedding``: the rows of ``weight`` (V, D) at the indices ``input`` (*)."""
    check_tensor("embedding()", "weight", weight, ndims=(2,))
    V = weight.shape[0]
    index = input.data if isinstance(input, Tensor) else backend.to_device(input)
    check_indices("embedding()", "input", index, V)
    if padding_idx is not None and not -V <= check_int("embedding()", "padding_idx", padding_idx) < V:
        raise ValueError(f"embedding(): padding_idx must be in [-{V}, {V}), got {padding_idx}")
    if padding_idx is not None and padding_idx < 0:
        padding_idx += V
    return Embedding(index, padding_idx)(weight)


def one_hot(tensor, num_classes=-1):
    """PyTorch's ``F.one_hot``: (*) class indices -> (*, num_classes) int64 of 0 and 1, no gradient.

    ``num_classes=-1`` takes the largest index + 1 (a device read on a GPU).
    """
    xp = backend.get_array_module()
    check_int("one_hot()", "num_classes", num_classes, least=-1)
    index = tensor.data if isinstance(tensor, Tensor) else backend.to_device(tensor)
    check_indices("one_hot()", "tensor", index, num_classes if num_classes >= 0 else None)
    if num_classes < 0:
        num_classes = int(backend.to_host(index.max())) + 1
    classes = xp.arange(num_classes)                            # (K,)
    return Tensor((index[..., None] == classes).astype(xp.int64))   # (*, K)
