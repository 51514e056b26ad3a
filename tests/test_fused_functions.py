"""minires's fused functions: each against the unfused NumPy code it replaced, in float64, and
each one launch on the strict stand-in, which also proves it stays on CuPy's fast fusion path.

The references below are the code as it was before fusion (commit cb30f05), written out on
NumPy arrays. On NumPy a fused function is the function itself, so comparing the layers with
them checks the rewrite; on the stand-in every fused function is traced by CuPy's rules.
"""
import importlib
import math
import os
import pkgutil

import numpy
import pytest

import minires
import minires.functional as F
from minires import backend, nn, optim
from minires.functional import conv as conv_module
from minires.functional.loss import CrossEntropy, _log_softmax
from minires.functional.norm import BatchNorm2d, update_running_stats
from minires.functional.rows import centred_square_sums, column_sums_and_dots
from minires.testing import strict_device


def all_fused_functions():
    """Every ``backend.fuse``-decorated function in minires, by name."""
    found = {}
    for info in pkgutil.walk_packages(minires.__path__, "minires."):
        if info.name.startswith("minires.testing"):
            continue
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, backend._Fused):
                found[value.__name__] = value
    return found


def workload():
    """A training step of every layer with fused code, two optimizers and evaluation; float64."""
    rng = numpy.random.default_rng(0)
    minires.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(in_channels=3, out_channels=4, kernel_size=3, stride=1, padding=1),
        nn.BatchNorm2d(4), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        nn.Conv2d(in_channels=4, out_channels=6, kernel_size=1), nn.BatchNorm2d(6, momentum=None),
        nn.ReLU(), nn.AvgPool2d(kernel_size=2, stride=2), nn.Flatten(),
        nn.Linear(6 * 2 * 2, 5))
    model.double()
    x = minires.Tensor(backend.to_device(rng.standard_normal((3, 3, 8, 8))), requires_grad=True)
    labels = numpy.array([0, 4, 2])
    results = []
    for optimizer in (optim.Adam(model.parameters(), lr=1e-2),
                      optim.Adam(model.parameters(), lr=1e-2, amsgrad=True),
                      optim.SGD(model.parameters(), lr=1e-2, momentum=0.9, nesterov=True),
                      optim.SGD(model.parameters(), lr=1e-2, momentum=0.9, dampening=0.1),
                      optim.SGD(model.parameters(), lr=1e-2)):
        for _ in range(2):
            loss = F.cross_entropy(model(x), labels, label_smoothing=0.1)
            optimizer.zero_grad()
            x.grad = None
            loss.backward()
            optimizer.step()
            results += [loss.data, x.grad]
    results.append(F.cross_entropy(model(x), labels, reduction="none").data)
    results.append(F.log_softmax(model(x), dim=0).data)
    model.eval()
    eval_x = minires.Tensor(x.data, requires_grad=True)
    eval_loss = F.cross_entropy(model(eval_x), labels, reduction="sum")
    eval_loss.backward()                    # batch norm's evaluation-mode backward
    results.append(eval_x.grad)
    with minires.no_grad():
        results.append(model(x).data)
    results += [v.data if isinstance(v, minires.Tensor) else v for v in model.state_dict().values()]
    return [backend.to_host(r) for r in results]


def test_every_fused_function_runs_as_one_launch_on_the_stand_in_and_as_the_unfused_code():
    fused = all_fused_functions()
    assert len(fused) >= 20, sorted(fused)
    with strict_device.installed(), strict_device.counting() as counts:
        on_device = workload()
    called = {op[len("fuse("):-1] for op in counts.by_op if op.startswith("fuse(")}
    assert called == set(fused), f"not exercised: {sorted(set(fused) - called)}"
    previous = backend.set_fusion(False)
    try:
        with strict_device.installed(), strict_device.counting() as unfused_counts:
            unfused = workload()
    finally:
        backend.set_fusion(previous)
    assert not any(op.startswith("fuse(") for op in unfused_counts.by_op)
    assert unfused_counts.launches > counts.launches
    for a, b in zip(on_device, unfused):
        numpy.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    on_host = workload()        # sums by BLAS and einsum on the host: rounded differently
    for a, b in zip(on_device, on_host):
        numpy.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-9)


# --- each rewrite against the code it replaced, in float64 ---------------------------------
def old_batch_norm_train(x_rows, gamma, beta, eps, gy_rows):
    M = len(x_rows)
    mean = x_rows.mean(axis=0)
    y_rows = x_rows - mean
    var = numpy.einsum("mc,mc->c", y_rows, y_rows) / M
    inv_std = (var + eps) ** -0.5
    scale = gamma * inv_std
    y_rows = y_rows * scale + beta
    gbeta = gy_rows.sum(axis=0)
    ggamma = inv_std * (numpy.einsum("mc,mc->c", gy_rows, x_rows) - mean * gbeta)
    b = (scale * inv_std) * (ggamma * (-1.0 / M))
    c = scale * (gbeta * (-1.0 / M))
    gx_rows = (x_rows - mean) * b + gy_rows * scale + c
    return y_rows, gx_rows, ggamma, gbeta, mean, var


def random_rows(rng, M=24, C=5, offset=3.0):
    return (rng.standard_normal((M, C)) * 2.0 + offset, rng.uniform(0.5, 2.0, C),
            rng.standard_normal(C), rng.standard_normal((M, C)))


def as_image(rows):
    """(M, C) rows -> an (N=2, C, H=3, W=4) channels-last image whose rows they are."""
    return rows.reshape(2, 3, 4, -1).transpose(0, 3, 1, 2)


def test_batch_norm_training_matches_the_unfused_code(rng):
    x_rows, gamma, beta, gy_rows = random_rows(rng)
    running_mean, running_var = rng.standard_normal(5), rng.uniform(0.5, 2.0, 5)
    new_mean, new_var = running_mean.copy(), running_var.copy()
    function = BatchNorm2d(new_mean, new_var, True, 0.1, 1e-5)
    function.needs_input_grad = (True, True, True)
    y = function.forward(as_image(x_rows), gamma, beta)
    gx, ggamma, gbeta = function.backward(as_image(gy_rows))
    y_old, gx_old, ggamma_old, gbeta_old, mean, var = old_batch_norm_train(x_rows, gamma, beta, 1e-5,
                                                                           gy_rows)
    for new, old in ((y, as_image(y_old)), (gx, as_image(gx_old)), (ggamma, ggamma_old),
                     (gbeta, gbeta_old)):
        numpy.testing.assert_allclose(new, old, rtol=1e-11, atol=1e-12)
    M = len(x_rows)
    numpy.testing.assert_allclose(new_mean, 0.9 * running_mean + 0.1 * mean, rtol=1e-13)
    numpy.testing.assert_allclose(new_var, 0.9 * running_var + 0.1 * var * M / (M - 1), rtol=1e-13)


def test_batch_norm_evaluation_matches_the_unfused_code(rng):
    x_rows, gamma, beta, gy_rows = random_rows(rng)
    mean, var = rng.standard_normal(5), rng.uniform(0.5, 2.0, 5)
    function = BatchNorm2d(mean, var, False, 0.1, 1e-5)
    function.needs_input_grad = (True, True, True)
    y = function.forward(as_image(x_rows), gamma, beta)
    gx, ggamma, gbeta = function.backward(as_image(gy_rows))
    inv_std = (var + 1e-5) ** -0.5
    scale = gamma * inv_std
    numpy.testing.assert_allclose(y, as_image(x_rows * scale + (beta - mean * scale)), rtol=1e-12)
    numpy.testing.assert_allclose(gx, as_image(gy_rows * scale), rtol=1e-12)
    numpy.testing.assert_allclose(ggamma, inv_std * ((gy_rows * x_rows).sum(0) - mean * gy_rows.sum(0)),
                                  rtol=1e-11)
    numpy.testing.assert_allclose(gbeta, gy_rows.sum(0), rtol=1e-12)


def test_running_statistics_with_a_device_count_match_the_unfused_code(rng):
    running_mean, running_var, mean, var = (rng.standard_normal(4) for _ in range(4))
    expected_mean = (1 - 0.3) * running_mean + 0.3 * mean
    expected_var = (1 - 0.3) * running_var + (0.3 * 10 / 9) * var
    update_running_stats(running_mean, running_var, numpy.array(0.3), mean, var, numpy.array(10.0))
    numpy.testing.assert_allclose(running_mean, expected_mean, rtol=1e-13)
    numpy.testing.assert_allclose(running_var, expected_var, rtol=1e-13)


def test_row_reductions_match_numpy(rng):
    a, b, mean = rng.standard_normal((7, 3)), rng.standard_normal((7, 3)), rng.standard_normal(3)
    numpy.testing.assert_allclose(column_sums_and_dots(a, b), [a.sum(0), (a * b).sum(0)], rtol=1e-12)
    numpy.testing.assert_allclose(centred_square_sums(a, mean), ((a - mean) ** 2).sum(0), rtol=1e-12)
    with strict_device.installed():
        a_device, b_device = strict_device.asarray(a), strict_device.asarray(b)
        column_sums_and_dots(a_device, b_device)    # the [0, 1] constant is made once, at first use
        with strict_device.counting() as counts:
            sums = column_sums_and_dots(a_device, b_device)
    assert counts.launches == 1
    numpy.testing.assert_allclose(strict_device.asnumpy(sums), [a.sum(0), (a * b).sum(0)], rtol=1e-12)


@pytest.mark.parametrize("options", [
    dict(weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0),
    dict(weight=numpy.array([1.0, 0.5, 2.0, 1.5]), ignore_index=1, reduction="mean", label_smoothing=0.2),
    dict(weight=None, ignore_index=2, reduction="sum", label_smoothing=0.1),
    dict(weight=numpy.array([1.0, 0.5, 2.0, 1.5]), ignore_index=-100, reduction="none",
         label_smoothing=0.0),
])
def test_cross_entropy_gradient_matches_the_unfused_code(rng, options):
    x, target = rng.standard_normal((5, 4)), numpy.array([0, 1, 2, 3, 1])
    gy = rng.standard_normal(5) if options["reduction"] == "none" else numpy.array(0.7)
    e, weight = options["label_smoothing"], options["weight"]
    function = CrossEntropy(target, weight, options["ignore_index"], options["reduction"], e)
    function.forward(x)
    gx = function.backward(gy)
    # the code it replaced
    K = 4
    shifted = x - x.max(axis=1, keepdims=True)
    p = numpy.exp(shifted - numpy.log(numpy.exp(shifted).sum(axis=1, keepdims=True)))
    keep = (target != options["ignore_index"]).astype(float)
    read = numpy.where(keep > 0, target, 0)
    w_t = keep if weight is None else weight[read] * keep
    w_sum = K if weight is None else weight.sum()
    q_sum = (1 - e) * w_t + (e / K) * w_sum * keep
    old = p * q_sum[:, None]
    old[numpy.arange(5), read] -= (1 - e) * w_t
    old -= (e / K) * (keep[:, None] * (1.0 if weight is None else weight))
    if options["reduction"] == "none":
        old *= gy[:, None]
    elif options["reduction"] == "sum":
        old *= gy
    else:
        old *= gy / w_t.sum()
    numpy.testing.assert_allclose(gx, old, rtol=1e-12, atol=1e-15)


def test_log_softmax_matches_the_unfused_code(rng):
    x = rng.standard_normal((3, 4, 5)) * 10
    for axis in (0, 1, 2, -1):
        shifted = x - x.max(axis=axis, keepdims=True)
        old = shifted - numpy.log(numpy.exp(shifted).sum(axis=axis, keepdims=True))
        numpy.testing.assert_allclose(_log_softmax(x, axis), old, rtol=1e-12, atol=1e-12)


def old_adam(p, g, m, v, lr, beta1, beta2, eps, t):
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * (g * g)
    denom = numpy.sqrt(v) / math.sqrt(1 - beta2 ** t) + eps
    p -= m / denom * (lr / (1 - beta1 ** t))


@pytest.mark.parametrize("rule", ["adam", "sgd", "momentum", "nesterov"])
def test_optimizer_rules_match_the_unfused_code(rng, rule):
    p0, g = rng.standard_normal(10), rng.standard_normal(10)
    param = nn.Parameter(p0.copy())
    if rule == "adam":
        optimizer = optim.Adam([param], lr=0.1, betas=(0.8, 0.9), eps=1e-3)
    else:
        optimizer = optim.SGD([param], lr=0.1, momentum=0.0 if rule == "sgd" else 0.9,
                              dampening=0.2 if rule == "momentum" else 0.0,
                              nesterov=rule == "nesterov")
    p, state = p0.copy(), [numpy.zeros(10), numpy.zeros(10)]
    for t in (1, 2, 3):
        param.grad = g * t
        optimizer.step()
        gt = g * t
        if rule == "adam":
            old_adam(p, gt, state[0], state[1], 0.1, 0.8, 0.9, 1e-3, t)
        elif rule == "sgd":
            p -= 0.1 * gt
        else:
            buf = state[0]
            buf[...] = gt if t == 1 else 0.9 * buf + (1 - (0.2 if rule == "momentum" else 0.0)) * gt
            p -= 0.1 * (gt + 0.9 * buf if rule == "nesterov" else buf)
        numpy.testing.assert_allclose(param.data, p, rtol=1e-13, atol=1e-15)


def test_relu_gradient_matches_the_unfused_code(rng):
    x, gy = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    function = F.activation.ReLU(inplace=False)
    y = function.forward(x)
    numpy.testing.assert_array_equal(function.backward(gy), gy * (y > 0))


def test_pooling_matches_the_unfused_code(rng):
    x = rng.standard_normal((2, 3, 7, 6))
    x[0, 0, 1, 1] = x[0, 0, 1, 2]           # a tie: the first offset keeps the gradient
    pooled = minires.Tensor(x, requires_grad=True)
    y = F.max_pool2d(pooled, kernel_size=3, stride=2, padding=1)
    gy = rng.standard_normal(y.shape)
    y.backward(gy)
    # the code it replaced: a running maximum and a strictly-greater argmax, offset by offset
    x_pad = numpy.pad(x.transpose(0, 2, 3, 1), ((0, 0), (1, 1), (1, 1), (0, 0)),
                      constant_values=-numpy.inf)
    OH, OW = y.shape[2:]
    windows = [x_pad[:, i:i + 2 * OH:2, j:j + 2 * OW:2, :] for i in range(3) for j in range(3)]
    best, argmax = windows[0].copy(), numpy.zeros(windows[0].shape, dtype=int)
    for k, candidate in enumerate(windows[1:], start=1):
        argmax[candidate > best] = k
        best = numpy.maximum(best, candidate)
    numpy.testing.assert_array_equal(y.data, best.transpose(0, 3, 1, 2))
    gx_pad = numpy.zeros_like(x_pad)
    for k in range(9):
        i, j = divmod(k, 3)
        gx_pad[:, i:i + 2 * OH:2, j:j + 2 * OW:2, :] += gy.transpose(0, 2, 3, 1) * (argmax == k)
    numpy.testing.assert_allclose(pooled.grad, gx_pad[:, 1:-1, 1:-1, :].transpose(0, 3, 1, 2),
                                  rtol=1e-13)
    average = F.avg_pool2d(minires.Tensor(x), kernel_size=2, stride=2)
    old = x[:, :, 0:6:2, 0:6:2] + x[:, :, 1:7:2, 0:6:2] + x[:, :, 0:6:2, 1:7:2] + x[:, :, 1:7:2, 1:7:2]
    numpy.testing.assert_allclose(average.data, old * 0.25, rtol=1e-13)


@pytest.mark.parametrize("padding, dilation, groups", [(1, 1, 1), (0, 1, 1), (2, 2, 1), (1, 1, 2),
                                                       (2, 1, 4)])
def test_stride_1_convolution_backward_matches_col2im(rng, padding, dilation, groups):
    """The full convolution of gy with the flipped kernel equals col2im, the code it replaced."""
    x = rng.standard_normal((2, 4, 7, 6))
    weight = rng.standard_normal((8, 4 // groups, 3, 3))
    function = conv_module.Conv2d((1, 1), (padding, padding), (dilation, dilation), (0, 0),
                                  (7 + 2 * padding - 2 * dilation, 6 + 2 * padding - 2 * dilation),
                                  groups)
    function.needs_input_grad = (True, True)
    y = function.forward(x, weight)
    gy = rng.standard_normal(y.shape)
    gx, _, _ = function.backward(gy)
    gy_rows = gy.transpose(0, 2, 3, 1).reshape(-1, 8)
    gcol = gy_rows.reshape(len(gy_rows), groups, 8 // groups).transpose(1, 0, 2) @ function.w_mat
    old = conv_module.col2im(gcol, x.shape, (3, 3), (1, 1), (padding, padding),
                             (dilation, dilation), (0, 0), y.shape[2:])
    numpy.testing.assert_allclose(gx, old, rtol=1e-11, atol=1e-12)


def test_batch_norm_launches_per_call_on_the_stand_in(rng):
    """At most 5 launches forward and 5 backward in training and 2 in evaluation (issue 16):
    4, 3 and 1, on channels-last images as the network's layers pass them."""
    def channels_last(*shape):      # (N, C, H, W) seen through an (N, H, W, C) array
        N, C, H, W = shape
        return backend.to_device(rng.standard_normal((N, H, W, C)), dtype="float32").transpose(0, 3, 1, 2)
    with strict_device.installed():
        layer = nn.BatchNorm2d(5)
        x = minires.Tensor(channels_last(2, 5, 3, 4), requires_grad=True)
        gy = channels_last(2, 5, 3, 4)
        layer(x).backward(gy)               # the [0, 1] constant is made once, at first use
        with strict_device.counting(sites=True) as forward:
            y = layer(x)
        with strict_device.counting(sites=True) as backward:
            y.backward(gy)
        layer.eval()
        with minires.no_grad(), strict_device.counting(sites=True) as evaluation:
            layer(x)

    def in_function(counts):
        return sum(n for (_, _, function), n in counts.by_site.items() if function == "BatchNorm2d")
    assert (in_function(forward), in_function(backward), in_function(evaluation)) == (4, 3, 1)


# --- CuPy's own fusion tracer and NVRTC, without a GPU ---------------------------------------
def recorded_fused_calls(monkeypatch):
    """(fused function, arguments described) of every fused call in the workload on the stand-in."""
    calls = {}
    original = strict_device._Fusion.__call__

    def recording(self, *args):
        described = tuple(("array", a.shape, a.dtype) if isinstance(a, strict_device.ndarray) else a
                          for a in args)
        key = (self.__name__,) + tuple((d[2], len(d[1])) if isinstance(d, tuple) else type(d)
                                       for d in described)       # CuPy compiles once per key too
        calls.setdefault(key, (self.function, described))
        return original(self, *args)
    monkeypatch.setattr(strict_device._Fusion, "__call__", recording)
    with strict_device.installed():
        workload()
    return list(calls.values())


def trace_with_cupy(cupy, function, described):
    """CuPy's old-fusion trace of ``function`` (what ``cupy.fuse`` runs first): the kernel, or
    the exception that would make ``cupy.fuse`` fall back to its slow new fusion."""
    from cupy._core import fusion
    nowhere = cupy.cuda.MemoryPointer(cupy.cuda.UnownedMemory(0, 0, None, 0), 0)  # no device needed
    args = [cupy.ndarray(d[1], d[2], memptr=nowhere) if isinstance(d, tuple) else d for d in described]
    history = fusion._FusionHistory()
    fusion._thread_local.history, fusion._thread_local.is_old_fusing = history, True
    previous = backend.get_backend(), backend.get_array_module()
    backend._use("cupy", cupy)          # the function's get_array_module() is CuPy while traced
    try:
        kernel, _ = history.get_fusion(function, args, function.__name__)
    finally:
        backend._use(*previous)
        fusion._thread_local.history, fusion._thread_local.is_old_fusing = None, False
    return kernel, args


def kernel_source(kernel, args):
    """A CUDA translation unit holding the traced kernel's code, for NVRTC.

    CuPy wraps the same code in its own indexing (CArray, CIndexer); a flat loop over
    contiguous arrays holds the same operations. A reduction's traced code is its preamble
    (``_pre_map``, ``_post_map``), called here by a serial reduction.
    """
    arrays = [a for a in args if a is not None]
    # CuPy's float16 header needs the CUDA toolkit's cuda_fp16.h, which the nvrtc wheel lacks;
    # no fused function of minires computes in float16
    preamble = kernel.preamble.replace('#include "cupy/float16.cuh"', "")
    if hasattr(kernel, "operation"):                                 # ElementwiseKernel
        params, refs = [], []
        for p, arg in zip(kernel.params, arrays + [None] * len(kernel.out_params)):
            is_array = arg is None or hasattr(arg, "shape")
            const = "const " if p.is_const else ""
            if is_array:
                params.append(f"{const}{p.ctype}* _raw_{p.name}")
                refs.append(f"{const}{p.ctype} &{p.name} = _raw_{p.name}[_i];")
            else:
                params.append(f"{p.ctype} {p.name}")
        body = " ".join(refs) + "\n" + kernel.operation + ";"
        return (f"{preamble}\nextern \"C\" __global__ void {kernel.name}("
                f"{', '.join(params)}, long long _n) {{\n"
                "  for (long long _i = blockIdx.x * (long long)blockDim.x + threadIdx.x; _i < _n;"
                " _i += (long long)blockDim.x * gridDim.x) {\n" + body + "\n  }\n}\n")
    inputs = ", ".join(f"{p.ctype}* {p.name}" for p in kernel.in_params)
    output = kernel.out_params[0]
    read = ", ".join(f"{p.name}[_i]" for p in kernel.in_params)
    return ("typedef long long IndexT;\n"        # as CuPy's reduction template defines them
            f"{preamble}\ntypedef {kernel.reduce_type} _type_reduce;\n"
            f"extern \"C\" __global__ void {kernel.name}({inputs}, "
            f"{output.ctype}* {output.name}, long long _n) {{\n"
            f"  long long _i = 0; _type_reduce a = static_cast<_type_reduce>(_pre_map({read}));\n"
            f"  for (_i = 1; _i < _n; ++_i) {{\n"
            f"    _type_reduce b = static_cast<_type_reduce>(_pre_map({read})); a = {kernel.reduce_expr};\n"
            f"  }}\n  {kernel.post_map_expr.replace(output.name, output.name + '[0]')};\n}}\n")


@pytest.mark.slow
def test_cupys_own_fusion_tracer_takes_every_fused_function_and_nvrtc_compiles_it(monkeypatch):
    """Where CuPy is installed (no GPU needed): its old-fusion trace, which raises on what its
    fast path cannot fuse, accepts every fused function with the arguments the workload gives
    it, none computes in float16, and NVRTC compiles the traced code."""
    cupy = pytest.importorskip("cupy")
    from cupy.cuda import compiler
    include = f"-I{os.path.join(os.path.dirname(cupy.__file__), '_core', 'include')}"
    calls = recorded_fused_calls(monkeypatch)
    assert {function.__name__ for function, _ in calls} == set(all_fused_functions())
    for function, described in calls:
        kernel, args = trace_with_cupy(cupy, function, described)
        source = kernel_source(kernel, args)
        assert "float16" not in source, f"{function.__name__} computes in float16"
        try:
            compiler._NVRTCProgram(source, f"{function.__name__}.cu").compile(
                ("-arch=compute_80", "-std=c++17", include))
        except Exception as error:
            raise AssertionError(f"{function.__name__}: NVRTC: {error}\n{source}") from None
