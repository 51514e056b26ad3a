"""Containers that hold other modules without a forward of their own: ModuleList, ModuleDict,
ParameterList, and Identity.

(``Sequential``, which also calls its children in order, lives in ``layers.py``.)
"""
from minires.arguments import check_tensor
from minires.autograd import Tensor
from minires.nn.module import Module, Parameter


class ModuleList(Module):
    """A list of modules, registered as children "0", "1", ... as in PyTorch.

    A plain Python list of layers would hide them: ``parameters()``, ``state_dict()``
    and ``train()`` walk registered children only. Keys read ``blocks.0.weight``.

        self.blocks = nn.ModuleList([nn.Linear(4, 4) for _ in range(3)])
        for block in self.blocks:
            x = block(x)
    """

    def __init__(self, modules=()):
        super().__init__()
        self.extend(modules)

    def _renumber(self, modules):
        """Register ``modules`` as the children "0", "1", ... in their order."""
        for name in list(self._modules):
            del self.__dict__[name]
        self._modules.clear()
        for index, module in enumerate(modules):
            setattr(self, str(index), module)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return ModuleList(list(self._modules.values())[index])
        return list(self._modules.values())[index]

    def __setitem__(self, index, module):
        _check_modules("ModuleList", [module])
        modules = list(self._modules.values())
        modules[index] = module
        self._renumber(modules)

    def __delitem__(self, index):
        modules = list(self._modules.values())
        del modules[index]
        self._renumber(modules)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __iadd__(self, modules):
        return self.extend(modules)

    def append(self, module):
        """Add ``module`` at the end; returns self."""
        _check_modules("ModuleList.append", [module])
        setattr(self, str(len(self)), module)
        return self

    def extend(self, modules):
        """Add each of ``modules`` at the end (all checked first); returns self."""
        if isinstance(modules, Module) or not hasattr(modules, "__iter__"):
            raise TypeError(f"ModuleList: modules must be an iterable of Modules, got "
                            f"{type(modules).__name__}")
        modules = list(modules)
        _check_modules("ModuleList", modules)
        for module in modules:
            self.append(module)
        return self

    def insert(self, index, module):
        """Put ``module`` before position ``index``; the ones after it move up by one."""
        modules = list(self._modules.values())
        modules.insert(index, module)
        self._renumber(modules)

    def __repr__(self):
        lines = [f"  ({name}): {module!r}" for name, module in self._modules.items()]
        return "ModuleList(\n" + "\n".join(lines) + "\n)" if lines else "ModuleList()"


class Identity(Module):
    """Returns its input unchanged: a placeholder, e.g. to remove a layer from a model.

    Any constructor arguments are accepted and ignored, as in PyTorch.
    """

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x

    def __repr__(self):
        return "Identity()"


def _check_modules(where, modules):
    for index, module in enumerate(modules):
        if not isinstance(module, Module):
            raise TypeError(f"{where}: modules[{index}] must be a Module, got {type(module).__name__}")


class ModuleDict(Module):
    """Modules registered under string keys, in insertion order, as PyTorch's ``nn.ModuleDict``.

        self.heads = nn.ModuleDict({"class": nn.Linear(8, 10), "box": nn.Linear(8, 4)})
        logits = self.heads["class"](x)
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key):
        return self._modules[key]

    def __setitem__(self, key, module):
        setattr(self, key, module)

    def __delitem__(self, key):
        del self._modules[key]
        del self.__dict__[key]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key):
        return key in self._modules

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()

    def update(self, modules):
        """Add (key, module) pairs from a dict or an iterable of pairs (all checked first)."""
        if isinstance(modules, Module) or not hasattr(modules, "__iter__"):
            raise TypeError(f"ModuleDict: modules must be a dict or an iterable of (key, module) pairs, "
                            f"got {type(modules).__name__}")
        pairs = list(modules.items() if hasattr(modules, "items") else modules)
        for pair in pairs:
            if not isinstance(pair, (tuple, list)) or len(pair) != 2 or not isinstance(pair[0], str):
                raise TypeError(f"ModuleDict: modules must hold (str key, module) pairs, got "
                                f"{type(pair).__name__ if len(repr(pair)) > 40 else repr(pair)}")
        _check_modules("ModuleDict", [module for _, module in pairs])
        for key, module in pairs:
            self[key] = module

    def __repr__(self):
        lines = [f"  ({key}): {module!r}" for key, module in self._modules.items()]
        return "ModuleDict(\n" + "\n".join(lines) + "\n)" if lines else "ModuleDict()"


class ParameterList(Module):
    """Parameters registered as "0", "1", ..., as PyTorch's ``nn.ParameterList``; keys read
    ``scales.0``. A Tensor that is not a Parameter becomes one."""

    def __init__(self, values=()):
        super().__init__()
        if isinstance(values, Tensor) or not hasattr(values, "__iter__"):
            raise TypeError(f"ParameterList: values must be an iterable of Tensors, got "
                            f"{type(values).__name__}")
        values = list(values)
        for index, value in enumerate(values):
            check_tensor("ParameterList", f"values[{index}]", value)
        for value in values:
            self.append(value)

    def append(self, value):
        setattr(self, str(len(self)), value if isinstance(value, Parameter) else Parameter(value))
        return self

    def extend(self, values):
        for value in values:
            self.append(value)
        return self

    def __getitem__(self, index):
        return list(self._parameters.values())[index]

    def __len__(self):
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters.values())

    def __repr__(self):
        return f"ParameterList({len(self)} parameters)"
