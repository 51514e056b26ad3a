"""The autograd engine: Tensor, Function, backward, no_grad.

A Tensor wraps an array of the active backend. Every differentiable operation is
a Function: its ``forward`` works on raw arrays and remembers what its
``backward`` will need; calling it on Tensors also records the Function as the
``creator`` of its output, so the calls of a forward pass form a graph.

``backward(loss)`` walks that graph from the loss back to the leaves in
reverse topological order (computed with an explicit stack, so a graph of any
depth works), hands each Function the gradient of its output (``gy``) and
accumulates what it returns (``gx``) into its inputs. Leaves that require a
gradient keep it in ``.grad``, summed over backward calls until zeroed; the
graph is freed as it is walked, so the forward's activations do not pile up.
Before a Function's backward runs, the walk checks that no in-place operation
has changed the arrays it saved (``VersionCounter``).

The file reads top-down: Tensor and its VersionCounter, then Function and Edge
(the graph), then ``backward`` (the walk), then the hooks that let a profiler
time each call.
Tensor's operators (``x + y``, ``x.sum()``) are the functions of
``minires.functional``; ``functional/tensor_methods.py`` attaches them.
"""
import contextlib
import time

import numpy

from minires import backend


class Tensor:
    """An array of the active backend, with an optional gradient.

    Args:
        data: array-like; host data (lists, NumPy arrays) is moved to the active backend.
            A Tensor's data is shared, not copied (and so is its version counter).
        requires_grad: whether ``backward`` should compute ``.grad`` for this tensor;
            only floating-point tensors can have a gradient.
        dtype: dtype for data that is not already an array (default float32).
    """
    __array_priority__ = 1000  # so ndarray + Tensor calls Tensor.__radd__, not NumPy

    def __init__(self, data, requires_grad=False, dtype=None):
        source = data if isinstance(data, Tensor) else None
        if source is not None:
            data = source.data
        xp = backend.get_array_module()
        if isinstance(data, xp.ndarray) and data.dtype.kind in "biuf":
            self.data = data if dtype is None else data.astype(dtype, copy=False)
        else:
            if dtype is None and not isinstance(data, (numpy.ndarray, numpy.generic)):
                dtype = numpy.float32
            self.data = _device_array(data, dtype)
        shared = source is not None and self.data is source.data
        self._version_counter = source._version_counter if shared else VersionCounter()
        self.requires_grad = requires_grad
        self.grad = None
        self.creator = None

    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        if value and self.data.dtype.kind != "f":
            raise RuntimeError(f"only floating-point tensors can require gradients, got dtype "
                               f"{self.data.dtype}; convert first, e.g. x.float()")
        self._requires_grad = value

    @property
    def _version(self):
        """How many in-place operations changed this tensor's data (PyTorch's ``x._version``)."""
        return self._version_counter.value

    # --- array facts -----------------------------------------------------------------
    @property
    def shape(self):
        return self.data.shape

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def grad_fn(self):
        """The Function that made this tensor (PyTorch's name for ``creator``); None for a leaf."""
        return self.creator

    def size(self, dim=None):
        """The shape, as PyTorch's ``x.size()``, or one dimension of it (``x.size(1)``)."""
        return self.data.shape if dim is None else self.data.shape[dim]

    def numel(self):
        """The number of elements."""
        return self.data.size

    def __len__(self):
        return len(self.data)

    def __bool__(self):
        """The truth of a one-element tensor (``if (x > 0).all():``); a device sync on a GPU."""
        if self.data.size != 1:
            raise RuntimeError(f"the truth value of a tensor of shape {self.shape} is ambiguous; "
                               "use .any() or .all()")
        return bool(self.item())

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({backend.to_host(self.data)!r}{grad})"

    def numpy(self):
        """A host NumPy copy of the data."""
        return numpy.array(backend.to_host(self.data))

    def item(self):
        """The value of a one-element tensor as a Python number (a device sync on GPU)."""
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return backend.to_host(self.data).item()

    def detach(self):
        """A tensor sharing this data (and its version counter), cut from the graph."""
        return Tensor(self)

    def backward(self, gradient=None, retain_graph=False):
        """Accumulate d(self)/d(leaf) into ``.grad`` of every leaf that requires it (see ``backward``)."""
        backward(self, gradient, retain_graph)

    _post_accumulate_grad_hooks = ()     # a list once a hook is registered

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(self)`` each time backward has added into ``self.grad`` (PyTorch's name)."""
        self._post_accumulate_grad_hooks = [*self._post_accumulate_grad_hooks, hook]


def _device_array(data, dtype):
    """``data`` as an array of numbers of the active backend, or a TypeError naming it.

    PyTorch refuses None, text and ragged lists; NumPy would make a nan, a string array or an
    object array of them.
    """
    try:
        host = numpy.asarray(data)
    except (TypeError, ValueError):     # "setting an array element with a sequence", ...
        host = None
    if host is None or host.dtype.kind not in "biuf":
        kind = f"{data.dtype} data" if isinstance(data, numpy.ndarray) else type(data).__name__
        raise TypeError(f"Tensor: data must be an array, a number or a (nested, rectangular) list "
                        f"of numbers, got {kind}")
    return backend.to_device(host, dtype=dtype)


class VersionCounter:
    """How many times in-place operations have changed a tensor's data, as in PyTorch.

    Shared by the tensors that hold the same memory: a tensor, its views
    (``reshape``, ``x[i]``, ``transpose``) and ``detach()``. An in-place operation
    (``relu(x, inplace=True)``) adds one. A Function whose backward reads an input
    or its output back notes their versions when called, and ``backward`` refuses
    to run it on changed values: the gradient would be wrong without a word.
    """
    __slots__ = ("value", "copied_by_view")

    def __init__(self):
        self.value = 0
        self.copied_by_view = None     # the shapes of a view() that had to copy (shaping.view)


def refuse_write_to_copied_view(name, tensor):
    """Raise if ``tensor`` shares the memory of a view() that had to copy its input.

    An in-place write there would change the copy only, not the tensor it was
    viewed from: PyTorch's view would have written through, so minires refuses.
    """
    if tensor._version_counter.copied_by_view is not None:
        raise RuntimeError(
            f"{name} writes in place into the result of {tensor._version_counter.copied_by_view}, "
            "which is a copy (the input's memory is not laid out for that view, as a channels-last "
            "image's; see functional/shaping.view): the write would not reach the input; use the "
            "out-of-place form")


class Function:
    """One differentiable operation, PyTorch's ``Function`` idiom.

    Subclasses define ``forward(*arrays) -> array`` and ``backward(gy) -> gx or
    (gx0, gx1, ...)`` (one gradient per input, ``None`` for inputs with no
    gradient) and keep what backward needs as attributes. Forward may skip
    saving, and backward computing, what only serves inputs whose
    ``self.needs_input_grad[i]`` is False (all are False under ``no_grad``).
    Backward must not modify ``gy`` in place: it may be shared.

    A subclass whose backward reads its input arrays or its output array back
    says so (``saves_inputs``, ``saves_output``), so that an in-place change to
    them is caught; one whose forward may return a view of its first input says
    ``output_may_view`` (the view then shares the input's version counter).

    A backward that produces a parameter's gradient by one operation with ``out=``
    (a matrix multiply, a column sum) asks ``self.grad_slot(i)`` where to write it:
    the parameter's place in the optimizer's flat gradient array, or None (then it
    makes a new array as usual). It returns what it wrote, and no copy follows.
    """
    inputs = ()
    grad_slots = ()             # set by backward() before each call: see grad_slot()
    saves_inputs = False        # backward reads the input arrays (x * y: each is the other's grad)
    saves_output = False        # backward reads the output array (exp, relu)
    output_may_view = False     # forward may return a view of its first input (reshape, x[i])
    versions = ()               # (counter, version) of each array backward will read

    def __call__(self, *inputs):
        if all(isinstance(x, Tensor) for x in inputs):
            tensors = inputs
        else:
            like = _first_tensor(inputs)
            tensors = [as_tensor(x, like=like) for x in inputs]
        # known before forward, so forward can skip saving what no backward will use
        self.needs_input_grad = tuple(_grad_mode.enabled and t.requires_grad for t in tensors)
        y = _timed(self, "forward", self.forward, *(t.data for t in tensors))
        output = Tensor(y)
        xp = backend.get_array_module()
        if self.output_may_view and xp.may_share_memory(y, tensors[0].data):
            output._version_counter = tensors[0]._version_counter     # the same memory
        if any(self.needs_input_grad):
            output.requires_grad = True
            output.creator = self
            self.inputs = [Edge(t) for t in tensors]
            if self.saves_inputs or self.saves_output:
                saved = list(tensors) if self.saves_inputs else []
                if self.saves_output:
                    saved.append(output)
                self.versions = [(t._version_counter, t._version_counter.value) for t in saved]
        return output

    def forward(self, *xs):
        raise NotImplementedError

    def backward(self, gy):
        raise NotImplementedError

    def grad_slot(self, i):
        """The array backward may write input ``i``'s gradient into (and return), or None."""
        return self.grad_slots[i] if i < len(self.grad_slots) else None

    def release(self):
        """Drop the inputs and everything forward saved, once backward has used them."""
        vars(self).clear()
        self.inputs = None      # marks the graph as freed


def as_tensor(value, like=None):
    """``value`` as a Tensor; Python numbers take the dtype of ``like``."""
    if isinstance(value, Tensor):
        return value
    dtype = like.dtype if like is not None and numpy.isscalar(value) else None
    return Tensor(value, dtype=dtype)


def _first_tensor(values):
    return next((v for v in values if isinstance(v, Tensor)), None)


class Edge:
    """Where the gradient of one input of a Function goes.

    A Function keeps, for each input, the Function that made it (``creator``)
    or, for a leaf that requires a gradient, the tensor itself (``leaf``), whose
    ``.grad`` receives it; both are None for an input that needs no gradient. It
    does not keep non-leaf input tensors: their arrays are freed as soon as no
    backward needs them (a BatchNorm output, say, once ReLU has used it). When
    this was introduced, it took the peak resident memory of three training steps
    of ResNet50_layer4 at batch 100 from 706 MB to 609 MB.
    """
    __slots__ = ("creator", "leaf", "dtype", "shape")

    def __init__(self, tensor):
        self.creator = tensor.creator
        self.leaf = tensor if tensor.creator is None and tensor.requires_grad else None
        self.dtype, self.shape = tensor.dtype, tensor.shape


class _GradMode:
    enabled = True


_grad_mode = _GradMode()


@contextlib.contextmanager
def no_grad():
    """Context in which operations record no graph (for evaluation and updates)."""
    previous = _grad_mode.enabled
    _grad_mode.enabled = False
    try:
        yield
    finally:
        _grad_mode.enabled = previous


def is_grad_enabled():
    return _grad_mode.enabled


def backward(tensor, gradient=None, retain_graph=False):
    """Accumulate d(tensor)/d(leaf) into ``.grad`` of every leaf that requires it.

    Args:
        tensor: the Tensor to differentiate, usually the loss.
        gradient: the upstream gradient, same shape as ``tensor``; may be omitted
            for a one-element tensor (then it is 1).
        retain_graph: keep the graph so backward can be called through it again.
    Raises:
        FloatingPointError: (NumPy backend) a one-element tensor that is nan or inf.
    """
    gradient = _initial_gradient(tensor, gradient)
    if tensor.creator is None:
        _accumulate_leaf_grad(tensor, gradient)
        return
    grads = {id(tensor.creator): gradient}    # gradient of each Function's output, by Function
    for function in reversed(topological_order(tensor.creator)):
        if function.inputs is None:
            raise RuntimeError(
                "backward through a graph that has already been freed: a graph can be "
                "walked once; run the forward again, or pass retain_graph=True the first time")
        gy = grads.pop(id(function), None)
        if gy is None:      # this Function's output does not lead to tensor (an unused branch)
            continue
        _check_versions(function)
        function.grad_slots = _grad_slots(function.inputs)
        gxs = _timed(function, "backward", function.backward, gy)
        if not isinstance(gxs, tuple):
            gxs = (gxs,)
        for position, (edge, gx) in enumerate(zip(function.inputs, gxs)):
            if gx is None or (edge.creator is None and edge.leaf is None):
                continue
            if gx.dtype != edge.dtype:  # keep every gradient in the forward's dtype
                gx = gx.astype(edge.dtype)
            if gx.shape != edge.shape:  # e.g. an input the forward broadcast, not summed back
                raise RuntimeError(
                    f"{type(function).__name__}.backward gave input {position} a gradient of shape "
                    f"{tuple(gx.shape)} for its shape {tuple(edge.shape)}: every gradient must "
                    f"have its input's shape (sum a broadcast input's back with sum_to)")
            if edge.leaf is not None:
                _accumulate_leaf_grad(edge.leaf, gx)
            elif id(edge.creator) in grads:
                grads[id(edge.creator)] = grads[id(edge.creator)] + gx
            else:
                grads[id(edge.creator)] = gx
        if not retain_graph:
            function.release()


def _check_versions(function):
    """Raise if an in-place operation changed an array ``function`` saved for its backward."""
    for position, (counter, version) in enumerate(function.versions):
        if counter.value != version:
            inputs = len(function.inputs) if function.saves_inputs else 0
            which = f"input {position}" if position < inputs else "output"
            raise RuntimeError(
                f"one of the variables needed for gradient computation has been modified by an "
                f"inplace operation: the {which} of {type(function).__name__} is at version "
                f"{counter.value}; expected version {version}. Use the out-of-place form "
                f"(e.g. inplace=False) for that tensor.")


def _initial_gradient(tensor, gradient):
    """The gradient that starts the walk, checked, as an array of the tensor's dtype."""
    if not tensor.requires_grad:
        raise RuntimeError("backward() on a tensor that does not require grad "
                           "(was it computed under no_grad(), or from inputs that need no grad?)")
    if gradient is None:
        if tensor.data.size != 1:
            raise RuntimeError(f"backward() without a gradient needs a one-element tensor, "
                               f"got shape {tensor.shape}; pass gradient=")
        if backend.is_host() and not numpy.isfinite(tensor.data).all():
            # a diverged loss would silently fill every gradient with nan; on a
            # GPU this check would cost a device sync, so it is made on the host only
            error = FloatingPointError(
                f"backward() from a non-finite value ({tensor.item()}): the loss has "
                "diverged or the inputs hold nan/inf; lower the learning rate or check the data")
            error.value = tensor.item()     # for a caller that reports it
            raise error
        return backend.get_array_module().ones_like(tensor.data)
    if isinstance(gradient, Tensor):
        gradient = gradient.data.astype(tensor.dtype, copy=False)
    else:
        gradient = backend.to_device(gradient, dtype=tensor.dtype)
    if tuple(gradient.shape) != tuple(tensor.shape):
        raise RuntimeError(f"backward(): gradient of shape {tuple(gradient.shape)} for a tensor "
                           f"of shape {tuple(tensor.shape)}")
    return gradient


def topological_order(root):
    """Functions reachable from ``root``, each after every Function that feeds it.

    Depth-first search with an explicit stack (no recursion limit): a Function
    is appended once all its inputs' creators have been appended.
    """
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        function, inputs_done = stack.pop()
        if inputs_done:
            order.append(function)
            continue
        if id(function) in visited:
            continue
        visited.add(id(function))
        stack.append((function, True))
        for edge in function.inputs or ():
            if edge.creator is not None and id(edge.creator) not in visited:
                stack.append((edge.creator, False))
    return order


def _grad_slots(edges):
    """Where a Function's backward may write each input's gradient itself, or None.

    A leaf with a ``grad_slot`` (its place in an optimizer's flat gradient array,
    ``speed/flat_parameters.py``) and no gradient yet gets its slot, once per Function
    (an input given twice gets it at its first position): a layer's backward then
    computes the gradient straight into it (``matmul(..., out=slot)``) and returns the
    slot, and no copy follows (on a GPU: 214 copy kernels a step fewer for
    ResNet50_layer4). A leaf that already has a gradient (a parameter used twice)
    gets None: its new gradient is computed apart and added in place.
    """
    slots, given = [], set()
    for edge in edges:
        leaf = edge.leaf
        slot = None if leaf is None or leaf.grad is not None else getattr(leaf, "grad_slot", None)
        if slot is not None and id(leaf) not in given:
            given.add(id(leaf))
            slots.append(slot)
        else:
            slots.append(None)
    return slots


def _accumulate_leaf_grad(tensor, gx):
    if gx.shape != tensor.shape:
        raise RuntimeError(f"gradient of shape {gx.shape} for a tensor of shape {tensor.shape}")
    if tensor.grad is None:
        # the first gradient: already in the tensor's grad_slot if backward wrote it there
        # (see _grad_slots), else copied into it, or copied apart when there is no slot (gx
        # may be shared with another input, e.g. both sides of x + x)
        slot = getattr(tensor, "grad_slot", None)
        if slot is None:
            tensor.grad = gx.copy()
        else:
            if gx is not slot:
                slot[...] = gx
            tensor.grad = slot
    else:
        tensor.grad += gx       # in place: .grad may be a view of a flat buffer (speed/flat_parameters.py)
    for hook in tensor._post_accumulate_grad_hooks:    # e.g. DistributedDataParallel's "ready"
        hook(tensor)


class _Profiling:
    report = None       # a minires.speed.profiler.Report while profiling


_profiling = _Profiling()


def set_profiler(report):
    """Send the time of every Function call to ``report.add`` (None stops); returns the previous."""
    previous, _profiling.report = _profiling.report, report
    return previous


def _timed(function, phase, method, *arguments):
    """``method(*arguments)``, timed when a profiler is listening."""
    if _profiling.report is None:
        return method(*arguments)
    start = time.perf_counter()
    result = method(*arguments)
    _profiling.report.add(type(function).__name__, phase, time.perf_counter() - start)
    return result
