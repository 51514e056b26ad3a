"""``check``: run an exercise's checks in a fresh Python whose ``import minires`` is the learner's copy.

The child process puts DIR first on ``sys.path`` (ahead of PYTHONPATH, which may name this
library too) and loads this folder under another name (``exercise_checks``), so that the
checks, which ``import minires``, get the learner's tree and never this library's; ``main``
makes sure of it before any check runs. Only the standard library is imported here: in the
child, this module runs before any minires exists.
"""
import pathlib
import subprocess
import sys
import traceback

HERE = pathlib.Path(__file__).resolve().parent
CHILD = """\
import importlib.util, sys
tree, here, name = sys.argv[1:4]
sys.path.insert(0, tree)
spec = importlib.util.spec_from_file_location("exercise_checks", here + "/__init__.py",
                                              submodule_search_locations=[here])
package = importlib.util.module_from_spec(spec)
sys.modules["exercise_checks"] = package
spec.loader.exec_module(package)
from exercise_checks.runner import main
sys.exit(main(tree, name))
"""


def run_checks(name, directory, timeout=600):
    """Run the checks of exercise ``name`` on the tree in ``directory``: (exit status, printed lines)."""
    directory = pathlib.Path(directory).resolve()
    try:
        result = subprocess.run([sys.executable, "-c", CHILD, str(directory), str(HERE), name],
                                cwd=directory, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return 1, f"{name}: the checks ran past {timeout} s and were stopped (an endless loop?)"
    return result.returncode, (result.stdout + result.stderr).rstrip("\n")


def main(tree, name):
    """In the child: print one line per check of ``name``; 0 when all pass."""
    import minires
    found = pathlib.Path(minires.__file__).resolve().parent
    if found != pathlib.Path(tree, "minires").resolve():
        print(f"import minires found {found}, not the copy in {tree}")
        return 2
    from .checks import CHECKS
    from .checks.compare import Wrong
    failed = 0
    for label, check in CHECKS[name]:
        minires.set_backend("numpy")
        try:
            outcome = check()
        except NotImplementedError as error:
            print(f"not written yet: {error}")
            return 1
        except Wrong as error:
            print(f"{label}: {error}")
            failed += 1
        except Exception as error:
            print(f"{label}: {describe(error, tree)}")
            failed += 1
        else:
            print(f"{label}: {outcome or 'ok'}")
    print(f"{name}: {len(CHECKS[name]) - failed} of {len(CHECKS[name])} checks pass")
    return 1 if failed else 0


def describe(error, tree):
    """``Type: message (at file:line, in function)`` of the deepest frame in the learner's tree."""
    root = pathlib.Path(tree).resolve()
    paths = [(pathlib.Path(frame.filename).resolve(), frame)
             for frame in traceback.extract_tb(error.__traceback__)]
    inside = [(path, frame) for path, frame in paths if root in path.parents]
    where = ""
    if inside:
        path, frame = inside[-1]
        where = f" (at {path.relative_to(root)}:{frame.lineno}, in {frame.name})"
    return f"{type(error).__name__}: {error}{where}"
