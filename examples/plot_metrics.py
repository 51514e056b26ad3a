"""Plot the curves of training runs from the metrics.jsonl files the training script writes.

    python examples/plot_metrics.py checkpoints/metrics.jsonl -o curves.png
    python examples/plot_metrics.py a/metrics.jsonl b/metrics.jsonl --label base --label wide

One figure, four panels, all against the global step (optimizer steps since training
began, continued across --resume):

    training loss    a thin line through the running mean at every logged step, dots at
                     each epoch's mean
    test accuracy    after each epoch, in percent
    learning rate    the rate each epoch trained with (log scale)
    images/s         training speed of each epoch

Each file is named by its --label (default: its folder). A file that holds several
fresh runs (the script started again into the same folder) gives one series per run,
named "LABEL, run ID"; a resumed run continues the series it resumes (the rules are in
``minires/viz/metrics.py``). Needs matplotlib (``pip install -e ".[viz]"``). Exits with
status 2 and one sentence for a missing file, a bad line or a missing matplotlib.
"""
import argparse
import importlib
import sys
from pathlib import Path

from minires.viz.metrics import MetricsError, read_metrics, series

INSTALL = 'plot_metrics.py needs matplotlib: pip install -e ".[viz]" (or pip install matplotlib)'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("files", type=Path, nargs="+", help="metrics.jsonl files")
    parser.add_argument("-o", "--output", type=Path, default=Path("curves.png"),
                        help="the picture to write (.png, .svg or .pdf)")
    parser.add_argument("--label", action="append", default=[],
                        help="name of a file's runs in the legend, once per file, in order")
    args = parser.parse_args(argv)
    if args.label and len(args.label) != len(args.files):
        parser.error(f"give --label once per file: {len(args.files)} file(s), "
                     f"{len(args.label)} label(s)")
    return args


def fail(message):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def named_series(files, labels):
    """[(name, Series)] of every file, named by its label or its folder."""
    lines = []
    for path, label in zip(files, labels or [None] * len(files)):
        label = label or path.resolve().parent.name
        found = series(read_metrics(path))
        for number, one in enumerate(found, start=1):
            run = one.runs[0] or number     # records from before run ids are numbered
            lines.append((label if len(found) == 1 else f"{label}, run {run}", one))
    return lines


def plot(lines, output):
    """Draw the four panels of every series into ``output``."""
    matplotlib = importlib.import_module("matplotlib")
    matplotlib.use("Agg")       # files only: no display needed
    pyplot = importlib.import_module("matplotlib.pyplot")
    figure, axes = pyplot.subplots(2, 2, figsize=(11, 7), sharex=True)
    (loss, accuracy), (lr, speed) = axes
    for index, (name, one) in enumerate(lines):
        colour = f"C{index % 10}"
        steps, epochs = one.steps, one.epochs
        x = [r["global_step"] for r in epochs]
        loss.plot([r["global_step"] for r in steps], [r["loss"] for r in steps],
                  color=colour, linewidth=0.8, alpha=0.6)
        loss.plot(x, [r["train_loss"] for r in epochs], "o", color=colour, label=name)
        accuracy.plot(x, [r["test_accuracy"] for r in epochs], "o-", color=colour, label=name)
        # an epoch's rate holds from the end of the epoch before to its own end
        lr.plot(x, [r["lr"] for r in epochs], "o-", color=colour, drawstyle="steps-pre")
        speed.plot(x, [r["images_per_second"] for r in epochs], "o-", color=colour)
    titles = [(loss, "training loss (line: logged steps, dots: epochs)"),
              (accuracy, "test accuracy (%)"), (lr, "learning rate"), (speed, "training images/s")]
    for axis, title in titles:
        axis.set_title(title, fontsize=10)
        axis.grid(alpha=0.3)
        if not axis.lines or not any(len(line.get_xdata()) for line in axis.lines):
            axis.text(0.5, 0.5, "no records", transform=axis.transAxes, ha="center", color="grey")
    if any(len(line.get_xdata()) for line in lr.lines):
        lr.set_yscale("log")
    for axis in (lr, speed):
        axis.set_xlabel("global step (optimizer steps)")
    loss.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(output, dpi=100)
    pyplot.close(figure)


def main(argv=None):
    args = parse_args(argv)
    try:
        lines = named_series(args.files, args.label)
    except MetricsError as error:
        fail(str(error))
    try:
        importlib.import_module("matplotlib")
    except ImportError:
        fail(INSTALL)
    try:
        plot(lines, args.output)
    except (OSError, ValueError) as error:
        fail(f"-o {args.output}: cannot write the picture ({error})")
    print(f"wrote {args.output}")
    for name, one in lines:
        epochs = one.epochs
        last = f", last test accuracy {epochs[-1]['test_accuracy']:.2f} %" if epochs else ""
        print(f"  {name}: {len(epochs)} epoch(s), {len(one.steps)} logged step(s), "
              f"{len(one.runs)} run(s){last}")


if __name__ == "__main__":
    main()
