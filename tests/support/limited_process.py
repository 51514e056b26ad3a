"""Run a loader on a hostile file in a child process whose address space is capped.

A memory bomb that the loader failed to refuse then ends in a MemoryError in the child instead of
exhausting the machine the tests run on, and the child reports how long the load took and its
peak resident memory, so a test can assert that the file was refused quickly and cheaply.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

_CHILD = """
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))

def peak_resident_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0

{setup}
outcomes = {{}}
for path in {paths!r}:
    start = time.perf_counter()
    try:
        load(path)
        outcome = {{"error": None, "message": ""}}
    except BaseException as error:
        outcome = {{"error": type(error).__name__, "message": str(error)}}
    outcome["seconds"] = time.perf_counter() - start
    # the peak of this load and those before it, imports included (VmHWM, not ru_maxrss:
    # Linux carries ru_maxrss across fork and exec, so it would report the test process's peak)
    outcome["peak_mb"] = peak_resident_mb()
    outcomes[path] = outcome
print(json.dumps(outcomes))
"""


def load_limited(setup, paths, limit_mb=800):
    """Run ``setup`` (code that imports what it needs and defines ``load(path)``), then
    ``load(path)`` for each of ``paths``, in one child limited to ``limit_mb`` of address space.

    Returns:
        {path: outcome}, each a dict: ``error`` (the exception's type name, or None),
        ``message``, ``seconds`` (the time ``load`` took) and ``peak_mb`` (the child's peak
        resident memory so far, imports included).
    """
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    code = _CHILD.format(limit=limit_mb << 20, setup=setup, paths=[str(path) for path in paths])
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def assert_refused_cheaply(outcome, error, phrase, path):
    """The load of ``path`` raised ``error`` (a type name) with ``phrase`` and the file's name in
    its message, within a bounded peak memory."""
    assert outcome["error"] == error, outcome
    assert phrase in outcome["message"] and path.name in outcome["message"], outcome
    # memory is the proof (a bomb that went off would pass 300 MB or hit the cap); the time
    # bound only says nothing ran long, with room for a loaded machine
    assert outcome["peak_mb"] < 300 and outcome["seconds"] < 10, outcome
