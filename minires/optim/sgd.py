"""Stochastic gradient descent with momentum, PyTorch's rule."""
from minires import backend
from minires.arguments import check_bool, check_number
from minires.optim.optimizer import Optimizer


class SGD(Optimizer):
    """Stochastic gradient descent, PyTorch's rule.

    g = grad + weight_decay * p
    buf = g on a parameter's first step, then momentum * buf + (1 - dampening) * g
    g = g + momentum * buf if nesterov else buf
    p = p - lr * g
    """

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))
        xp = backend.get_array_module()
        with_momentum = any(group["momentum"] for group in self.param_groups)
        self.momentum_buffer = xp.zeros_like(self.flat.data) if with_momentum else None    # (P,)

    def _check(self, group):
        super()._check(group)
        check_number("SGD", "momentum", group["momentum"], low=0)
        check_number("SGD", "dampening", group["dampening"])
        check_number("SGD", "weight_decay", group["weight_decay"], low=0)
        check_bool("SGD", "nesterov", group["nesterov"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD: nesterov=True needs a momentum > 0 and zero dampening")

    def _update(self, group, t, p, g, buf=None):
        momentum, dampening = group["momentum"], group["dampening"]
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p
        if momentum:
            if t == 1:
                buf[...] = g
            else:
                buf *= momentum
                buf += (1 - dampening) * g
            g = g + momentum * buf if group["nesterov"] else buf
        p -= group["lr"] * g

    def _state_arrays(self):
        return {} if self.momentum_buffer is None else {"momentum_buffer": self.momentum_buffer}
