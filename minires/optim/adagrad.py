"""Adagrad, PyTorch's rule."""
from minires import backend
from minires.arguments import check_bool, check_number
from minires.optim.optimizer import Optimizer


class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011), PyTorch's rule.

    g = -grad if maximize else grad, then g = g + weight_decay * p
    s = s + g^2                                       (sum, from initial_accumulator_value)
    p = p - lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps)
    """

    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0,
                 eps=1e-10, maximize=False):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps,
                                      initial_accumulator_value=initial_accumulator_value,
                                      maximize=maximize))
        xp = backend.get_array_module()
        self.sum = xp.zeros_like(self.flat.data)                    # (P,) s
        for group, (start, end) in zip(self.param_groups, self._group_ranges()):
            self.sum[start:end] = group["initial_accumulator_value"]

    def _group_ranges(self):
        """[start, end) of each group's parameters in the flat array."""
        ranges, first = [], 0
        for group in self.param_groups:
            stop = first + len(group["params"])
            ranges.append((self.flat.offsets[first], self.flat.offsets[stop]))
            first = stop
        return ranges

    def _check(self, group):
        super()._check(group)
        for key in ("lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            check_number("Adagrad", key, group[key], low=0)
        check_bool("Adagrad", "maximize", group["maximize"])

    def _update(self, group, t, p, g, state_sum):
        xp = backend.get_array_module()
        if group["maximize"]:
            g = -g
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p
        state_sum += g * g
        std = xp.sqrt(state_sum)
        std += group["eps"]
        p -= group["lr"] / (1 + (t - 1) * group["lr_decay"]) * (g / std)

    def _state_arrays(self):
        return {"sum": self.sum}
