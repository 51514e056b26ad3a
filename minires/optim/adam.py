"""Adam, PyTorch's rule: the course's optimizer."""
import math

from minires import backend
from minires.arguments import check_number
from minires.optim.optimizer import Optimizer


class Adam(Optimizer):
    """Adam (Kingma and Ba, 2015), PyTorch's rule, with L2 ``weight_decay`` added to the gradient.

    g = grad + weight_decay * p                 (AdamW instead shrinks p, see adamw.py)
    m = beta1 * m + (1 - beta1) * g             (exp_avg)
    v = beta2 * v + (1 - beta2) * g^2           (exp_avg_sq)
    p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    """
    decoupled_weight_decay = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        xp = backend.get_array_module()
        self.exp_avg = xp.zeros_like(self.flat.data)        # (P,) m
        self.exp_avg_sq = xp.zeros_like(self.flat.data)     # (P,) v

    def _check(self, group):
        super()._check(group)
        where, betas = type(self).__name__, group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"{where}: betas must be a pair of numbers in [0, 1), got {betas!r}")
        group["betas"] = tuple(check_number(where, f"betas[{index}]", beta, low=0, high=1,
                                            high_open=True) for index, beta in enumerate(betas))
        check_number(where, "eps", group["eps"], low=0)
        check_number(where, "weight_decay", group["weight_decay"], low=0)

    def _update(self, group, t, p, g, exp_avg, exp_avg_sq):
        lr, (beta1, beta2), weight_decay = group["lr"], group["betas"], group["weight_decay"]
        if weight_decay and self.decoupled_weight_decay:
            p *= 1 - lr * weight_decay
        elif weight_decay:
            g = g + weight_decay * p
        _adam_step(p, g, exp_avg, exp_avg_sq, beta1, 1 - beta1, beta2, 1 - beta2,
                   math.sqrt(1 - beta2 ** t), group["eps"], lr / (1 - beta1 ** t))

    def _state_arrays(self):
        return {"exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq}


@backend.fuse
def _adam_step(p, g, exp_avg, exp_avg_sq, beta1, keep1, beta2, keep2, bias_root, eps, step_size):
    """Adam's rule in place on flat arrays: one GPU kernel (``backend.fuse``) per call.

    keep1 = 1 - beta1, keep2 = 1 - beta2, bias_root = sqrt(1 - beta2^t), step_size =
    lr / (1 - beta1^t): numbers worked out before the call (on numbers alone CuPy's fusion
    would compute in float16), passed in so that one compiled kernel serves every step.
    """
    exp_avg *= beta1
    exp_avg += keep1 * g
    exp_avg_sq *= beta2
    exp_avg_sq += keep2 * (g * g)
    denom = backend.get_array_module().sqrt(exp_avg_sq)
    denom /= bias_root
    denom += eps
    step = exp_avg / denom
    step *= step_size
    p -= step
