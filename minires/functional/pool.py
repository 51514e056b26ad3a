"""Max and average pooling over KH x KW windows.

N batch, C channels, H/W input size, KH/KW kernel, SH/SW stride, PH/PW padding,
OH/OW output size with OH = (H + 2PH - KH) // SH + 1.

Both loop over the KH*KW kernel offsets, each one strided window of the padded
input (``windows.window``), and work on channels-last memory (see ``windows.py``);
neither builds a column buffer; their backward is ``windows.scatter_windows``,
as col2im is. Max pooling pads with -inf, so padding never wins; average pooling pads
with zeros and divides by KH*KW (PyTorch's ``count_include_pad=True``).
"""
from minires import backend
from minires.arguments import check_image_input, output_size, pair
from minires.autograd import Function
from minires.functional.windows import pad_channels_last, scatter_windows, window


class MaxPool2d(Function):
    def __init__(self, kernel, stride, padding, out_size):
        (self.KH, self.KW), (self.SH, self.SW), (self.PH, self.PW) = kernel, stride, padding
        self.OH, self.OW = out_size

    def forward(self, x):
        xp = backend.get_array_module()
        OH, OW = self.OH, self.OW
        x_pad = pad_channels_last(x, self.PH, self.PW, fill=-xp.inf)   # (N, H+2PH, W+2PW, C)
        y = x_pad[window(0, 0, self.SH, self.SW, OH, OW)].copy()       # (N, OH, OW, C)
        track = self.needs_input_grad[0]         # evaluation needs no argmax
        index_dtype = xp.uint8 if self.KH * self.KW <= 256 else xp.int32
        argmax = xp.zeros(y.shape, dtype=index_dtype) if track else None  # (N, OH, OW, C) offset k
        for k in range(1, self.KH * self.KW):
            i, j = divmod(k, self.KW)
            candidate = x_pad[window(i, j, self.SH, self.SW, OH, OW)]  # (N, OH, OW, C)
            if track:
                # strictly greater: on a tie the first offset in row-major order keeps
                # the gradient, as PyTorch routes it
                better = candidate > y                                 # (N, OH, OW, C)
                xp.copyto(argmax, k, where=better)
            xp.maximum(y, candidate, out=y)
        self.argmax, self.x_shape = argmax, x.shape    # argmax routes the gradient
        return y.transpose(0, 3, 1, 2)                                 # (N, C, OH, OW)

    def backward(self, gy):
        gy_nhwc = gy.transpose(0, 2, 3, 1)                             # (N, OH, OW, C)
        # offset (i, j) gets the gradient where it held the window's maximum
        return scatter_windows(lambda i, j: gy_nhwc * (self.argmax == i * self.KW + j),
                               self.x_shape, (self.KH, self.KW), (self.SH, self.SW),
                               (self.PH, self.PW), self.OH, self.OW, gy.dtype)   # (N, C, H, W)


def max_pool2d(input, kernel_size, stride=None, padding=0):
    """PyTorch's ``F.max_pool2d``: (N, C, H, W) -> (N, C, OH, OW); stride defaults to the kernel."""
    return MaxPool2d(*_pool_arguments("MaxPool2d", input, kernel_size, stride, padding))(input)


class AvgPool2d(Function):
    def __init__(self, kernel, stride, padding, out_size):
        (self.KH, self.KW), (self.SH, self.SW), (self.PH, self.PW) = kernel, stride, padding
        self.OH, self.OW = out_size

    def forward(self, x):
        OH, OW = self.OH, self.OW
        x_pad = pad_channels_last(x, self.PH, self.PW)                 # (N, H+2PH, W+2PW, C)
        y = x_pad[window(0, 0, self.SH, self.SW, OH, OW)].copy()       # (N, OH, OW, C)
        for k in range(1, self.KH * self.KW):
            i, j = divmod(k, self.KW)
            y += x_pad[window(i, j, self.SH, self.SW, OH, OW)]         # (N, OH, OW, C)
        y *= 1.0 / (self.KH * self.KW)
        self.x_shape = x.shape
        return y.transpose(0, 3, 1, 2)                                 # (N, C, OH, OW)

    def backward(self, gy):
        g_share = gy.transpose(0, 2, 3, 1) * (1.0 / (self.KH * self.KW))   # (N, OH, OW, C)
        # every offset of a window gets an equal share of its gradient
        return scatter_windows(lambda i, j: g_share, self.x_shape, (self.KH, self.KW),
                               (self.SH, self.SW), (self.PH, self.PW), self.OH, self.OW, gy.dtype)


def avg_pool2d(input, kernel_size, stride=None, padding=0):
    """PyTorch's ``F.avg_pool2d`` (count_include_pad=True): (N, C, H, W) -> (N, C, OH, OW)."""
    return AvgPool2d(*_pool_arguments("AvgPool2d", input, kernel_size, stride, padding))(input)


def _pool_arguments(layer, input, kernel_size, stride, padding):
    """Checked (kernel, stride, padding, (OH, OW)) pairs for a pooling Function."""
    kernel = pair(kernel_size)
    stride = kernel if stride is None else pair(stride)
    padding = pair(padding)

    def name():
        return f"{layer}(kernel_size={kernel_size}, stride={stride}, padding={padding})"
    if padding[0] * 2 > kernel[0] or padding[1] * 2 > kernel[1]:
        raise ValueError(f"{name()}: padding must be at most half the kernel size")
    check_image_input(name, input, None, kernel, padding)
    N, C, H, W = input.shape
    OH, OW = (output_size(H, kernel[0], stride[0], padding[0]),
              output_size(W, kernel[1], stride[1], padding[1]))
    return kernel, stride, padding, (OH, OW)
