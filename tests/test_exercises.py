"""minires.exercises: the list, the learner's tree, and the checks run against such trees.

The fast tests read the catalog and generate trees in-process. The slow ones run the checks
as a learner does, in a child Python whose ``import minires`` is a generated tree: for every
exercise, a fresh tree fails with NotImplementedError while another exercise still passes
there, the untouched tree (the solution) passes every check, and a wrong answer written into
the tree fails with a message naming the input and the element.
"""
import ast
import re
import subprocess
import sys
import time

import pytest

from minires.exercises import catalog, tree
from minires.exercises.__main__ import main
from minires.exercises.runner import run_checks
from tests.support.scripts import ENV, REPO

NAMES = [exercise.name for exercise in catalog.EXERCISES]

# an exercise whose checks do not go through the blanked one, to show the rest still works
PARTNER = {"ReLU.backward": "sum_to", "sum_to": "SGD._update", "topological_order": "SGD._update",
           "SGD._update": "Adam._update"}

# (exercise, a line of its body or its helpers' as the library has it, a wrong line, what the
# message must say)
WRONG = {
    "topological_order": (
        "order.append(function)",
        "order.insert(0, function)",
        "which feeds it"),
    "ReLU.backward": (
        "return gy * (y > 0)",
        "return -gy * (y > 0)",
        "gradient of input (3, 4) at ["),
    "sum_to": (
        "return g.reshape(shape)",
        "return -g.reshape(shape)",
        "sum_to(g (2, 3, 4), (4,)) at ["),
    "MatMul.backward": (
        "g_b = xp.swapaxes(self.a, -1, -2) @ gy",
        "g_b = -(xp.swapaxes(self.a, -1, -2) @ gy)",
        "gradient of b (4, 5) at ["),
    "Linear.backward": (
        "gx = gy @ self.W",
        "gx = -(gy @ self.W)",
        "gradient of input (2, 3, 4) at ["),
    "im2col": (
        "(Cg * sC, sN, SH * sH, SW * sW, DH * sH, DW * sW, sC)",
        "(Cg * sC, sN, DH * sH, SW * sW, SH * sH, DW * sW, sC)",
        "col of x (1, 2, 6, 5), NCHW memory at ["),
    "col2im": (
        "gcol[:, :, :, i, j]",
        "gcol[:, :, :, j, i]",
        "gx (2, 3, 5, 5) at ["),
    "Conv2d.backward": (
        "gW = gW.reshape(OC, KH, KW, Cg).transpose(0, 3, 1, 2)",
        "gW = gW.reshape(OC, Cg, KH, KW)",
        "gradient of weight (3, 2, 3, 3) at ["),
    "MaxPool2d.backward": (
        "i * self.KW + j",
        "j * self.KW + i",
        "gradient of input (1, 2, 4, 4) at ["),
    "AvgPool2d.backward": (
        "_add_scaled(gx_window, gy_nhwc, self.scale)",
        "_add_scaled(gx_window, gy_nhwc, 1.0)",
        "gradient of input (1, 2, 4, 4) at ["),
    "BatchNorm2d.forward": (
        "V, f = centred_square_sums(x_rows, mean), 1.0 / M",
        "V, f = centred_square_sums(x_rows, mean), 1.0 / (M - 1)",
        "output at ["),
    "BatchNorm2d.backward": (
        "c = -(a * (gbeta * f))",
        "c = a * (gbeta * f)",
        "gradient of input (2, 3, 3, 4) at ["),
    "LogSoftmax.backward": (
        "return gy - xp.exp(self.y)",
        "return gy + xp.exp(self.y)",
        "gradient of input (3, 5) at ["),
    "CrossEntropy.backward": (
        "exp(log_p) * q_sum - q) * scale",
        "exp(log_p) * q_sum + q) * scale",
        "gradient of input (5, 4) at ["),
    "SGD._update": (
        'step = _nesterov_step if group["nesterov"] else _momentum_step',
        "step = _momentum_step",
        "Nesterov: parameter 0 (3, 4) after step 1 at ["),
    "Adam._update": (
        "lr / (1 - beta1 ** t)",
        "lr",
        "parameter 0 (3, 4) after step 1 at ["),
    "compare_gradients": (
        "gy = backend.to_device(rng.standard_normal(y.shape), dtype=y.dtype)",
        "gy = backend.get_array_module().ones(y.shape, dtype=y.dtype)",
        "a seed of ones hides it"),
}


def test_list_prints_every_exercise_with_what_to_write_and_its_chapter(capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == NAMES
    for line, exercise in zip(lines, catalog.EXERCISES):
        assert exercise.task in line
        assert f"chapter {exercise.chapter}, {catalog.CHAPTERS[exercise.chapter]}" in line
    assert {exercise.chapter for exercise in catalog.EXERCISES} == set(catalog.CHAPTERS)


def test_a_chapter_lists_its_own_exercises(capsys):
    assert main(["list", "--chapter", "4"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == ["im2col", "col2im",
                                                                                   "Conv2d.backward"]
    assert [e.name for e in catalog.of_chapter(6)] == ["BatchNorm2d.forward", "BatchNorm2d.backward"]
    assert catalog.of_chapter(9) == []


def test_every_exercise_has_checks_and_a_wrong_answer_to_catch():
    from minires.exercises.checks import CHECKS
    assert list(CHECKS) == NAMES and set(WRONG) == set(NAMES)
    assert all(len(CHECKS[name]) >= 2 for name in NAMES)


def test_start_copies_the_package_with_one_body_blanked_and_says_what_next(tmp_path, capsys):
    exercise = catalog.find("Conv2d.backward")
    began = time.perf_counter()
    assert main(["start", exercise.name, str(tmp_path / "copy")]) == 0
    assert time.perf_counter() - began < 2.0                # measured 0.04 s here
    printed = capsys.readouterr().out
    copy = tmp_path / "copy" / "minires"
    assert f"python -m minires.exercises check Conv2d.backward {tmp_path / 'copy'}" in printed
    assert f"{copy / 'functional' / 'conv.py'}, line " in printed
    files = sorted(path.relative_to(copy) for path in copy.rglob("*") if path.is_file())
    assert files == tree.package_files()                    # .py files only: no __pycache__, no exercises
    assert not (copy / "exercises").exists() and len(files) > 50
    changed = [relative for relative in files
               if (copy / relative).read_bytes() != (tree.PACKAGE / relative).read_bytes()]
    assert [str(relative) for relative in changed] == [exercise.file]


@pytest.mark.parametrize("name", NAMES)
def test_the_blanked_body_raises_and_keeps_its_docstring(name):
    exercise = catalog.find(name)
    source = (tree.PACKAGE / exercise.file).read_text()
    blanked_source = tree.blank_body(source, name, exercise.message())
    original, blanked = (tree.find_function(ast.parse(text), name) for text in (source, blanked_source))
    assert ast.get_docstring(blanked) == ast.get_docstring(original)
    assert [ast.dump(node) for node in blanked.decorator_list + [blanked.args]] == \
        [ast.dump(node) for node in original.decorator_list + [original.args]]
    statements = blanked.body[1:] if ast.get_docstring(blanked) is not None else blanked.body
    assert len(statements) == 1 and isinstance(statements[0], ast.Raise)
    assert statements[0].exc.func.id == "NotImplementedError"
    message = ast.literal_eval(statements[0].exc.args[0])
    assert message == exercise.message()
    for part in (name, exercise.task, exercise.shapes, f"chapter {exercise.chapter}"):
        assert part in message
    # everything outside the function is as it was
    first, last, _ = tree.body_lines(source, name)
    lines, blanked_lines = source.splitlines(), blanked_source.splitlines()
    tail = len(lines) - last
    assert blanked_lines[:first - 1] == lines[:first - 1]
    assert blanked_lines[len(blanked_lines) - tail:] == lines[len(lines) - tail:]


@pytest.mark.parametrize("name", [exercise.name for exercise in catalog.EXERCISES if exercise.helpers])
def test_the_helpers_that_hold_part_of_the_answer_are_blanked_too(name, tmp_path):
    exercise = catalog.find(name)
    path = tree.write_tree(exercise, tmp_path)
    module = ast.parse(path.read_text())
    for function in (name, *exercise.helpers):
        node = tree.find_function(module, function)
        statements = node.body[1:] if ast.get_docstring(node) is not None else node.body
        assert len(statements) == 1 and isinstance(statements[0], ast.Raise), function
        assert ast.literal_eval(statements[0].exc.args[0]) == exercise.message()
    assert all(helper in exercise.message() for helper in exercise.helpers)


def test_blank_body_handles_decorators_comments_and_no_docstring():
    source = ("class A:\n"
              "    @staticmethod\n"
              "    def f(x,\n"
              "          y):  # the header's comment stays\n"
              "        # a comment before the body goes\n"
              "        z = x + y\n"
              "\n"
              "        return z\n"
              "        # and one after it\n"
              "\n"
              "    def g(self):\n"
              '        """Kept."""\n'
              "        return 1\n")
    blanked = tree.blank_body(source, "A.f", "exercise A.f")
    assert blanked == ("class A:\n"
                       "    @staticmethod\n"
                       "    def f(x,\n"
                       "          y):  # the header's comment stays\n"
                       "        raise NotImplementedError(\n"
                       "            'exercise A.f')\n"
                       "\n"
                       "    def g(self):\n"
                       '        """Kept."""\n'
                       "        return 1\n")
    assert tree.blank_body(source, "A.g", "m").endswith(
        '        """Kept."""\n        raise NotImplementedError(\n            \'m\')\n')
    with pytest.raises(LookupError, match="no A.h"):
        tree.blank_body(source, "A.h", "m")


def test_start_refuses_a_directory_that_exists(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(SystemExit, match=r"start: .* exists already; give a folder that does not exist yet"):
        main(["start", "ReLU.backward", str(tmp_path)])
    assert [path.name for path in tmp_path.iterdir()] == ["mine.txt"]


def test_an_unknown_name_is_refused_naming_the_closest(tmp_path):
    with pytest.raises(SystemExit, match=r"unknown exercise 'relu_backward'; the closest: ReLU\.backward"):
        main(["start", "relu_backward", str(tmp_path / "copy")])
    with pytest.raises(SystemExit, match=r"the closest: BatchNorm2d\.(forward|backward), BatchNorm2d"):
        main(["check", "batchnorm", str(tmp_path)])
    assert not (tmp_path / "copy").exists()


def test_check_refuses_a_folder_without_a_copy(tmp_path):
    with pytest.raises(SystemExit, match="holds no minires copy; make one with"):
        main(["check", "sum_to", str(tmp_path)])


@pytest.mark.slow
def test_import_minires_does_not_import_the_exercises():
    code = "import sys, minires; print(sorted(m for m in sys.modules if 'exercises' in m))"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=ENV, capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def hide_torch(directory):
    """Make the checks in ``directory`` run as without PyTorch: a torch.py first on sys.path that
    refuses to import. (Importing PyTorch takes seconds in each child; only the solution's test
    needs the parity check to run.)"""
    (directory / "torch.py").write_text("raise ImportError('no torch here')\n")


@pytest.mark.slow
def test_without_torch_the_parity_check_says_it_skipped(tmp_path):
    tree.copy_package(tmp_path)
    hide_torch(tmp_path)
    status, printed = run_checks("ReLU.backward", tmp_path)
    assert status == 0, printed
    assert printed.splitlines()[-2:] == ["PyTorch: skipped: PyTorch is not installed",
                                         "ReLU.backward: 3 of 3 checks pass"]


@pytest.mark.slow
def test_a_check_that_runs_too_long_is_stopped(tmp_path):
    path = tree.copy_package(tmp_path) / "functional" / "arithmetic.py"
    source = path.read_text()
    endless = "    while True:\n        pass\n    if g.shape == shape:"
    path.write_text(source.replace("    if g.shape == shape:", endless, 1))
    assert run_checks("sum_to", tmp_path, timeout=1) == (
        1, "sum_to: the checks ran past 1 s and were stopped (an endless loop?)")


@pytest.fixture(scope="module")
def solution(tmp_path_factory):
    """An untouched copy: every body as the library has it."""
    directory = tmp_path_factory.mktemp("solution")
    tree.copy_package(directory)
    return directory


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_a_fresh_tree_fails_not_written_yet_and_the_rest_still_works(name, tmp_path):
    tree.write_tree(catalog.find(name), tmp_path)
    hide_torch(tmp_path)
    status, printed = run_checks(name, tmp_path)
    assert status == 1
    assert printed.splitlines()[-1] == f"not written yet: {catalog.find(name).message()}", printed
    status, printed = run_checks(PARTNER.get(name, "ReLU.backward"), tmp_path)
    assert status == 0, printed


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_the_solution_passes_every_check(name, solution):
    status, printed = run_checks(name, solution)
    assert status == 0, printed
    lines = printed.splitlines()
    from minires.exercises.checks import CHECKS
    checks = len(CHECKS[name])
    assert len(lines) == checks + 1 and lines[-1] == f"{name}: {checks} of {checks} checks pass"
    assert all(line.endswith((": ok", ": skipped: PyTorch is not installed")) for line in lines[:-1]), printed


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_a_wrong_answer_is_caught_naming_the_input_and_the_element(name, tmp_path):
    exercise = catalog.find(name)
    right, wrong, expected = WRONG[name]
    path = tree.copy_package(tmp_path) / exercise.file
    source = path.read_text()
    bodies = []
    for function in (name, *exercise.helpers):
        first, last, _ = tree.body_lines(source, function)
        bodies.append("".join(source.splitlines(keepends=True)[first - 1:last]))
    [body] = [body for body in bodies if right in body]
    assert body.count(right) == 1, "the wrong answer must change the exercise's own code"
    path.write_text(source.replace(body, body.replace(right, wrong)))
    hide_torch(tmp_path)
    status, printed = run_checks(name, tmp_path)
    assert status == 1 and expected in printed, printed
    if expected.endswith("["):
        assert re.search(re.escape(expected) + r"\d+(, \d+)*\]: (got|analytic) ", printed), printed
