"""minires.distributed, DistributedDataParallel, SyncBatchNorm and DistributedSampler.

The multi-process tests start MPI themselves: ``mpiexec -n 2`` runs a program of
``tests/mpi_programs/`` in a subprocess with a timeout (a hung collective must fail the test,
never hang the suite), and the test reads what each rank wrote. They skip, saying why, where
mpi4py or mpiexec is missing (``pip install -e ".[mpi]"`` brings both). The single-process
references are computed here, in this process, without MPI.
"""
import importlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy
import pytest

import minires
import minires.functional as F
from minires import distributed as dist
from minires import nn, optim
from minires.data import BatchLoader, DistributedSampler
from tests.support import scripts
from tests.support.cifar_sample import extracted_sample

REPO = scripts.REPO
PROGRAMS = REPO / "tests" / "mpi_programs"
# one BLAS thread per rank (two ranks already fill the two cores of the project's machine), and
# none of the variables of a launcher this pytest might itself run under
ENV = {k: v for k, v in scripts.ENV.items() if not k.startswith(("PMI_", "OMPI_", "MPI_"))}

sys.path.insert(0, str(PROGRAMS))
equivalence = importlib.import_module("equivalence")


# --- running programs under mpiexec --------------------------------------------------------
def mpiexec():
    """The launcher beside this Python (the MPICH wheel installs it there), else on PATH."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        pytest.skip('mpi4py is not installed: pip install -e ".[mpi]" brings it and MPICH')
    beside = Path(sys.executable).parent / "mpiexec"
    found = str(beside) if beside.is_file() else shutil.which("mpiexec")
    if found is None:
        pytest.skip('no mpiexec beside this Python or on PATH: pip install -e ".[mpi]"')
    return found


def run_mpi(*args, n=2, timeout=60):
    """Run ``python *args`` in ``n`` ranks; CompletedProcess. A run past ``timeout`` is ended and fails."""
    command = [mpiexec(), "-n", str(n), sys.executable, *map(str, args)]
    process = subprocess.Popen(command, cwd=REPO, env=ENV, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        end_tree(process)
        stdout, stderr = process.communicate()
        pytest.fail(f"mpiexec ran past {timeout} s (a hang?)\n{stdout}\n{stderr}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def end_tree(process):
    """SIGKILL ``process`` and everything it started (the ranks may sit in a collective)."""
    for pid in descendants(process.pid) + [process.pid]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def descendants(pid):
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def run_ok(*args, **kwargs):
    result = run_mpi(*args, **kwargs)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def ranks(out, n=2):
    """What each rank wrote: a list of dicts, rank 0 first."""
    records = []
    for r in range(n):
        with numpy.load(str(out).replace(".npz", f".rank{r}.npz")) as archive:
            records.append({name: archive[name] for name in archive.files})
    return records


# --- single-process references (this process, no MPI) ----------------------------------------
def single_process(rank_statistics=None, options=False):
    """equivalence.py's three Adam steps at the global batch of 8, in one process.

    With ``rank_statistics=W``, each rank's rows go through the model separately, so batch norm
    uses each rank's own statistics, as W ranks without SyncBatchNorm do; the loss is the mean
    of their losses and the running statistics are rank 0's (DDP broadcasts rank 0's buffers).
    """
    model = equivalence.make_model(sync_bn=False, options=options)
    optimizer = optim.Adam(model.parameters(), lr=equivalence.LR)
    record = {}
    for step, (x, y) in enumerate(equivalence.batches()):
        if rank_statistics is None:
            loss = F.cross_entropy(model(minires.Tensor(x)), y)
        else:
            W = rank_statistics
            start = {key: b.data.copy() for key, b in model.named_buffers()}
            losses = []
            for r in range(W):
                for key, b in model.named_buffers():
                    b.data[...] = start[key]            # every rank starts from rank 0's buffers
                losses.append(F.cross_entropy(model(minires.Tensor(x[r::W])), y[r::W]))
                if r == 0:
                    rank0 = {key: b.data.copy() for key, b in model.named_buffers()}
            for key, b in model.named_buffers():
                b.data[...] = rank0[key]
            loss = sum(losses[1:], losses[0]) * (1.0 / W)
        equivalence.zero_grad(step, optimizer)
        loss.backward()
        record[f"loss_{step}"] = loss.item()
        for name, p in model.named_parameters():
            record[f"grad_{step}/{name}"] = p.grad.copy()
        optimizer.step()
    record.update({f"state/{key}": value.copy() for key, value in model.state_dict().items()})
    return record


def assert_matches(got, expected, rtol=1e-10, prefixes=("loss_", "grad_", "state/")):
    """Every loss, gradient and state array in ``expected`` equals ``got`` to ``rtol`` of its scale."""
    compared = 0
    for key, value in expected.items():
        if key.startswith(prefixes):
            scale = max(numpy.abs(value).max(), 1e-300)
            numpy.testing.assert_allclose(got[key], value, rtol=rtol, atol=rtol * scale, err_msg=key)
            compared += 1
    assert compared > 10


def assert_ranks_equal(records, buffers=True):
    """Every rank ends with the same gradients and parameters (and buffers), bit for bit."""
    for key, value in records[0].items():
        if key.startswith(("grad_", "state/")) and (buffers or not key.endswith(("_mean", "_var"))):
            numpy.testing.assert_array_equal(records[1][key], value, err_msg=key)


# --- process groups without MPI -----------------------------------------------------------------
def run_python(code, **env):
    environment = {**ENV, **env}
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=environment,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.slow
def test_import_minires_does_not_import_mpi4py():
    result = run_python(
        "import sys, minires, minires.data, minires.nn.parallel, minires.distributed as dist\n"
        "loaded = 'mpi4py' in sys.modules\n"
        "dist.init_process_group('mpi')     # no launcher: a world of one, still without MPI\n"
        "print(loaded, 'mpi4py' in sys.modules, dist.get_rank(), dist.get_world_size())")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False", "0", "1"]


@pytest.mark.slow
def test_without_mpi4py_one_process_works_and_a_larger_world_says_what_to_install():
    code = ("import sys; sys.modules['mpi4py'] = None     # as if not installed\n"
            "import minires.distributed as dist\n"
            "try:\n"
            "    dist.init_process_group()\n"
            "    print('world', dist.get_world_size())\n"
            "except RuntimeError as error:\n"
            "    print('error', error)\n")
    assert run_python(code).stdout.strip() == "world 1"
    message = run_python(code, PMI_SIZE="2", PMI_RANK="0").stdout.strip()
    assert message.startswith("error a world of 2 processes needs mpi4py"), message
    assert 'pip install -e ".[mpi]"' in message and message.count(". ") == 0, message


@pytest.fixture
def world_of_one():
    dist.init_process_group()
    yield
    dist.destroy_process_group()


def test_init_twice_and_ranks_before_init_are_refused(world_of_one):
    with pytest.raises(RuntimeError, match="already"):
        dist.init_process_group()
    dist.destroy_process_group()
    with pytest.raises(RuntimeError, match="init_process_group"):
        dist.get_rank()
    dist.init_process_group()


# --- DistributedDataParallel and SyncBatchNorm in two processes --------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("overlap", [False, True], ids=["after-backward", "overlapped"])
def test_two_ranks_with_sync_batchnorm_match_one_process_at_the_global_batch(tmp_path, overlap):
    """2 ranks x batch 4, float64, 3 Adam steps = 1 process x batch 8: loss, gradients, running
    statistics, parameters, to 1e-10; every bucket a slice of the optimizer's flat gradient array."""
    out = tmp_path / "sync.npz"
    run_ok(PROGRAMS / "equivalence.py", out, "--sync-bn", *(["--overlap"] if overlap else []))
    records = ranks(out)
    assert records[0]["buckets"] >= 3
    assert [int(records[0][f"flat_buckets_{s}"]) for s in range(3)] == [records[0]["buckets"]] * 3
    assert_matches(records[0], single_process())
    assert_ranks_equal(records)


@pytest.mark.slow
def test_sync_batchnorm_keeps_batchnorm_options(tmp_path):
    """momentum=None (the average of all batches) in one layer; no weight, bias or running
    statistics (batch statistics in evaluation too) in the other."""
    out = tmp_path / "options.npz"
    run_ok(PROGRAMS / "equivalence.py", out, "--sync-bn", "--options")
    records = ranks(out)
    assert_matches(records[0], single_process(options=True))
    assert_ranks_equal(records)
    assert "state/4.running_mean" not in records[0] and "state/1.running_mean" in records[0]


@pytest.mark.slow
def test_two_ranks_without_sync_batchnorm_differ_only_by_per_rank_statistics(tmp_path):
    out = tmp_path / "plain.npz"
    run_ok(PROGRAMS / "equivalence.py", out)
    records = ranks(out)
    assert_matches(records[0], single_process(rank_statistics=2))      # exactly that difference
    # rank 1's running statistics are its own since the last forward, which began with rank 0's
    assert_ranks_equal(records, buffers=False)
    global_batch = single_process()
    assert abs(records[0]["loss_1"] - global_batch["loss_1"]) > 1e-6     # which is a real one


@pytest.mark.slow
def test_gradients_unused_on_some_ranks_flat_against_packed_and_no_sync(tmp_path):
    out = tmp_path / "semantics.npz"
    run_ok(PROGRAMS / "ddp_semantics.py", out)
    rank0, rank1 = ranks(out)
    assert rank0["flat_buckets"] >= 2 and rank1["flat_buckets"] == 0    # flat on 0, packed on 1
    for name in ("shared.weight", "shared.bias", "rank0_only.weight", "rank0_only.bias"):
        # rank 1 has no gradient for rank0_only: it counts zeros in the mean
        mean = (numpy.nan_to_num(rank0[f"local/{name}"]) + numpy.nan_to_num(rank1[f"local/{name}"])) / 2
        for record in (rank0, rank1):
            numpy.testing.assert_allclose(record[f"first/{name}"], mean, rtol=1e-12, err_msg=name)
            numpy.testing.assert_allclose(record[f"synced/{name}"], 3 * mean, rtol=1e-12, err_msg=name)
    assert numpy.isnan(rank1["local/rank0_only.weight"]).all()
    for record in (rank0, rank1):           # reached on no rank: still None, as in PyTorch
        assert numpy.isnan(record["first/unused.weight"]).all()
        assert numpy.isnan(record["synced/unused.bias"]).all()


@pytest.mark.slow
def test_nccl_path_hands_nccl_device_memory_and_nothing_crosses_to_the_host(tmp_path):
    out = tmp_path / "nccl.npz"
    run_ok(PROGRAMS / "nccl_stand_in.py", out)
    records = ranks(out)
    for rank, record in enumerate(records):
        assert list(record["devices_used"]) == [rank]           # device = local rank
        for step in range(3):
            d2h, h2d, implicit = record[f"counts_{step}"]
            assert (d2h, h2d, implicit) == (0, 0, 0), f"rank {rank} step {step}"
            assert record[f"on_device_{step}"]
            # 2 SyncBatchNorm layers x (forward + backward), 3 buckets; no buffer to broadcast
            assert record[f"nccl_calls_{step}"] == 2 * 2 + 3
    assert_matches(records[0], single_process(), prefixes=("loss_", "state/"))
    for key, value in records[0].items():
        if key.startswith("state/"):
            numpy.testing.assert_array_equal(records[1][key], value, err_msg=key)


@pytest.mark.slow
def test_a_killed_rank_makes_the_other_exit_within_seconds():
    started = time.monotonic()
    result = run_mpi(PROGRAMS / "killed_rank.py", timeout=30)
    assert result.returncode != 0
    assert time.monotonic() - started < 30
    assert "without rank 1" not in result.stdout


# --- in one process --------------------------------------------------------------------------
def test_sampler_deals_every_image_once_and_the_ranks_share_the_single_process_batches():
    N, B = 23, 6
    images = numpy.random.default_rng(0).integers(0, 256, size=(N, 3, 8, 8), dtype=numpy.uint8)
    labels = numpy.arange(N)        # each image's label is its index

    def epoch(sampler=None):
        loader = BatchLoader(images, labels, batch_size=B, shuffle=True, augment=True,
                             rng=numpy.random.default_rng(5), sampler=sampler)
        return [(x, y) for x, y in loader]

    one = epoch()
    for W in (2, 3):
        shards = [epoch(DistributedSampler(num_replicas=W, rank=r)) for r in range(W)]
        seen = numpy.concatenate([y for shard in shards for _, y in shard])
        assert sorted(seen) == list(range(N))                    # every image exactly once
        for b, (x, y) in enumerate(one):
            for r in range(W):
                numpy.testing.assert_array_equal(shards[r][b][1], y[r::W])
                numpy.testing.assert_array_equal(shards[r][b][0], x[r::W])    # same crop and flip


def test_sampler_defaults_to_the_process_group(world_of_one):
    sampler = DistributedSampler()
    assert (sampler.num_replicas, sampler.rank, sampler.rows()) == (1, 0, slice(0, None, 1))
    with pytest.raises(ValueError, match="rank 2"):
        DistributedSampler(num_replicas=2, rank=2)


def test_convert_sync_batchnorm_shares_parameters_and_is_batchnorm_in_one_process(world_of_one, rng):
    model = equivalence.make_model(sync_bn=False)
    reference = equivalence.make_model(sync_bn=False)
    bn = model[1]
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert converted is model and isinstance(model[1], nn.SyncBatchNorm)
    assert model[1].weight is bn.weight and model[1].running_var is bn.running_var
    assert list(model.state_dict()) == list(reference.state_dict())
    x = minires.Tensor(rng.standard_normal((4, 3, 8, 8)))
    numpy.testing.assert_array_equal(model(x).data, reference(x).data)
    for key, value in reference.state_dict().items():
        numpy.testing.assert_array_equal(model.state_dict()[key], value, err_msg=key)
    assert repr(model[1]).startswith("SyncBatchNorm(4")


class OneOfTwo(nn.Module):
    def __init__(self):
        super().__init__()
        self.used = nn.Linear(in_features=2, out_features=2)
        self.idle = nn.Linear(in_features=2, out_features=2)

    def forward(self, x):
        return self.used(x)


def test_ddp_leaves_none_the_gradient_of_a_parameter_backward_did_not_reach(world_of_one):
    model = OneOfTwo()
    ddp = nn.parallel.DistributedDataParallel(model)
    optimizer = optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
    optimizer.zero_grad()
    ddp(minires.Tensor(numpy.ones((1, 2), dtype=numpy.float32))).sum().backward()
    assert model.used.weight.grad is not None and model.idle.weight.grad is None
    idle = model.idle.weight.data.copy()
    optimizer.step()
    numpy.testing.assert_array_equal(model.idle.weight.data, idle)    # skipped, as in PyTorch


def test_ddp_refuses_a_forward_whose_backward_never_came(world_of_one):
    model = nn.parallel.DistributedDataParallel(nn.Linear(in_features=2, out_features=2))
    x = minires.Tensor(numpy.ones((1, 2), dtype=numpy.float32))
    model(x)
    with pytest.raises(RuntimeError, match="not followed by its backward"):
        model(x)


def test_ddp_needs_a_process_group():
    with pytest.raises(RuntimeError, match="init_process_group"):
        nn.parallel.DistributedDataParallel(nn.Linear(in_features=2, out_features=2))


@pytest.mark.slow
def test_buckets_run_from_the_last_parameter_to_the_first(world_of_one):
    model = minires.models.ResNet50_layer4()
    ddp = nn.parallel.DistributedDataParallel(model)
    order = [i for bucket in ddp._buckets for i in reversed(bucket.indices)]
    assert order == list(reversed(range(len(list(model.parameters())))))
    megabytes = [sum(p.numel() * 4 for p in bucket.params) / 2 ** 20 for bucket in ddp._buckets]
    largest = max(p.numel() * 4 for p in model.parameters()) / 2 ** 20
    assert 1 <= megabytes[0] < 1 + largest          # the first is small: communication starts early
    assert all(25 <= size < 25 + largest for size in megabytes[1:-1]) and len(megabytes) >= 3


def test_post_accumulate_grad_hook_sees_each_gradient_once_it_is_added():
    w = nn.Parameter(numpy.array([1.0, 2.0]))
    seen = []
    w.register_post_accumulate_grad_hook(lambda tensor: seen.append(tensor.grad.copy()))
    ((w * w).sum() + w.sum()).backward()      # w reaches the loss along three edges
    assert len(seen) == 3
    numpy.testing.assert_array_equal(seen[-1], 2 * w.data + 1)


# --- the training script under mpiexec (slow: each run builds and trains ResNet50_layer4) -------
SCRIPT = scripts.SCRIPT
# Four steps of 8 real images, --lr 0. Why no learning: the float32 backward of ResNet50_layer4 at
# initialisation, on batches this small, is ill-conditioned (measured: one process in float32 differs
# from itself in float64 by 2 % of the gradients' scale, median over the parameters, up to 20 %), and
# Adam's first steps, about lr * sign(g), turn any change of summation order into other weights.
# With the weights fixed, each step's loss is a function of that step's images alone, so equal
# course lines show that every step saw the same images with the same crops and flips, and the
# checkpoints compare the running statistics and Adam's moments. The float64 tests above show the
# update itself to 1e-10.
COMMON = ("--limit-train", 32, "--limit-test", 16, "--batch-size", 8, "--log-every", 1, "--lr", 0,
          "--sync-batchnorm")
STEP_LINE = re.compile(r"^Epoch \[(\d+)/(\d+)\], Step \[(\d+)/(\d+)\] Loss: (\d+\.\d{4})$")
ACCURACY = "Accuracy of the model on the test images:"


@pytest.fixture(scope="module")
def cifar_sample(tmp_path_factory):
    return extracted_sample(tmp_path_factory)


def train(processes, folder, *flags, timeout=180):
    """The script in ``processes`` ranks (plain python for 1), as a user runs it; CompletedProcess."""
    flags = (*flags, "--checkpoint-dir", folder)
    if processes == 1:
        return scripts.run_script(*flags, check=True, timeout=timeout)
    return run_ok(SCRIPT, *flags, n=processes, timeout=timeout)


@pytest.fixture(scope="module")
def epoch_runs(cifar_sample, tmp_path_factory):
    """One epoch in 1 process and in 2; then each continued for a second epoch at the other size."""
    mpiexec()
    base = tmp_path_factory.mktemp("runs")
    flags = (*COMMON, "--data-dir", cifar_sample)
    return {"one": train(1, base / "one", *flags), "two": train(2, base / "two", *flags),
            "one_then_two": train(2, base / "one_then_two", *flags, "--epochs", 2,
                                  "--resume", base / "one" / "last.npz"),
            "two_then_one": train(1, base / "two_then_one", *flags, "--epochs", 2,
                                  "--resume", base / "two" / "last.npz"),
            "folder": base}


def course_lines(stdout):
    """(epoch, epochs, step, steps, loss) of every step line, and the accuracy line."""
    lines = stdout.splitlines()
    steps = [tuple(map(float, m.groups())) for m in map(STEP_LINE.match, lines) if m]
    return steps, [line for line in lines if line.startswith(ACCURACY)]


def assert_same_course_lines(stdout_a, stdout_b):
    steps_a, accuracy_a = course_lines(stdout_a)
    steps_b, accuracy_b = course_lines(stdout_b)
    assert [s[:4] for s in steps_a] == [s[:4] for s in steps_b] and steps_a
    # the fourth decimal may round the other way: the two sum in different orders
    numpy.testing.assert_allclose([s[4] for s in steps_a], [s[4] for s in steps_b], atol=2e-4)
    assert accuracy_a == accuracy_b and len(accuracy_a) == 1


def assert_same_checkpoint(path_a, path_b):
    arrays, meta = {}, {}
    for path in (path_a, path_b):
        with numpy.load(path, allow_pickle=False) as archive:
            arrays[path] = {name: archive[name] for name in archive.files}
        meta[path] = json.loads(str(arrays[path].pop("meta")))
    a, b = arrays[path_a], arrays[path_b]
    for field in ("epoch", "step", "rng_state", "optimizer", "scheduler"):
        assert meta[path_a].get(field) == meta[path_b].get(field), field
    assert sorted(a) == sorted(b)
    for key, value in a.items():
        scale = max(numpy.abs(value).max(), 1e-30)
        if "running_" in key:       # from the forward pass: float32 rounding
            numpy.testing.assert_allclose(b[key], value, rtol=0, atol=1e-4 * scale, err_msg=key)
        elif key.startswith("optimizer/"):      # from the backward pass: see COMMON
            numpy.testing.assert_allclose(b[key], value, rtol=0, atol=0.1 * scale, err_msg=key)
        else:
            numpy.testing.assert_array_equal(b[key], value, err_msg=key)


@pytest.mark.slow
def test_script_on_two_processes_prints_one_process_course_lines_once(epoch_runs):
    one, two = epoch_runs["one"].stdout, epoch_runs["two"].stdout
    assert_same_course_lines(one, two)
    assert two.count("Training ResNet50_layer4") == 1 and "2 processes" in two
    assert len(course_lines(two)[0]) == 4
    records = [json.loads(line) for line in
               (epoch_runs["folder"] / "two" / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 4 + 1        # 4 logged steps and the epoch, written once


@pytest.mark.slow
def test_script_on_two_processes_writes_one_process_checkpoints(epoch_runs):
    folder = epoch_runs["folder"]
    for name in ("last.npz", "resnet50_final.npz"):
        assert_same_checkpoint(folder / "one" / name, folder / "two" / name)


@pytest.mark.slow
def test_script_checkpoints_resume_at_the_other_number_of_processes(epoch_runs):
    folder = epoch_runs["folder"]
    assert_same_course_lines(epoch_runs["one_then_two"].stdout, epoch_runs["two_then_one"].stdout)
    assert_same_checkpoint(folder / "one_then_two" / "last.npz", folder / "two_then_one" / "last.npz")
    assert len(course_lines(epoch_runs["two_then_one"].stdout)[0]) == 4      # epoch 2's steps


@pytest.mark.slow
def test_script_sigterm_on_mpiexec_stops_every_rank_and_rank_0_saves(cifar_sample, tmp_path):
    folder = tmp_path / "stopped"
    command = [mpiexec(), "-n", 2, sys.executable, SCRIPT, *COMMON, "--limit-train", 64,
               "--data-dir", cifar_sample, "--checkpoint-dir", folder]
    process = subprocess.Popen(list(map(str, command)), cwd=REPO, env=ENV, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        lines = []
        while not any(STEP_LINE.match(line) for line in lines):
            lines.append(process.stdout.readline().rstrip("\n"))
            assert lines[-1] or process.poll() is None, "\n".join(lines) + process.stderr.read()
        process.send_signal(signal.SIGTERM)         # to the launcher, as Ctrl-C or a scheduler does
        stdout, stderr = process.communicate(timeout=30)
    finally:
        end_tree(process)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert stdout.count("SIGTERM: saved") == 1, stdout
    resumed = train(1, tmp_path / "resumed", *COMMON, "--limit-train", 64,
                    "--data-dir", cifar_sample, "--resume", folder / "interrupted.npz")
    steps = [int(s[2]) for s in course_lines(resumed.stdout)[0]]
    assert steps and steps[-1] == 8 and steps[0] > 1        # the rest of the epoch, in 1 process


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["raise", "kill"])
def test_script_stops_every_rank_when_one_raises_or_dies(cifar_sample, tmp_path, fault):
    flags = [*COMMON, "--limit-train", 64, "--data-dir", cifar_sample, "--checkpoint-dir", tmp_path]
    started = time.monotonic()
    result = run_mpi(SCRIPT, *flags, ":", "-n", 1, sys.executable,
                     PROGRAMS / "failing_rank.py", fault, *flags, n=1, timeout=60)
    assert result.returncode != 0
    assert time.monotonic() - started < 60
    if fault == "raise":
        assert "error: process 1 stopped on RuntimeError; ending all 2 processes" in result.stderr


@pytest.mark.slow
def test_script_refuses_a_world_that_does_not_divide_the_batch(cifar_sample, tmp_path):
    result = run_mpi(SCRIPT, "--batch-size", 7, "--data-dir", cifar_sample,
                     "--checkpoint-dir", tmp_path, timeout=60)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: --batch-size 7 is the global batch and must split evenly among "
                      "the 2 processes: pass a multiple of 2"]
