"""Run the example scripts (examples/train_cifar.py above all) as a user does: a subprocess from the
repository root, with stdout a pipe (not a terminal) and minires importable from this checkout."""
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "examples" / "train_cifar.py"
# One BLAS thread: on batches of 10 a second one gains nothing (measured: same wall time, half
# the CPU time), and on a busy 2-core machine its spinning slows every run down.
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
       "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


def script_command(*args, python_options=(), script=SCRIPT):
    """[python, *python_options, script, *args] with every argument a string.

    ``python_options=("-c", code)`` runs ``code`` instead, with the script's path as sys.argv[1].
    """
    return [sys.executable, *python_options, str(script), *map(str, args)]


def run_example(name, *args, check=False, timeout=180, python_options=()):
    """Run ``examples/<name>`` to its end; the CompletedProcess, text stdout and stderr.

    check=True asserts exit status 0 and shows both streams if not.
    """
    command = script_command(*args, python_options=python_options, script=REPO / "examples" / name)
    result = subprocess.run(command, cwd=REPO, env=ENV, capture_output=True, text=True,
                            timeout=timeout)
    if check:
        assert result.returncode == 0, \
            f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def run_script(*args, check=False, timeout=180, python_options=()):
    """Run the training script, ``examples/train_cifar.py`` (see ``run_example``)."""
    return run_example(SCRIPT.name, *args, check=check, timeout=timeout,
                       python_options=python_options)
