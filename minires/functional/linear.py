"""Matrix multiply and the fully connected layer's function, y = x W^T + b."""
from minires import backend
from minires.arguments import check_tensor
from minires.autograd import Function
from minires.errors import ShapeError
from minires.functional.arithmetic import sum_to
from minires.functional.rows import column_sums


class MatMul(Function):
    """``a @ b``, with NumPy's and PyTorch's rules for batches and for 1-D operands.

    a: (..., n, k), b: (..., k, m), y: (..., n, m), the batch dimensions broadcast.
    A 1-D a is a row (1, k) and a 1-D b a column (k, 1), and y drops the
    dimension they add: (k,) @ (k,) -> (), (k,) @ (k, m) -> (m,), (n, k) @ (k,) -> (n,).
    """
    saves_inputs = True

    def forward(self, a, b):
        self.a_shape, self.b_shape = a.shape, b.shape
        self.a = a if a.ndim > 1 else a[None, :]            # (1, k) for a 1-D a
        self.b = b if b.ndim > 1 else b[:, None]            # (k, 1) for a 1-D b
        return a @ b

    def backward(self, gy):
        xp = backend.get_array_module()
        if len(self.b_shape) == 1:
            gy = xp.expand_dims(gy, -1)                     # (..., n, 1)
        if len(self.a_shape) == 1:
            gy = xp.expand_dims(gy, -2)                     # (..., 1, m)
        g_a = gy @ xp.swapaxes(self.b, -1, -2)              # (..., n, k)
        g_b = xp.swapaxes(self.a, -1, -2) @ gy              # (..., k, m)
        return (sum_to(g_a, self.a.shape).reshape(self.a_shape),
                sum_to(g_b, self.b.shape).reshape(self.b_shape))


def matmul(a, b):
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(f"matmul: both operands need at least one dimension, got shapes "
                         f"{tuple(a.shape)} and {tuple(b.shape)}; use * for a number")
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if a.shape[-1] != k_b:
        raise ShapeError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be "
                         f"multiplied ({a.shape[-1]} columns against {k_b} rows)")
    return MatMul()(a, b)


class Linear(Function):
    """y = x W^T + b with x: (N, *, in), W: (out, in), b: (out,), y: (N, *, out).

    The leading dimensions N, * together are the M = N * ... rows that W multiplies.
    """
    saves_inputs = True

    def forward(self, x, W, b=None):
        self.x, self.W = x, W
        y = x @ W.T                                         # (N, *, out)
        return y if b is None else y + b

    def backward(self, gy):
        xp = backend.get_array_module()
        gx = gy @ self.W                                    # (N, *, in)
        gy_rows = gy.reshape(-1, gy.shape[-1])              # (M, out)
        # into the optimizer's flat gradient array where it offers the places (Function.grad_slot)
        gW = xp.matmul(gy_rows.T, self.x.reshape(-1, self.x.shape[-1]), out=self.grad_slot(1))  # (out, in)
        if len(self.needs_input_grad) == 2:     # no bias
            return gx, gW
        gb = column_sums(gy_rows, out=self.grad_slot(2))    # (out,)
        return gx, gW, gb


def linear(input, weight, bias=None):
    """PyTorch's ``F.linear``: ``input @ weight.T + bias`` over the last dimension of input.

    input: (N, *, in) (or (in,)), weight: (out, in), bias: (out,) or None -> (N, *, out).
    """
    check_tensor("linear", "input", input)
    check_tensor("linear", "weight", weight, ndims=(2,))
    out = weight.shape[0]
    if bias is not None and (check_tensor("linear", "bias", bias).ndim == 0 or bias.shape[-1] != out
                             or any(n != 1 for n in bias.shape[:-1])):
        raise ValueError(f"Linear({weight.shape[1]}, {out}): bias must have shape ({out},) (or one "
                         f"that broadcasts to it, as (1, {out})), got {tuple(bias.shape)}")
    if input.ndim == 0 or input.shape[-1] != weight.shape[1]:
        raise ShapeError(f"Linear({weight.shape[1]}, {weight.shape[0]}): expected input "
                         f"(N, {weight.shape[1]}), got {tuple(input.shape)}; any (*, "
                         f"{weight.shape[1]}) will do: the last dimension holds the features")
    if bias is None:
        return Linear()(input, weight)
    # a bias that broadcasts, (1, out), goes in as its (out,) view: the reshape's backward gives
    # its gradient the bias's own shape back
    return Linear()(input, weight, bias if bias.ndim == 1 else bias.reshape(out))
