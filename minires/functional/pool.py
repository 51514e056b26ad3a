"""Max and average pooling over KH x KW windows; max unpooling; adaptive average and max pooling.

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
from minires.arguments import (
    check_bool,
    check_image_input,
    check_indices,
    check_int,
    check_output_size,
    check_pair,
    check_pool_arguments,
    check_tensor,
    output_size,
)
from minires.autograd import Function, Tensor
from minires.functional.windows import pad_channels_last, scatter_windows, unbatched_images, window


class MaxPool2d(Function):
    def __init__(self, kernel, stride, padding, dilation, extra, out_size, keep_argmax=False):
        (self.KH, self.KW), (self.SH, self.SW), (self.PH, self.PW) = kernel, stride, padding
        (self.DH, self.DW), self.extra, (self.OH, self.OW) = dilation, extra, out_size
        self.keep_argmax = keep_argmax      # for return_indices, also without a gradient

    def forward(self, x):
        xp = backend.get_array_module()
        OH, OW, DH, DW = self.OH, self.OW, self.DH, self.DW
        x_pad = pad_channels_last(x, self.PH, self.PW, -xp.inf, self.extra)  # (N, H+2PH+EH, W+2PW+EW, C)
        windows = [x_pad[window(DH * i, DW * j, self.SH, self.SW, OH, OW)]    # (N, OH, OW, C) views
                   for i in range(self.KH) for j in range(self.KW)]
        y = xp.empty(windows[0].shape, dtype=x.dtype)                  # (N, OH, OW, C)
        self.argmax = None
        if self.needs_input_grad[0] or self.keep_argmax:    # evaluation needs no argmax
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


@unbatched_images
def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """PyTorch's ``F.max_pool2d``: (N, C, H, W) -> (N, C, OH, OW); stride defaults to the kernel.

    dilation: the window reads every D-th pixel, spanning D(K - 1) + 1.
    ceil_mode: round OH and OW up (see the module's docstring); the extra
    windows' missing pixels are -inf. ``return_indices``: also the (N, C, OH, OW) int64
    position h * W + w of each maximum in its (H, W) plane, as PyTorch (for ``max_unpool2d``).
    """
    kernel, stride, padding, dilation, extra, out_size = _pool_arguments(
        "MaxPool2d", input, kernel_size, stride, padding, dilation, ceil_mode)
    function = MaxPool2d(kernel, stride, padding, dilation, extra, out_size, return_indices)
    y = function(input)
    return (y, _argmax_positions(function, input.shape)) if return_indices else y


def _argmax_positions(function, x_shape):
    """h * W + w of each window's maximum, from the kernel offset k = i * KW + j it was at:
    h = oh * SH - PH + DH * i, w = ow * SW - PW + DW * j."""
    xp = backend.get_array_module()
    f = function
    k = f.argmax.astype(xp.int64)                                       # (N, OH, OW, C)
    oh = xp.arange(f.OH).reshape(1, f.OH, 1, 1)                         # (1, OH, 1, 1)
    ow = xp.arange(f.OW).reshape(1, 1, f.OW, 1)                         # (1, 1, OW, 1)
    h = oh * f.SH - f.PH + f.DH * (k // f.KW)                           # (N, OH, OW, C)
    w = ow * f.SW - f.PW + f.DW * (k % f.KW)                            # (N, OH, OW, C)
    return Tensor((h * x_shape[3] + w).transpose(0, 3, 1, 2))           # (N, C, OH, OW)


class MaxUnpool2d(Function):
    """The inverse of max pooling with indices: y is 0 but for x at the positions ``indices``.

    x, indices: (N, C, OH, OW); y: (N, C, H, W). gx = gy read at those positions.
    """

    def __init__(self, indices, out_size):
        self.indices, (self.H, self.W) = indices, out_size

    def forward(self, x):
        xp = backend.get_array_module()
        N, C = x.shape[:2]
        self.places = (xp.arange(N).reshape(N, 1, 1), xp.arange(C).reshape(1, C, 1),
                       self.indices.reshape(N, C, -1))                 # (N, 1, 1), (1, C, 1), (N, C, OH*OW)
        y = xp.zeros((N, C, self.H * self.W), dtype=x.dtype)            # (N, C, H*W)
        y[self.places] = x.reshape(N, C, -1)
        return y.reshape(N, C, self.H, self.W)                          # (N, C, H, W)

    def backward(self, gy):
        N, C = gy.shape[:2]
        return gy.reshape(N, C, -1)[self.places].reshape(self.indices.shape)    # (N, C, OH, OW)


@unbatched_images
def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """PyTorch's ``F.max_unpool2d``: (N, C, OH, OW) -> (N, C, H, W) with H = (OH - 1) S - 2P + K
    (or ``output_size``), each value put back where ``max_pool2d(return_indices=True)`` found it."""
    where = "max_unpool2d()"
    check_tensor(where, "input", input, ndims=(4,))
    KH, KW = check_pair(where, "kernel_size", kernel_size, 1)
    PH, PW = check_pair(where, "padding", padding, 0)
    SH, SW = (KH, KW) if stride is None else check_pair(where, "stride", stride, 1)
    N, C, OH, OW = input.shape
    if output_size is not None and (not isinstance(output_size, (tuple, list)) or
                                    len(output_size) not in (2, 4)):
        raise ValueError(f"{where}: output_size must be (H, W) or (N, C, H, W), got {output_size!r}")
    H, W = ((OH - 1) * SH - 2 * PH + KH, (OW - 1) * SW - 2 * PW + KW) if output_size is None \
        else (check_int(where, "output_size", n, least=1) for n in tuple(output_size)[-2:])
    index = indices.data if isinstance(indices, Tensor) else backend.to_device(indices)
    if tuple(index.shape) != tuple(input.shape):
        raise ValueError(f"{where}: indices must have input's shape {tuple(input.shape)}, got "
                         f"{tuple(index.shape)}")
    check_indices(where, "indices", index, H * W)
    return MaxUnpool2d(index, (H, W))(input)


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


@unbatched_images
def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """PyTorch's ``F.avg_pool2d``: (N, C, H, W) -> (N, C, OH, OW); stride defaults to the kernel.

    Each window's sum is divided by the number of its pixels that lie inside the
    input and its padding (``count_include_pad=True``, KH*KW unless ``ceil_mode``
    runs a window past the right padding) or inside the input only
    (``count_include_pad=False``); or by ``divisor_override`` for every window.
    """
    check_bool("AvgPool2d", "count_include_pad", count_include_pad)
    kernel, stride, padding, _, extra, (OH, OW) = _pool_arguments(
        "AvgPool2d", input, kernel_size, stride, padding, 1, ceil_mode)
    N, C, H, W = input.shape
    rows = _window_sizes(H, kernel[0], stride[0], padding[0], OH, count_include_pad)
    columns = _window_sizes(W, kernel[1], stride[1], padding[1], OW, count_include_pad)
    if divisor_override is not None:
        scale = 1.0 / divisor_override
    elif set(rows) == {kernel[0]} and set(columns) == {kernel[1]}:
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
    check_tensor(layer, "input", input)
    kernel, stride, padding, dilation = check_pool_arguments(layer, kernel_size, stride, padding,
                                                             dilation, ceil_mode)

    def name():
        return f"{layer}(kernel_size={kernel_size}, stride={stride}, padding={padding})"
    spans = [D * (K - 1) + 1 for D, K in zip(dilation, kernel)]
    H, W = tuple(input.shape)[-2:] if input.ndim >= 2 else (0, 0)   # other shapes: refused below
    out_size = [output_size(D1, K, S, P, D, ceil_mode)
                for D1, K, S, P, D in zip((H, W), kernel, stride, padding, dilation)]
    extra = tuple(max(0, (D2 - 1) * S + span - (D1 + 2 * P))
                  for D2, S, span, D1, P in zip(out_size, stride, spans, (H, W), padding))
    check_image_input(name, input, None, spans, padding, extra)
    return kernel, stride, padding, dilation, extra, tuple(out_size)


class _AdaptivePool(Function):
    """What the adaptive poolings share: the windows, input rows[oh] x columns[ow] for output
    pixel (oh, ow), and the backward that adds each window's gradient back onto its pixels
    (neighbouring windows may overlap: their gradients add up)."""

    def __init__(self, rows, columns):
        self.rows, self.columns = rows, columns     # [(start, end)] of each output row, column

    def windows(self):
        """(oh, ow, hs, ws) for every output pixel: hs, ws the slices of its input window."""
        for oh, (h0, h1) in enumerate(self.rows):
            for ow, (w0, w1) in enumerate(self.columns):
                yield oh, ow, slice(h0, h1), slice(w0, w1)

    def backward(self, gy):
        xp = backend.get_array_module()
        N, C, H, W = self.x_shape
        gy_nhwc = gy.transpose(0, 2, 3, 1)                                  # (N, OH, OW, C)
        gx = xp.zeros((N, H, W, C), dtype=gy.dtype)                         # (N, H, W, C)
        for oh, ow, hs, ws in self.windows():
            gx[:, hs, ws, :] += self.window_gradient(gy_nhwc, oh, ow, hs, ws)   # (N, kh, kw, C)
        return gx.transpose(0, 3, 1, 2)                                     # (N, C, H, W)


class AdaptiveAvgPool2d(_AdaptivePool):
    def forward(self, x):
        xp = backend.get_array_module()
        x_nhwc = x.transpose(0, 2, 3, 1)                                    # (N, H, W, C)
        N, H, W, C = x_nhwc.shape
        y = xp.empty((N, len(self.rows), len(self.columns), C), dtype=x.dtype)  # (N, OH, OW, C)
        for oh, ow, hs, ws in self.windows():
            y[:, oh, ow, :] = x_nhwc[:, hs, ws, :].mean(axis=(1, 2))          # (N, C)
        self.x_shape = x.shape
        return y.transpose(0, 3, 1, 2)                                      # (N, C, OH, OW)

    def window_gradient(self, gy_nhwc, oh, ow, hs, ws):
        """Each pixel of the window gets an equal share: (N, 1, 1, C), broadcast over the window."""
        area = (hs.stop - hs.start) * (ws.stop - ws.start)
        return gy_nhwc[:, oh:oh + 1, ow:ow + 1, :] * (1.0 / area)


@unbatched_images
def adaptive_avg_pool2d(input, output_size):
    """PyTorch's ``F.adaptive_avg_pool2d``: (N, C, H, W) -> (N, C, OH, OW).

    output_size: an int or an (OH, OW) pair; None in the pair keeps that input size.
    Output row oh is the mean of input rows [floor(oh*H/OH), ceil((oh+1)*H/OH)),
    columns likewise; (1, 1) is the mean over H and W.
    """
    check_tensor("AdaptiveAvgPool2d", "input", input)
    OH, OW = check_output_size("AdaptiveAvgPool2d", output_size)

    def name():
        return f"AdaptiveAvgPool2d(output_size={output_size})"
    check_image_input(name, input, None, (1, 1), (0, 0))
    N, C, H, W = input.shape
    OH, OW = H if OH is None else OH, W if OW is None else OW
    return AdaptiveAvgPool2d(_adaptive_windows(H, OH), _adaptive_windows(W, OW))(input)


class AdaptiveMaxPool2d(_AdaptivePool):
    """The maximum of each adaptive window (see ``adaptive_avg_pool2d``); the gradient goes to
    the first maximum of the window in row-major order, as PyTorch routes it. With
    ``keep_indices`` it keeps ``indices``: that maximum's position h * W + w in its plane."""

    def __init__(self, rows, columns, keep_indices=False):
        super().__init__(rows, columns)
        self.keep_indices = keep_indices

    def forward(self, x):
        xp = backend.get_array_module()
        x_nhwc = x.transpose(0, 2, 3, 1)                                    # (N, H, W, C)
        N, H, W, C = x_nhwc.shape
        y = xp.empty((N, len(self.rows), len(self.columns), C), dtype=x.dtype)  # (N, OH, OW, C)
        self.winners = {}                                                   # (oh, ow) -> one-hot
        indices = xp.empty(y.shape, dtype=xp.int64) if self.keep_indices else None  # (N, OH, OW, C)
        for oh, ow, hs, ws in self.windows():
            pixels = x_nhwc[:, hs, ws, :].reshape(N, -1, C)                 # (N, kh*kw, C)
            first = pixels.argmax(axis=1)                                   # (N, C) the first maximum
            y[:, oh, ow, :] = xp.take_along_axis(pixels, first[:, None, :], axis=1)[:, 0, :]  # (N, C)
            if self.needs_input_grad[0]:
                positions = xp.arange(pixels.shape[1]).reshape(1, -1, 1)    # (1, kh*kw, 1)
                self.winners[oh, ow] = positions == first[:, None, :]       # (N, kh*kw, C)
            if indices is not None:     # the window's row and column of it, in the plane
                kw = ws.stop - ws.start
                h, w = hs.start + first // kw, ws.start + first % kw        # (N, C) each
                indices[:, oh, ow, :] = h * W + w                           # (N, C)
        if indices is not None:
            self.indices = indices.transpose(0, 3, 1, 2)                    # (N, C, OH, OW)
        self.x_shape = x.shape
        return y.transpose(0, 3, 1, 2)                                      # (N, C, OH, OW)

    def window_gradient(self, gy_nhwc, oh, ow, hs, ws):
        """All of the window's gradient to its first maximum (self.winners, one-hot): (N, kh, kw, C)."""
        N, C = gy_nhwc.shape[0], gy_nhwc.shape[3]
        share = self.winners[oh, ow] * gy_nhwc[:, oh, ow, None, :]         # (N, kh*kw, C)
        return share.reshape(N, hs.stop - hs.start, ws.stop - ws.start, C)


@unbatched_images
def adaptive_max_pool2d(input, output_size, return_indices=False):
    """PyTorch's ``F.adaptive_max_pool2d``: (N, C, H, W) -> (N, C, OH, OW), the maximum of each
    of adaptive_avg_pool2d's windows. ``return_indices``: also the (N, C, OH, OW) int64
    position h * W + w of each maximum in its (H, W) plane, as PyTorch (for ``max_unpool2d``)."""
    check_bool("AdaptiveMaxPool2d", "return_indices", return_indices)
    check_tensor("AdaptiveMaxPool2d", "input", input)
    OH, OW = check_output_size("AdaptiveMaxPool2d", output_size)

    def name():
        return f"AdaptiveMaxPool2d(output_size={output_size})"
    check_image_input(name, input, None, (1, 1), (0, 0))
    N, C, H, W = input.shape
    OH, OW = H if OH is None else OH, W if OW is None else OW
    function = AdaptiveMaxPool2d(_adaptive_windows(H, OH), _adaptive_windows(W, OW), return_indices)
    y = function(input)
    return (y, Tensor(function.indices)) if return_indices else y


def _adaptive_windows(size, out):
    """[(start, end)] of the ``out`` windows: start = floor(o*size/out), end = ceil((o+1)*size/out)."""
    return [(o * size // out, -(-(o + 1) * size // out)) for o in range(out)]
