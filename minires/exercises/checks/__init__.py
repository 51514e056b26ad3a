"""The checks of every exercise: {name: [(what it checks, a function of no arguments)]}.

A check returns None when it passes (or a sentence saying why it was skipped) and raises
``compare.Wrong`` with one line saying what is wrong. They ``import minires``: run through
``runner.py``, that is the learner's copy.
"""
from . import broadcast, checking, conv, graph, loss, matmul, norm, optim, pool

CHECKS = {name: checks for module in (graph, broadcast, matmul, conv, pool, norm, loss, optim, checking)
          for name, checks in module.CHECKS.items()}
