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

``state_dict()`` gives PyTorch's layout (``state`` by parameter index, each array
shaped like its parameter; ``param_groups`` with index lists), cut out of the flat
arrays; ``load_state_dict`` takes it, a PyTorch optimizer's (read with
``minires.load_torch_optimizer_state``), or the flat layout minires's checkpoints
keep (``flat_state_dict()``).
"""
import itertools
from functools import partial

import numpy

from minires import backend
from minires.arguments import check_number
from minires.autograd import Tensor
from minires.speed.blockwise import blockwise
from minires.speed.flat_parameters import FlatParameters, view_like


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

    # --- state: PyTorch's layout for users, the flat one for minires's checkpoints ---------------
    STATE_NAMES = ()                    # every state a parameter can have, PyTorch's names
    steps_in_state = True               # PyTorch keeps a "step" per parameter (SGD has none)
    state_from_construction = False     # Adagrad's state exists before the first step, as in PyTorch
    IMPLEMENTATION_SWITCHES = ("foreach", "fused", "capturable", "differentiable")  # PyTorch's only

    def state_dict(self):
        """The state in PyTorch's layout, so code written for ``torch.optim`` reads it:

            {"state": {i: {"step": 0-d array, "exp_avg": array shaped like parameter i, ...}},
             "param_groups": [{"lr": ..., "betas": ..., ..., "params": [0, 1, ...]}]}

        ``i`` counts the parameters group after group; a parameter that has had no step has
        no entry. The arrays are copies, of the active backend, out of the flat state arrays.
        """
        views = self._state_views()
        state = {}
        for index in range(len(self.params)):
            steps = int(self.steps[index])
            if steps == 0 and not self.state_from_construction:
                continue
            entry = {"step": numpy.array(float(steps), dtype=numpy.float32)} if self.steps_in_state else {}
            group = self.param_groups[self.group_of[index]]
            for name, parameter_views in views.items():
                if self._group_keeps(group, name):
                    entry[name] = parameter_views[index].copy()
            if entry:                   # SGD without momentum keeps nothing
                state[index] = entry
        groups, first = [], 0
        for group in self.param_groups:
            stop = first + len(group["params"])
            groups.append({**{key: value for key, value in group.items() if key != "params"},
                           "params": list(range(first, stop))})
            first = stop
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state):
        """Restore a state in PyTorch's layout (``state_dict()``'s, or a PyTorch optimizer's read
        with ``minires.load_torch_optimizer_state``), or in the flat layout of minires's
        checkpoints (``flat_state_dict()``). Everything is checked before anything changes."""
        if isinstance(state, dict) and "state" in state and "param_groups" in state:
            self._load_torch_layout(state)
        else:
            self.load_flat_state_dict(state)

    def _load_torch_layout(self, state):
        where = f"{type(self).__name__}.load_state_dict"
        saved_groups, saved_state = state["param_groups"], state["state"]
        if not isinstance(saved_groups, list) or len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{where}: param_groups must be a list of {len(self.param_groups)} "
                             f"groups, as the optimizer has, got {_described(saved_groups)}")
        position, groups = {}, []       # saved parameter index -> ours; the new hyper-parameters
        for number, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            indices = saved.get("params") if isinstance(saved, dict) else None
            if not isinstance(indices, list) or len(indices) != len(group["params"]):
                raise ValueError(f"{where}: param_groups[{number}]['params'] must list "
                                 f"{len(group['params'])} parameter indices, as the optimizer's "
                                 f"group has, got {_described(indices)}")
            for index in indices:
                position[index] = len(position)
            decoupled = getattr(self, "decoupled_weight_decay", False)     # Adam's and AdamW's
            if saved.get("decoupled_weight_decay", decoupled) != decoupled:
                raise ValueError(f"{where}: param_groups[{number}] has decoupled_weight_decay="
                                 f"{saved['decoupled_weight_decay']}, which is "
                                 f"{'AdamW' if saved['decoupled_weight_decay'] else 'Adam'}'s rule")
            hyper_parameters = {key: tuple(value) if isinstance(value, list) else value
                                for key, value in saved.items() if key not in
                                ("params", "decoupled_weight_decay", *self.IMPLEMENTATION_SWITCHES)}
            new_group = {**group, **hyper_parameters}
            self._check(new_group)
            groups.append(new_group)
        views = self._state_views()
        for name in self.STATE_NAMES:
            if name not in views and any(self._group_keeps(group, name) for group in groups):
                raise ValueError(f"{where}: the saved settings need the state {name!r}, which this "
                                 f"{type(self).__name__}, built without them, does not keep (build "
                                 "it with the saved settings)")
        if not isinstance(saved_state, dict):
            raise ValueError(f"{where}: state must be a dict by parameter index, got "
                             f"{_described(saved_state)}")
        steps, values = numpy.zeros(len(self.params), dtype=numpy.int64), {}
        for index, entry in saved_state.items():
            if index not in position or not isinstance(entry, dict):
                raise ValueError(f"{where}: state[{index!r}] is not the state of a parameter of "
                                 "param_groups")
            ours = position[index]
            for name, value in entry.items():
                if name == "step" and self.steps_in_state:
                    steps[ours] = int(round(float(numpy.asarray(value))))
                    continue
                shape = tuple(self.params[ours].shape)
                if name not in views:
                    raise ValueError(f"{where}: state[{index}] holds {name!r}, which this "
                                     f"{type(self).__name__} does not keep (build it with the "
                                     "saved settings)")
                if tuple(getattr(value, "shape", ())) != shape:
                    raise ValueError(f"{where}: state[{index}][{name!r}] must have the shape "
                                     f"{shape} of its parameter, got {_described(value)}")
                values[ours, name] = value
            if not self.steps_in_state:     # SGD: a saved momentum buffer means a step was made
                steps[ours] = int(any(name in entry for name in views))
        for group, new_group in zip(self.param_groups, groups):
            group.update(new_group)
        self.steps[...] = steps
        self.step_count = int(steps.max())
        for ours, group_index in enumerate(self.group_of):
            for name, parameter_views in views.items():
                value = values.get((ours, name))
                if value is None:
                    parameter_views[ours][...] = self._fresh_state(name, self.param_groups[group_index])
                else:
                    parameter_views[ours][...] = backend.to_device(value, dtype=parameter_views[ours].dtype)

    def _state_views(self):
        """Each state array's views, one shaped like each parameter (its memory order too)."""
        return {name: [view_like(array[self.flat.offsets[i]:self.flat.offsets[i + 1]], p.data)
                       for i, p in enumerate(self.params)]
                for name, array in self._state_arrays().items()}

    def _group_keeps(self, group, name):
        """Whether PyTorch keeps state ``name`` for a parameter of ``group`` (subclasses say when not)."""
        return name in self.STATE_NAMES

    def _fresh_state(self, name, group):
        """The value of state ``name`` before a parameter's first step."""
        return 0.0

    def flat_state_dict(self):
        """Hyper-parameters and state as minires's checkpoints hold it: Python numbers, the step
        counts and the flat arrays of the active backend.

        ``lr`` and ``step_count`` are what the first checkpoints held; they still load.
        """
        groups = [{key: value for key, value in group.items() if key != "params"}
                  for group in self.param_groups]
        return {"lr": self.lr, "step_count": self.step_count, "steps": self.steps.copy(),
                "param_groups": groups, **self._state_arrays()}

    def load_flat_state_dict(self, state):
        """Restore what ``flat_state_dict()`` gave, or what the first checkpoints held (``lr``,
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


def _described(value):
    """A short description of a value found in a state, for an error message."""
    if hasattr(value, "shape"):
        return f"an array of shape {tuple(value.shape)}"
    return f"{type(value).__name__} {value!r}"[:80]
