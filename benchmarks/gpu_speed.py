"""Training and evaluation speed of ResNet50_layer4 on the active backend, in images/s.

    python benchmarks/gpu_speed.py                       # CuPy on the GPU, batches 100 and 256
    python benchmarks/gpu_speed.py --tf32                # let float32 matmuls use TF32
    python benchmarks/gpu_speed.py --backend numpy       # the same measurement on the CPU
    MINIRES_FUSION=0 python benchmarks/gpu_speed.py      # every fused function unfused

For users with a GPU (no machine of the project has one): please report the
printed table. Each figure is the median of several timed rounds after a
warm-up, with the device synchronised before every clock read.
"""
import argparse
import os
import statistics
import sys
import time

import numpy

import minires
from minires import backend
from minires.models import ResNet50_layer4

# the course's step and evaluation forward, exactly as the training script runs them
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
from train_cifar import predict, train_step  # noqa: E402


def measure(step, batch, rounds, steps):
    step()                                   # warm-up: memory pool, cuBLAS handles
    backend.synchronize()
    seconds = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        backend.synchronize()
        seconds.append((time.perf_counter() - start) / steps)
    return batch / statistics.median(seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=backend.BACKENDS, default="cupy")
    parser.add_argument("--batches", type=int, nargs="+", default=[100, 256])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10, help="steps per timed round")
    parser.add_argument("--tf32", action="store_true")
    args = parser.parse_args()
    if args.tf32:
        os.environ["CUPY_TF32"] = "1"
    if args.backend == "cupy" and backend.cupy_problem() is not None:
        print(f"gpu_speed: {backend.cupy_problem()}.", file=sys.stderr)
        sys.exit(2)
    backend.set_backend(args.backend)

    minires.manual_seed(0)
    model = ResNet50_layer4()
    optimizer = minires.optim.Adam(model.parameters(), lr=1e-3)
    print(f"backend {args.backend}, tf32 {'on' if args.tf32 else 'off'}, "
          f"fusion {'on' if backend.fusion_enabled() else 'off'}")
    print("| batch | training images/s | evaluation images/s |")
    print("|---:|---:|---:|")
    for batch in args.batches:
        rng = numpy.random.default_rng(0)
        x = minires.Tensor(rng.standard_normal((batch, 3, 32, 32), dtype=numpy.float32))
        y = backend.to_device(rng.integers(0, 10, size=batch))

        def training(x=x, y=y):
            model.train()
            train_step(model, optimizer, x, y)

        train = measure(training, batch, args.rounds, args.steps)
        evaluate = measure(lambda x=x: predict(model, x), batch, args.rounds, args.steps)
        print(f"| {batch} | {train:,.1f} | {evaluate:,.1f} |", flush=True)


if __name__ == "__main__":
    main()
