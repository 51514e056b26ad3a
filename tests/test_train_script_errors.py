"""examples/train_cifar.py when things go wrong: every failure is exit 2 (3 for a diverged run)
and one sentence, never a traceback, and nothing already saved is lost.

Runs train ResNet50_layer4 on a synthetic CIFAR-10 folder of 20 training images (4 per record
file), 2 steps of 10 an epoch. The script runs as a subprocess, as a user runs it; where a test
needs a failure that a command line cannot cause (a full disk during a save, a signal during a
save), a short program loads the script and replaces one function before calling its main().
"""
import json
import signal
from pathlib import Path

import numpy
import pytest

import minires
from minires.checkpoint import save_checkpoint
from minires.models import ResNet50_layer4
from tests.support.cifar_files import write_cifar_folder
from tests.support.scripts import REPO, run_script

pytestmark = pytest.mark.slow


def assert_one_sentence(result, status=2):
    """Exit ``status``, exactly one line on stderr, and it is an ``error:`` line."""
    assert result.returncode == status, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def checkpoint_arrays(path):
    with numpy.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    return arrays, json.loads(str(arrays.pop("meta")))


@pytest.fixture(scope="module")
def common(tmp_path_factory):
    data_dir = write_cifar_folder(tmp_path_factory.mktemp("data"), records_per_file=4)
    return ["--data-dir", data_dir, "--batch-size", 10, "--limit-test", 4, "--seed", 3]


@pytest.fixture(scope="module")
def one_epoch(common, tmp_path_factory):
    """A finished one-epoch run at --lr 0.01; its folder holds last.npz."""
    folder = tmp_path_factory.mktemp("one_epoch")
    result = run_script(*common, "--lr", 0.01, "--checkpoint-dir", folder)
    assert result.returncode == 0, result.stderr
    return folder


@pytest.fixture(scope="module")
def nan_checkpoint(tmp_path_factory):
    minires.manual_seed(0)
    model = ResNet50_layer4()
    optimizer = minires.optim.Adam(model.parameters())
    scheduler = minires.optim.StepLR(optimizer, step_size=20)
    model.fc.weight.data[0, 0] = numpy.nan
    path = tmp_path_factory.mktemp("nan") / "nan.npz"
    save_checkpoint(path, model, optimizer, scheduler, epoch=1, check_finite=False)
    return path


def bad_invocations(common, one_epoch, nan_checkpoint, folder):
    """(flags, a phrase the sentence must contain) for command lines that must fail in one sentence."""
    last = one_epoch / "last.npz"
    flipped = folder / "flipped.npz"
    data = bytearray(last.read_bytes())
    data[len(data) // 2] ^= 0xFF
    folder.mkdir(exist_ok=True)
    flipped.write_bytes(bytes(data))
    empty = folder / "empty-data"       # no CIFAR-10 here: the URL is used
    return [
        (["--data-dir", empty, "--data-url", "not-a-url"], "not-a-url"),
        (["--data-dir", empty, "--data-url", "ftp://example.org/c.tar.gz"], "ftp"),
        (["--data-dir", empty, "--data-url", "http://[::1/c.tar.gz"], "http://[::1"),
        (["--data-dir", empty, "--data-url", "http://127.0.0.1:70000/c.tar.gz"], "70000"),
        (["--data-dir", empty, "--data-url", f"file://{folder / 'missing.tar.gz'}"],
         "missing.tar.gz"),
        (["--data-md5", "xyz"], "--data-md5"),
        (["--resume", flipped, "--epochs", 2], "flipped.npz"),
        (["--data-dir", REPO / "README.md"], "is a file"),
        (["--eval-only"], "--eval-only needs --resume"),
        (["--tf32"], "--backend cupy"),
        (["--batch-size", "ten"], "--batch-size"),
        (["--no-such-flag"], "--no-such-flag"),
        (["--resume", last, "--epochs", 1], "nothing is left to train"),
        (["--resume", last, "--epochs", 2, "--identity-shortcut"], "without --identity-shortcut"),
        (["--resume", nan_checkpoint, "--epochs", 2], "nan or inf"),
        (["--resume", REPO / "README.md"], "README.md"),
    ]


def test_bad_command_lines_are_one_sentence_each(common, one_epoch, nan_checkpoint, tmp_path):
    cases = bad_invocations(common, one_epoch, nan_checkpoint, tmp_path)
    for flags, phrase in cases:
        result = run_script(*common, *flags, "--checkpoint-dir", tmp_path / "run")
        line = assert_one_sentence(result)
        assert phrase in line, (flags, line)
        if "--resume" in flags:     # named once, after the flag
            assert line.count(str(flags[flags.index("--resume") + 1])) == 1, line
    assert not (tmp_path / "run" / "last.npz").exists()      # none of them trained


def test_resume_notes_only_the_flags_that_were_typed(common, one_epoch, tmp_path):
    """The run was trained at --lr 0.01; resumed without --lr, the default 0.001 is no news."""
    result = run_script(*common, "--epochs", 2, "--resume", one_epoch / "last.npz",
                        "--checkpoint-dir", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "not applied" not in result.stdout
    assert f"Resumed {one_epoch / 'last.npz'} after epoch 1" in result.stdout
    typed = run_script(*common, "--epochs", 2, "--lr", 0.5, "--resume", one_epoch / "last.npz",
                       "--checkpoint-dir", tmp_path / "typed")
    assert "--lr 0.5 not applied" in typed.stdout


def test_a_fresh_run_into_a_used_folder_says_what_it_overwrites(common, one_epoch, tmp_path):
    folder = tmp_path / "reused"
    folder.mkdir()
    (folder / "last.npz").write_bytes((one_epoch / "last.npz").read_bytes())
    result = run_script(*common, "--checkpoint-dir", folder)
    assert result.returncode == 0, result.stderr
    assert f"note: {folder} holds last.npz" in result.stdout and "overwrites" in result.stdout


def test_huge_lr_never_saves_non_finite_weights(common, tmp_path):
    """--lr 1e39 overflows the weights; the run stops with status 3 and saves no inf checkpoint."""
    result = run_script(*common, "--lr", "1e39", "--epochs", 2, "--checkpoint-dir", tmp_path)
    line = assert_one_sentence(result, status=3)
    assert "nan or inf" in line or "loss became" in line, line
    for path in tmp_path.glob("*.npz"):
        arrays, _ = checkpoint_arrays(path)
        assert all(numpy.isfinite(a).all() for a in arrays.values() if a.dtype.kind == "f"), path


def test_a_full_disk_for_metrics_and_log_warns_and_training_goes_on(common, tmp_path):
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full to simulate a full disk")
    (tmp_path / "metrics.jsonl").symlink_to("/dev/full")
    (tmp_path / "train.log").symlink_to("/dev/full")
    result = run_script(*common, "--checkpoint-dir", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "warning: cannot write" in result.stderr and "Traceback" not in result.stderr
    assert (tmp_path / "resnet50_final.npz").is_file()


def with_save_replaced(replacement):
    """A program that loads the script, replaces its save_checkpoint by ``replacement`` (the
    source of a function ``save(real_save, path, *args, **kwargs)``), and runs its main()."""
    return f"""
import errno, os, signal, sys, importlib.util
spec = importlib.util.spec_from_file_location("train_cifar", sys.argv[1])
script = importlib.util.module_from_spec(spec)
spec.loader.exec_module(script)
real_save = script.save_checkpoint
{replacement}
script.save_checkpoint = lambda *args, **kwargs: save(real_save, *args, **kwargs)
script.main(sys.argv[2:])
"""


FULL_DISK_AT_SECOND_SAVE = with_save_replaced("""
saves = []

def save(real_save, path, *args, **kwargs):
    saves.append(path)
    if len(saves) == 2:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    real_save(path, *args, **kwargs)
""")


def test_a_full_disk_during_a_save_names_the_last_good_checkpoint(common, tmp_path):
    """Epoch 1's last.npz is saved; epoch 2's save meets a full disk: exit 2, one sentence."""
    result = run_script(*common, "--epochs", 2, "--checkpoint-dir", tmp_path,
                        python_options=("-c", FULL_DISK_AT_SECOND_SAVE))
    line = assert_one_sentence(result)
    assert "No space left on device" in line
    assert f"the last good checkpoint is {tmp_path / 'last.npz'} (epoch 1)" in line
    assert checkpoint_arrays(tmp_path / "last.npz")[1]["epoch"] == 1


def test_a_folder_named_last_npz_is_one_sentence(common, tmp_path):
    (tmp_path / "last.npz").mkdir()
    result = run_script(*common, "--checkpoint-dir", tmp_path)
    line = assert_one_sentence(result)
    assert "could not save last" in line


SIGTERM_DURING_SAVE = with_save_replaced("""
def save(real_save, path, *args, **kwargs):
    os.kill(os.getpid(), signal.SIGTERM)     # delivered now, before the file is written
    real_save(path, *args, **kwargs)
""")


def test_sigterm_during_a_save_finishes_it_and_reports_what_is_on_disk(common, tmp_path):
    """The stop waits for last.npz of epoch 1 of 2; the message says so, and --resume alone
    goes on to the run's own --epochs 2 (it once refused: "pass --epochs 2 or more")."""
    result = run_script(*common, "--epochs", 2, "--checkpoint-dir", tmp_path,
                        python_options=("-c", SIGTERM_DURING_SAVE))
    assert result.returncode == 128 + signal.SIGTERM, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert checkpoint_arrays(tmp_path / "last.npz")[1]["epoch"] == 1
    assert f"{tmp_path / 'last.npz'} (epoch 1)" in result.stdout
    assert "SIGTERM: stopped once last was saved, after epoch 1 of 2" in result.stdout
    assert "between training steps" not in result.stdout
    assert f"continue with --resume {tmp_path / 'last.npz'}" in result.stdout

    resumed = run_script(*common, "--checkpoint-dir", tmp_path, "--resume", tmp_path / "last.npz")
    assert resumed.returncode == 0, resumed.stderr
    assert checkpoint_arrays(tmp_path / "last.npz")[1]["epoch"] == 2


def with_changed_meta(source, target, **fields):
    """A copy of the checkpoint ``source`` whose meta has ``fields`` replaced."""
    arrays, meta = checkpoint_arrays(source)
    numpy.savez(target, meta=numpy.array(json.dumps({**meta, **fields})), **arrays)
    return target


@pytest.mark.parametrize("fields, phrase", [
    ({"epoch": 0, "step": 10 ** 9, "progress": {"loss": [1.0, 10 ** 9]}},
     "it stopped after step 1000000000 of an epoch, but an epoch of this data has 2 steps"),
    ({"epoch": 0, "step": 1, "progress": {"loss": "garbage"}},
     "its progress loss is 'garbage', not [the finite loss sum, 1]"),
    ({"epoch": 0, "step": 1, "progress": {"loss": [1.0, 1, 7]}}, "its progress loss is [1.0, 1, 7]"),
    ({"epoch": 0, "step": 1, "progress": {"loss": [1.0, 5]}}, "its progress loss is [1.0, 5]"),
], ids=["step 10**9", "garbage loss", "three numbers", "other step count"])
def test_checkpoint_fields_that_do_not_fit_the_data_are_refused_at_resume(
        common, one_epoch, tmp_path, fields, phrase):
    """load_checkpoint accepts these types; the script checks them against its own epoch."""
    path = with_changed_meta(one_epoch / "last.npz", tmp_path / "odd.npz", **fields)
    result = run_script(*common, "--resume", path, "--checkpoint-dir", tmp_path / "run")
    line = assert_one_sentence(result)
    assert phrase in line, line
    assert not (tmp_path / "run" / "last.npz").exists()


KILLED_BEFORE_THE_COURSE_CHECKPOINT = with_save_replaced("""
def save(real_save, path, *args, **kwargs):
    if "resnet50_epoch" in str(path):       # last.npz is complete; the course's file is not
        open(f"{path}.0badf00d.tmp", "wb").write(b"half a checkpoint")
        os.kill(os.getpid(), signal.SIGKILL)
    real_save(path, *args, **kwargs)
""")


def test_a_run_resumed_after_a_kill_at_an_epoch_end_writes_what_that_epoch_owed(common, tmp_path):
    """SIGKILL between last.npz and resnet50_epoch1: the resumed run writes resnet50_epoch1 and
    removes the killed write's temporary file at its start."""
    killed = run_script(*common, "--epochs", 2, "--lr-step", 1, "--checkpoint-dir", tmp_path,
                        python_options=("-c", KILLED_BEFORE_THE_COURSE_CHECKPOINT))
    assert killed.returncode == -signal.SIGKILL, (killed.stdout, killed.stderr)
    assert checkpoint_arrays(tmp_path / "last.npz")[1]["epoch"] == 1
    assert not (tmp_path / "resnet50_epoch1.npz").exists()
    assert (tmp_path / "resnet50_epoch1.npz.0badf00d.tmp").exists()

    resumed = run_script(*common, "--epochs", 2, "--lr-step", 1, "--checkpoint-dir", tmp_path,
                         "--resume", tmp_path / "last.npz")
    assert resumed.returncode == 0, resumed.stderr
    assert "which the interrupted run owed at the end of epoch 1" in resumed.stdout
    assert checkpoint_arrays(tmp_path / "resnet50_epoch1.npz")[1]["epoch"] == 1
    assert (tmp_path / "resnet50_epoch1.ckpt").is_file()
    assert checkpoint_arrays(tmp_path / "resnet50_epoch2.npz")[1]["epoch"] == 2
    assert list(tmp_path.glob("*.tmp")) == []


KILLED_BEFORE_THE_FINAL_CHECKPOINT = with_save_replaced("""
def save(real_save, path, *args, **kwargs):
    if "resnet50_final" in str(path):
        os.kill(os.getpid(), signal.SIGKILL)
    real_save(path, *args, **kwargs)
""")


def test_a_run_killed_before_its_final_checkpoint_writes_it_when_resumed(common, tmp_path):
    """Its last.npz holds the last epoch: resuming it (and only it, in its own folder) writes
    resnet50_final instead of refusing with "nothing is left to train"."""
    killed = run_script(*common, "--checkpoint-dir", tmp_path,
                        python_options=("-c", KILLED_BEFORE_THE_FINAL_CHECKPOINT))
    assert killed.returncode == -signal.SIGKILL, (killed.stdout, killed.stderr)
    assert not (tmp_path / "resnet50_final.npz").exists()
    elsewhere = run_script(*common, "--checkpoint-dir", tmp_path / "other", "--resume",
                           tmp_path / "last.npz")
    assert "nothing is left to train" in assert_one_sentence(elsewhere)
    resumed = run_script(*common, "--checkpoint-dir", tmp_path, "--resume", tmp_path / "last.npz")
    assert resumed.returncode == 0, resumed.stderr
    assert "resnet50_final.npz and .ckpt, which the interrupted run owed at the end of epoch 1" \
        in resumed.stdout
    assert "Accuracy of the model on the test images: " in resumed.stdout
    final, last = checkpoint_arrays(tmp_path / "resnet50_final.npz"), checkpoint_arrays(tmp_path / "last.npz")
    assert final[1]["epoch"] == 1
    for key, value in last[0].items():
        numpy.testing.assert_array_equal(final[0][key], value, err_msg=key)

