"""Adam, PyTorch's rule: the course's optimizer."""
import math

from minires import backend
from minires.arguments import check_bool, check_number
from minires.optim.optimizer import Optimizer


class Adam(Optimizer):
    """Adam (Kingma and Ba, 2015), PyTorch's rule, with L2 ``weight_decay`` added to the gradient.

    g = -grad if maximize else grad             (maximize: ascend the objective)
    g = g + weight_decay * p                    (AdamW instead shrinks p, see adamw.py)
    m = beta1 * m + (1 - beta1) * g             (exp_avg)
    v = beta2 * v + (1 - beta2) * g^2           (exp_avg_sq)
    v_max = max(v_max, v)                       (max_exp_avg_sq, amsgrad only: Reddi et al., 2018)
    p = p - lr / (1 - beta1^t) * m / (sqrt(v, or v_max) / sqrt(1 - beta2^t) + eps)
    """
    decoupled_weight_decay = False
    STATE_NAMES = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, *, maximize=False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize))
        xp = backend.get_array_module()
        self.exp_avg = xp.zeros_like(self.flat.data)        # (P,) m
        self.exp_avg_sq = xp.zeros_like(self.flat.data)     # (P,) v
        with_amsgrad = any(group["amsgrad"] for group in self.param_groups)
        self.max_exp_avg_sq = xp.zeros_like(self.flat.data) if with_amsgrad else None  # (P,) v_max

    def _check(self, group):
        super()._check(group)
        where, betas = type(self).__name__, group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"{where}: betas must be a pair of numbers in [0, 1), got {betas!r}")
        group["betas"] = tuple(check_number(where, f"betas[{index}]", beta, low=0, high=1,
                                            high_open=True) for index, beta in enumerate(betas))
        check_number(where, "eps", group["eps"], low=0)
        check_number(where, "weight_decay", group["weight_decay"], low=0)
        check_bool(where, "amsgrad", group["amsgrad"])
        check_bool(where, "maximize", group["maximize"])

    def _update(self, group, t, p, g, exp_avg, exp_avg_sq, max_exp_avg_sq=None):
        lr, (beta1, beta2), weight_decay = group["lr"], group["betas"], group["weight_decay"]
        # the kernels read the gradient as sign * g; with L2 decay g = grad + sign * wd * p,
        # so that sign * g = (-grad if maximize else grad) + wd * p, exactly PyTorch's
        sign = -1.0 if group["maximize"] else 1.0
        if weight_decay and self.decoupled_weight_decay:
            p *= 1 - lr * weight_decay
        elif weight_decay:
            g = g + (sign * weight_decay) * p
        numbers = (sign, beta1, 1 - beta1, beta2, 1 - beta2, math.sqrt(1 - beta2 ** t), group["eps"],
                   lr / (1 - beta1 ** t))
        if group["amsgrad"]:
            _amsgrad_step(p, g, exp_avg, exp_avg_sq, max_exp_avg_sq, *numbers)
        else:
            _adam_step(p, g, exp_avg, exp_avg_sq, *numbers)

    def _group_keeps(self, group, name):
        return name != "max_exp_avg_sq" or group["amsgrad"]

    def _state_arrays(self):
        arrays = {"exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq}
        if self.max_exp_avg_sq is not None:
            arrays["max_exp_avg_sq"] = self.max_exp_avg_sq
        return arrays


def _update_moments(g, exp_avg, exp_avg_sq, sign, beta1, keep1, beta2, keep2):
    """m <- beta1 m + keep1 sign g; v <- beta2 v + keep2 g^2, in place (inside a fused function)."""
    exp_avg *= beta1
    exp_avg += keep1 * (sign * g)
    exp_avg_sq *= beta2
    exp_avg_sq += keep2 * (g * g)


def _descend_by_moments(p, exp_avg, second_moment, bias_root, eps, step_size):
    """p <- p - step_size m / (sqrt(second_moment) / bias_root + eps) (inside a fused function)."""
    denom = backend.get_array_module().sqrt(second_moment)
    denom /= bias_root
    denom += eps
    step = exp_avg / denom
    step *= step_size
    p -= step


@backend.fuse
def _adam_step(p, g, exp_avg, exp_avg_sq, sign, beta1, keep1, beta2, keep2, bias_root, eps, step_size):
    """Adam's rule in place on flat arrays: one GPU kernel (``backend.fuse``) per call.

    sign = -1 with maximize, else 1; keep1 = 1 - beta1, keep2 = 1 - beta2, bias_root =
    sqrt(1 - beta2^t), step_size = lr / (1 - beta1^t): numbers worked out before the call
    (on numbers alone CuPy's fusion would compute in float16), passed in so that one
    compiled kernel serves every step.
    """
    _update_moments(g, exp_avg, exp_avg_sq, sign, beta1, keep1, beta2, keep2)
    _descend_by_moments(p, exp_avg, exp_avg_sq, bias_root, eps, step_size)


@backend.fuse
def _amsgrad_step(p, g, exp_avg, exp_avg_sq, max_exp_avg_sq, sign, beta1, keep1, beta2, keep2,
                  bias_root, eps, step_size):
    """Adam's rule with amsgrad, as ``_adam_step`` (one kernel): the step divides by the running
    maximum of v, kept in ``max_exp_avg_sq``, instead of v."""
    _update_moments(g, exp_avg, exp_avg_sq, sign, beta1, keep1, beta2, keep2)
    backend.get_array_module().maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
    _descend_by_moments(p, exp_avg, max_exp_avg_sq, bias_root, eps, step_size)
