"""Adam, PyTorch's rule: the course's optimizer."""
import math

from minires import backend
from minires.optim.optimizer import Optimizer


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
        self.exp_avg = xp.zeros_like(self.flat.data)        # (P,) m
        self.exp_avg_sq = xp.zeros_like(self.flat.data)     # (P,) v

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
