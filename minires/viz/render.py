"""Drawing DOT text into a picture with Graphviz, an optional extra.

    minires.viz.render(minires.viz.to_dot(loss), "graph.svg")

It needs the ``graphviz`` Python package and Graphviz's ``dot`` program
(``pip install -e ".[viz]"``, then ``apt-get install graphviz`` or ``brew install
graphviz``); ``to_dot`` itself needs neither, and its text can be pasted into any
Graphviz viewer.
"""
import importlib
from pathlib import Path

INSTALL = ('install the graphviz Python package and the dot program: pip install -e ".[viz]" '
           "and apt-get install graphviz (or brew install graphviz)")


def render(dot, path):
    """Write the picture of ``dot`` (DOT text) to ``path``; the format follows its suffix.

    Args:
        dot: DOT source, e.g. from ``to_dot``.
        path: where to write, ending in .svg, .png or .pdf.
    Returns:
        the Path written.
    Raises:
        RuntimeError: the graphviz package or the dot program is missing (the message says
            what to install), or dot failed on the text.
        ValueError: the suffix is not .svg, .png or .pdf.
    """
    path = Path(path)
    image_format = path.suffix.lstrip(".").lower()
    if image_format not in ("svg", "png", "pdf"):
        raise ValueError(f"render: {path} should end in .svg, .png or .pdf")
    try:
        graphviz = importlib.import_module("graphviz")     # imported on use: an optional extra
    except ImportError:
        raise RuntimeError(f"render needs Graphviz: {INSTALL}") from None
    try:
        picture = graphviz.Source(dot).pipe(format=image_format)
    except graphviz.ExecutableNotFound:
        raise RuntimeError(f"render needs Graphviz's dot program on the PATH: {INSTALL}") from None
    except graphviz.CalledProcessError as error:
        raise RuntimeError(f"dot could not draw the graph: {error.stderr.decode(errors='replace').strip()}") \
            from None
    path.write_bytes(picture)
    return path
