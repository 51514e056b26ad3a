"""Draw autograd graphs: a small MLP's and one bottleneck block's, forward and backward.

    python examples/show_graph.py                    # graphs/*.svg
    python examples/show_graph.py --format png --course

For each network it writes two pictures and their DOT text:

    NAME_forward    the data flow: a node per Function (``LinearBackward``, as PyTorch names
                    a grad_fn) with its output shape, a blue box per parameter
    NAME_backward   the gradient flow of ``loss.backward()``: from the seed gy = 1 down to
                    every ``.grad``, each arrow with the shape of the gradient it carries;
                    dashed arrows mark inputs that get none (the images)

The block is the course network's first bottleneck (ResidualBlock(64, 64, 256)): its two
paths leave the same input ``x`` and join again in one AddBackward; backward sums
what both send back into ``x.grad``. ``--course`` also draws
the whole ResNet50_layer4 training step (177 Functions) and the same graph with each
block collapsed into one node (``depth=2``) and with each stage collapsed (``depth=1``).

Drawing needs Graphviz (``pip install -e ".[viz]"`` and ``apt-get install graphviz``);
without it the .dot files are still written (paste them into any Graphviz viewer) and
the script exits with status 2.
"""
import argparse
import sys
from pathlib import Path

import numpy

import minires
import minires.functional as F
from minires import nn, viz
from minires.models.resnet import ResidualBlock


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("-o", "--output-dir", type=Path, default=Path("graphs"),
                        help="folder for the pictures and .dot files")
    parser.add_argument("--format", choices=("svg", "png", "pdf"), default="svg")
    parser.add_argument("--course", action="store_true",
                        help="also draw the course network, whole and collapsed by module")
    return parser.parse_args(argv)


def mlp_step():
    """An MLP 4 -> 8 -> 3 on a batch of 2 (inputs that need no gradient): (names, loss)."""
    model = nn.Sequential(nn.Linear(in_features=4, out_features=8), nn.ReLU(),
                          nn.Linear(in_features=8, out_features=3))
    x = minires.Tensor(numpy.random.default_rng(0).standard_normal((2, 4)).astype(numpy.float32))
    return dict(model.named_parameters()), F.cross_entropy(model(x), numpy.array([0, 2]))


def block_step():
    """One bottleneck block on a batch of 2 of 64 x 8 x 8 features, summed: (names, loss).

    The features require a gradient, as the output of the layer before would: the input
    is then one node with two paths leaving it, and ``x.grad`` sums what both send back.
    """
    model = ResidualBlock(in_channels=64, middle_channels=64, out_channels=256)
    x = minires.Tensor(numpy.random.default_rng(0).standard_normal((2, 64, 8, 8)).astype(numpy.float32),
                       requires_grad=True)
    return {"x": x, **dict(model.named_parameters())}, model(x).sum()


def course_step():
    """ResNet50_layer4 on 2 images, its modules recorded for grouping: (model, loss)."""
    model = minires.models.ResNet50_layer4()
    x = minires.Tensor(numpy.random.default_rng(0).random((2, 3, 32, 32), dtype=numpy.float32))
    with viz.record_modules(model):
        loss = F.cross_entropy(model(x), numpy.array([3, 5]))
    return model, loss


def drawings(course):
    """(file name, DOT text) of every picture to draw."""
    for name, step in [("mlp", mlp_step), ("block", block_step)]:
        params, loss = step()
        yield f"{name}_forward", viz.to_dot(loss, params)
        yield f"{name}_backward", viz.to_dot(loss, params, direction="backward")
    if course:
        model, loss = course_step()
        yield "course_forward", viz.to_dot(loss, dict(model.named_parameters()))
        yield "course_blocks", viz.to_dot(loss, group_by=model, depth=2)
        yield "course_stages", viz.to_dot(loss, group_by=model, depth=1)


def fail(message):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def main(argv=None):
    args = parse_args(argv)
    minires.manual_seed(0)
    try:
        args.output_dir.mkdir(parents=True, exist_ok=True)
        sources = []
        for name, dot in drawings(args.course):
            sources.append((args.output_dir / f"{name}.dot", dot))
            sources[-1][0].write_text(dot)
    except OSError as error:
        fail(f"--output-dir {args.output_dir}: cannot write there ({error.strerror})")
    for source, dot in sources:
        picture = source.with_suffix(f".{args.format}")
        try:
            viz.render(dot, picture)
        except RuntimeError as error:
            fail(f"{error}; the .dot files are in {args.output_dir}")
        print(f"wrote {picture}")


if __name__ == "__main__":
    main()
