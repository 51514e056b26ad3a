"""Matrix multiply and the fully connected layer's function, y = x W^T + b."""
from minires import backend
from minires.autograd import Function
from minires.functional.arithmetic import sum_to


class MatMul(Function):
    """``a @ b`` for 2-D operands (or batches of them, broadcast as NumPy does)."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a @ b

    def backward(self, gy):
        xp = backend.get_array_module()
        g_a = gy @ xp.swapaxes(self.b, -1, -2)
        g_b = xp.swapaxes(self.a, -1, -2) @ gy
        return sum_to(g_a, self.a.shape), sum_to(g_b, self.b.shape)


def matmul(a, b):
    return MatMul()(a, b)


class Linear(Function):
    """y = x W^T + b with x: (N, in), W: (out, in), b: (out,), y: (N, out)."""

    def forward(self, x, W, b=None):
        self.x, self.W = x, W
        y = x @ W.T                         # (N, out)
        return y if b is None else y + b

    def backward(self, gy):
        gx = gy @ self.W                    # (N, in)
        gW = gy.T @ self.x                  # (out, in)
        if len(self.needs_input_grad) == 2:     # no bias
            return gx, gW
        gb = gy.sum(axis=0)                 # (out,)
        return gx, gW, gb


def linear(input, weight, bias=None):
    """PyTorch's ``F.linear``: ``input @ weight.T + bias``."""
    if input.ndim != 2 or input.shape[1] != weight.shape[1]:
        raise ValueError(f"Linear({weight.shape[1]}, {weight.shape[0]}): expected input "
                         f"(N, {weight.shape[1]}), got {tuple(input.shape)}")
    if bias is None:
        return Linear()(input, weight)
    return Linear()(input, weight, bias)
