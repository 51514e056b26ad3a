"""Which minires module imports which, read from the source with ``ast``, and the cycle check.

    python -m minires.testing.import_graph

prints one line per module, ``module -> the minires modules it imports``, then the result of
the cycle check. Every import counts, at module level or inside a function (a deferred import
still ties the two modules together). An edge goes to the module named: ``from minires import
nn`` and ``import minires.nn`` give ``minires.nn``, ``from minires.autograd import Tensor``
gives ``minires.autograd``. Python also runs each parent package's ``__init__`` first; those
implicit edges are left out, or every module would sit on a cycle through ``minires``.
"""
import ast
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]          # the minires package folder


def module_files(root=ROOT):
    """{module name: path} for every .py file of the package (``minires.nn`` for nn/__init__.py)."""
    files = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        files[".".join(parts)] = path
    return files


def imported_modules(tree, module, is_package, files):
    """The package's modules that the import statements of ``tree`` name."""
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):                 # module level and inside functions alike
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:                      # from . import x, from ..nn import y
                anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:            # a submodule, else a name defined in ``base``
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in files else base)
    return sorted(name for name in found if name in files and name != module)


def import_graph(root=ROOT):
    """{module: sorted list of the package's modules it imports}."""
    files = module_files(root)
    return {module: imported_modules(ast.parse(path.read_text(), str(path)), module,
                                     path.name == "__init__.py", files)
            for module, path in files.items()}


def find_cycle(graph):
    """A list [a, b, ..., a] of modules that import each other in a ring, or None."""
    state = {}                       # module -> "open" while on the current path, "done" after
    path = []

    def visit(module):
        state[module] = "open"
        path.append(module)
        for target in graph.get(module, ()):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        path.pop()
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module)
            if cycle:
                return cycle
    return None


def reachable(graph, start):
    """Every module ``start`` imports, directly or through others."""
    seen, stack = set(), [start]
    while stack:
        for target in graph.get(stack.pop(), ()):
            if target not in seen:
                seen.add(target)
                stack.append(target)
    return seen


def main():
    graph = import_graph()
    for module, targets in graph.items():
        print(f"{module} -> {', '.join(targets) if targets else '(nothing)'}")
    cycle = find_cycle(graph)
    print(f"import cycle: {' -> '.join(cycle)}" if cycle else
          f"no import cycle among {len(graph)} modules")
    return 1 if cycle else 0


if __name__ == "__main__":
    sys.exit(main())
