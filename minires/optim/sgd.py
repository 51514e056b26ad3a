"""Stochastic gradient descent with momentum, PyTorch's rule."""
from minires import backend
from minires.optim.optimizer import Optimizer


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
        self.momentum_buffer = xp.zeros_like(self.flat.data) if momentum else None

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
