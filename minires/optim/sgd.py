"""Stochastic gradient descent with momentum, PyTorch's rule."""
from minires import backend
from minires.arguments import check_bool, check_number
from minires.optim.optimizer import Optimizer


class SGD(Optimizer):
    """Stochastic gradient descent, PyTorch's rule.

    g = -grad if maximize else grad             (maximize: ascend the objective)
    g = g + weight_decay * p
    buf = g on a parameter's first step, then momentum * buf + (1 - dampening) * g
    g = g + momentum * buf if nesterov else buf
    p = p - lr * g
    """

    STATE_NAMES = ("momentum_buffer",)
    steps_in_state = False          # PyTorch's SGD keeps only the buffer, made at the first step

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, *, maximize=False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize))
        xp = backend.get_array_module()
        with_momentum = any(group["momentum"] for group in self.param_groups)
        self.momentum_buffer = xp.zeros_like(self.flat.data) if with_momentum else None    # (P,)

    def _check(self, group):
        super()._check(group)
        check_number("SGD", "momentum", group["momentum"], low=0)
        check_number("SGD", "dampening", group["dampening"])
        check_number("SGD", "weight_decay", group["weight_decay"], low=0)
        check_bool("SGD", "nesterov", group["nesterov"])
        check_bool("SGD", "maximize", group["maximize"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD: nesterov=True needs a momentum > 0 and zero dampening")

    def _update(self, group, t, p, g, buf=None):
        momentum, dampening, lr = group["momentum"], group["dampening"], group["lr"]
        # the kernels read the gradient as sign * g; with weight decay g = grad + sign * wd * p,
        # so that sign * g = (-grad if maximize else grad) + wd * p, exactly PyTorch's
        sign = -1.0 if group["maximize"] else 1.0
        if group["weight_decay"]:
            g = g + (sign * group["weight_decay"]) * p
        if not momentum:
            _descend(p, g, sign, lr)
            return
        # on a parameter's first step buf = g: the rule with a zero buffer and no dampening
        decay, keep = (0.0, 1.0) if t == 1 else (momentum, 1 - dampening)
        step = _nesterov_step if group["nesterov"] else _momentum_step
        step(p, g, sign, buf, decay, keep, momentum, lr)

    def _group_keeps(self, group, name):
        return bool(group["momentum"])

    def _state_arrays(self):
        return {} if self.momentum_buffer is None else {"momentum_buffer": self.momentum_buffer}


# the rules in place on flat arrays, each one GPU kernel per call (``backend.fuse``);
# sign is -1 with maximize, else 1
@backend.fuse
def _descend(p, g, sign, lr):
    """p <- p - lr sign g."""
    p -= lr * (sign * g)


@backend.fuse
def _momentum_step(p, g, sign, buf, decay, keep, momentum, lr):
    """buf <- decay buf + keep sign g; p <- p - lr buf (momentum is unused: Nesterov's signature)."""
    buf *= decay
    buf += keep * (sign * g)
    p -= lr * buf


@backend.fuse
def _nesterov_step(p, g, sign, buf, decay, keep, momentum, lr):
    """buf <- decay buf + keep sign g; p <- p - lr (sign g + momentum buf)."""
    buf *= decay
    buf += keep * (sign * g)
    p -= lr * (sign * g + momentum * buf)
