"""Array operations (GPU kernel launches) per training step of ResNet50_layer4, and where they go.

    python benchmarks/count_ops.py                # batch 2
    python benchmarks/count_ops.py --batch 100    # the same counts: they do not depend on the batch

It runs one training step (forward, cross entropy, backward, Adam) and one evaluation forward
on ``minires.testing.strict_device``, the stand-in for CuPy the tests use: NumPy underneath, and
every operation that would launch a kernel on CuPy (a function call, an operator, an in-place
operator, an indexing copy, a reduction) counted and charged to the minires Function whose
forward or backward issued it, or else to the innermost minires function; a fused function
(``backend.fuse``) is one launch, ``fuse(name)`` in the breakdown by operation, and
``MINIRES_FUSION=0`` counts it unfused. Views and ``empty`` allocations launch nothing and are
counted apart. On a GPU each launch costs a few
microseconds of Python and driver time however small the batch, so at small batches this
count, not the arithmetic, sets the step time. A CuPy operation may use a few kernels (fancy
indexing, some reductions): the figures are lower bounds. No GPU is needed.
"""
import argparse
import os
import sys

import numpy

import minires
from minires import backend, profiler
from minires.models import ResNet50_layer4
from minires.testing import strict_device

# the course's step and evaluation forward, exactly as the training script runs them
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
from train_cifar import predict, train_step  # noqa: E402


def count_step(batch):
    """Counts and Function calls (from minires.profiler) of a training step and an evaluation forward."""
    with strict_device.installed():
        minires.manual_seed(0)
        model = ResNet50_layer4()
        optimizer = minires.optim.Adam(model.parameters(), lr=1e-3)
        rng = numpy.random.default_rng(0)
        x = minires.Tensor(rng.standard_normal((batch, 3, 32, 32), dtype=numpy.float32))
        y = backend.to_device(rng.integers(0, 10, size=batch))

        train_step(model, optimizer, x, y)     # the first step is no different, but count a later one
        with strict_device.counting(sites=True) as train, profiler.profile() as train_calls:
            train_step(model, optimizer, x, y)
        with strict_device.counting(sites=True) as evaluation, profiler.profile() as eval_calls:
            predict(model, x)
    return train, train_calls.calls, evaluation, eval_calls.calls


def table(counts, calls, top):
    """Rows (phase, where, calls, launches, launches per call), most launches first."""
    rows = sorted(counts.by_site.items(), key=lambda item: -item[1])
    lines = [f"  {'phase':<10}{'where':<42}{'calls':>6}{'launches':>10}{'per call':>10}"]
    for (phase, where, function), launches in rows[:top]:
        n = calls.get((function, "backward" if phase == "backward" else "forward"), 0) \
            if function else 0
        per_call = f"{launches / n:.1f}" if n else ""
        lines.append(f"  {phase:<10}{where:<42}{n or '':>6}{launches:>10,}{per_call:>10}")
    rest = sum(launches for _, launches in rows[top:])
    if rest:
        lines.append(f"  {'':<10}{f'{len(rows) - top} more places':<42}{'':>6}{rest:>10,}")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=2, help="images per step (default 2)")
    parser.add_argument("--top", type=int, default=20, help="rows of the breakdown (default 20)")
    args = parser.parse_args()

    train, train_calls, evaluation, eval_calls = count_step(args.batch)
    phases = {}
    for (phase, _, _), launches in train.by_site.items():
        phases[phase] = phases.get(phase, 0) + launches
    by_phase = ", ".join(f"{phase} {n:,}" for phase, n in sorted(phases.items(), key=lambda p: -p[1]))
    print(f"ResNet50_layer4, batch {args.batch}, on the strict CuPy stand-in "
          f"(minires.testing.strict_device)")
    print(f"training step: {train.launches:,} launches ({by_phase}); "
          f"{train.views:,} views, {train.allocs} empty allocations, "
          f"{train.h2d} host-to-device and {train.d2h} device-to-host copies")
    print(table(train, train_calls, args.top))
    print(f"evaluation forward: {evaluation.launches:,} launches; "
          f"{evaluation.h2d} host-to-device and {evaluation.d2h} device-to-host copies")
    print(table(evaluation, eval_calls, min(args.top, 8)))
    print("launches per operation (training step): " + ", ".join(
        f"{op} {n:,}" for op, n in train.by_op.most_common(12)))


if __name__ == "__main__":
    main()
