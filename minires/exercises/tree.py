"""The learner's copy of minires: the package's own source, with one function's body replaced.

No second copy of the code is kept anywhere: ``write_tree`` copies the package's .py files as
they are (without this ``exercises`` folder, so no solution and no check travels with it) and
``blank_body`` finds the exercise's function with ``ast``. The def line, the decorators and
the docstring stay; the statements after the docstring, with the comments among them, become
one ``raise NotImplementedError(...)`` at the body's indentation.
"""
import ast
import pathlib
import textwrap

PACKAGE = pathlib.Path(__file__).resolve().parents[1]          # the minires package folder
LEFT_OUT = "exercises"                                          # this folder: checks, not library


def package_files(package=PACKAGE):
    """The package's .py files, relative to it, leaving this folder out."""
    return sorted(path.relative_to(package) for path in package.rglob("*.py")
                  if path.relative_to(package).parts[0] != LEFT_OUT)


def copy_package(directory, package=PACKAGE):
    """Copy the package's .py files into ``directory/minires``; returns that folder."""
    destination = pathlib.Path(directory) / "minires"
    for relative in package_files(package):
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((package / relative).read_bytes())
    return destination


def find_function(tree, qualified_name):
    """The FunctionDef node of ``qualified_name`` (``Class.method`` or ``function``) in a module."""
    body, node = tree.body, None
    for part in qualified_name.split("."):
        node = next((child for child in body if isinstance(
            child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and child.name == part), None)
        if node is None:
            raise LookupError(f"find_function: no {qualified_name} in the module (no {part!r})")
        body = node.body
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        raise LookupError(f"find_function: {qualified_name} is a class, not a function")
    return node


def body_lines(source, qualified_name):
    """(first, last) line numbers, from 1, of the body to replace, and its indentation.

    first is the line after the docstring (after the def's header without one), reaching back
    over comments and blank lines; last is the last statement's, reaching on over the comments
    that follow it at the body's indentation.
    """
    function = find_function(ast.parse(source), qualified_name)
    lines = source.splitlines()
    statements = function.body
    if ast.get_docstring(function, clean=False) is not None:
        statements = statements[1:]
    if not statements:
        raise LookupError(f"body_lines: {qualified_name} has nothing but its docstring")
    indent = statements[0].col_offset
    if statements[0].lineno == function.lineno:
        raise LookupError(f"body_lines: {qualified_name} has its body on the def line")
    floor = function.body[0].end_lineno if statements is not function.body else function.lineno
    first = statements[0].lineno
    while first - 1 > floor and _comment_or_blank(lines[first - 2]):
        first -= 1
    last = function.end_lineno
    while last < len(lines) and lines[last].strip().startswith("#") and \
            len(lines[last]) - len(lines[last].lstrip()) >= indent:
        last += 1
    return first, last, indent


def _comment_or_blank(line):
    return not line.strip() or line.strip().startswith("#")


def blank_body(source, qualified_name, message):
    """``source`` with the body of ``qualified_name`` replaced by ``raise NotImplementedError(message)``."""
    first, last, indent = body_lines(source, qualified_name)
    lines = source.splitlines(keepends=True)
    pieces = textwrap.wrap(message, 90, drop_whitespace=False)
    raised = " " * indent + "raise NotImplementedError(\n" + "".join(
        " " * (indent + 4) + repr(piece) + ("\n" if n < len(pieces) - 1 else ")\n")
        for n, piece in enumerate(pieces))
    return "".join(lines[:first - 1]) + raised + "".join(lines[last:])


def write_tree(exercise, directory, package=PACKAGE):
    """Copy the package into ``directory/minires`` with ``exercise``'s body (and its helpers') blanked;
    the edited file."""
    destination = copy_package(directory, package)
    path = destination / exercise.file
    source = path.read_text()
    for name in (exercise.name, *exercise.helpers):
        source = blank_body(source, name, exercise.message())
    path.write_text(source)
    return path
