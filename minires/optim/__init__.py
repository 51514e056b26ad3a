"""Optimizers and learning-rate schedules with ``torch.optim``'s names and update rules.

    optimizer = optim.Adam(model.parameters(), lr=1e-3)      # adam.py
    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=20, gamma=1/3)

Each rule has its file (``sgd.py``, ``adam.py``, ``adamw.py``, ``rmsprop.py``, ``adagrad.py``);
``optimizer.py`` holds what they share (parameter groups, skipping parameters without a
gradient, state).
``optim.StepLR`` is ``optim.lr_scheduler.StepLR``, kept for the course's code.
"""
from minires.optim import lr_scheduler
from minires.optim.adagrad import Adagrad
from minires.optim.adam import Adam
from minires.optim.adamw import AdamW
from minires.optim.lr_scheduler import StepLR
from minires.optim.optimizer import Optimizer
from minires.optim.rmsprop import RMSprop
from minires.optim.sgd import SGD

__all__ = ["Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "SGD", "StepLR", "lr_scheduler"]
