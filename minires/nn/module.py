"""Module and Parameter: layers that find their parameters by attribute.

Assigning a Parameter or a Module to an attribute registers it; buffers (state
that is saved but not trained, like BatchNorm's running statistics) are
registered with ``register_buffer``. ``state_dict`` walks the tree the way
PyTorch does (own parameters, own buffers, then each child under its name), so
keys like ``layer1.0.weight`` and array shapes match PyTorch's one to one.
"""
from collections import OrderedDict, namedtuple

import numpy

from minires import backend
from minires.autograd import Tensor
from minires.errors import StateDictError
from minires.functional.casting import parse_to_arguments

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


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
        registry = (self._buffers if is_buffer else self._parameters if isinstance(value, Parameter)
                    else self._modules if isinstance(value, Module) else None)
        for other in (self._parameters, self._buffers, self._modules):
            if other is not registry:
                other.pop(name, None)
        if registry is not None:    # a new value for a name keeps its place in state_dict, as in PyTorch
            registry[name] = value
        # also a plain attribute, so reading self.weight costs no lookup through the registries
        object.__setattr__(self, name, value)

    def __getattr__(self, name):
        """A registered parameter, buffer or submodule by name.

        Python calls this only when the normal lookup fails, but PyTorch code also
        calls it directly, to fetch what it registered under a computed name:
        ``self.__setattr__('level_%d' % i, block)``, then ``self.__getattr__('level_%d' % i)``.
        """
        for registry in ("_parameters", "_buffers", "_modules"):
            found = self.__dict__.get(registry, {})
            if name in found:
                return found[name]
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
    # Each walk lists every module, parameter and buffer once, under the first name it is
    # reached by (a block or a weight shared by two paths, tied weights), as PyTorch does, so
    # that an optimizer sees each parameter once. Only state_dict lists a shared one under
    # every name.
    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """(name, module) for this module and every one below it, depth first."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(memo, f"{prefix}.{name}" if prefix else name, remove_duplicate)

    def modules(self):
        return (module for _, module in self.named_modules())

    def named_children(self):
        """(name, module) for each direct child, each module once."""
        seen = set()
        for name, child in self._modules.items():
            if id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self):
        return (child for _, child in self.named_children())

    def apply(self, fn):
        """Call ``fn(module)`` on every child's tree, then on this module; returns self.

        As in PyTorch, e.g. ``model.apply(init_weights)`` with a function that tests the layer type.
        """
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def _named_members(self, registry, prefix, recurse, remove_duplicate):
        """(name, tensor) from ``registry`` ("_parameters" or "_buffers") of this module (and below)."""
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse \
            else [(prefix, self)]
        seen = set()
        for module_prefix, module in modules:
            for name, tensor in getattr(module, registry).items():
                if remove_duplicate:
                    if id(tensor) in seen:
                        continue
                    seen.add(id(tensor))
                yield (f"{module_prefix}.{name}" if module_prefix else name), tensor

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        return (parameter for _, parameter in self.named_parameters(recurse=recurse))

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        return (buffer for _, buffer in self.named_buffers(recurse=recurse))

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

    def to(self, *args, dtype=None, device=None, non_blocking=False):
        """PyTorch's ``model.to(device)``, ``.to(dtype)``, ``.to(device, dtype)``; returns self.

        A device must be the active backend's: minires puts every array there, so
        ``model.to(device)`` is a no-op (``minires.set_backend("cupy")`` before building
        the model puts it on the GPU). A dtype (e.g. ``"float64"``) casts the parameters
        and floating-point buffers in place; cast before creating the optimizer.
        """
        dtype, device = parse_to_arguments("Module.to", args, dtype, device)
        if device is not None:
            backend.check_device(device, f"{type(self).__name__}.to({str(device)!r})")
        if dtype is None:
            return self
        floating_buffers = [b for _, b in self.named_buffers() if b.dtype.kind == "f"]
        for tensor in list(self.parameters()) + floating_buffers:
            tensor.data = tensor.data.astype(dtype)
            tensor.grad = None
        return self

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None):
        return self.to("cuda" if device is None else device)

    def double(self):
        return self.to("float64")

    def float(self):
        return self.to("float32")

    # --- state -----------------------------------------------------------------------
    def _state_tensors(self):
        """(key, Tensor) in PyTorch's state-dict order: each module's parameters, its buffers, then its
        children."""
        for prefix, module in self.named_modules(remove_duplicate=False):
            for name, tensor in list(module._parameters.items()) + list(module._buffers.items()):
                yield (f"{prefix}.{name}" if prefix else name), tensor

    def state_dict(self):
        """OrderedDict of key -> array of the active backend (PyTorch's keys and shapes)."""
        return OrderedDict((key, tensor.data) for key, tensor in self._state_tensors())

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays (host or device) into this module's parameters and buffers, in place.

        With ``strict``, any missing, unexpected or wrongly shaped key is an error
        that names every one of them, and nothing is copied.
        ``strict=False`` loads the keys both sides have and reports the others.
        Returns:
            (missing_keys, unexpected_keys), a named pair as PyTorch's ``_IncompatibleKeys``.
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
        return IncompatibleKeys(missing, unexpected)

    def num_parameters(self):
        """The number of trainable numbers in the module."""
        return sum(p.numel() for p in self.parameters())


class _HookHandle:
    def __init__(self, hooks, hook):
        self.hooks, self.hook = hooks, hook

    def remove(self):
        if self.hook in self.hooks:
            self.hooks.remove(self.hook)
