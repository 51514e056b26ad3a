"""Optimizers (SGD, Adam) and a step learning-rate schedule, with PyTorch's update rules.

All parameters of an optimizer live in one flat array, and their gradients in
another: each parameter's ``.data`` and ``.grad`` are views into them. An update
is then a handful of whole-array operations however many parameters the model
has (214 in ResNet50_layer4), instead of a handful per parameter; on a GPU each
operation is a kernel launch, so Adam's step is 13 launches instead of 13 x 214 = 2,782.

As in PyTorch, the learning rate lives in ``optimizer.param_groups[0]["lr"]``
(``optimizer.lr`` is the same number), so the course's ``update_lr`` works as is.
Parameters that do not require a gradient are left out: they never move.
"""
import math

from minires import backend, parallel
from minires.functional.basic import inverse_permutation


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
        xp = backend.get_array_module()
        total = sum(p.numel() for p in self.params)
        self.flat_data = xp.empty(total, dtype=self.params[0].dtype)   # (P,) every parameter
        self.flat_grad = xp.zeros(total, dtype=self.params[0].dtype)   # (P,) every gradient
        self._data_views, self._grad_views, offset = [], [], 0
        for p in self.params:
            self._data_views.append(_view_like(self.flat_data[offset:offset + p.numel()], p.data))
            self._grad_views.append(_view_like(self.flat_grad[offset:offset + p.numel()], p.data))
            offset += p.numel()
        self._adopt_parameters()

    def _adopt_parameters(self):
        """Make each parameter's data and grad the views into the flat arrays again.

        Normally a no-op (the checks are Python identity tests, no array work);
        it copies only for a parameter whose data or grad was replaced, e.g. after
        ``module.zero_grad()`` set the grads to None.
        """
        for p, data_view, grad_view in zip(self.params, self._data_views, self._grad_views):
            if p.data is not data_view:
                data_view[...] = p.data
                p.data = data_view
            if p.grad is not grad_view:
                if p.grad is None:
                    grad_view[...] = 0
                else:
                    grad_view[...] = p.grad
                p.grad = grad_view

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
        self._adopt_parameters()
        self.flat_grad.fill(0)

    def step(self):
        self._adopt_parameters()
        self.step_count += 1
        # element-wise over all parameters at once, in cache-sized blocks on every core
        parallel.blockwise(self._update, self.flat_data, self.flat_grad,
                           *self._state_arrays().values())

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


def _view_like(flat, array):
    """``flat`` seen with the shape of ``array`` and the same memory order.

    A conv weight is (OC, C, KH, KW) with channels-last memory (see
    ``nn.layers.Conv2d``); its view into the flat buffer keeps that order, so the
    convolution still reads it without a copy.
    """
    memory_order = sorted(range(array.ndim), key=lambda axis: -array.strides[axis])
    in_memory_order = flat.reshape([array.shape[axis] for axis in memory_order])
    return in_memory_order.transpose(inverse_permutation(memory_order))


class SGD(Optimizer):
    """Stochastic gradient descent, PyTorch's rule.

    g = grad + weight_decay * p
    buf = g on the first step, then momentum * buf + (1 - dampening) * g
    g = g + momentum * buf if nesterov else buf
    p = p - lr * g
    """

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum needs a momentum > 0 and zero dampening")
        super().__init__(params, lr)
        self.momentum, self.dampening = momentum, dampening
        self.weight_decay, self.nesterov = weight_decay, nesterov
        xp = backend.get_array_module()
        self.momentum_buffer = xp.zeros_like(self.flat_data) if momentum else None

    def _update(self, p, g, buf=None):
        if self.weight_decay:
            g = g + self.weight_decay * p
        if self.momentum:
            if self.step_count == 1:
                buf[...] = g
            else:
                buf *= self.momentum
                buf += (1 - self.dampening) * g
            g = g + self.momentum * buf if self.nesterov else buf
        p -= self.lr * g

    def _state_arrays(self):
        return {} if self.momentum_buffer is None else {"momentum_buffer": self.momentum_buffer}


class Adam(Optimizer):
    """Adam (Kingma and Ba, 2015), PyTorch's rule, with L2 ``weight_decay`` added to the gradient.

    m = beta1 * m + (1 - beta1) * g             (exp_avg)
    v = beta2 * v + (1 - beta2) * g^2           (exp_avg_sq)
    p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr)
        self.beta1, self.beta2 = betas
        self.eps, self.weight_decay = eps, weight_decay
        xp = backend.get_array_module()
        self.exp_avg = xp.zeros_like(self.flat_data)        # (P,) m
        self.exp_avg_sq = xp.zeros_like(self.flat_data)     # (P,) v

    def _update(self, p, g, exp_avg, exp_avg_sq):
        if self.weight_decay:
            g = g + self.weight_decay * p
        t = self.step_count
        exp_avg *= self.beta1
        exp_avg += (1 - self.beta1) * g
        exp_avg_sq *= self.beta2
        exp_avg_sq += (1 - self.beta2) * (g * g)
        xp = backend.get_array_module()
        denom = xp.sqrt(exp_avg_sq)
        denom /= math.sqrt(1 - self.beta2 ** t)
        denom += self.eps
        step = exp_avg / denom
        step *= self.lr / (1 - self.beta1 ** t)
        p -= step

    def _state_arrays(self):
        return {"exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq}


class StepLR:
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs.

    Call ``step()`` once at the end of each epoch. The course divides the rate by 3
    every 20 epochs: ``StepLR(optimizer, step_size=20, gamma=1/3)``.
    """

    def __init__(self, optimizer, step_size, gamma=0.1):
        if step_size < 1:
            raise ValueError(f"step_size must be at least 1, got {step_size}")
        self.optimizer, self.step_size, self.gamma = optimizer, step_size, gamma
        self.base_lr = optimizer.lr
        self.last_epoch = 0

    def step(self):
        self.last_epoch += 1
        self.optimizer.lr = self.base_lr * self.gamma ** (self.last_epoch // self.step_size)

    def get_last_lr(self):
        return [self.optimizer.lr]

    def state_dict(self):
        return {"base_lr": self.base_lr, "last_epoch": self.last_epoch,
                "step_size": self.step_size, "gamma": self.gamma}

    def load_state_dict(self, state):
        """Restore the schedule, its step size and factor included (as PyTorch's StepLR)."""
        self.base_lr = float(state["base_lr"])
        self.last_epoch = int(state["last_epoch"])
        self.step_size = int(state.get("step_size", self.step_size))
        self.gamma = float(state.get("gamma", self.gamma))
        self.optimizer.lr = self.base_lr * self.gamma ** (self.last_epoch // self.step_size)
