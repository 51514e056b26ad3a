"""Max and average pooling over KH x KW windows; adaptive average pooling.

N batch, C channels, H/W input size, KH/KW kernel, SH/SW stride, PH/PW padding,
DH/DW dilation (max pooling only), OH/OW output size with
OH = (H + 2PH - DH(KH - 1) - 1) // SH + 1, or with ``ceil_mode``
OH = ceil((H + 2PH - DH(KH - 1) - 1) / SH) + 1, less one if that last window
would start past the input and its left padding (PyTorch's rule).

Both loop over the KH*KW kernel offsets, each one strided window of the padded
input (``windows.window``), and work on channels-last memory (see ``windows.py``);
neither builds a column buffer; their backward is ``windows.scatter_windows``,
as col2im is. Max pooling pads with -inf, so padding never wins; average pooling pads
with zeros and divides by KH*KW (PyTorch's ``count_include_pad=True``). With
``ceil_mode`` the last window may run past the right padding: EH/EW extra rows
and columns of padding hold it, and they never count in an average.

Adaptive average pooling fixes OH and OW instead of the kernel: output row oh
averages input rows floor(oh*H/OH) to ceil((oh+1)*H/OH) - 1, so its windows may
differ in size and overlap; it loops over the OH*OW output pixels, each one slice.
"""
from minires import backend
from minires.arguments import check_image_input, output_size, pair
from minires.autograd import Function
from minires.functional.windows import pad_channels_last, scatter_windows, window


class MaxPool2d(Function):
    def __init__(self, kernel, stride, padding, dilation, extra, out_size):
        (self.KH, self.KW), (self.SH, self.SW), (self.PH, self.PW) = kernel, stride, padding
        (self.DH, self.DW), self.extra, (self.OH, self.OW) = dilation, extra, out_size

    def forward(self, x):
        xp = backend.get_array_module()
        OH, OW, DH, DW = self.OH, self.OW, self.DH, self.DW
        x_pad = pad_channels_last(x, self.PH, self.PW, -xp.inf, self.extra)  # (N, H+2PH+EH, W+2PW+EW, C)
        windows = [x_pad[window(DH * i, DW * j, self.SH, self.SW, OH, OW)]    # (N, OH, OW, C) views
                   for i in range(self.KH) for j in range(self.KW)]
        y = xp.empty(windows[0].shape, dtype=x.dtype)                  # (N, OH, OW, C)
        if self.needs_input_grad[0]:            # evaluation needs no argmax
            # signed: CuPy's fusion types where(better, k, argmax) as a signed integer
            index_dtype = xp.int8 if self.KH * self.KW <= 128 else xp.int32
            self.argmax = xp.empty(y.shape, dtype=index_dtype)         # (N, OH, OW, C) offset k
            _max_and_argmax(y, self.argmax, *windows)   # argmax routes the gradient
        else:
            _window_max(y, *windows)
        self.x_shape = x.shape
        return y.transpose(0, 3, 1, 2)                                 # (N, C, OH, OW)

    def backward(self, gy):
        gy_nhwc = gy.transpose(0, 2, 3, 1)                             # (N, OH, OW, C)

        def add_where_max(gx_window, i, j):
            _add_where(gx_window, gy_nhwc, self.argmax, i * self.KW + j)   # (N, OH, OW, C)
        return scatter_windows(add_where_max, self.x_shape, (self.KH, self.KW), (self.SH, self.SW),
                               (self.PH, self.PW), self.OH, self.OW, gy.dtype,
                               (self.DH, self.DW), self.extra)          # (N, C, H, W)


# the pooling's element-wise steps, each one GPU kernel (``backend.fuse``); all (N, OH, OW, C)
@backend.fuse
def _max_and_argmax(y, argmax, *windows):
    """y <- the maximum over the KH*KW windows, argmax <- the offset k that holds it.

    Strictly greater: on a tie the first offset in row-major order keeps the
    gradient, as PyTorch routes it.
    """
    xp = backend.get_array_module()
    y[...] = windows[0]
    argmax[...] = 0
    for k in range(1, len(windows)):
        better = windows[k] > y
        argmax[...] = xp.where(better, k, argmax)
        xp.maximum(y, windows[k], out=y)


@backend.fuse
def _window_max(y, *windows):
    """y <- the maximum over the windows (evaluation: no argmax)."""
    xp = backend.get_array_module()
    y[...] = windows[0]
    for candidate in windows[1:]:
        xp.maximum(y, candidate, out=y)


@backend.fuse
def _add_where(gx_window, gy, argmax, k):
    """Offset k gets the gradient where it held the window's maximum: gx_window += gy [argmax == k]."""
    gx_window += gy * (argmax == k)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """PyTorch's ``F.max_pool2d``: (N, C, H, W) -> (N, C, OH, OW); stride defaults to the kernel.

    dilation: the window reads every D-th pixel, spanning D(K - 1) + 1.
    ceil_mode: round OH and OW up (see the module's docstring); the extra
    windows' missing pixels are -inf. ``return_indices`` is not supported.
    """
    if return_indices:
        raise ValueError("MaxPool2d: return_indices=True is not supported in minires")
    kernel, stride, padding, dilation, extra, out_size = _pool_arguments(
        "MaxPool2d", input, kernel_size, stride, padding, dilation, ceil_mode)
    return MaxPool2d(kernel, stride, padding, dilation, extra, out_size)(input)


class AvgPool2d(Function):
    def __init__(self, kernel, stride, padding, extra, out_size, scale):
        (self.KH, self.KW), (self.SH, self.SW), (self.PH, self.PW) = kernel, stride, padding
        self.extra, (self.OH, self.OW) = extra, out_size
        self.scale = scale      # 1 / the divisor: a number, or (OH, OW, 1) where windows differ

    def forward(self, x):
        OH, OW = self.OH, self.OW
        xp = backend.get_array_module()
        x_pad = pad_channels_last(x, self.PH, self.PW, extra=self.extra)  # (N, H+2PH+EH, W+2PW+EW, C)
        windows = [x_pad[window(i, j, self.SH, self.SW, OH, OW)]       # (N, OH, OW, C) views
                   for i in range(self.KH) for j in range(self.KW)]
        y = xp.empty(windows[0].shape, dtype=x.dtype)                  # (N, OH, OW, C)
        _window_mean(y, self.scale, *windows)
        self.x_shape = x.shape
        return y.transpose(0, 3, 1, 2)                                 # (N, C, OH, OW)

    def backward(self, gy):
        gy_nhwc = gy.transpose(0, 2, 3, 1)                             # (N, OH, OW, C)

        def add_share(gx_window, i, j):     # every offset of a window gets an equal share
            _add_scaled(gx_window, gy_nhwc, self.scale)                # (N, OH, OW, C)
        return scatter_windows(add_share, self.x_shape, (self.KH, self.KW),
                               (self.SH, self.SW), (self.PH, self.PW), self.OH, self.OW,
                               gy.dtype, extra=self.extra)             # (N, C, H, W)


@backend.fuse
def _window_mean(y, scale, *windows):
    """y <- the windows' sum times scale (a number, or (OH, OW, 1) where windows differ)."""
    y[...] = windows[0]
    for pixels in windows[1:]:
        y += pixels
    y *= scale


@backend.fuse
def _add_scaled(gx_window, gy, scale):
    """gx_window += gy * scale: one GPU kernel (``backend.fuse``)."""
    gx_window += gy * scale


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    """PyTorch's ``F.avg_pool2d``: (N, C, H, W) -> (N, C, OH, OW); stride defaults to the kernel.

    Each window's sum is divided by the number of its pixels that lie inside the
    input and its padding (``count_include_pad=True``, KH*KW unless ``ceil_mode``
    runs a window past the right padding) or inside the input only
    (``count_include_pad=False``).
    """
    kernel, stride, padding, _, extra, (OH, OW) = _pool_arguments(
        "AvgPool2d", input, kernel_size, stride, padding, 1, ceil_mode)
    N, C, H, W = input.shape
    rows = _window_sizes(H, kernel[0], stride[0], padding[0], OH, count_include_pad)
    columns = _window_sizes(W, kernel[1], stride[1], padding[1], OW, count_include_pad)
    if set(rows) == {kernel[0]} and set(columns) == {kernel[1]}:
        scale = 1.0 / (kernel[0] * kernel[1])       # every window whole: one number
    else:
        scale = backend.to_device([[[1.0 / (r * c)] for c in columns] for r in rows],
                                  dtype=input.dtype)                       # (OH, OW, 1)
    return AvgPool2d(kernel, stride, padding, extra, (OH, OW), scale)(input)


def _window_sizes(size, kernel, stride, padding, out, count_include_pad):
    """How many of its K rows (or columns) each of the ``out`` windows divides by.

    A window starts at o*S - P in input coordinates and is cut at the end of the
    right padding (only ceil_mode's last window reaches past it); without
    ``count_include_pad`` it is cut to the input itself, as PyTorch does.
    """
    sizes = []
    for o in range(out):
        start, end = o * stride - padding, min(o * stride - padding + kernel, size + padding)
        if not count_include_pad:
            start, end = max(start, 0), min(end, size)
        sizes.append(end - start)
    return sizes


def _pool_arguments(layer, input, kernel_size, stride, padding, dilation, ceil_mode):
    """Checked (kernel, stride, padding, dilation, extra, (OH, OW)) pairs for a pooling Function.

    ``extra`` is the padding ceil_mode's last window needs past the right (bottom) edge.
    """
    kernel = pair(kernel_size)
    stride = kernel if stride is None else pair(stride)
    padding, dilation = pair(padding), pair(dilation)

    def name():
        return f"{layer}(kernel_size={kernel_size}, stride={stride}, padding={padding})"
    if min(stride) < 1 or min(dilation) < 1:
        raise ValueError(f"{name()}: stride and dilation must be >= 1, got {stride}, {dilation}")
    if padding[0] * 2 > kernel[0] or padding[1] * 2 > kernel[1]:
        raise ValueError(f"{name()}: padding must be at most half the kernel size")
    spans = [D * (K - 1) + 1 for D, K in zip(dilation, kernel)]
    H, W = tuple(input.shape)[-2:] if input.ndim >= 2 else (0, 0)   # other shapes: refused below
    out_size = [output_size(D1, K, S, P, D, ceil_mode)
                for D1, K, S, P, D in zip((H, W), kernel, stride, padding, dilation)]
    extra = tuple(max(0, (D2 - 1) * S + span - (D1 + 2 * P))
                  for D2, S, span, D1, P in zip(out_size, stride, spans, (H, W), padding))
    check_image_input(name, input, None, spans, padding, extra)
    return kernel, stride, padding, dilation, extra, tuple(out_size)


class AdaptiveAvgPool2d(Function):
    def __init__(self, rows, columns):
        self.rows, self.columns = rows, columns     # [(start, end)] of each output row, column

    def forward(self, x):
        xp = backend.get_array_module()
        x_nhwc = x.transpose(0, 2, 3, 1)                                    # (N, H, W, C)
        N, H, W, C = x_nhwc.shape
        y = xp.empty((N, len(self.rows), len(self.columns), C), dtype=x.dtype)  # (N, OH, OW, C)
        for oh, (h0, h1) in enumerate(self.rows):
            for ow, (w0, w1) in enumerate(self.columns):
                y[:, oh, ow, :] = x_nhwc[:, h0:h1, w0:w1, :].mean(axis=(1, 2))  # (N, C)
        self.x_shape = x.shape
        return y.transpose(0, 3, 1, 2)                                      # (N, C, OH, OW)

    def backward(self, gy):
        xp = backend.get_array_module()
        N, C, H, W = self.x_shape
        gy_nhwc = gy.transpose(0, 2, 3, 1)                                  # (N, OH, OW, C)
        gx = xp.zeros((N, H, W, C), dtype=gy.dtype)                         # (N, H, W, C)
        for oh, (h0, h1) in enumerate(self.rows):
            for ow, (w0, w1) in enumerate(self.columns):
                # each pixel of the window gets an equal share; overlapping windows add up
                area = (h1 - h0) * (w1 - w0)
                gx[:, h0:h1, w0:w1, :] += gy_nhwc[:, oh:oh + 1, ow:ow + 1, :] * (1.0 / area)  # (N, 1, 1, C)
        return gx.transpose(0, 3, 1, 2)                                     # (N, C, H, W)


def adaptive_avg_pool2d(input, output_size):
    """PyTorch's ``F.adaptive_avg_pool2d``: (N, C, H, W) -> (N, C, OH, OW).

    output_size: an int or an (OH, OW) pair; None in the pair keeps that input size.
    Output row oh is the mean of input rows [floor(oh*H/OH), ceil((oh+1)*H/OH)),
    columns likewise; (1, 1) is the mean over H and W.
    """
    OH, OW = (output_size, output_size) if isinstance(output_size, int) else output_size

    def name():
        return f"AdaptiveAvgPool2d(output_size={output_size})"
    check_image_input(name, input, None, (1, 1), (0, 0))
    N, C, H, W = input.shape
    OH, OW = H if OH is None else OH, W if OW is None else OW
    if min(OH, OW) < 1:
        raise ValueError(f"{name()}: output sizes must be >= 1, got {(OH, OW)}")
    return AdaptiveAvgPool2d(_adaptive_windows(H, OH), _adaptive_windows(W, OW))(input)


def _adaptive_windows(size, out):
    """[(start, end)] of the ``out`` windows: start = floor(o*size/out), end = ceil((o+1)*size/out)."""
    return [(o * size // out, -(-(o + 1) * size // out)) for o in range(out)]
