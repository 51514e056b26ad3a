"""Module and Parameter: layers that find their parameters by attribute.

Assigning a Parameter or a Module to an attribute registers it; buffers (state
that is saved but not trained, like BatchNorm's running statistics) are
registered with ``register_buffer``. ``state_dict`` walks the tree the way
PyTorch does (own parameters, own buffers, then each child under its name), so
keys like ``layer1.0.weight`` and array shapes match PyTorch's one to one.
"""
from collections import OrderedDict

import numpy

from minires import backend
from minires.autograd import Tensor


class Parameter(Tensor):
    """A Tensor that is a trainable parameter of a Module (``requires_grad=True``)."""

    def __init__(self, data, requires_grad=True):
        super().__init__(data, requires_grad=requires_grad)


class Module:
    """Base class of every layer and model: define ``forward``, call the module."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", [])
        self.training = True

    # --- registration ----------------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() "
                               "before assigning attributes")
        is_buffer = name in self._buffers and isinstance(value, Tensor)
        for registry in (self._parameters, self._buffers, self._modules):
            registry.pop(name, None)
        if is_buffer:               # a new value for a buffer stays a buffer
            self._buffers[name] = value
        elif isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        # also a plain attribute, so reading self.weight costs no lookup through the registries
        object.__setattr__(self, name, value)

    def __getattr__(self, name):        # only called when normal lookup fails
        raise AttributeError(f"{type(self).__name__!r} has no attribute {name!r}")

    def register_buffer(self, name, value):
        """Keep ``value`` (a Tensor) as saved, untrained state under ``name``."""
        tensor = value if isinstance(value, Tensor) else Tensor(value)
        self._buffers[name] = tensor
        object.__setattr__(self, name, tensor)

    # --- calling ---------------------------------------------------------------------
    def forward(self, *inputs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *inputs):
        output = self.forward(*inputs)
        for hook in self._forward_hooks:
            result = hook(self, inputs, output)
            if result is not None:      # as PyTorch: a hook may replace the output
                output = result
        return output

    def register_forward_hook(self, hook):
        """Call ``hook(module, inputs, output)`` after each forward; returns a handle with ``remove()``.

        A hook that returns something other than None replaces the output with it
        (the next hook and the caller see the new one), as in PyTorch.
        """
        self._forward_hooks.append(hook)
        return _HookHandle(self._forward_hooks, hook)

    # --- walking the tree ------------------------------------------------------------
    def named_modules(self, prefix=""):
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        return (module for _, module in self.named_modules())

    def children(self):
        return iter(self._modules.values())

    def apply(self, fn):
        """Call ``fn(module)`` on every child's tree, then on this module; returns self.

        As in PyTorch, e.g. ``model.apply(init_weights)`` with a function that tests the layer type.
        """
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def named_parameters(self):
        for prefix, module in self.named_modules():
            for name, parameter in module._parameters.items():
                yield (f"{prefix}.{name}" if prefix else name), parameter

    def parameters(self):
        return (parameter for _, parameter in self.named_parameters())

    def named_buffers(self):
        for prefix, module in self.named_modules():
            for name, buffer in module._buffers.items():
                yield (f"{prefix}.{name}" if prefix else name), buffer

    # --- mode, gradients, dtype ------------------------------------------------------
    def train(self, mode=True):
        """Training mode (batch statistics in BatchNorm) for this module and all below it."""
        for module in self.modules():
            module.training = mode
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self, set_to_none=True):
        """Every parameter's gradient to None (PyTorch's default), or to zeros in place.

        A None gradient means "not used since": the optimizer skips that parameter.
        ``set_to_none=False`` zeroes the gradients that exist, in place, so those that
        are views into an optimizer's flat buffer stay views (``speed/flat_parameters.py``).
        """
        for parameter in self.parameters():
            if set_to_none:
                parameter.grad = None
            elif parameter.grad is not None:
                parameter.grad[...] = 0

    def requires_grad_(self, requires_grad=True):
        """Switch gradients of every parameter on or off (freezing a part of a model); returns self.

        A frozen parameter gets no gradient, so its ``.grad`` stays None after
        ``zero_grad()`` and the optimizer skips it, as in PyTorch.
        """
        for parameter in self.parameters():
            parameter.requires_grad = requires_grad
        return self

    def to(self, dtype):
        """Cast parameters and floating-point buffers to ``dtype`` (e.g. ``"float64"``).

        Devices are not chosen here: ``minires.set_backend("cupy")`` before building
        the model puts everything on the GPU. Cast before creating the optimizer.
        """
        if dtype in ("cpu", "cuda") or str(dtype).startswith("cuda:"):
            raise ValueError(f".to({dtype!r}): minires picks the device for all arrays at once; "
                             f"call minires.set_backend('numpy' or 'cupy') before building the model")
        floating_buffers = [b for _, b in self.named_buffers() if b.dtype.kind == "f"]
        for tensor in list(self.parameters()) + floating_buffers:
            tensor.data = tensor.data.astype(dtype)
            tensor.grad = None
        return self

    def double(self):
        return self.to("float64")

    def float(self):
        return self.to("float32")

    # --- state -----------------------------------------------------------------------
    def _state_tensors(self):
        """(key, Tensor) in PyTorch's state-dict order: each module's parameters, its buffers, then its
        children."""
        for prefix, module in self.named_modules():
            for name, tensor in list(module._parameters.items()) + list(module._buffers.items()):
                yield (f"{prefix}.{name}" if prefix else name), tensor

    def state_dict(self):
        """OrderedDict of key -> array of the active backend (PyTorch's keys and shapes)."""
        return OrderedDict((key, tensor.data) for key, tensor in self._state_tensors())

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays (host or device) into this module's parameters and buffers, in place.

        With ``strict``, any missing, unexpected or wrongly shaped key is an error
        that names every one of them, and nothing is copied.
        Returns:
            (missing_keys, unexpected_keys)
        """
        where = f"load_state_dict into {type(self).__name__}"
        if not hasattr(state_dict, "items"):
            raise TypeError(f"{where}: state_dict must be a mapping from names to arrays, got "
                            f"{type(state_dict).__name__}")
        # Tensors (as in a state dict of PyTorch's or of minires) count as their arrays
        state_dict = {key: value.data if isinstance(value, Tensor) else value
                      for key, value in state_dict.items()}
        for key, value in state_dict.items():
            if not hasattr(value, "shape") or getattr(value, "dtype", numpy.dtype(object)).kind not in "biuf":
                kind = f"dtype {value.dtype}" if hasattr(value, "dtype") else type(value).__name__
                raise TypeError(f"{where}: the value of {key!r} must be an array of numbers, got {kind}")
        own = OrderedDict(self._state_tensors())
        missing = [key for key in own if key not in state_dict]
        unexpected = [key for key in state_dict if key not in own]
        wrong_shape = [f"{key}: expected {tuple(own[key].shape)}, got {tuple(state_dict[key].shape)}"
                       for key in own if key in state_dict
                       and tuple(state_dict[key].shape) != tuple(own[key].shape)]
        problems = ([f"missing keys: {missing}"] if missing and strict else []) + \
                   ([f"unexpected keys: {unexpected}"] if unexpected and strict else []) + \
                   ([f"wrong shapes: {wrong_shape}"] if wrong_shape else [])
        if problems:
            raise StateDictError(f"load_state_dict into {type(self).__name__}: " + "; ".join(problems))
        for key, tensor in own.items():
            if key in state_dict:
                # in place, so optimizers holding views of the parameters still see them
                tensor.data[...] = backend.to_device(state_dict[key], dtype=tensor.dtype)
        return missing, unexpected

    def num_parameters(self):
        """The number of trainable numbers in the module."""
        return sum(p.numel() for p in self.parameters())


class StateDictError(RuntimeError, ValueError):
    """A state dict that does not fit the module: a RuntimeError, as PyTorch raises, and a
    ValueError, as every bad argument of minires is."""


class _HookHandle:
    def __init__(self, hooks, hook):
        self.hooks, self.hook = hooks, hook

    def remove(self):
        if self.hook in self.hooks:
            self.hooks.remove(self.hook)
