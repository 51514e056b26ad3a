"""Training images/s of ResNet50_layer4 on one machine's cores: PyTorch, minires, minires on MPI.

    python benchmarks/distributed_speed.py                 # the README table (batches 100 and 256)
    python benchmarks/distributed_speed.py --quick         # one short round, to check that it runs
    python benchmarks/distributed_speed.py --variants      # also DDP's design choices (see below)

Each configuration is a worker process (for MPI, ``mpiexec -n 2`` of them) started once per
batch size with its thread count fixed before NumPy or PyTorch load; then, round after round,
each worker in turn trains ``--steps`` steps and reports its time, so the drift of a shared
machine hits every configuration alike. Each figure is the median over the rounds.

    torch 2t        PyTorch, one process, 2 threads
    minires 2t      minires, one process, 2 threads
    minires 1t      minires, one process, 1 thread (pinned to core 0): the base of the efficiency
    ddp 2x1t        minires, mpiexec -n 2, 1 thread each (rank r pinned to core r), SyncBatchNorm,
                    global batch B (B/2 per rank): the same step as one process at batch B
    ddp 2x1t plain bn   the same with BatchNorm2d: each rank normalises with its B/2 images

scaling efficiency = ddp / (2 x minires 1t). With ``--variants``: one process, 1 thread, at
batch B/2 (what each rank computes: the part of the efficiency lost to the smaller batch alone),
DDP with its buckets sent during backward (overlap; with SyncBatchNorm and without), and DDP
with its buckets packed into arrays of their own and unpacked (the alternative to reducing slices
of the optimizer's flat gradient array in place). ``--configs`` runs only the named ones.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

CONFIGS = {     # name: (framework, threads per process, processes, DDP options, batch divisor)
    "torch 2t": ("torch", 2, 1, "", 1),
    "minires 2t": ("minires", 2, 1, "", 1),
    "minires 1t": ("minires", 1, 1, "", 1),
    "ddp 2x1t": ("minires", 1, 2, "sync", 1),
    "ddp 2x1t plain bn": ("minires", 1, 2, "", 1),
}
VARIANTS = {
    "minires 1t half": ("minires", 1, 1, "", 2),
    "ddp overlap": ("minires", 1, 2, "sync,overlap", 1),
    "ddp overlap plain bn": ("minires", 1, 2, "overlap", 1),
    "ddp packed": ("minires", 1, 2, "sync,packed", 1),
}


# --- the worker: one configuration, driven through stdin -------------------------------------
def worker(args):
    """Build the model, then for each line "STEPS" on stdin train that many steps, print seconds."""
    sys.path.insert(0, HERE)
    import numpy
    rank, world, comm = 0, 1, None
    if args.processes > 1:
        from mpi4py import MPI
        comm = MPI.COMM_WORLD
        rank, world = comm.Get_rank(), comm.Get_size()
    if args.threads == 1:
        os.sched_setaffinity(0, {rank % os.cpu_count()})
    if args.framework == "torch":
        import torch
        torch.set_num_threads(args.threads)
        import speed_vs_torch
        runner = speed_vs_torch.TorchRunner(args.batch)
    else:
        runner = minires_runner(args, rank, world)
    runner.train_step()                 # warm-up: allocations, BLAS threads
    while True:
        steps = numpy.array([int(sys.stdin.readline() or 0) if rank == 0 else 0])
        if comm is not None:
            # the other ranks hear the driver through rank 0; they wait asleep, since MPI
            # spins on its core while it waits, which would slow the worker being measured
            request = comm.Ibcast(steps, root=0)
            while not request.Test():
                time.sleep(0.01)
            comm.Barrier()
        if steps[0] == 0:
            break
        start = time.perf_counter()
        for _ in range(steps[0]):
            runner.train_step()
        if comm is not None:
            comm.Barrier()
        if rank == 0:
            print((time.perf_counter() - start) / steps[0], flush=True)


def minires_runner(args, rank, world):
    import speed_vs_torch

    import minires
    minires.speed.keep_freed_host_memory()      # as the training script does
    runner = speed_vs_torch.MiniresRunner(args.batch)
    if args.processes == 1:
        return runner
    from minires import distributed as dist
    from minires import nn, optim
    options = args.ddp.split(",")
    dist.init_process_group("mpi")
    model = runner.model
    if "sync" in options:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    runner.model = nn.parallel.DistributedDataParallel(model, overlap="overlap" in options)
    runner.optimizer = optim.Adam(runner.model.parameters(), lr=1e-3)
    runner.x, runner.y = runner.x[rank::world], runner.y[rank::world]
    if "packed" in options:
        zero_grad = runner.model.module.zero_grad        # gradients to None: DDP packs its buckets
        runner.optimizer.zero_grad = zero_grad
    return runner


# --- the driver ----------------------------------------------------------------------------
def start(config, batch):
    framework, threads, processes, ddp, divisor = config
    env = {**os.environ, **{variable: str(threads) for variable in THREAD_VARIABLES},
           "PYTHONPATH": os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, os.path.abspath(__file__), "--worker", framework,
               "--threads", str(threads), "--batch", str(batch // divisor),
               "--processes", str(processes), "--ddp", ddp]
    if processes > 1:
        command = [mpiexec(), "-n", str(processes)] + command
    return subprocess.Popen(command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, cwd=REPO)


def mpiexec():
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return beside if os.path.isfile(beside) else "mpiexec"


def ask(process, steps):
    process.stdin.write(f"{steps}\n")
    process.stdin.flush()
    return float(process.stdout.readline())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round of 2 steps, batch 100")
    parser.add_argument("--variants", action="store_true", help="also DDP's alternatives")
    parser.add_argument("--configs", nargs="+", help="only these configurations (names as printed)")
    parser.add_argument("--batches", type=int, nargs="+", default=[100, 256])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=4, help="training steps per timed round")
    parser.add_argument("--worker", choices=("torch", "minires"), help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--processes", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--ddp", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.framework = args.worker
        return worker(args)
    if args.quick:
        args.batches, args.rounds, args.steps = [100], 1, 2
    configs = {**CONFIGS, **(VARIANTS if args.variants else {})}
    if args.configs:
        configs = {name: config for name, config in {**CONFIGS, **VARIANTS}.items()
                   if name in args.configs}
    print(f"{os.cpu_count()} cores; {args.rounds} rounds of {args.steps} steps per configuration; "
          "median images/s", flush=True)
    table = {}
    for batch in args.batches:
        workers = {name: start(config, batch) for name, config in configs.items()}
        seconds = {name: [] for name in configs}
        try:
            for _ in range(args.rounds):
                for name, process in workers.items():
                    seconds[name].append(ask(process, args.steps))
        finally:
            for process in workers.values():
                process.stdin.write("0\n")
                process.stdin.close()
                process.wait()
        table[batch] = {name: batch / configs[name][4] / statistics.median(s)
                        for name, s in seconds.items()}
        print(f"batch {batch}: " + ", ".join(f"{name} {speed:.1f}" for name, speed in
                                             table[batch].items()), flush=True)
    if all(name in configs for name in CONFIGS):
        print_table(table)
    if args.variants:
        print("\n| global batch | " + " | ".join(VARIANTS) + " |")
        print("|---:|" + "---:|" * len(VARIANTS))
        for batch, speed in table.items():
            print(f"| {batch} | " + " | ".join(f"{speed[name]:.1f}" for name in VARIANTS) + " |")


def print_table(table):
    print("\n| global batch | PyTorch, 2 threads | minires, 1 process, 2 threads | minires, 1 process, "
          "1 thread | minires, mpiexec -n 2, 1 thread each: SyncBatchNorm (efficiency) | "
          "... BatchNorm2d per rank (efficiency) | best minires / PyTorch |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for batch, speed in table.items():
        sync, plain = speed["ddp 2x1t"], speed["ddp 2x1t plain bn"]
        efficiency = [100 * ddp / (2 * speed["minires 1t"]) for ddp in (sync, plain)]
        best = max(speed["minires 2t"], sync, plain)
        print(f"| {batch} | {speed['torch 2t']:.1f} | {speed['minires 2t']:.1f} | "
              f"{speed['minires 1t']:.1f} | {sync:.1f} ({efficiency[0]:.0f} %) | "
              f"{plain:.1f} ({efficiency[1]:.0f} %) | {best / speed['torch 2t']:.2f} |")


if __name__ == "__main__":
    main()
