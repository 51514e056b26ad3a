"""PyTorch, the oracle, if it is installed.

Without it, the tests that compare with it are found when the run is collected (``reaches_torch``)
and skipped there, and the run says once, at its start, how many they are and how to install it.
A test reaches PyTorch when it, a fixture it takes, a parameter it is given, or a helper of the
tests any of them calls names ``torch`` or calls ``pytest.importorskip("torch")``.
"""
import types

import pytest

try:
    import torch
except ImportError:
    torch = None

INSTALL = "pip install torch==2.13.0"
MISSING = f"PyTorch is not installed ({INSTALL} installs the CPU build)"

requires_torch = pytest.mark.skipif(torch is None, reason=MISSING)


def _code_objects(code):
    yield code
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            yield from _code_objects(constant)


def _function_reaches_torch(function, seen):
    if not isinstance(function, types.FunctionType) or function in seen:
        return False
    seen.add(function)
    if not function.__module__.startswith("tests"):
        return False
    for code in _code_objects(function.__code__):
        if "torch" in code.co_names or ("importorskip" in code.co_names and "torch" in code.co_consts):
            return True
        for name in code.co_names:
            if _function_reaches_torch(function.__globals__.get(name), seen):
                return True
    return any(_function_reaches_torch(cell.cell_contents, seen)
               for cell in function.__closure__ or () if cell.cell_contents is not None)


def reaches_torch(item):
    """Whether the collected test ``item`` compares with PyTorch (see the module's docstring)."""
    seen = set()
    if any(marker.kwargs.get("reason") == MISSING for marker in item.iter_markers("skipif")):
        return True
    candidates = [getattr(item, "function", None)]
    candidates += [definitions[-1].func for definitions in item._fixtureinfo.name2fixturedefs.values()]
    candidates += list(getattr(getattr(item, "callspec", None), "params", {}).values())
    return any(_function_reaches_torch(candidate, seen) for candidate in candidates)
