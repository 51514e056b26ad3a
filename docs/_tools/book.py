"""What the chapters' executed blocks call: the library's code by name, figures, tables.

Each function returns Markdown (or HTML); the block prints it and markdown-exec puts it on the page,
so everything a page shows was computed from the library when the book was built:

    print(show("functional/norm.py:BatchNorm.backward"))   # the source, pulled by name, never pasted
    print(show_file("examples/train_cifar.py:train_step"))  # the same for a file outside minires/
    print(figure(fig, "caption"))                           # a Matplotlib figure, inline as SVG
    print(table(["layer", "shape"], rows))                  # a Markdown table

(They return text rather than print it because markdown-exec captures only the block's own print.)
"""
import ast
import io
import pathlib
import textwrap

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]
PACKAGE = REPOSITORY / "minires"


def source_of(name, root=PACKAGE):
    """The source lines of ``"file.py:Qualified.name"`` inside ``root`` (the package), dedented."""
    file, _, qualified = name.partition(":")
    path = root / file
    text = path.read_text()
    node = ast.parse(text)
    for part in qualified.split("."):
        matches = [child for child in ast.iter_child_nodes(node)
                   if isinstance(child, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                   and child.name == part]
        if not matches:
            raise LookupError(f"the book shows {name!r}, but {file} has no {part!r} there")
        node = matches[0]
    first = min([node.lineno] + [decorator.lineno for decorator in node.decorator_list])
    lines = text.splitlines()[first - 1:node.end_lineno]
    return textwrap.dedent("\n".join(lines))


def show(*names):
    """Each named function or class as a Python block, headed by where it lives."""
    blocks = []
    for name in names:
        file, _, qualified = name.partition(":")
        blocks.append(f"`minires/{file}`, `{qualified}`:\n\n```python\n{source_of(name)}\n```\n")
    return "\n".join(blocks)


def show_file(*names):
    """As ``show``, for a file of the repository outside the package:
    ``show_file("examples/train_cifar.py:train_step")``."""
    blocks = []
    for name in names:
        file, _, qualified = name.partition(":")
        blocks.append(f"`{file}`, `{qualified}`:\n\n```python\n{source_of(name, REPOSITORY)}\n```\n")
    return "\n".join(blocks)


def figure(fig, caption=""):
    """A Matplotlib figure as inline SVG (no file, no network), with a caption."""
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]                      # drop the XML prologue and DOCTYPE
    return f'<figure class="book-figure">\n{svg}\n<figcaption>{caption}</figcaption>\n</figure>\n'


def graph(dot_source, caption=""):
    """A Graphviz graph (DOT text, e.g. from minires.viz.to_dot) as inline SVG."""
    import subprocess

    svg = subprocess.run(["dot", "-Tsvg"], input=dot_source, capture_output=True, text=True,
                         check=True).stdout
    svg = svg[svg.index("<svg"):]
    return f'<figure class="book-figure">\n{svg}\n<figcaption>{caption}</figcaption>\n</figure>\n'


def table(header, rows):
    """A Markdown table."""
    lines = ["| " + " | ".join(str(cell) for cell in header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def torch_or_none():
    """PyTorch when it is installed (the book compares with it), None otherwise."""
    try:
        import torch
    except ImportError:
        return None
    return torch


SAMPLE = pathlib.Path(__file__).resolve().parent / "cifar10_test_first100.bin"


def real_images():
    """The first 100 images of CIFAR-10's official test set (a copy kept beside the book).

    Returns:
        images: uint8 (100, 3, 32, 32) and labels: int64 (100,), as minires.data reads them.
    """
    from minires.data.cifar10 import read_records

    return read_records(SAMPLE)


SAMPLE_RUN = pathlib.Path(__file__).resolve().parent / "sample_run_metrics.jsonl"
"""metrics.jsonl of a real run, recorded on 2026-12-04 on the project's 2-core machine (one BLAS
thread, other jobs sharing it) on the real 4,660-image CIFAR-10 sample (846 test images) with
``python examples/train_cifar.py --epochs 4 --lr-step 2 --log-every 5``."""


def exercises(chapter):
    """The chapter's exercises (minires.exercises) as a Markdown list, with the commands."""
    from minires.exercises import catalog

    items = [f"- **`{exercise.name}`** in `minires/{exercise.file}`: {exercise.task}. "
             f"Shapes: {exercise.shapes}." for exercise in catalog.of_chapter(chapter)]
    if not items:
        return "This chapter has no exercise of its own.\n"
    first = catalog.of_chapter(chapter)[0]
    return ("Exercises: each gives you a copy of minires with that function's body removed.\n\n"
            + "\n".join(items)
            + f"\n\nStart one, write the body, then check it (the check prints a line per test and "
              f"says which input and element are wrong):\n\n```bash\n{first.start_command}\n"
              f"python -m minires.exercises check {first.name} my_copy\n"
              "python -m minires.exercises list            # every exercise of the book\n```\n")
