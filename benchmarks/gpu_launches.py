"""Kernels per training step of ResNet50_layer4, counted on the GPU itself with CUPTI.

    python benchmarks/gpu_launches.py                    # batch 100, fusion as MINIRES_FUSION says
    MINIRES_FUSION=0 python benchmarks/gpu_launches.py   # unfused

CuPy has no hook that sees its launches (they leave from compiled code), so this script asks
the GPU: PyTorch's profiler (torch built with CUDA, needed for the profiler only: minires does
not use torch) switches on CUPTI's activity tracing, which records every kernel, copy and
memset the GPU runs, whichever library in the process launched it.

How exact: exact for the step measured. One training step (forward, cross entropy, backward,
Adam) after a warm-up step, and one evaluation forward, each with the device synchronised
before and after, and every kernel that ran in between counted once: CuPy's element-wise,
reduction and indexing kernels, the fused ones, cuBLAS's matrix multiplies (one or more
kernels each). Copies and memsets are counted apart. Before counting, the script checks the
method on one CuPy multiply, which must be exactly one kernel. Beside the GPU's count it prints
``benchmarks/count_ops.py``'s on the strict stand-in (one per CuPy call, a lower bound): the
difference is the calls that run more than one kernel.
"""
import argparse
import collections
import json
import os
import sys
import tempfile

import numpy

import minires
from minires import backend
from minires.models import ResNet50_layer4

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..", "examples")]
from count_ops import count_step  # noqa: E402
from train_cifar import predict, train_step  # noqa: E402

KINDS = {"kernel": "kernels", "gpu_memcpy": "copies", "gpu_memset": "memsets"}   # trace category -> name


def kernels_in(trace):
    """{"kernels", "copies", "memsets"}: the GPU's work in a Chrome trace of torch.profiler."""
    counts = collections.Counter(KINDS.get(event.get("cat", "").lower())
                                 for event in trace["traceEvents"] if event.get("ph") == "X")
    return {name: counts[name] for name in KINDS.values()}


def on_the_gpu(work):
    """What the GPU ran for ``work()``, as ``kernels_in`` counts it (CUPTI, via torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile
    backend.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as profiler:
        work()
        backend.synchronize()
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "trace.json")
        profiler.export_chrome_trace(path)
        with open(path) as file:
            return kernels_in(json.load(file))


def torch_problem():
    """Why torch.profiler cannot trace the GPU here, as one sentence, or None."""
    try:
        import torch
    except ImportError:
        return "PyTorch is not installed, and its profiler is what reads CUPTI's count"
    if not torch.cuda.is_available():
        return f"PyTorch {torch.__version__} has no usable CUDA, so its profiler cannot read CUPTI's count"
    return None


def count_on_the_gpu(batch):
    """The GPU's counts of a training step and of an evaluation forward, and of the probe."""
    xp = backend.get_array_module()
    probe = xp.arange(1024, dtype=xp.float32)

    def multiply():
        return probe * 2.0

    multiply()                                  # compiled before it is counted
    probed = on_the_gpu(multiply)

    minires.manual_seed(0)
    model = ResNet50_layer4()
    optimizer = minires.optim.Adam(model.parameters(), lr=1e-3)
    rng = numpy.random.default_rng(0)
    x = backend.to_device(rng.standard_normal((batch, 3, 32, 32), dtype=numpy.float32))
    y = backend.to_device(rng.integers(0, 10, size=batch))

    def training():
        model.train()
        train_step(model, optimizer, x, y)

    training()                                  # warm-up: kernels compiled, memory pooled
    train = on_the_gpu(training)
    predict(model, x)
    evaluation = on_the_gpu(lambda: predict(model, x))
    return probed, train, evaluation


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=100, help="images per step (default 100)")
    args = parser.parse_args()
    problem = backend.cupy_problem() or torch_problem()
    if problem is not None:
        print(f"gpu_launches: {problem}.", file=sys.stderr)
        sys.exit(2)
    backend.set_backend("cupy")
    probed, train, evaluation = count_on_the_gpu(args.batch)
    if probed != {"kernels": 1, "copies": 0, "memsets": 0}:
        print(f"gpu_launches: CUPTI saw {probed} for one CuPy multiply, not one kernel, so its count "
              "cannot be trusted here.", file=sys.stderr)
        sys.exit(1)
    stand_in_train, _, stand_in_evaluation, _ = count_step(2)
    print(f"ResNet50_layer4, batch {args.batch}, fusion {'on' if backend.fusion_enabled() else 'off'}: "
          "what the GPU ran (CUPTI), and the operations counted on the strict stand-in")
    print("| counted | training step | evaluation forward |")
    print("|---|---:|---:|")
    print(f"| kernels on the GPU | {train['kernels']:,} | {evaluation['kernels']:,} |")
    print(f"| copies / memsets on the GPU | {train['copies']} / {train['memsets']} | "
          f"{evaluation['copies']} / {evaluation['memsets']} |")
    print(f"| operations on the stand-in (count_ops.py) | {stand_in_train.launches:,} | "
          f"{stand_in_evaluation.launches:,} |")


if __name__ == "__main__":
    main()
