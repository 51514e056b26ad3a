"""Learning-rate schedules, with ``torch.optim.lr_scheduler``'s names."""


class StepLR:
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs.

    Call ``step()`` once at the end of each epoch. The course divides the rate by 3
    every 20 epochs: ``StepLR(optimizer, step_size=20, gamma=1/3)``.
    """

    def __init__(self, optimizer, step_size, gamma=0.1):
        if step_size < 1:
            raise ValueError(f"step_size must be at least 1, got {step_size}")
        self.optimizer, self.step_size, self.gamma = optimizer, step_size, gamma
        self.base_lr = optimizer.lr
        self.last_epoch = 0

    def step(self):
        self.last_epoch += 1
        self.optimizer.lr = self.base_lr * self.gamma ** (self.last_epoch // self.step_size)

    def get_last_lr(self):
        return [self.optimizer.lr]

    def state_dict(self):
        return {"base_lr": self.base_lr, "last_epoch": self.last_epoch,
                "step_size": self.step_size, "gamma": self.gamma}

    def load_state_dict(self, state):
        """Restore the schedule, its step size and factor included (as PyTorch's StepLR)."""
        self.base_lr = float(state["base_lr"])
        self.last_epoch = int(state["last_epoch"])
        self.step_size = int(state.get("step_size", self.step_size))
        self.gamma = float(state.get("gamma", self.gamma))
        self.optimizer.lr = self.base_lr * self.gamma ** (self.last_epoch // self.step_size)
