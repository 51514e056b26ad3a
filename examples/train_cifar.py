"""Train and evaluate the course's ResNet50_layer4 on CIFAR-10, as the course's main.py does.

    python examples/train_cifar.py                       # 1 epoch on the CPU (NumPy)
    python examples/train_cifar.py --backend cupy        # on a GPU
    python examples/train_cifar.py --resume resnet50_epoch285.ckpt   # the course's experiment
    python examples/train_cifar.py --help

The recipe (see the course notes): Adam, lr 1e-3 divided by 3 every 20 epochs,
batches of 100, random crop (4-pixel zero padding) and horizontal flip, the
course's normalisation. It prints the course's lines,

    Epoch [1/1], Step [100/500] Loss: 0.2818             (running mean over the epoch)
    Accuracy of the model on the test images: 82.27 %

and writes, in --checkpoint-dir, a resumable ``last.npz`` at every epoch end, the
course's ``resnet50_epoch{N}`` every 20 epochs and ``resnet50_final`` at the end
(each as a minires ``.npz`` and as a PyTorch ``.ckpt`` state dict), and
``metrics.jsonl`` (one JSON object per logged step and per epoch, for
``examples/plot_metrics.py``) and ``train.log`` (the lines it prints).
Ctrl-C or SIGTERM saves ``interrupted.npz`` and exits; ``--resume`` it to go on.

On several processes (data parallelism over MPI: ``pip install -e ".[mpi]"``):

    mpiexec -n 2 python examples/train_cifar.py --sync-batchnorm         # 2 processes on the CPU
    mpiexec -n 4 python examples/train_cifar.py --backend cupy --sync-batchnorm   # 4 GPUs

``--batch-size`` stays the global batch: each process trains on its share of every
batch, and the gradients are averaged over the processes in backward. Only rank 0
prints, logs and saves; with ``--sync-batchnorm`` the processes compute the step one
process computes at that batch, so the checkpoints are a single process's (up to
float rounding) and resume at any number of processes.

The course's training step and evaluation come first (``train_step``,
``evaluate``); the benchmarks run the same functions. Everything after them is
what makes a long run safe: resuming, signals, divergence, progress, checkpoints.
"""
import argparse
import contextlib
import glob
import json
import os
import resource
import signal
import sys
import time
from pathlib import Path

import numpy

import minires
import minires.functional as F
from minires import backend, distributed, optim
from minires.atomic_file import remove_leftovers
from minires.checkpoint import is_checkpoint, load_checkpoint, nonfinite_keys, require_finite, save_checkpoint
from minires.data import (
    CIFAR10_MD5,
    CIFAR10_URL,
    BatchLoader,
    DatasetError,
    DistributedSampler,
    DownloadError,
    load_cifar10,
    parse_md5,
)
from minires.models import ResNet50_layer4
from minires.nn import SyncBatchNorm
from minires.nn.parallel import DistributedDataParallel
from minires.torch_format import load_torch_state_dict, save_torch_state_dict

REPO = Path(__file__).resolve().parents[1]
EXIT_USAGE, EXIT_NOT_FINITE = 2, 3
# The files a run writes in --checkpoint-dir, as globs (each also as a .ckpt where it has one).
CHECKPOINT_NAMES = ("last.npz", "interrupted.npz", "resnet50_epoch*.npz", "resnet50_epoch*.ckpt",
                    "resnet50_final.npz", "resnet50_final.ckpt")
# The integer flags and their least values (a seed of numpy.random must be 0 or more).
INTEGER_FLAGS = {"epochs": 1, "batch_size": 1, "lr_step": 1, "seed": 0, "limit_train": 1,
                 "limit_test": 1, "log_every": 1}


# --- the course's step ---------------------------------------------------------------
def train_step(model, optimizer, images, labels):
    """One step of the course's training loop; returns the loss Tensor (still on the device).

    images: (N, 3, 32, 32) float array or Tensor; labels: (N,) integer class indices.
    The model must be in training mode (``model.train()``).
    """
    loss = F.cross_entropy(model(minires.Tensor(images)), labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


def predict(model, images):
    """Logits (N, 10) of a batch in evaluation mode, with no graph recorded."""
    model.eval()
    with minires.no_grad():
        return model(minires.Tensor(images))


def evaluate(model, batches):
    """Test accuracy in percent over (images, labels) batches; correct answers are counted
    on the device and read once. With several processes, each brings its share of the test set."""
    correct, total = 0, 0
    for x, y in batches:
        correct = correct + (predict(model, x).data.argmax(axis=1) == y).sum()
        total += len(y)
    counts = numpy.array([float(backend.to_host(correct)), total])
    if distributed.is_initialized():
        distributed.all_reduce(counts)      # summed over the processes (none to add in one)
    return 100.0 * counts[0] / counts[1]


# --- the command line ----------------------------------------------------------------


class OneSentenceParser(argparse.ArgumentParser):
    """argparse, with a bad command line reported as one ``error:`` line (exit 2), like every failure."""

    def error(self, message):
        fail(f"{message} (see --help)")


def parse_args(argv=None):
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    parser = OneSentenceParser(
        description="Train ResNet50_layer4 on CIFAR-10 with minires (the course's recipe).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--backend", choices=backend.BACKENDS, default="numpy",
                        help="numpy runs on the CPU; cupy on an NVIDIA GPU (pip install -e \".[cuda]\")")
    parser.add_argument("--epochs", type=int, default=1,
                        help="the epoch to train up to, counting a resumed checkpoint's epochs "
                             "(--resume of a 3-epoch run with --epochs 5 trains 2 more)")
    parser.add_argument("--batch-size", type=int, default=100, help="images per training step")
    parser.add_argument("--lr", type=float, default=0.001, help="Adam learning rate")
    parser.add_argument("--lr-step", type=int, default=20, help="divide the lr every this many epochs")
    parser.add_argument("--lr-factor", type=float, default=3.0, help="... by this factor")
    parser.add_argument("--seed", type=int, default=0, help="seeds initialisation, order and augmentation")
    parser.add_argument("--data-dir", type=Path, default=REPO / "data",
                        help="where CIFAR-10 is, or is downloaded to")
    parser.add_argument("--data-url", default=CIFAR10_URL,
                        help="a mirror of cifar-10-binary.tar.gz, or file:///path/to/it")
    parser.add_argument("--data-md5", type=parse_md5, default=CIFAR10_MD5,
                        help="the archive's md5 (32 hex digits), or 'none' to accept an archive "
                             "whose md5 differs from the official one")
    parser.add_argument("--resume", type=Path,
                        help="a minires checkpoint (.npz) to continue, "
                             "or a PyTorch state dict (.ckpt) to start from")
    parser.add_argument("--checkpoint-dir", type=Path, default=REPO / "checkpoints",
                        help="where last.npz, the course's checkpoints, metrics.jsonl and "
                             "train.log are written")
    parser.add_argument("--eval-only", action="store_true",
                        help="only measure the test accuracy of the --resume checkpoint")
    parser.add_argument("--limit-train", type=int, help="use only the first N training images")
    parser.add_argument("--limit-test", type=int, help="use only the first N test images")
    parser.add_argument("--log-every", type=int, default=100, help="steps between loss lines")
    parser.add_argument("--identity-shortcut", action="store_true",
                        help="textbook residual blocks (skip the projection where shapes match)")
    parser.add_argument("--tf32", action="store_true",
                        help="cupy only: let float32 matrix multiplies use TF32 tensor cores")
    parser.add_argument("--sync-batchnorm", action="store_true",
                        help="under mpiexec: batch norm over the global batch, the step of one "
                             "process (without it, each process normalises its own share)")
    args = parser.parse_args(argv)
    # the flags the user typed (not defaults): only those are worth a note when not applied
    args.typed = sorted({a.split("=")[0] for a in argv if a.startswith("--")})
    # every integer flag's range, so that none reaches the library as a traceback
    for name, least in INTEGER_FLAGS.items():
        if getattr(args, name) is not None and getattr(args, name) < least:
            parser.error(f"--{name.replace('_', '-')} must be at least {least}, got "
                         f"{getattr(args, name)}")
    if not 0 <= args.lr < float("inf"):
        parser.error(f"--lr must be a finite number, 0 or more, got {args.lr}")
    if not 0 < args.lr_factor < float("inf"):
        parser.error(f"--lr-factor must be a finite number more than 0, got {args.lr_factor}")
    if args.tf32 and args.backend != "cupy":
        parser.error("--tf32 is a GPU matrix-multiply mode: it needs --backend cupy")
    if args.eval_only and args.resume is None:
        parser.error("--eval-only needs --resume CHECKPOINT (without one it would evaluate "
                     "a randomly initialised model)")
    for flag, folder in (("--data-dir", args.data_dir), ("--checkpoint-dir", args.checkpoint_dir)):
        if folder.exists() and not folder.is_dir():
            parser.error(f"{flag} {folder} is a file, not a folder")
    return args


def fail(message, status=EXIT_USAGE, alone=False):
    """Print ``error: message`` and exit with ``status``.

    Under mpiexec every process meets most failures together (a bad command line, a
    checkpoint that does not fit): rank 0 says it once and all exit. A failure of one
    process ``alone`` (a save, a nan in its own loss) ends the others too, through an
    MPI abort: they would otherwise wait for it in their next collective for ever.
    """
    rank = distributed.get_rank() if distributed.is_initialized() else distributed.launched_rank()
    if rank == 0 or alone:
        print(f"error: {message}", file=sys.stderr, flush=True)
    if alone and distributed.is_initialized() and distributed.get_world_size() > 1:
        distributed.abort(status)
    sys.exit(status)


def join_processes(args):
    """Join the other processes of an mpiexec launch (a world of one without it); the world size.

    Before the backend: with --backend cupy, each process must pick its GPU first.
    """
    try:
        distributed.init_process_group("nccl" if args.backend == "cupy" else "mpi")
    except RuntimeError as error:
        fail(str(error))
    world = distributed.get_world_size()
    if world > 1:
        if args.batch_size % world:
            fail(f"--batch-size {args.batch_size} is the global batch and must split evenly "
                 f"among the {world} processes: pass a multiple of {world}")
        sys.excepthook = stop_every_process
    return world


def stop_every_process(kind, value, traceback):
    """An exception on one process: say so, show it, end them all (they would wait for this one)."""
    print(f"error: process {distributed.get_rank()} stopped on {kind.__name__}; ending all "
          f"{distributed.get_world_size()} processes (MPI abort)", file=sys.stderr, flush=True)
    sys.__excepthook__(kind, value, traceback)
    distributed.abort(1)


def select_backend(args):
    if args.backend == "cupy":
        if args.tf32:
            os.environ["CUPY_TF32"] = "1"   # read by CuPy when it starts
        problem = backend.cupy_problem()
        if problem is not None:
            fail(problem)
    backend.set_backend(args.backend)


def load_data(args):
    """The training and test images; under mpiexec, rank 0 downloads first, then the others read."""
    first = distributed.get_rank() == 0
    if not first:
        distributed.barrier()
    try:
        data = load_cifar10(args.data_dir, url=args.data_url, md5=args.data_md5)
    except (DownloadError, DatasetError) as error:
        fail(str(error), alone=True)
    if first:
        distributed.barrier()
    train = data["train_images"][:args.limit_train], data["train_labels"][:args.limit_train]
    test = data["test_images"][:args.limit_test], data["test_labels"][:args.limit_test]
    world = distributed.get_world_size()
    if len(train[1]) % args.batch_size % world:
        fail(f"the last batch of {len(train[1]) % args.batch_size} images would not split evenly "
             f"among the {world} processes: pass a --limit-train whose remainder by the batch "
             f"size is a multiple of {world}")
    return train, test


class Run:
    """The state of one training run: model, optimizer, schedule, data order, progress."""

    def __init__(self, args):
        self.args = args
        self.rank, self.world = distributed.get_rank(), distributed.get_world_size()
        minires.manual_seed(args.seed)
        self.model = ResNet50_layer4(identity_shortcut=args.identity_shortcut)
        if args.sync_batchnorm:
            SyncBatchNorm.convert_sync_batchnorm(self.model)
        self.optimizer = optim.Adam(self.model.parameters(), lr=args.lr)
        # what trains and evaluates: the model, or under mpiexec a DistributedDataParallel
        # around it (gradients averaged in backward); checkpoints hold the model's own keys
        self.trained = self.model if self.world == 1 else DistributedDataParallel(self.model)
        self.scheduler = optim.StepLR(self.optimizer, step_size=args.lr_step,
                                      gamma=1 / args.lr_factor)
        self.rng = numpy.random.default_rng([args.seed, 1])    # data order and augmentation
        self.epoch, self.skip_steps = 0, 0
        self.skipped_loss = (0.0, 0)      # loss sum and step count of the steps before an interruption
        self.stop_signal = None
        self.in_training_loop = False   # while True, a stop signal waits for the step's end
        self.saving = False             # while True, a stop signal waits for the file to be complete
        self.saved_epoch = None         # the epoch in last.npz, once this run has written it
        self.stopped_after_save = None  # the file whose save a stop signal waited for
        # every record of metrics.jsonl names its run, so repeated and resumed runs plot apart
        self.run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.urandom(2).hex()}"
        folder = args.checkpoint_dir
        earlier = [name for name in ("last.npz", "metrics.jsonl") if (folder / name).exists()]
        self.metrics = self.transcript = None       # rank 0 alone writes them
        try:
            if self.rank == 0:
                folder.mkdir(parents=True, exist_ok=True)
                # a run killed while writing left its temporary files: this run's files' go now
                for name in CHECKPOINT_NAMES:
                    remove_leftovers(glob.escape(str(folder)) + "/" + name)
                self.metrics = open(folder / "metrics.jsonl", "a")
                self.transcript = open(folder / "train.log", "a")
        except OSError as error:
            fail(f"--checkpoint-dir {folder}: cannot write there ({error.strerror})", alone=True)
        if earlier and not args.eval_only:
            self.say(f"note: {folder} holds {' and '.join(earlier)} of an earlier run: this run "
                     f"overwrites its checkpoints and adds its records as run {self.run_id}")

    def resume(self, path, steps_per_epoch):
        """Continue from ``path``: a minires checkpoint of this script, or PyTorch weights.

        ``steps_per_epoch`` is what this run's data makes of an epoch: a checkpoint that
        stopped mid-epoch is checked against it, with its progress, before it is used.
        """
        try:
            if is_checkpoint(path):
                meta = load_checkpoint(path, self.model, self.optimizer, self.scheduler)
                self.epoch, self.skip_steps = meta["epoch"], meta["step"]
                if self.skip_steps:
                    self._check_same_batches(meta["settings"])
                    self.skipped_loss = self._checked_progress(meta, steps_per_epoch)
                if "rng_state" in meta:
                    self.rng.bit_generator.state = meta["rng_state"]
                where = (f"in epoch {self.epoch + 1}, after step {self.skip_steps}" if self.skip_steps
                         else f"after epoch {self.epoch}")
                self.say(f"Resumed {path} {where}")
                self._note_kept_schedule(meta["settings"])
                self._keep_epochs(meta["settings"])
            else:
                state = load_torch_state_dict(path)
                require_finite(state, path)
                self.model.load_state_dict(state)
                fresh = "" if self.args.eval_only else "; a fresh Adam starts at epoch 1"
                self.say(f"Loaded PyTorch weights from {path}{fresh}")
        except (ValueError, RuntimeError, OSError) as error:
            reason = str(self._other_shortcut(path) or error)
            # the library's messages start with the file's name: said once, after --resume
            fail(f"--resume {path}: {reason.removeprefix(f'{path}: ').removeprefix(f'{path} ')}")
        if self.epoch >= self.args.epochs and not self.args.eval_only and \
                "resnet50_final" not in owed_course_checkpoints(self):
            fail(f"--resume {path} has trained {self.epoch} epoch(s) already and --epochs "
                 f"{self.args.epochs} counts them, so nothing is left to train: pass --epochs "
                 f"{self.epoch + 1} or more (or --eval-only to evaluate it)")

    def _other_shortcut(self, path):
        """If the checkpoint fits the model with the other --identity-shortcut setting, say so."""
        other = ResNet50_layer4(identity_shortcut=not self.args.identity_shortcut)
        try:
            if is_checkpoint(path):
                load_checkpoint(path, other)
            else:
                other.load_state_dict(load_torch_state_dict(path))
        except (ValueError, RuntimeError, OSError):
            return None
        return (f"it was trained {'without' if self.args.identity_shortcut else 'with'} "
                f"--identity-shortcut; resume it with the same setting")

    def _note_kept_schedule(self, saved):
        """Say so when a typed --lr, --lr-step or --lr-factor differs from the run being resumed."""
        ignored = [f"--{name.replace('_', '-')} {getattr(self.args, name):g}"
                   for name in ("lr", "lr_step", "lr_factor")
                   if f"--{name.replace('_', '-')}" in self.args.typed
                   and name in saved and saved[name] != getattr(self.args, name)]
        if ignored:
            self.say(f"note: {', '.join(ignored)} not applied: a resumed run keeps its own schedule "
                     f"(lr now {self.optimizer.lr:g}, divided by {1 / self.scheduler.gamma:g} every "
                     f"{self.scheduler.step_size} epochs)")

    def _keep_epochs(self, saved):
        """Without a typed --epochs, a resumed run trains up to its own (a stopped run goes on)."""
        epochs = saved.get("epochs")
        if "--epochs" not in self.args.typed and type(epochs) is int and epochs >= 1:
            self.args.epochs = epochs

    def _checked_progress(self, meta, steps_per_epoch):
        """The (loss sum, steps) of the epoch a mid-epoch checkpoint stopped in, checked against
        this run's epoch (load_checkpoint checks the fields' types; only the script knows these)."""
        step = meta["step"]
        if step > steps_per_epoch:
            raise ValueError(f"it stopped after step {step} of an epoch, but an epoch of this "
                             f"data has {steps_per_epoch} steps (a checkpoint of other data?)")
        if "progress" not in meta:      # checkpoints from before progress was saved
            return (0.0, 0)
        loss = meta["progress"].get("loss")
        if not (isinstance(loss, list) and len(loss) == 2 and type(loss[0]) in (int, float)
                and numpy.isfinite(loss[0]) and loss[1] == step and type(loss[1]) is int):
            raise ValueError(f"its progress loss is {loss!r}, not [the finite loss sum, {step}] "
                             f"of the {step} steps it stopped after")
        return tuple(loss)

    def _check_same_batches(self, saved):
        """Mid-epoch, the resumed run must cut the epoch into the same batches to skip the done ones."""
        for name in ("batch_size", "limit_train", "seed"):
            if name in saved and saved[name] != getattr(self.args, name):
                flag = f"--{name.replace('_', '-')}"
                then = f"with {flag} {saved[name]}" if saved[name] is not None else f"without {flag}"
                now = f"{flag} {getattr(self.args, name)}" if getattr(self.args, name) is not None \
                    else f"no {flag}"
                raise ValueError(f"it stopped mid-epoch {then}; resume with the same setting "
                                 f"(now {now})")

    def say(self, line, bar=None):
        """Print a line (without breaking the progress bar) and add it to train.log; rank 0 only."""
        if self.rank != 0:
            return
        if bar is None:
            print(line, flush=True)
        else:
            bar.write(line)
        self._append(self.transcript, line)

    def log(self, global_step, record):
        """Append one record to metrics.jsonl, stamped with the run id, the time and the global step."""
        stamped = {"run": self.run_id, "time": time.time(), "global_step": global_step, **record}
        self._append(self.metrics, json.dumps(stamped))

    def _append(self, file, line):
        """A line for metrics.jsonl or train.log; a full disk there warns once and training goes on."""
        if file is None or file.closed:
            return
        try:
            file.write(line + "\n")
            file.flush()
        except OSError as error:
            with contextlib.suppress(OSError):      # closing flushes the rest, which fails too
                file.close()
            print(f"warning: cannot write {file.name} ({error.strerror}); training goes on "
                  "without it", file=sys.stderr, flush=True)

    def save(self, name, step=0, rng_state=None, torch_copy=False, loss=None):
        """Write ``name``.npz (and ``name``.ckpt for PyTorch) in the checkpoint folder.

        A stop signal during the save waits for it to finish (the handler sees ``saving``);
        a save that fails (a full disk, a folder in the way) stops the run with one sentence.
        Every process checks the weights (they are the same everywhere); rank 0 writes.
        """
        folder = self.args.checkpoint_dir
        bad = nonfinite_keys(self.model.state_dict())
        if bad:     # e.g. a huge lr: the loss may still read finite while weights overflowed
            stop_diverged(self, None, f"the weights became nan or inf ({len(bad)} arrays, the "
                                      f"first {bad[0]}) in epoch {self.epoch + (1 if step else 0)}")
        settings = {key: str(value) if isinstance(value, Path) else value
                    for key, value in vars(self.args).items() if key != "typed"}
        self.saving = True
        try:
            if self.rank == 0:
                save_checkpoint(folder / f"{name}.npz", self.model, self.optimizer, self.scheduler,
                                epoch=self.epoch, step=step, settings=settings,
                                rng_state=rng_state or self.rng.bit_generator.state,
                                progress={"loss": loss} if loss is not None else None)
                if torch_copy:
                    save_torch_state_dict({key: backend.to_host(value)
                                           for key, value in self.model.state_dict().items()},
                                          folder / f"{name}.ckpt")
        except OSError as error:
            fail(f"could not save {name} in {folder} ({error.strerror or error}): "
                 f"{self.last_good()}", alone=True)
        finally:
            self.saving = False
        if name == "last":
            self.saved_epoch = self.epoch
        if self.stop_signal is not None and not self.in_training_loop:
            self.stopped_after_save = name
            raise KeyboardInterrupt     # the stop that arrived during the save

    def last_good(self):
        """Which checkpoint a user can go on from, in words."""
        if self.saved_epoch is not None:
            return (f"the last good checkpoint is {self.args.checkpoint_dir / 'last.npz'} "
                    f"(epoch {self.saved_epoch})")
        if self.args.resume is not None:
            return f"the checkpoint it resumed, {self.args.resume}, is unchanged"
        return "no epoch had finished, so there is no checkpoint"


def progress_bar(total, description, done=0):
    """A tqdm bar of images with images/s on a terminal; None (plain lines only) otherwise or
    without tqdm. ``done`` images count as done already (a resumed epoch's skipped batches)."""
    if not sys.stdout.isatty() or (distributed.is_initialized() and distributed.get_rank() != 0):
        return None
    try:
        from tqdm import tqdm
    except ImportError:     # installed without the [train] extra: plain lines still work
        return None
    return tqdm(total=total, initial=done, desc=description, unit="img", leave=False,
                dynamic_ncols=True)


def with_progress(loader, description):
    """The loader's batches, counted on a progress bar (evaluation has one too)."""
    bar = progress_bar(len(loader.labels), description)
    for x, y in loader:
        yield x, y
        if bar is not None:
            bar.update(len(y))
    if bar is not None:
        bar.close()


def stop_diverged(run, bar, what, alone=False):
    """Exit with status 3: ``what`` (the loss or the weights) went nan or infinite; the last good
    checkpoint stays. ``alone``: this process's own loss, not one all processes share."""
    if bar is not None:
        bar.close()
    message = f"{what}; stopped: {run.last_good()}. Try a lower --lr."
    run._append(run.transcript, f"error: {message}")
    fail(message, EXIT_NOT_FINITE, alone)


def mean_over_processes(value):
    """The mean over the processes of a number each holds (the number itself in one); one host read."""
    total = numpy.array([float(backend.to_host(value))])
    distributed.all_reduce(total)
    return total[0] / distributed.get_world_size()


def stop_agreed(run):
    """Whether a stop signal has reached any process: all must stop after the same step."""
    if run.world == 1:
        return run.stop_signal is not None
    number = numpy.array([signal.Signals[run.stop_signal] if run.stop_signal else 0])
    distributed.all_reduce(number, op=distributed.ReduceOp.MAX)     # one number, over MPI
    if number[0]:
        run.stop_signal = signal.Signals(number[0]).name
    return bool(number[0])


def train_epoch(run, loader):
    """One epoch of training; returns the epoch's mean loss and the number of images trained on.

    One device-to-host read per log line, none per step.
    """
    args, model, optimizer = run.args, run.trained, run.optimizer
    epoch_start_rng = run.rng.bit_generator.state      # an interrupted epoch replays from here
    steps = len(loader)
    skipped_images = min(run.skip_steps * args.batch_size, len(loader.labels))
    bar = progress_bar(len(loader.labels), f"epoch {run.epoch + 1}/{args.epochs}", skipped_images)
    model.train()
    loss_sum, counted = run.skipped_loss if run.skip_steps else (0.0, 0)
    mean_loss = float("nan")
    trained_images = 0
    for step, (x, y) in enumerate(loader, start=1):
        if step <= run.skip_steps:      # resuming mid-epoch: same draws, no training
            continue
        try:
            loss = train_step(model, optimizer, x, y)
        except FloatingPointError as error:     # the NumPy backend refuses a nan loss at once
            stop_diverged(run, bar, f"the loss became {error.value} in epoch {run.epoch + 1} "
                                    f"by step {step}", alone=True)
        loss_sum = loss_sum + loss.data     # stays on the device: no synchronisation
        counted += 1
        images = min(args.batch_size, len(loader.labels) - (step - 1) * args.batch_size)
        trained_images += images            # the global batch (this process trained len(y))
        if bar is not None:
            bar.update(images)
        if step % args.log_every == 0 or step == steps:     # the epoch's last step always
            mean_loss = mean_over_processes(loss_sum) / counted
            if not numpy.isfinite(mean_loss):
                stop_diverged(run, bar, f"the loss became {mean_loss} in epoch {run.epoch + 1} "
                                        f"by step {step}")
            run.say(f"Epoch [{run.epoch + 1}/{args.epochs}], Step [{step}/{steps}] "
                    f"Loss: {mean_loss:.4f}", bar)
            run.log(run.epoch * steps + step,
                    {"epoch": run.epoch + 1, "step": step, "loss": mean_loss})
        if stop_agreed(run):
            if bar is not None:
                bar.close()
            run.save("interrupted", step=step, rng_state=epoch_start_rng,
                     loss=(mean_over_processes(loss_sum), counted))
            run.say(f"\n{run.stop_signal}: saved {args.checkpoint_dir / 'interrupted.npz'} "
                    f"(epoch {run.epoch + 1}, step {step}); continue with --resume "
                    f"{args.checkpoint_dir / 'interrupted.npz'}")
            sys.exit(128 + signal.Signals[run.stop_signal])
    if bar is not None:
        bar.close()
    run.skip_steps = 0
    if counted:     # also right for an epoch resumed after its last step, which trains nothing
        mean_loss = mean_over_processes(loss_sum) / counted
    return mean_loss, trained_images


def main(argv=None):
    args = parse_args(argv)
    # a process-wide allocator setting, so the script's to make, not the library's: freed
    # activations stay in the process instead of being page-faulted back in every step
    # (measured: 0.72 -> 0.57 s per step at batch 100 on the project's 2-core machine)
    minires.speed.keep_freed_host_memory()
    if args.resume and not args.resume.is_file():
        fail(f"--resume {args.resume}: "
             f"{'is a folder, not a checkpoint file' if args.resume.is_dir() else 'no such file'}")
    world = join_processes(args)
    select_backend(args)
    (train_images, train_labels), (test_images, test_labels) = load_data(args)
    run = Run(args)
    if args.resume:
        run.resume(args.resume, -(-len(train_labels) // args.batch_size))
    # under mpiexec each process evaluates its share of the test set, and trains on its
    # share of every batch that one process would draw (same order, same augmentation)
    share = slice(run.rank, None, world)
    test_loader = BatchLoader(test_images[share], test_labels[share], batch_size=args.batch_size)
    if args.eval_only:
        accuracy = evaluate(run.trained, with_progress(test_loader, "evaluating"))
        run.say(f"Accuracy of the model on the test images: {accuracy:.2f} %")
        return
    train_loader = BatchLoader(train_images, train_labels, batch_size=args.batch_size,
                               shuffle=True, augment=True, rng=run.rng,
                               sampler=DistributedSampler() if world > 1 else None)

    def request_stop(signal_number, frame):
        run.stop_signal = signal.Signals(signal_number).name
        if not (run.in_training_loop or run.saving):   # nothing half done (evaluating): stop now
            raise KeyboardInterrupt
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        train(run, train_loader, test_loader)
    except KeyboardInterrupt:
        signal_name = run.stop_signal or "SIGINT"
        if run.stopped_after_save is None:
            run.say(f"\n{signal_name}: stopped between training steps; {run.last_good()}")
        else:
            left = (f"continue with --resume {args.checkpoint_dir / 'last.npz'}"
                    if run.epoch < args.epochs else f"all {args.epochs} epochs are done")
            run.say(f"\n{signal_name}: stopped once {run.stopped_after_save} was saved, after epoch "
                    f"{run.epoch} of {args.epochs}: {run.last_good()}; {left}")
        if world > 1:       # the others may be inside a collective, waiting for this one
            distributed.abort(128 + signal.Signals[signal_name])
        sys.exit(128 + signal.Signals[signal_name])


def owed_course_checkpoints(run):
    """The course checkpoints that the epoch end of the folder's own last.npz owed and that are
    not on disk: a run killed after last.npz and before resnet50_epoch{N} (or resnet50_final)
    never wrote them. Empty unless this run resumes that last.npz, at that epoch end."""
    args, epoch, folder = run.args, run.epoch, run.args.checkpoint_dir
    own = args.resume is not None and args.resume.resolve() == (folder / "last.npz").resolve()
    if not own or run.skip_steps or not epoch:
        return []
    names = ([f"resnet50_epoch{epoch}"] if epoch % args.lr_step == 0 else []) + \
        (["resnet50_final"] if epoch >= args.epochs else [])
    return [name for name in names
            if not ((folder / f"{name}.npz").is_file() and (folder / f"{name}.ckpt").is_file())]


def write_owed_course_checkpoint(run):
    """Write the resnet50_epoch{N} that the resumed epoch end owed (resnet50_final comes at the end)."""
    for name in owed_course_checkpoints(run):
        if name != "resnet50_final":
            run.save(name, torch_copy=True)
            run.say(f"Saved {run.args.checkpoint_dir / name}.npz and .ckpt, which the interrupted "
                    f"run owed at the end of epoch {run.epoch}")


def train(run, train_loader, test_loader):
    """The epochs of the run, then the final checkpoint and the course's accuracy line."""
    args = run.args

    processes = f", {run.world} processes" if run.world > 1 else ""
    run.say(f"Training ResNet50_layer4 on {len(train_loader.labels):,} images for {args.epochs} "
            f"epoch(s), backend {args.backend}, batch {args.batch_size}{processes}, "
            f"lr {run.optimizer.lr:g}")
    write_owed_course_checkpoint(run)
    epoch_at_start = run.epoch
    # run.resume made sure one epoch at least is left, or that resnet50_final is owed
    while run.epoch < args.epochs:
        started = time.perf_counter()
        run.in_training_loop = True
        try:
            with numpy.errstate(over="ignore", invalid="ignore"):    # divergence is reported
                train_loss, trained_images = train_epoch(run, train_loader)
        finally:
            run.in_training_loop = False
        train_seconds = time.perf_counter() - started
        lr = run.optimizer.lr                  # the lr this epoch trained with
        run.epoch += 1
        run.scheduler.step()
        run.save("last")                       # before evaluating: a stop then loses nothing
        if run.epoch % args.lr_step == 0:
            run.save(f"resnet50_epoch{run.epoch}", torch_copy=True)
        accuracy = evaluate(run.trained, with_progress(test_loader, "evaluating"))
        speed = trained_images / train_seconds
        run.say(f"Epoch {run.epoch}/{args.epochs}: train loss {train_loss:.4f}, test accuracy "
                f"{accuracy:.2f} %, {train_seconds:.1f} s ({speed:.1f} images/s)")
        run.log(run.epoch * len(train_loader),
                {"epoch": run.epoch, "train_loss": train_loss, "test_accuracy": accuracy,
                 "lr": lr, "seconds": train_seconds, "images_per_second": speed})
    owed_final = run.epoch == epoch_at_start     # resumed only for the resnet50_final it owed
    if owed_final:
        accuracy = evaluate(run.trained, with_progress(test_loader, "evaluating"))
    run.save("resnet50_final", torch_copy=True)
    if owed_final:
        run.say(f"Saved {args.checkpoint_dir / 'resnet50_final'}.npz and .ckpt, which the "
                f"interrupted run owed at the end of epoch {run.epoch}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    run.say(f"Peak resident memory: {peak_mb:.0f} MB; checkpoints in {args.checkpoint_dir}")
    run.say(f"Accuracy of the model on the test images: {accuracy:.2f} %")


if __name__ == "__main__":
    main()
