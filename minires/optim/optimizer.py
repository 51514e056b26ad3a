"""What every optimizer shares: parameter groups, each parameter's step count, and state.

A subclass gives its defaults (``lr``, ``weight_decay``, ...) and its update rule
as ``_update(group, t, p, g, *state)``: element-wise on flat arrays, with the
group's hyper-parameters and ``t``, the step number of these parameters. All
parameters live in one flat array and their gradients in another
(``speed/flat_parameters.py``), group after group, so one call updates a whole
group, in cache-sized blocks on every core (``speed/blockwise.py``).

Parameter groups, as in PyTorch: ``params`` is an iterable of parameters, or of
dicts whose keys override the defaults for their parameters:

    optim.Adam([{"params": weights, "weight_decay": 1e-4},
                {"params": biases_and_norms, "weight_decay": 0.0}], lr=1e-3)

A parameter whose ``.grad`` is None at ``step()`` is skipped, as in PyTorch: it
does not move and its state and step count stay. ``zero_grad()`` sets every
gradient to None (PyTorch 2's default), so a parameter that a step's forward did
not use is left alone, where a zero gradient would still move it through
momentum or weight decay. Each parameter counts its own steps (PyTorch's
``state[p]["step"]``: Adam's bias correction uses it), and one call updates each
run of consecutive parameters that share a group and a step count and have a
gradient: one run per group when every parameter has a gradient.

``optimizer.lr`` reads group 0's learning rate; assigning it sets every group's,
as the idiom ``for group in optimizer.param_groups: group["lr"] = lr`` (the
course's ``update_lr``) does. Parameters that do not require a gradient are
left out: they never move.
"""
import itertools
from functools import partial

import numpy

from minires import backend
from minires.arguments import check_number
from minires.autograd import Tensor
from minires.speed.blockwise import blockwise
from minires.speed.flat_parameters import FlatParameters


class Optimizer:
    def __init__(self, params, defaults):
        self.defaults = defaults
        where = type(self).__name__
        if isinstance(params, (Tensor, dict)) or not hasattr(params, "__iter__"):
            raise TypeError(f"{where}: params must be an iterable of parameters or of dicts "
                            f"(model.parameters()), got {type(params).__name__}")
        groups = list(params)
        if groups and not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        self.param_groups = []
        for index, group in enumerate(groups):
            if not isinstance(group, dict) or "params" not in group:
                raise TypeError(f"{where}: params[{index}] must be a dict with a 'params' entry, "
                                f"as the first is, got {type(group).__name__}")
            group = {**defaults, **group}
            members = list(group["params"]) if not isinstance(group["params"], Tensor) else None
            if members is None or not all(isinstance(p, Tensor) for p in members):
                raise TypeError(f"{where}: the params of group {index} must be an iterable of "
                                f"Tensors (Parameters)")
            group["params"] = [p for p in members if p.requires_grad]
            self._check(group)
            self.param_groups.append(group)
        self.params = [p for group in self.param_groups for p in group["params"]]
        if not self.params:
            raise ValueError("the optimizer got no parameter that requires a gradient")
        if len({id(p) for p in self.params}) != len(self.params):
            raise ValueError("some parameters appear in more than one parameter group")
        dtypes = {p.dtype for p in self.params}
        if len(dtypes) != 1:
            raise ValueError(f"all parameters must share one dtype, got {sorted(map(str, dtypes))}")
        self.flat = FlatParameters(self.params)
        self.group_of = [index for index, group in enumerate(self.param_groups)
                         for _ in group["params"]]
        self.steps = numpy.zeros(len(self.params), dtype=numpy.int64)    # updates of each parameter
        self.step_count = 0                                             # calls of step()

    def _check(self, group):
        """Refuse a hyper-parameter PyTorch refuses (subclasses add theirs), naming it."""
        check_number(type(self).__name__, "lr", group["lr"], low=0)

    @property
    def lr(self):
        return self.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value):
        for group in self.param_groups:
            group["lr"] = value

    def zero_grad(self, set_to_none=True):
        """Set every gradient to None (PyTorch's default), or to zeros with ``set_to_none=False``.

        None means "no gradient": ``step()`` skips a parameter whose gradient is still
        None, so one the forward did not use is not moved by momentum or weight decay.
        """
        self.flat.zero_grad(set_to_none)

    def step(self):
        """Update every parameter that has a gradient, one call per run (see above)."""
        has_grad = self.flat.bind()
        self.step_count += 1
        self.steps[has_grad] += 1
        arrays = [self.flat.data, self.flat.grad, *self._state_arrays().values()]
        for first, stop in self._runs(has_grad):
            start, end = self.flat.offsets[first], self.flat.offsets[stop]
            update = partial(self._update, self.param_groups[self.group_of[first]],
                             int(self.steps[first]))
            blockwise(update, *(array[start:end] for array in arrays))

    def _runs(self, has_grad):
        """[first, stop) index ranges of consecutive parameters that one call can update:
        the same group, the same step count, and all with a gradient."""
        steps = self.steps.tolist()
        runs = []
        for (_, present, _), run in itertools.groupby(
                range(len(self.params)), lambda i: (self.group_of[i], has_grad[i], steps[i])):
            if present:
                run = list(run)
                runs.append((run[0], run[-1] + 1))
        return runs

    def _update(self, group, t, p, g, *state):
        """Update the parameters ``p`` in place from gradients ``g`` (flat slices, with the state's)."""
        raise NotImplementedError

    def state_dict(self):
        """Hyper-parameters and state: Python numbers, the step counts and arrays of the active backend.

        ``lr`` and ``step_count`` are what the first checkpoints held; they still load.
        """
        groups = [{key: value for key, value in group.items() if key != "params"}
                  for group in self.param_groups]
        return {"lr": self.lr, "step_count": self.step_count, "steps": self.steps.copy(),
                "param_groups": groups, **self._state_arrays()}

    def load_state_dict(self, state):
        """Restore what ``state_dict()`` gave, or what the first checkpoints held (``lr``,
        ``step_count`` and the state arrays: every parameter then had every step)."""
        groups = state.get("param_groups", [{"lr": float(state["lr"])}] * len(self.param_groups))
        if len(groups) != len(self.param_groups):
            raise ValueError(f"the state has {len(groups)} parameter groups, "
                             f"the optimizer {len(self.param_groups)}")
        arrays = {**self._state_arrays(), "steps": self.steps}
        saved = {**{name: state[name] for name in self._state_arrays()},
                 "steps": state.get("steps", numpy.full(len(self.params), int(state["step_count"])))}
        for name, array in arrays.items():
            if tuple(saved[name].shape) != tuple(array.shape):
                raise ValueError(f"optimizer state {name!r}: expected shape {tuple(array.shape)}, "
                                 f"got {tuple(saved[name].shape)} (a checkpoint of another model?)")
        for group, hyper_parameters in zip(self.param_groups, groups):
            # a checkpoint's JSON turns tuples (Adam's betas) into lists
            group.update({key: tuple(value) if isinstance(value, list) else value
                          for key, value in hyper_parameters.items()})
        self.step_count = int(state["step_count"])
        self.steps[...] = backend.to_host(saved["steps"])
        for name, array in self._state_arrays().items():
            array[...] = backend.to_device(saved[name], dtype=array.dtype)

    def _state_arrays(self):
        return {}
