"""What every optimizer shares: its parameters, learning rate, step count and state.

A subclass gives the update rule as ``_update(p, g, *state)``, element-wise on
flat arrays: all parameters live in one flat array and their gradients in
another (``speed/flat_parameters.py``), so one call updates the whole model,
in cache-sized blocks on every core (``speed/blockwise.py``).

As in PyTorch, the learning rate lives in ``optimizer.param_groups[0]["lr"]``
(``optimizer.lr`` is the same number), so the course's ``update_lr`` works as is.
Parameters that do not require a gradient are left out: they never move.
"""
from minires import backend
from minires.speed.blockwise import blockwise
from minires.speed.flat_parameters import FlatParameters


class Optimizer:
    def __init__(self, params, lr):
        self.params = [p for p in params if p.requires_grad]
        if not self.params:
            raise ValueError("the optimizer got no parameter that requires a gradient")
        if lr < 0:
            raise ValueError(f"invalid learning rate {lr}")
        dtypes = {p.dtype for p in self.params}
        if len(dtypes) != 1:
            raise ValueError(f"all parameters must share one dtype, got {sorted(map(str, dtypes))}")
        self.param_groups = [{"params": self.params, "lr": lr}]
        self.step_count = 0
        self.flat = FlatParameters(self.params)

    @property
    def lr(self):
        return self.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value):
        self.param_groups[0]["lr"] = value

    def zero_grad(self):
        """Set every gradient to zeros (not None: one operation on the flat gradient array).

        A parameter that a step's forward did not use then gets a zero gradient,
        which Adam's momentum still moves, as PyTorch's ``zero_grad(set_to_none=False)``.
        """
        self.flat.zero_grad()

    def step(self):
        self.flat.bind()
        self.step_count += 1
        blockwise(self._update, self.flat.data, self.flat.grad, *self._state_arrays().values())

    def _update(self, p, g, *state):
        """Update the parameters ``p`` in place from gradients ``g`` (flat slices, with the state's)."""
        raise NotImplementedError

    def state_dict(self):
        """Hyper-parameters and state: Python numbers and arrays of the active backend."""
        return {"lr": self.lr, "step_count": self.step_count, **self._state_arrays()}

    def load_state_dict(self, state):
        self.lr = float(state["lr"])
        self.step_count = int(state["step_count"])
        for name, array in self._state_arrays().items():
            if tuple(state[name].shape) != tuple(array.shape):
                raise ValueError(f"optimizer state {name!r}: expected shape {tuple(array.shape)}, "
                                 f"got {tuple(state[name].shape)} (a checkpoint of another model?)")
            array[...] = backend.to_device(state[name], dtype=array.dtype)

    def _state_arrays(self):
        return {}
