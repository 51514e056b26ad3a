"""examples/train_cifar.py as rank 1 of an MPMD launch, failing at its second training step.

    mpiexec -n 1 python examples/train_cifar.py ARGS : -n 1 python failing_rank.py raise|kill ARGS

Rank 0 runs the script as a user does; this rank runs the same ``main`` with ``train_step``
replaced by one that raises (``raise``) or kills its own process (``kill``) at the second step,
so the test can check that rank 0 does not wait for it for ever.
"""
import importlib.util
import os
import signal
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "train_cifar.py"
spec = importlib.util.spec_from_file_location("train_cifar", SCRIPT)
script = importlib.util.module_from_spec(spec)
spec.loader.exec_module(script)
how, argv = sys.argv[1], sys.argv[2:]
real_step, calls = script.train_step, []


def failing_step(*args):
    calls.append(1)
    if len(calls) == 2:
        if how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise RuntimeError("a fault on rank 1 alone")
    return real_step(*args)


script.train_step = failing_step
script.main(argv)
