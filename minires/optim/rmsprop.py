"""RMSprop, PyTorch's rule."""
from minires import backend
from minires.arguments import check_bool, check_number
from minires.optim.optimizer import Optimizer


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture 6e), PyTorch's rule.

    g = -grad if maximize else grad, then g = g + weight_decay * p
    v = alpha * v + (1 - alpha) * g^2                        (square_avg)
    a = sqrt(v) + eps, or, centered, sqrt(v - m^2) + eps with m = alpha * m + (1 - alpha) * g
    buf = momentum * buf + g / a, p = p - lr * buf            (momentum > 0)
    p = p - lr * g / a                                        (momentum = 0)
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False, maximize=False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize))
        xp = backend.get_array_module()
        self.square_avg = xp.zeros_like(self.flat.data)                                    # (P,) v
        uses = {key: any(group[key] for group in self.param_groups) for key in ("momentum", "centered")}
        self.momentum_buffer = xp.zeros_like(self.flat.data) if uses["momentum"] else None  # (P,)
        self.grad_avg = xp.zeros_like(self.flat.data) if uses["centered"] else None          # (P,) m

    def _check(self, group):
        super()._check(group)
        for key in ("alpha", "eps", "weight_decay", "momentum"):
            check_number("RMSprop", key, group[key], low=0)
        for key in ("centered", "maximize"):
            check_bool("RMSprop", key, group[key])

    def _update(self, group, t, p, g, square_avg, *state):
        xp = backend.get_array_module()
        buffers = dict(zip([k for k, v in (("momentum_buffer", self.momentum_buffer),
                                           ("grad_avg", self.grad_avg)) if v is not None], state))
        alpha = group["alpha"]
        if group["maximize"]:
            g = -g
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p
        square_avg *= alpha
        square_avg += (1 - alpha) * (g * g)
        if group["centered"]:
            grad_avg = buffers["grad_avg"]
            grad_avg *= alpha
            grad_avg += (1 - alpha) * g
            avg = xp.sqrt(square_avg - grad_avg * grad_avg)
        else:
            avg = xp.sqrt(square_avg)
        avg += group["eps"]
        if group["momentum"]:
            buf = buffers["momentum_buffer"]
            buf *= group["momentum"]
            buf += g / avg
            p -= group["lr"] * buf
        else:
            p -= group["lr"] * (g / avg)

    def _state_arrays(self):
        arrays = {"square_avg": self.square_avg, "momentum_buffer": self.momentum_buffer,
                  "grad_avg": self.grad_avg}
        return {name: array for name, array in arrays.items() if array is not None}
