"""Learning-rate schedules, with ``torch.optim.lr_scheduler``'s names and chainable rules.

Call ``step()`` once at the end of each epoch. Each schedule changes the rate the
optimizer holds now (``group["lr"]``), not a rate recomputed from the start, so a
change made by hand between epochs carries on, as in PyTorch:

    StepLR              lr = lr * gamma               at every step_size-th epoch
    MultiStepLR         lr = lr * gamma               at each milestone
    CosineAnnealingLR   lr = eta_min + (lr - eta_min) * (1 + cos(pi e / T)) / (1 + cos(pi (e-1) / T))
    ExponentialLR       lr = lr * gamma               every epoch
    LinearLR            lr = lr * (1 + (end - start) / (T start + (e - 1)(end - start)))   up to T
    LambdaLR            lr = base_lr * lr_lambda(e)   (not chained)
    ReduceLROnPlateau   lr = lr * factor              when the metric stops improving
    OneCycleLR          up to max_lr and down again, per batch, the momentum the other way

The cosine rule is the recursive form of ``eta_min + (base_lr - eta_min) * (1 + cos(pi e / T)) / 2``
(e the epoch, T = T_max), computed as PyTorch computes it, so the rates agree to the last bit.
"""
import math
import numbers

from minires.arguments import check_bool, check_choice, check_int, check_number


class LRScheduler:
    """What the schedules share: the epoch count, the base rates, ``step`` and the state."""

    def __init__(self, optimizer):
        _check_optimizer(type(self).__name__, optimizer)
        self.optimizer = optimizer
        # as PyTorch: the first schedule on an optimizer records its rates in the groups,
        # so a later one (or one built after loading a checkpoint) starts from the same base
        self.base_lrs = [group.setdefault("initial_lr", group["lr"])
                         for group in optimizer.param_groups]
        self.last_epoch = 0
        self.last_lr = [group["lr"] for group in optimizer.param_groups]

    def get_lr(self):
        """The rates for epoch ``last_epoch``, from the rates the groups hold now."""
        raise NotImplementedError

    def step(self):
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self.last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self):
        """The rate of each group set by the last ``step()`` (or at construction)."""
        return list(self.last_lr)

    def state_dict(self):
        """Numbers and lists only, so a checkpoint stores it as JSON."""
        return {key: value for key, value in vars(self).items() if key != "optimizer"}

    def check_state_dict(self, state):
        """Raise a ValueError naming the field unless ``load_state_dict(state)`` would succeed.

        It changes nothing, so a caller restoring several objects (``load_checkpoint``) can
        check them all before it changes any.
        """
        if not isinstance(state, dict):
            raise ValueError(f"{type(self).__name__}.load_state_dict: state must be a dict, got "
                             f"{type(state).__name__}")
        _require(self, state, "last_epoch", _is_count(state.get("last_epoch")), "an integer >= 0")
        for field in ("base_lrs", "last_lr"):
            rates = state.get(field)
            _require(self, state, field, isinstance(rates, list)
                     and len(rates) == len(self.optimizer.param_groups)
                     and all(_is_rate(lr) for lr in rates),
                     f"a list of {len(self.optimizer.param_groups)} finite rates >= 0")

    def load_state_dict(self, state):
        """Restore the schedule and put its last rates into the optimizer.

        PyTorch leaves the rates to the optimizer's own state dict; setting them here
        as well lets a schedule restore the rate on its own.
        """
        self.check_state_dict(state)
        vars(self).update(state)
        for group, lr in zip(self.optimizer.param_groups, self.last_lr):
            group["lr"] = lr


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs.

    The course divides the rate by 3 every 20 epochs: ``StepLR(optimizer, step_size=20, gamma=1/3)``.
    """

    def __init__(self, optimizer, step_size, gamma=0.1):
        if not _is_count(step_size) or step_size < 1:
            raise ValueError(f"StepLR: step_size must be an int >= 1, got {step_size!r}")
        if not _is_number(gamma):
            raise ValueError(f"StepLR: gamma must be a finite number, got {gamma!r}")
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer)

    def get_lr(self):
        if self.last_epoch % self.step_size != 0:
            return [group["lr"] for group in self.optimizer.param_groups]
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def check_state_dict(self, state):
        """Also checks the first checkpoints' state (``base_lr``, ``last_epoch``, ``step_size``, gamma)."""
        if isinstance(state, dict):
            step_size, gamma = state.get("step_size", self.step_size), state.get("gamma", self.gamma)
            _require(self, state, "step_size", _is_count(step_size) and step_size >= 1,
                     "an integer >= 1")
            _require(self, state, "gamma", _is_number(gamma), "a finite number")
            if "last_lr" not in state:
                _require(self, state, "base_lr", _is_rate(state.get("base_lr")),
                         "a finite rate >= 0")
        super().check_state_dict(self._current(state))

    def load_state_dict(self, state):
        """Also reads the first checkpoints' state (``base_lr``, ``last_epoch``, ``step_size``, ``gamma``)."""
        self.check_state_dict(state)
        super().load_state_dict(self._current(state))

    def _current(self, state):
        """A state of the first checkpoints in today's fields; today's as it is."""
        if not isinstance(state, dict) or "last_lr" in state or not _is_count(state.get("last_epoch")):
            return state
        step_size, gamma = state.get("step_size", self.step_size), state.get("gamma", self.gamma)
        base_lr, last_epoch = state["base_lr"], state["last_epoch"]
        lr = base_lr * gamma ** (last_epoch // step_size)
        groups = len(self.base_lrs)
        return {"step_size": step_size, "gamma": gamma, "base_lrs": [base_lr] * groups,
                "last_epoch": last_epoch, "last_lr": [lr] * groups}


class MultiStepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` at each epoch of ``milestones`` (e.g. [30, 80])."""

    def __init__(self, optimizer, milestones, gamma=0.1):
        if not (isinstance(milestones, (list, tuple)) and all(_is_count(m) for m in milestones)):
            raise ValueError(f"MultiStepLR: milestones must be a list of ints >= 0, got {milestones!r}")
        if not _is_number(gamma):
            raise ValueError(f"MultiStepLR: gamma must be a finite number, got {gamma!r}")
        self.milestones, self.gamma = sorted(milestones), gamma
        super().__init__(optimizer)

    def check_state_dict(self, state):
        if isinstance(state, dict):
            milestones = state.get("milestones", self.milestones)
            _require(self, state, "milestones", isinstance(milestones, list)
                     and all(_is_count(m) for m in milestones), "a list of integers >= 0")
            _require(self, state, "gamma", _is_number(state.get("gamma", self.gamma)),
                     "a finite number")
        super().check_state_dict(state)

    def get_lr(self):
        # a milestone listed twice decays twice, as in PyTorch; elsewhere the factor is 1
        factor = self.gamma ** self.milestones.count(self.last_epoch)
        return [group["lr"] * factor for group in self.optimizer.param_groups]


class CosineAnnealingLR(LRScheduler):
    """From the rate at construction down to ``eta_min`` along half a cosine over ``T_max`` epochs,

    then back up over the next ``T_max``, and so on (SGDR without restarts).
    """

    def __init__(self, optimizer, T_max, eta_min=0.0):
        if not _is_count(T_max) or T_max < 1:
            raise ValueError(f"CosineAnnealingLR: T_max must be an int >= 1, got {T_max!r}")
        if not _is_rate(eta_min):
            raise ValueError(f"CosineAnnealingLR: eta_min must be a finite number >= 0, got {eta_min!r}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer)

    def check_state_dict(self, state):
        if isinstance(state, dict):
            T_max = state.get("T_max", self.T_max)
            _require(self, state, "T_max", _is_count(T_max) and T_max >= 1, "an integer >= 1")
            _require(self, state, "eta_min", _is_rate(state.get("eta_min", self.eta_min)),
                     "a finite number >= 0")
        super().check_state_dict(state)

    def get_lr(self):
        groups, T, e = self.optimizer.param_groups, self.T_max, self.last_epoch
        if (e - 1 - T) % (2 * T) == 0:      # the bottom of the cosine: the ratio below would be 0/0
            return [group["lr"] + (base_lr - self.eta_min) * (1 - math.cos(math.pi / T)) / 2
                    for base_lr, group in zip(self.base_lrs, groups)]
        return [(1 + math.cos(math.pi * e / T)) / (1 + math.cos(math.pi * (e - 1) / T))
                * (group["lr"] - self.eta_min) + self.eta_min for group in groups]


class ExponentialLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every epoch."""

    def __init__(self, optimizer, gamma):
        self.gamma = check_number("ExponentialLR", "gamma", gamma, low=0)
        super().__init__(optimizer)

    def get_lr(self):
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]


class LambdaLR(LRScheduler):
    """lr = base_lr * lr_lambda(epoch), one function for all groups or one per group.

    As PyTorch, the rate of epoch 0 is set at construction. Its state leaves the
    functions out (they are code, not numbers).
    """

    def __init__(self, optimizer, lr_lambda):
        groups = _check_optimizer("LambdaLR", optimizer).param_groups
        one_each = isinstance(lr_lambda, (list, tuple))
        self.lr_lambdas = list(lr_lambda) if one_each else [lr_lambda] * len(groups)
        if len(self.lr_lambdas) != len(groups):
            raise ValueError(f"LambdaLR: {len(self.lr_lambdas)} functions in lr_lambda for {len(groups)} "
                             f"parameter groups")
        for function in self.lr_lambdas:
            if not callable(function):
                raise TypeError(f"LambdaLR: lr_lambda must be a function of the epoch (or one per group), "
                                f"got {type(function).__name__}")
        super().__init__(optimizer)
        for group, lr in zip(groups, self.get_lr()):
            group["lr"] = lr
        self.last_lr = [group["lr"] for group in groups]

    def get_lr(self):
        return [base_lr * lmbda(self.last_epoch) for base_lr, lmbda in zip(self.base_lrs, self.lr_lambdas)]

    def state_dict(self):
        return {key: value for key, value in super().state_dict().items() if key != "lr_lambdas"}


class LinearLR(LRScheduler):
    """From ``start_factor`` * lr to ``end_factor`` * lr in a straight line over ``total_iters``
    epochs, then constant; the rate of epoch 0 is set at construction, as in PyTorch."""

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5):
        check_number("LinearLR", "start_factor", start_factor)
        check_number("LinearLR", "end_factor", end_factor)
        check_int("LinearLR", "total_iters", total_iters, least=1)
        if not 0 < start_factor <= 1 or not 0 <= end_factor <= 1:
            raise ValueError(f"LinearLR: start_factor must be in (0, 1] and end_factor in [0, 1], "
                             f"got {start_factor} and {end_factor}")
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer)
        for group in optimizer.param_groups:
            group["lr"] *= start_factor
        self.last_lr = [group["lr"] for group in optimizer.param_groups]

    def get_lr(self):
        e, start, end, total = self.last_epoch, self.start_factor, self.end_factor, self.total_iters
        if e > total:
            return [group["lr"] for group in self.optimizer.param_groups]
        factor = 1 + (end - start) / (total * start + (e - 1) * (end - start))   # PyTorch's recursion
        return [group["lr"] * factor for group in self.optimizer.param_groups]


class ReduceLROnPlateau:
    """Multiply the rate by ``factor`` once the metric has not improved for ``patience`` epochs.

    ``step(metric)`` after each evaluation. "Improved" means below best * (1 - threshold)
    (mode "min", threshold_mode "rel"; "abs": below best - threshold; mode "max" mirrors
    both); after a reduction, ``cooldown`` epochs pass before counting again; a rate never
    goes below ``min_lr``, and a change smaller than ``eps`` is not made, as PyTorch.
    """

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4,
                 threshold_mode="rel", cooldown=0, min_lr=0.0, eps=1e-8):
        where = "ReduceLROnPlateau"
        groups = _check_optimizer(where, optimizer).param_groups
        check_choice(where, "mode", mode, ("min", "max"))
        check_number(where, "factor", factor, low=0, high=1, high_open=True)
        check_int(where, "patience", patience, least=0)
        check_number(where, "threshold", threshold, low=0)
        check_choice(where, "threshold_mode", threshold_mode, ("rel", "abs"))
        check_int(where, "cooldown", cooldown, least=0)
        for value in _per_group(min_lr, groups, where, "min_lr"):
            check_number(where, "min_lr", value, low=0)
        check_number(where, "eps", eps, low=0)
        self.optimizer, self.mode, self.factor, self.patience = optimizer, mode, factor, patience
        self.threshold, self.threshold_mode = threshold, threshold_mode
        self.cooldown, self.eps = cooldown, eps
        self.min_lrs = list(min_lr) if isinstance(min_lr, (list, tuple)) else [min_lr] * len(groups)
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = self.cooldown_counter = self.last_epoch = 0
        self.last_lr = [group["lr"] for group in groups]

    def _improves(self, metric):
        if self.threshold_mode == "rel":
            scale = 1 - self.threshold if self.mode == "min" else 1 + self.threshold
            bound = self.best * scale
        else:
            bound = self.best - self.threshold if self.mode == "min" else self.best + self.threshold
        return metric < bound if self.mode == "min" else metric > bound

    def step(self, metrics):
        try:
            metric = float(metrics)
        except (TypeError, ValueError):
            raise TypeError(f"ReduceLROnPlateau.step: metrics must be a number (or a one-element "
                            f"tensor), got {type(metrics).__name__}") from None
        self.last_epoch += 1
        if self._improves(metric):
            self.best, self.num_bad_epochs = metric, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0         # epochs in cooldown do not count
        if self.num_bad_epochs > self.patience:
            for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs):
                new_lr = max(group["lr"] * self.factor, min_lr)
                if group["lr"] - new_lr > self.eps:
                    group["lr"] = new_lr
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self.last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self):
        return list(self.last_lr)

    def state_dict(self):
        return {key: value for key, value in vars(self).items() if key != "optimizer"}

    def load_state_dict(self, state):
        vars(self).update(state)


class OneCycleLR(LRScheduler):
    """The one-cycle policy (Smith and Topin, 2018), stepped after every batch, not every epoch.

    The rate climbs from max_lr / div_factor to max_lr over the first ``pct_start`` of the
    ``total_steps`` (= epochs * steps_per_epoch), then anneals to that start / final_div_factor;
    the momentum (SGD's ``momentum``, Adam's first beta) moves the opposite way, from
    max_momentum to base_momentum and back. ``anneal_strategy`` "cos" or "linear";
    ``three_phase`` comes back to the start rate before the final annealing. As PyTorch:

        phase from a to b over steps s0..s1, at step e:   pct = (e - s0) / (s1 - s0)
        cos:    b + (a - b) (1 + cos(pi pct)) / 2          linear:  a + (b - a) pct
    """

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None,
                 pct_start=0.3, anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85,
                 max_momentum=0.95, div_factor=25.0, final_div_factor=1e4, three_phase=False):
        where = "OneCycleLR"
        groups = _check_optimizer(where, optimizer).param_groups
        for argument, value in (("max_lr", max_lr), ("max_momentum", max_momentum),
                                ("base_momentum", base_momentum)):
            for number in _per_group(value, groups, where, argument):
                check_number(where, argument, number, low=0)
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("OneCycleLR: give total_steps, or epochs and steps_per_epoch")
            total_steps = check_int(where, "epochs", epochs, least=1) * \
                check_int(where, "steps_per_epoch", steps_per_epoch, least=1)
        check_int(where, "total_steps", total_steps, least=1)
        check_number(where, "pct_start", pct_start, low=0, high=1)
        check_choice(where, "anneal_strategy", anneal_strategy, ("cos", "linear"))
        check_bool(where, "cycle_momentum", cycle_momentum)
        check_number(where, "div_factor", div_factor, low=0, low_open=True)
        check_number(where, "final_div_factor", final_div_factor, low=0, low_open=True)
        check_bool(where, "three_phase", three_phase)
        self.total_steps, self.anneal_strategy = total_steps, anneal_strategy
        self.cycle_momentum = cycle_momentum
        up = float(pct_start * total_steps) - 1
        # (last step, the group's keys of the rate and the momentum it goes from and to)
        self.phases = [(up, "initial_lr", "max_lr", "max_momentum", "base_momentum")]
        if three_phase:
            self.phases += [(float(2 * pct_start * total_steps) - 2, "max_lr", "initial_lr",
                             "base_momentum", "max_momentum"),
                            (total_steps - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum")]
        else:
            self.phases += [(total_steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum")]
        for group, top in zip(groups, _per_group(max_lr, groups)):
            group["initial_lr"] = top / div_factor
            group["max_lr"], group["min_lr"] = top, group["initial_lr"] / final_div_factor
        self.use_beta1 = "betas" in optimizer.defaults
        if cycle_momentum:
            for group, high, low in zip(groups, _per_group(max_momentum, groups),
                                        _per_group(base_momentum, groups)):
                group["max_momentum"], group["base_momentum"] = high, low
                self._set_momentum(group, high)
        super().__init__(optimizer)
        for group, lr in zip(groups, self.get_lr()):
            group["lr"] = lr
        self.last_lr = [group["lr"] for group in groups]

    def _set_momentum(self, group, momentum):
        if self.use_beta1:
            group["betas"] = (momentum, *group["betas"][1:])
        else:
            group["momentum"] = momentum

    def _anneal(self, start, end, pct):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self):
        e = self.last_epoch
        if e > self.total_steps:
            raise ValueError(f"OneCycleLR: stepped {e} times, more than total_steps = {self.total_steps}")
        lrs = []
        for group in self.optimizer.param_groups:
            start = 0.0
            for i, (end, lr_from, lr_to, momentum_from, momentum_to) in enumerate(self.phases):
                if e <= end or i == len(self.phases) - 1:
                    pct = (e - start) / (end - start)
                    lrs.append(self._anneal(group[lr_from], group[lr_to], pct))
                    if self.cycle_momentum:
                        self._set_momentum(group, self._anneal(group[momentum_from], group[momentum_to], pct))
                    break
                start = end
        return lrs


def _per_group(value, groups, where="", argument="the value"):
    """``value`` for each group: a list or tuple gives one each, a number the same for all."""
    values = list(value) if isinstance(value, (list, tuple)) else [value] * len(groups)
    if len(values) != len(groups):
        raise ValueError(f"{where}: {argument} must be a number or one per parameter group "
                         f"({len(groups)}), got {len(values)} values")
    return values


def _check_optimizer(where, optimizer):
    if not hasattr(optimizer, "param_groups"):
        raise TypeError(f"{where}: optimizer must be an optimizer (such as optim.SGD), got "
                        f"{type(optimizer).__name__}")
    return optimizer


def _require(scheduler, state, field, ok, expected):
    if not ok:
        raise ValueError(f"{type(scheduler).__name__}.load_state_dict: {field} must be {expected}, "
                         f"got {state.get(field)!r}")


def _is_count(value):
    return type(value) is int and value >= 0    # type(): True is an int too, but not a count


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _is_rate(value):
    return _is_number(value) and value >= 0
