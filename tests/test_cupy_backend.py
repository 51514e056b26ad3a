"""The CuPy backend, proved without a GPU.

1. API surface: every name minires reaches on the array module (``xp.<name>``, ``xp.add.at``),
   every keyword it passes there and every array method it calls must exist in the installed
   CuPy. Found twice: statically (``ast`` over ``minires/**/*.py``, minires.testing left out) and
   dynamically (a training step with a recording proxy of NumPy installed as the array module).
2. The strict stand-in device (``minires/testing/strict_device.py``): NumPy underneath, CuPy's
   refusals on top. A full ResNet50_layer4 training step and an evaluation pass run on it with no
   implicit conversion and no device-to-host read, and give the NumPy backend's numbers (slow).

Choosing the backend, and its advice without CuPy or a GPU, is tested in test_backend.py; a
checkpoint round trip on the stand-in in test_checkpoint.py.
"""
import ast
import functools
import inspect
import os
import pathlib
import sys

import numpy
import pytest

import minires
import minires.data
import minires.functional as F
from minires import backend, nn, optim
from minires.models.resnet import ResidualBlock
from minires.optim import lr_scheduler
from minires.testing import strict_device

MINIRES = pathlib.Path(minires.__file__).parent
ROOT = MINIRES.parent
TESTING = MINIRES / "testing"          # tools that check minires, not device code of its own

# CuPy's ufuncs take these keywords and no others (cupy/_core/_kernel.pyx, ufunc.__call__);
# used when a ufunc's docstring signature cannot be read.
CUPY_UFUNC_KEYWORDS = {"out", "dtype", "casting"}


# --- static analysis -----------------------------------------------------------------------
def _minires_sources():
    for path in sorted(MINIRES.rglob("*.py")):
        if TESTING in path.parents:
            continue
        yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(), str(path))


def _is_xp_source(node):
    """``backend.get_array_module()``, ``get_array_module()``, ``_active.xp``, ``backend._active.xp``."""
    if isinstance(node, ast.Call):
        function = node.func
        return ((isinstance(function, ast.Attribute) and function.attr == "get_array_module")
                or (isinstance(function, ast.Name) and function.id == "get_array_module"))
    if isinstance(node, ast.Attribute) and node.attr == "xp":
        owner = node.value
        return ((isinstance(owner, ast.Name) and owner.id == "_active")
                or (isinstance(owner, ast.Attribute) and owner.attr == "_active"))
    return False


def _xp_names(tree):
    """Names bound from the array module anywhere in the file (in practice: ``xp``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None \
                and _is_xp_source(node.value):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def _parents(tree):
    parents = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    return parents


@functools.lru_cache(maxsize=None)
def static_xp_uses():
    return scan_xp_uses(_minires_sources())


def scan_xp_uses(sources):
    """[(name, keywords, "file:line")] from [(file, ast tree)]: ``xp.zeros(..., dtype=...)`` gives
    ("zeros", ("dtype",), ...); ``xp.add.at(...)`` gives ("add", ...) and ("add.at", ...)."""
    uses = []
    for file, tree in sources:
        xp_names, parents = _xp_names(tree), _parents(tree)

        def is_xp(node):
            return (isinstance(node, ast.Name) and node.id in xp_names) or _is_xp_source(node)

        for node in ast.walk(tree):
            if not (isinstance(node, ast.Attribute) and is_xp(node.value)):
                continue
            chain, attribute = [(node.attr, node)], node
            while isinstance(parents.get(attribute), ast.Attribute) \
                    and parents[attribute].value is attribute:     # xp.add.at, xp.lib.stride_tricks.x
                attribute = parents[attribute]
                chain.append((f"{chain[-1][0]}.{attribute.attr}", attribute))
            for name, attribute in chain:
                call = parents.get(attribute)
                called = isinstance(call, ast.Call) and call.func is attribute
                keywords = tuple(k.arg for k in call.keywords if k.arg) if called else ()
                uses.append((name, keywords, f"{file}:{node.lineno}"))
    return uses


NDARRAY_METHODS = {name for name in dir(numpy.ndarray)
                   if not name.startswith("_") and callable(getattr(numpy.ndarray, name))}


def _is_device_code(tree):
    """Files that hold device arrays: they ask for the array module or build on autograd."""
    for node in ast.walk(tree):
        if _is_xp_source(node):
            return True
        if isinstance(node, ast.ImportFrom) and node.module == "minires.autograd":
            return True
    return False


@functools.lru_cache(maxsize=None)
def static_method_calls():
    """[(method, keywords, "file:line")] for ``<array>.<ndarray method>(...)`` in device code.

    The receiver's type is not known statically: every call of a name that is an ndarray
    method (``reshape``, ``sum``, ``astype``...) on something that is not a module counts.
    """
    calls = []
    for file, tree in _minires_sources():
        if not _is_device_code(tree):
            continue
        modules = {"self"}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                modules.update((a.asname or a.name).split(".")[0] for a in node.names)
        xp_names = _xp_names(tree)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in NDARRAY_METHODS):
                continue
            receiver = node.func.value
            if (isinstance(receiver, ast.Name) and receiver.id in modules | xp_names) \
                    or _is_xp_source(receiver):
                continue
            calls.append((node.func.attr, tuple(k.arg for k in node.keywords if k.arg),
                          f"{file}:{node.lineno}"))
    return calls


# --- what the installed CuPy accepts -------------------------------------------------------
def _cupy():
    return pytest.importorskip("cupy")


def _resolve(root, dotted):
    try:
        return True, functools.reduce(getattr, dotted.split("."), root)
    except AttributeError:
        return False, None


def _split_top_level(text):
    parts, depth, start, quote = [], 0, 0, None
    for i, char in enumerate(text):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [part.strip() for part in parts if part.strip()]


def _docstring_keywords(obj):
    """Keyword names from a Cython docstring's first line, e.g.
    ``_ndarray_base.sum(self, axis=None, dtype=None, out=None, keepdims=False)``;
    None if it has no such line, "any" if it takes ``**kwargs``."""
    first = (getattr(obj, "__doc__", None) or "").strip().splitlines()[:1]
    if not first or "(" not in first[0]:
        return None
    inside = first[0][first[0].index("(") + 1:first[0].rindex(")")].replace("\\*", "*")
    names = set()
    for part in _split_top_level(inside):
        name = part.split("=")[0].strip().split()[-1]      # drop Cython types: "Py_ssize_t axis1"
        if name.startswith("**"):
            return "any"
        if name.startswith("*") or name in ("/", "self"):
            continue
        names.add(name)
    return names


def accepted_keywords(obj, cupy):
    """The keywords ``obj`` (a CuPy function, ufunc or method) accepts; "any"; or None if unknown."""
    if isinstance(obj, cupy.ufunc):
        return _docstring_keywords(obj) or CUPY_UFUNC_KEYWORDS
    try:
        parameters = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):
        return _docstring_keywords(obj)
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return "any"
    return {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def check_against_cupy(uses, root, what):
    """Problems with ``uses`` [(name, keywords, sites)] against ``root`` (cupy or cupy.ndarray)."""
    cupy = _cupy()
    problems, unchecked = [], set()
    for name, keywords, sites in uses:
        exists, obj = _resolve(root, name)
        if not exists:
            problems.append(f"{what}{name} does not exist in CuPy {cupy.__version__} "
                            f"(used at {sites})")
            continue
        if not keywords:
            continue
        accepted = accepted_keywords(obj, cupy)
        if accepted is None:
            unchecked.add(name)
        elif accepted != "any":
            for keyword in sorted(set(keywords) - accepted):
                problems.append(f"{what}{name}(..., {keyword}=...) is not accepted by CuPy "
                                f"{cupy.__version__}, which takes {sorted(accepted)} "
                                f"(used at {sites})")
    return problems, unchecked


# --- the recording proxy: NumPy as the array module, noting every name and keyword ----------
class RecordingProxy:
    """Forwards to ``target`` (NumPy or one of its attributes) and notes in ``log`` every
    attribute reached and every keyword passed: log["add.at"] = {"keywords", "sites"}."""

    def __init__(self, target, path, log):
        self._target, self._path, self._log = target, path, log

    def __getattr__(self, name):
        value = getattr(self._target, name)
        path = f"{self._path}.{name}" if self._path else name
        self._note(path, ())
        if isinstance(value, type) or not (callable(value) or inspect.ismodule(value)):
            return value        # ndarray (for isinstance), dtypes, constants such as inf
        return RecordingProxy(value, path, self._log)

    def __call__(self, *args, **kwargs):
        self._note(self._path, kwargs)
        return self._target(*args, **kwargs)

    def fuse(self, function):
        """``cupy.fuse``, noted: given NumPy arrays, CuPy's fused function is the function itself."""
        self._note("fuse", ())
        return function

    def _note(self, path, keywords):
        entry = self._log.setdefault(path, {"keywords": set(), "sites": set()})
        entry["keywords"].update(keywords)
        frame = sys._getframe(2)
        while frame is not None and not frame.f_code.co_filename.startswith(str(MINIRES)):
            frame = frame.f_back
        if frame is not None:
            path = pathlib.Path(frame.f_code.co_filename).relative_to(ROOT).as_posix()
            entry["sites"].add(f"{path}:{frame.f_lineno}")


def small_workload():
    """Every device code path of minires on tiny shapes: the layers of ResNet50_layer4,
    cross entropy from host and device labels, Adam and SGD steps, basic tensor arithmetic,
    getitem's scatter-add backward, evaluation, state dicts, the loader, summary, gradcheck."""
    xp = backend.get_array_module()
    rng = numpy.random.default_rng(0)
    model = nn.Sequential(
        nn.Conv2d(in_channels=3, out_channels=4, kernel_size=3, stride=1, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1),                # (N, 4, 4, 4)
        ResidualBlock(4, 2, 8, downsample=True),                         # (N, 8, 2, 2)
        ResidualBlock(8, 2, 8, identity_shortcut=True),                  # (N, 8, 2, 2)
        nn.AvgPool2d(kernel_size=2, stride=2),                           # (N, 8, 1, 1)
        nn.Flatten(),
        nn.Linear(in_features=8, out_features=3),
    )
    images = rng.integers(0, 256, size=(4, 3, 8, 8), dtype=numpy.uint8)
    labels = numpy.array([0, 2, 1, 2])
    loader = minires.data.BatchLoader(images, labels, batch_size=2, shuffle=True, augment=True,
                                      rng=rng, prefetch=False)
    adam = optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    for x, y in loader:                                  # device batches, device labels
        loss = F.cross_entropy(model(minires.Tensor(x)), y)
        adam.zero_grad()
        loss.backward()
        adam.step()
    model.zero_grad()
    sgd = optim.SGD(model.parameters(), lr=1e-2, momentum=0.9, weight_decay=1e-4, nesterov=True)
    scheduler = optim.StepLR(sgd, step_size=1, gamma=0.5)
    x = minires.Tensor(minires.data.normalize(images[:2]))
    for _ in range(2):
        loss = F.cross_entropy(model(x), labels[:2])     # host labels
        sgd.zero_grad()
        loss.backward()
        sgd.step()
        scheduler.step()
    loss.item()
    repr(loss)
    sgd.load_state_dict(sgd.state_dict())
    model.load_state_dict(model.state_dict())           # device arrays in
    model.load_state_dict({k: backend.to_host(v) for k, v in model.state_dict().items()})

    a = minires.Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    b = minires.Tensor(rng.random(4) + 1.0, requires_grad=True)        # positive, for log
    picked = a[xp.asarray(numpy.array([0, 0, 2]))]                      # (3, 4), a row twice
    total = ((picked * b - b / 2.0 + 1.0) ** 2).mean() + (a @ a.T).sum() \
        + F.log_softmax(a, dim=1).sum() + a.amax(axis=1).sum() + (b.log() - (-b).exp()).sum() \
        + a.reshape(4, 3).transpose(1, 0).sum(axis=0, keepdims=True).sum()
    total.backward()
    c = minires.Tensor(rng.standard_normal((2, 3)), requires_grad=True)      # issue 10's operations
    values, indices = c.max(1)
    more = values.sum() + c.min(0).values.sum() + c.amin(1).sum() + ((c.abs() + 1) ** c).sum() \
        + c.clamp(-0.5, 0.5).sum() + (c.abs() + 1).sqrt().sum() + F.softmax(c, 1).sum() \
        + F.sigmoid(c).sum() + F.tanh(c).sum() + F.leaky_relu(c).sum() + (c[0] @ c[1]) \
        + minires.cat([c, c], 1).sum() + minires.stack([c, c], 0).sum() \
        + F.linear(c.unsqueeze(0), c).sum() + c.view(3, 2).squeeze().flatten().sum() \
        + (c.double() * 2).float().sum() + (2 ** c).sum(dim=1, keepdim=True).sum()
    more.backward()
    ((c > 0) & (c.argmax(1) == indices).unsqueeze(1)).long().sum()
    minires.gradcheck(lambda t: (t * t).sum(axis=1), [minires.Tensor(
        rng.standard_normal((2, 2)), requires_grad=True, dtype=numpy.float64)])

    layer_options_workload(rng)
    pytorch_idioms_workload(rng)
    model.eval()
    minires.summary(model, (3, 8, 8), print_fn=lambda line: None)
    with minires.no_grad():
        logits = model(x)
        correct = (logits.data.argmax(axis=1) == backend.to_device(labels[:2])).sum()
    backend.to_host(correct)
    model.double()
    backend.synchronize()
    backend.free_memory()


def layer_options_workload(rng):
    """The layer options of issue 10, trained one step per label set and evaluated: dilated,
    depthwise, grouped 1x1 and 'same'-padded (even kernel) convolutions, ceil_mode pooling with
    dilation and count_include_pad=False, adaptive pooling, batch norm without affine parameters,
    running statistics or momentum, BatchNorm1d, and cross entropy with every option."""
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, 1, 2, 2),                                    # dilation
        nn.BatchNorm2d(4, affine=False, momentum=None),
        nn.Conv2d(4, 4, 2, padding="same", groups=4),                   # depthwise, odd padding
        nn.Conv2d(4, 4, 1, groups=2),                                   # grouped 1x1
        nn.BatchNorm2d(4, track_running_stats=False),
        nn.MaxPool2d(3, 2, 1, 2, False, True),                          # dilation, ceil_mode
        nn.AvgPool2d(2, 2, 1, True, False),                             # ceil_mode, count_include_pad
        nn.AdaptiveAvgPool2d((2, 1)),                                   # (N, 4, 2, 1)
        nn.Flatten(),
        nn.BatchNorm1d(8, momentum=None),
        nn.Linear(8, 3),
    )
    criterion = nn.CrossEntropyLoss(numpy.array([1.0, 0.5, 2.0], dtype=numpy.float32),
                                    ignore_index=1, label_smoothing=0.1)
    x = minires.Tensor(backend.to_device(rng.standard_normal((4, 3, 7, 6)), dtype="float32"))
    for labels in (numpy.array([0, 2, 1, 1]), backend.to_device(numpy.array([2, 1, 0, 0]))):
        criterion(model(x), labels).backward()          # host labels, then device labels
    model.eval()
    with minires.no_grad():
        model(x)


def pytorch_idioms_workload(rng):
    """Issue 17's idioms and names, forward and backward: a view of channels-last memory, Tensors
    inside an index, max(axis=), .to(device), the factories, the selections, expand / repeat /
    clone, split / chunk, var / std, log1p / square, the in-place forms, the new losses, layer
    norm, pad, silu / elu / softplus, embedding and one_hot, gradient clipping and initialisers."""
    device = minires.zeros(1).device
    x = minires.randn(2, 3, 4, 4, dtype=minires.float64, device=device).to(device)
    x.requires_grad = True
    pooled = F.max_pool2d(x, 2)                                              # (2, 3, 2, 2)
    flat = pooled.view(pooled.size(0), -1)                                   # a copy: channels-last
    rows, cols = minires.tensor([1, 0, 1]), minires.arange(3)
    picked = flat[rows, cols] + x[1, :, minires.tensor([0, 3]), 0:2].sum()
    mask = flat > 0
    chosen = minires.where(mask, flat, 0.1 * flat).masked_fill(~mask, 0.5) \
        + minires.maximum(flat, flat.mean(1, keepdim=True)) + minires.minimum(flat, minires.zeros(1))
    gathered = flat.gather(1, minires.tensor([[0, 2], [1, 1]])).sum() \
        + flat.index_select(1, minires.tensor([3, 3, 0])).sum()
    shaped = flat[:, :1].expand(2, 5).sum() + flat.repeat(2, 1).sum() + flat.clone().square().sum() \
        + sum(part.sum() for part in flat.split([5, 7], 1)) + flat.chunk(2)[1].sum()
    stats = flat.var(1).sum() + flat.std(dim=0, unbiased=False).sum() + (flat * flat).log1p().sum()
    in_place = (flat * 1.0).mul_(2).add_(flat, alpha=0.5).sub_(1).div_(3).clamp_(-1, 1).sum() \
        + (flat * 1.0).copy_(flat.amax(axis=1, keepdims=True)).sum() + (flat * 1.0).zero_().sum()
    values, indices = flat.max(axis=1)
    labels, targets = minires.tensor([2, 0]), flat.detach().sigmoid()
    losses = F.mse_loss(flat, targets) + F.l1_loss(flat, targets) + F.smooth_l1_loss(flat, targets) \
        + F.binary_cross_entropy(flat.sigmoid(), targets) + nn.BCEWithLogitsLoss(pos_weight=targets[0])(
            flat, targets) + nn.NLLLoss(weight=minires.ones(12, dtype=minires.float64))(
            F.log_softmax(flat, 1), labels)
    layers = nn.LayerNorm(12).double()(flat).sum() + F.layer_norm(flat, (12,)).sum() \
        + F.pad(pooled, (1, 0, -1, 2), value=0.5).sum() + F.silu(flat).sum() + F.elu(flat).sum() \
        + F.gelu(flat).sum() + nn.GELU("tanh")(flat).sum() \
        + nn.Softplus(2.0, 1.0)(flat).sum() + F.embedding(labels, flat.T).sum()
    F.one_hot(labels, 3).sum() + F.one_hot(labels).sum()
    maths = flat.sort(1, descending=True).values.sum() + flat.topk(3).values.sum() + flat.prod(1).sum() \
        + flat.prod().sum() + flat.logsumexp(1).sum() + flat.cumsum(1).sum() + flat.norm() \
        + flat.norm(1, dim=1).sum() + flat.norm(float("inf")) + flat.flip(1).roll(2, 1)[:, :2].tril().sum() \
        + flat[:, :2].triu(1).sum() + (flat.sin() * flat.cos()).sum() + (flat % 0.7).sum() \
        + (flat.floor() + flat.ceil() + flat.round() + flat.sign() + flat // 2).sum() \
        + flat.scatter_add(1, minires.tensor([[0, 0], [1, 2]]), flat[:, :2]).sum() \
        + flat.scatter(1, minires.tensor([[0, 1], [2, 3]]), flat[:, 2:4]).sum()
    flat.argsort(0)
    heads = nn.ModuleDict({"up": nn.Upsample(scale_factor=2), "unflat": nn.Unflatten(1, (3, 4))})
    maths = maths + heads["up"](pooled).sum() + heads["unflat"](flat).sum() \
        + nn.GroupNorm(3, 3).double()(pooled).sum() + minires.einsum("nk,mk->nm", flat, flat).sum() \
        + F.max_unpool2d(*F.max_pool2d(x, 2, return_indices=True), 2).sum() \
        + F.avg_pool2d(x, 3, 1, 1, divisor_override=4).sum() + F.conv2d(x[0], x[:, :, :3, :3]).sum() \
        + nn.AdaptiveMaxPool2d((3, 2))(x).sum() + F.conv_transpose2d(
            x, x[0, :, None, :3, :3] * 1.0, None, 2, 1, 1, 3, 1).sum() \
        + F.cross_entropy(flat, flat.detach().softmax(1), label_smoothing=0.1) \
        + nn.CrossEntropyLoss(weight=minires.ones(3, dtype=minires.float64))(x, minires.randint(3, (2, 4, 4)))
    (minires.tensor([7, -7]) // 2) + (minires.tensor([7, -7]) % 3)
    total = picked.sum() + chosen.sum() + gathered + shaped + stats + in_place + values.sum() + losses \
        + layers + maths
    total.backward()
    nn.utils.clip_grad_norm_([x], 1.0)
    nn.utils.clip_grad_norm_([x], 1.0, norm_type="inf")
    nn.utils.clip_grad_value_([x], 0.01)
    embedded = nn.Embedding(5, 2, padding_idx=0)
    for optimizer in (optim.RMSprop(embedded.parameters(), momentum=0.9, centered=True, maximize=True),
                      optim.Adagrad(embedded.parameters(), lr_decay=0.1, initial_accumulator_value=0.1)):
        embedded(minires.tensor([[0, 4], [4, 1]])).sum().backward()
        optimizer.step()
        optimizer.zero_grad()
    for optimizer in (optim.Adam(embedded.parameters(), amsgrad=True, maximize=True, weight_decay=0.1),
                      optim.SGD(embedded.parameters(), momentum=0.9, nesterov=True, maximize=True)):
        embedded(minires.tensor([[0, 4], [4, 1]])).sum().backward()
        nn.utils.clip_grad_norm_(embedded.parameters(), 1.0)        # one pass over the flat array
        nn.utils.clip_grad_value_(embedded.parameters(), 0.5)
        optimizer.step()
        optimizer.load_state_dict(optimizer.state_dict())           # PyTorch's layout
        optimizer.zero_grad()
    schedules = [lr_scheduler.LinearLR(optimizer, 0.5, total_iters=2),
                 lr_scheduler.ExponentialLR(optimizer, 0.9)]
    lr_scheduler.SequentialLR(optimizer, schedules, milestones=[2]).step()
    F.adaptive_max_pool2d(x, (3, 2), return_indices=True)[1].sum()
    embedded(minires.tensor([[0, 4], [4, 1]])).sum().backward()
    for initialise in (nn.init.kaiming_normal_, nn.init.xavier_normal_, nn.init.trunc_normal_):
        initialise(embedded.weight)
    with minires.no_grad():
        minires.ones(3, 2).fill_(2).bernoulli_(0.5)
    minires.full((2,), 1.5) + minires.ones_like(values) + minires.zeros_like(values) \
        + minires.linspace(0, 1, 2) + minires.eye(2)[0] + minires.rand(2) + minires.randint(3, (2,)) \
        + minires.empty(2).fill_(0) + minires.full_like(values, 2) + indices


@pytest.fixture(scope="module")
def proxy_log():
    log = {}
    backend._use("cupy", RecordingProxy(numpy, "", log))
    try:
        minires.manual_seed(0)
        small_workload()
    finally:
        backend._use("numpy", numpy)
    return log


@pytest.fixture(scope="module")
def strict_usage():
    """Names and keywords the workload used on the stand-in and on its arrays."""
    strict_device.usage.clear()
    with strict_device.installed(), strict_device.counting() as counts:
        minires.manual_seed(0)
        small_workload()
    assert counts.implicit == 0
    return {key: dict(value) for key, value in strict_device.usage.items()}


def _as_uses(log):
    return [(name, tuple(entry["keywords"]), ", ".join(sorted(entry["sites"])) or "?")
            for name, entry in sorted(log.items())]


def _fail_if(problems):
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems)


# --- 1. API surface --------------------------------------------------------------------------
@pytest.mark.slow
def test_static_scan_finds_the_array_module_uses():
    names = {name for name, _, _ in static_xp_uses()}
    assert {"zeros", "asarray", "ndarray", "add.at"} <= names, sorted(names)


def test_the_checks_catch_missing_names_and_keywords():
    """The checker itself: a made-up name, a keyword CuPy lacks (ufunc ``where``), a deep chain."""
    cupy = _cupy()
    source = ("from minires import backend\n"
              "def f(x):\n"
              "    xp = backend.get_array_module()\n"
              "    xp.no_such_function(x)\n"
              "    xp.exp(x, where=x > 0)\n"
              "    xp.zeros(3, dtype=x.dtype, fill=0)\n"
              "    return xp.lib.stride_tricks.as_strided(x, shape=(2,), strides=(4,))\n")
    uses = scan_xp_uses([("minires/example.py", ast.parse(source))])
    assert {"lib.stride_tricks.as_strided", "no_such_function"} <= {n for n, _, _ in uses}
    problems, unchecked = check_against_cupy(uses, cupy, "xp.")
    assert not unchecked
    assert len(problems) == 3, problems
    assert "xp.no_such_function does not exist" in problems[0] and "example.py:4" in problems[0]
    assert "xp.exp(..., where=...) is not accepted" in problems[1]
    assert "xp.zeros(..., fill=...)" in problems[2]


def test_static_xp_names_and_keywords_exist_in_cupy():
    cupy = _cupy()
    grouped = {}
    for name, keywords, site in static_xp_uses():
        entry = grouped.setdefault(name, {"keywords": set(), "sites": set()})
        entry["keywords"].update(keywords)
        entry["sites"].add(site)
    problems, unchecked = check_against_cupy(_as_uses(grouped), cupy, "xp.")
    _fail_if(problems)
    assert not unchecked, f"keywords of {sorted(unchecked)} could not be checked against CuPy"


def test_static_ndarray_method_calls_exist_in_cupy():
    cupy = _cupy()
    grouped = {}
    for name, keywords, site in static_method_calls():
        entry = grouped.setdefault(name, {"keywords": set(), "sites": set()})
        entry["keywords"].update(keywords)
        entry["sites"].add(site)
    problems, unchecked = check_against_cupy(_as_uses(grouped), cupy.ndarray, "ndarray.")
    _fail_if(problems)
    assert not unchecked, f"keywords of {sorted(unchecked)} could not be checked against CuPy"


def test_dynamic_xp_names_and_keywords_exist_in_cupy(proxy_log):
    cupy = _cupy()
    problems, unchecked = check_against_cupy(_as_uses(proxy_log), cupy, "xp.")
    _fail_if(problems)
    assert not unchecked, f"keywords of {sorted(unchecked)} could not be checked against CuPy"


def test_dynamic_ndarray_methods_exist_in_cupy(strict_usage):
    cupy = _cupy()
    methods = {name: entry for (kind, name), entry in strict_usage.items() if kind == "method"}
    problems, unchecked = check_against_cupy(_as_uses(methods), cupy.ndarray, "ndarray.")
    _fail_if(problems)
    assert not unchecked, f"keywords of {sorted(unchecked)} could not be checked against CuPy"


def test_static_scan_covers_what_the_run_used(proxy_log):
    """Every name the proxy saw is found by the static scan, so the scan misses no pattern."""
    static = {name for name, _, _ in static_xp_uses()}
    missed = {name: sorted(entry["sites"]) for name, entry in proxy_log.items()
              if name not in static}
    assert not missed, f"used at run time but not found by the static scan: {missed}"


def test_layer_options_calls_are_in_the_run(proxy_log):
    """The calls the layer options added (cross entropy's where, adaptive pooling's empty) ran
    through the proxy, so the checks above cover them with their keywords."""
    assert {"where", "empty", "lib.stride_tricks.as_strided", "full"} <= set(proxy_log)


# --- 2. the strict stand-in device -----------------------------------------------------------


def test_stand_in_refuses_implicit_conversions(device):
    x = device.asarray(numpy.arange(6, dtype=numpy.float32).reshape(2, 3))
    one = x.sum()
    refusals = [lambda: numpy.asarray(x), lambda: numpy.array(x), lambda: float(one),
                lambda: int(one), lambda: bool(one), lambda: x + numpy.ones(3, numpy.float32),
                lambda: numpy.ones(3, numpy.float32) * x, lambda: numpy.exp(x),
                lambda: numpy.concatenate([x, x]), lambda: device.maximum(x, numpy.zeros(3)),
                lambda: x.__setitem__(0, numpy.ones(3, numpy.float32)),
                lambda: x[numpy.array([0, 1])], lambda: device.maximum([1.0, 2.0, 3.0], x),
                lambda: device.exp(x, where=x > 0)]
    with strict_device.counting() as counts:
        for refusal in refusals:
            with pytest.raises(TypeError):
                refusal()
    assert counts.implicit == len(refusals) - 1     # the last is a keyword CuPy lacks, not a conversion
    assert counts.d2h == 0
    rows = device.asarray(numpy.array([0, 1, 0]))
    with pytest.raises(ValueError, match="twice"):
        x[rows, rows] += 1.0                        # undefined on CuPy: element (0, 0) twice


def test_stand_in_offers_nothing_cupy_lacks():
    cupy = _cupy()
    array_names = [name for name in vars(strict_device.ndarray)
                   if not name.startswith("_") or name.endswith("__")]
    missing = [f"ndarray.{name}" for name in array_names if not hasattr(cupy.ndarray, name)
               and name not in ("__slots__", "__weakref__", "__module__", "__doc__")]
    missing += [name for name in ("asarray", "array", "asnumpy", "empty", "empty_like",
                                  "get_default_memory_pool", "get_default_pinned_memory_pool",
                                  "cuda.get_current_stream") if not _resolve(cupy, name)[0]]
    assert not missing, missing


def test_stand_in_counts_explicit_moves_and_launches(device):
    with strict_device.counting() as counts:
        x = device.asarray(numpy.ones((2, 3), dtype=numpy.float32))    # 1 h2d
        y = x * 2.0 + numpy.float32(1.0)                               # 2 launches, scalars mix
        y[:, 0] += 1.0                                                 # view, 1 launch, no write-back
        v = y.T.reshape(6)                                             # views; the reshape copies
        device.copyto(y, 0.0, where=y > 3.0)                           # 2 launches
        host = device.asnumpy(v)                                       # 1 d2h
        assert x[0, 0].item() == 1.0 and y.tolist()[0][0] == 0.0       # 2 d2h
    assert (counts.h2d, counts.d2h, counts.implicit) == (1, 3, 0)
    assert counts.launches == 2 + 1 + 1 + 2, counts.by_op
    numpy.testing.assert_array_equal(host, [4, 4, 3, 3, 3, 3])     # read before the copyto


BATCH = 2


def _resnet_run(on_device, initial_state, images, labels, eval_images, eval_labels):
    """One Adam training step and one evaluation of ResNet50_layer4 from ``initial_state``.

    In float64: the two backends may sum in different orders (``column_sums``), and
    in float64 that difference stays far below the tolerances, so any real
    difference of algorithm shows.

    Returns host copies of the logits, the loss, the updated parameters and the eval logits,
    the number of correct eval predictions, and (on the device) the Counts of the step and
    of the evaluation.
    """
    xp = backend.get_array_module()
    model = minires.models.ResNet50_layer4()
    model.load_state_dict(initial_state)                      # host arrays -> active backend
    model.double()
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    x, y = backend.to_device(images, dtype="float64"), backend.to_device(labels)
    x_eval, y_eval = backend.to_device(eval_images, dtype="float64"), backend.to_device(eval_labels)
    result = {}
    with strict_device.counting() as step_counts:
        logits = model(minires.Tensor(x))
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with strict_device.counting() as read_counts:
        result["loss"] = loss.item()                          # the one read after the step
    model.eval()
    with strict_device.counting() as eval_counts:
        with minires.no_grad():
            eval_logits = model(minires.Tensor(x_eval))
            correct = (eval_logits.data.argmax(axis=1) == y_eval).sum()   # summed on the device
    result["correct"] = int(backend.to_host(correct))
    result["logits"] = backend.to_host(logits.data)
    result["eval_logits"] = backend.to_host(eval_logits.data)
    result["parameters"] = {k: backend.to_host(p.data) for k, p in model.named_parameters()}
    result["gradients"] = {k: backend.to_host(p.grad) for k, p in model.named_parameters()}
    result["buffers"] = {k: backend.to_host(b.data) for k, b in model.named_buffers()}
    if on_device:
        result["counts"] = step_counts, read_counts, eval_counts
        result["on_stand_in"] = xp is strict_device and all(
            isinstance(p.data, strict_device.ndarray) for p in model.parameters())
    return result


@pytest.fixture(scope="module")
def resnet_runs():
    rng = numpy.random.default_rng(7)
    images = rng.standard_normal((BATCH, 3, 32, 32)).astype(numpy.float32)
    labels = numpy.array([3, 8])
    eval_images = rng.standard_normal((4, 3, 32, 32)).astype(numpy.float32)
    eval_labels = numpy.array([0, 1, 2, 3])
    backend._use("numpy", numpy)
    minires.manual_seed(0)
    initial_state = {k: v.copy() for k, v in minires.models.ResNet50_layer4().state_dict().items()}
    host = _resnet_run(False, initial_state, images, labels, eval_images, eval_labels)
    with strict_device.installed():
        minires.manual_seed(1)          # other random weights: load_state_dict must overwrite them
        device = _resnet_run(True, initial_state, images, labels, eval_images, eval_labels)
    return initial_state, host, device


@pytest.mark.slow
def test_resnet_training_step_runs_on_the_device_without_host_reads(resnet_runs):
    _, _, device = resnet_runs
    step, read, _ = device["counts"]
    assert device["on_stand_in"]
    assert step.implicit == 0
    assert step.d2h == 0, f"{step.d2h} device-to-host reads inside the training step"
    assert step.h2d == 0, f"{step.h2d} host-to-device copies inside the step (inputs were on the device)"
    assert step.syncs == 0
    assert step.launches > 0
    assert (read.d2h, read.implicit) == (1, 0)


@pytest.mark.slow
def test_resnet_training_step_matches_numpy(resnet_runs):
    initial, host, device = resnet_runs
    numpy.testing.assert_allclose(device["logits"], host["logits"], rtol=1e-9, atol=1e-12)
    assert device["loss"] == pytest.approx(host["loss"], rel=1e-9)
    largest = max(numpy.abs(g).max() for g in host["gradients"].values())
    for key, gradient in host["gradients"].items():
        numpy.testing.assert_allclose(device["gradients"][key], gradient, rtol=1e-7,
                                      atol=1e-10 * largest, err_msg=key)
    for key, value in host["parameters"].items():
        assert not numpy.array_equal(value, initial[key]), f"{key} did not move"
        # Some true gradients are zero: a conv bias right before batch norm cannot
        # change the output (the normalisation removes any constant). Their computed
        # gradients are rounding noise, and Adam's first step, lr * g / (|g| + eps),
        # makes that noise visible in the parameter; so compare the updated values
        # where the gradient is above noise.
        signal = numpy.abs(host["gradients"][key]) > 1e-10 * largest
        numpy.testing.assert_allclose(device["parameters"][key][signal], value[signal],
                                      rtol=1e-7, atol=1e-10, err_msg=key)
    for key, value in host["buffers"].items():
        numpy.testing.assert_allclose(device["buffers"][key], value, rtol=1e-9, atol=1e-12,
                                      err_msg=key)


@pytest.mark.slow
def test_resnet_evaluation_counts_accuracy_on_the_device(resnet_runs):
    _, host, device = resnet_runs
    _, _, evaluation = device["counts"]
    assert (evaluation.implicit, evaluation.d2h, evaluation.h2d) == (0, 0, 0)
    # after the Adam step: the noise-driven conv-bias updates (see above) reach the
    # eval logits, since eval batch norm uses the running statistics
    numpy.testing.assert_allclose(device["eval_logits"], host["eval_logits"], rtol=1e-6, atol=1e-9)
    assert device["correct"] == host["correct"]


def test_nvrtc_compiles_a_kernel_written_as_cupy_writes_them():
    """No GPU is needed to compile: NVRTC turns CuPy's elementwise-kernel form (CArray, CIndexer
    from CuPy's own headers) into PTX here, so only the driver is missing for a launch. minires
    has no hand-written CUDA; CuPy generates and compiles a kernel like this one per operation."""
    cupy = _cupy()
    nvrtc = pytest.importorskip("cupy_backends.cuda.libs.nvrtc")
    include = os.path.join(os.path.dirname(cupy.__file__), "_core", "include")
    source = ('#include <cupy/carray.cuh>\n'
              'extern "C" __global__ void mul(CArray<float, 1> x, CArray<float, 1> y,\n'
              '                               CArray<float, 1> z, CIndexer<1> _ind) {\n'
              '  CUPY_FOR(i, _ind.size()) {\n'
              '    _ind.set(i); z[_ind.get()] = x[_ind.get()] * y[_ind.get()];\n'
              '  }\n'
              '}\n')
    try:
        nvrtc.getVersion()
    except Exception as error:      # the library itself cannot be loaded
        pytest.skip(f"NVRTC is not usable here: {error}")
    program = nvrtc.createProgram(source, "mul.cu", [], [])
    try:
        nvrtc.compileProgram(program, ["--gpu-architecture=compute_70", f"-I{include}", "--std=c++17"])
    except nvrtc.NVRTCError as error:
        pytest.fail(f"{error}\n{nvrtc.getProgramLog(program)}")
    assert b".entry mul" in nvrtc.getPTX(program)
