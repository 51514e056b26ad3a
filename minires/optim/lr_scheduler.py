"""Learning-rate schedules, with ``torch.optim.lr_scheduler``'s names and chainable rules.

Call ``step()`` once at the end of each epoch. Each schedule changes the rate the
optimizer holds now (``group["lr"]``), not a rate recomputed from the start, so a
change made by hand between epochs carries on, as in PyTorch:

    StepLR              lr = lr * gamma               at every step_size-th epoch
    MultiStepLR         lr = lr * gamma               at each milestone
    CosineAnnealingLR   lr = eta_min + (lr - eta_min) * (1 + cos(pi e / T)) / (1 + cos(pi (e-1) / T))

The cosine rule is the recursive form of ``eta_min + (base_lr - eta_min) * (1 + cos(pi e / T)) / 2``
(e the epoch, T = T_max), computed as PyTorch computes it, so the rates agree to the last bit.
"""
import math
import numbers


class LRScheduler:
    """What the schedules share: the epoch count, the base rates, ``step`` and the state."""

    def __init__(self, optimizer):
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
