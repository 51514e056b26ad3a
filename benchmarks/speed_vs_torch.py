"""minires (NumPy backend) against PyTorch (CPU) on ResNet50_layer4, float32, in one sitting.

    python benchmarks/speed_vs_torch.py                 # the README table
    python benchmarks/speed_vs_torch.py --quick         # fewer repeats, for a smoke run

Both frameworks run in this process with the same thread count, alternating
round by round, so the drift of a shared machine hits both alike; each figure
is the median over the rounds. Peak resident memory is measured for each in a
process of its own (a short training run at batch 100). It also measures the
machine's float32 matrix-multiply rate (NumPy's BLAS on 2048 x 2048) and
minires's training FLOP rate as a share of it. torch is only the yardstick
here: minires never imports it.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy

import minires
from minires.models import ResNet50_layer4

# the course's step and evaluation forward, exactly as the training script runs them
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
from train_cifar import predict, train_step  # noqa: E402


def forward_macs_per_image(model):
    """Multiply-adds of one forward pass of one 3x32x32 image (convolutions and linear layers)."""
    macs = []

    def count(module, inputs, output):
        if isinstance(module, minires.nn.Conv2d):
            _, OC, OH, OW = output.shape
            KH, KW = module.kernel_size
            macs.append(OC * OH * OW * module.in_channels * KH * KW)
        else:
            macs.append(module.in_features * module.out_features)

    layers = [m for m in model.modules() if isinstance(m, (minires.nn.Conv2d, minires.nn.Linear))]
    handles = [m.register_forward_hook(count) for m in layers]
    with minires.no_grad():
        model.eval()(minires.Tensor(numpy.zeros((1, 3, 32, 32), dtype=numpy.float32)))
    model.train()
    for handle in handles:
        handle.remove()
    return sum(macs)


def matmul_gflops(size=2048, repeats=5):
    a = numpy.random.default_rng(0).standard_normal((size, size), dtype=numpy.float32)
    a @ a
    start = time.perf_counter()
    for _ in range(repeats):
        a @ a
    return 2 * size ** 3 * repeats / (time.perf_counter() - start) / 1e9


class MiniresRunner:
    name = "minires"

    def __init__(self, batch):
        minires.manual_seed(0)
        self.model = ResNet50_layer4()
        self.optimizer = minires.optim.Adam(self.model.parameters(), lr=1e-3)
        rng = numpy.random.default_rng(0)
        self.x = rng.standard_normal((batch, 3, 32, 32), dtype=numpy.float32)
        self.y = rng.integers(0, 10, size=batch)

    def train_step(self):
        self.model.train()
        train_step(self.model, self.optimizer, self.x, self.y)

    def eval_step(self):
        predict(self.model, self.x)


class TorchRunner:
    name = "torch"

    def __init__(self, batch):
        import torch

        from minires.testing import torch_reference  # the course network in PyTorch
        torch.manual_seed(0)
        self.torch = torch
        self.model = torch_reference.ResNet50_layer4()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        rng = numpy.random.default_rng(0)
        self.x = torch.from_numpy(rng.standard_normal((batch, 3, 32, 32), dtype=numpy.float32))
        self.y = torch.from_numpy(rng.integers(0, 10, size=batch))

    def train_step(self):
        self.model.train()
        loss = self.torch.nn.functional.cross_entropy(self.model(self.x), self.y)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()

    def eval_step(self):
        self.model.eval()
        with self.torch.no_grad():
            self.model(self.x)


def images_per_second(runners, task, batch, rounds, steps):
    """Median images/s of each runner, alternating runners every round."""
    times = {runner.name: [] for runner in runners}
    for runner in runners:
        getattr(runner, task)()                   # warm up: allocations, BLAS threads
    for _ in range(rounds):
        for runner in runners:
            start = time.perf_counter()
            for _ in range(steps):
                getattr(runner, task)()
            times[runner.name].append((time.perf_counter() - start) / steps)
    return {name: batch / statistics.median(seconds) for name, seconds in times.items()}


def peak_resident_mb():
    """This process's peak resident memory (VmHWM), in MB.

    Not getrusage's ru_maxrss: Linux carries that across fork and exec, so a
    child started from a large parent would report the parent's peak.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (not Linux?)")


def peak_memory_mb(framework, steps=3):
    """Peak resident memory (MB) of a fresh process training ``steps`` steps at batch 100."""
    runner = "MiniresRunner" if framework == "minires" else "TorchRunner"
    code = (f"import sys; sys.path[:0] = [{os.path.dirname(os.path.abspath(__file__))!r}]; "
            f"import minires, speed_vs_torch as b; minires.speed.keep_freed_host_memory(); "
            f"r = b.{runner}(100); "
            f"[r.train_step() for _ in range({steps})]; print(b.peak_resident_mb())")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(output.stdout.split()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and batch sizes")
    args = parser.parse_args()
    import torch
    # freed activations stay in the process rather than page-faulting back every step
    # (0.72 -> 0.57 s per training step at batch 100 here); the training script does the same
    minires.speed.keep_freed_host_memory()
    threads = os.cpu_count()        # NumPy's BLAS and minires.speed.blockwise use every core
    torch.set_num_threads(threads)
    rounds = 2 if args.quick else 5

    gflop_per_image = 3 * 2 * forward_macs_per_image(ResNet50_layer4()) / 1e9
    machine = matmul_gflops()
    print(f"threads {threads}, torch {torch.__version__}, numpy {numpy.__version__}; "
          f"float32 matmul {machine:.0f} GFLOP/s; training {gflop_per_image:.3f} GFLOP/image\n")

    rows = []
    batches = (2, 100) if args.quick else (1, 2, 10, 100, 256)
    for batch in batches:
        runners = [MiniresRunner(batch), TorchRunner(batch)]
        for task in ("train_step", "eval_step"):
            if task == "train_step" and batch < 2:
                continue        # batch norm needs two values per channel to train
            steps = max(1, min(20, 200 // batch))
            speed = images_per_second(runners, task, batch, rounds, steps)
            rows.append((task.replace("_step", ""), batch, speed["minires"], speed["torch"]))
            print(f"  {rows[-1][0]:<6} batch {batch:>3}: minires {speed['minires']:8.1f} img/s, "
                  f"torch {speed['torch']:8.1f} img/s", flush=True)
        del runners
    memory = {name: peak_memory_mb(name) for name in ("minires", "torch")}

    print("\n| measure | batch | minires | PyTorch | minires / PyTorch |")
    print("|---|---:|---:|---:|---:|")
    for task, batch, mine, theirs in rows:
        print(f"| {task} images/s | {batch} | {mine:,.1f} | {theirs:,.1f} | {mine / theirs:.2f} |")
    print(f"| peak memory, training (MB) | 100 | {memory['minires']:,.0f} | {memory['torch']:,.0f} "
          f"| {memory['minires'] / memory['torch']:.2f} |")
    for task, batch, mine, theirs in rows:
        if task == "train" and batch == 100:
            print(f"| training GFLOP/s (share of {machine:.0f} matmul) | 100 | "
                  f"{mine * gflop_per_image:.0f} ({100 * mine * gflop_per_image / machine:.0f}%) | "
                  f"{theirs * gflop_per_image:.0f} ({100 * theirs * gflop_per_image / machine:.0f}%) | |")


if __name__ == "__main__":
    main()
