"""examples/train_cifar.py end to end: the course's log lines, metrics, checkpoints, exact resume,
interruption, a diverging loss and bad command lines.

Every run trains ResNet50_layer4 on a synthetic CIFAR-10 folder of 40 training images (8 per
record file, in the official binary layout), so no network is used and a run takes seconds. Runs
that several tests read are module-scoped fixtures. The script runs as a subprocess (as a user
runs it; those tests are marked slow), except where a test must replace a function inside it
(the download's waiting).
"""
import importlib.util
import json
import re
import signal
import socket
import subprocess
import zipfile

import numpy
import pytest

import minires
from minires.checkpoint import save_checkpoint
from minires.models import ResNet50_layer4
from tests.support.cifar_files import write_cifar_folder
from tests.support.scripts import ENV, REPO, SCRIPT, run_script, script_command

FLAGS = ("--backend", "--epochs", "--batch-size", "--lr", "--lr-step", "--lr-factor", "--seed",
         "--data-dir", "--data-url", "--resume", "--checkpoint-dir", "--eval-only",
         "--limit-train", "--limit-test", "--log-every", "--identity-shortcut", "--tf32")
STEP_LINE = re.compile(r"^Epoch \[(\d+)/(\d+)\], Step \[(\d+)/(\d+)\] Loss: \d+\.\d{4}$")
ACCURACY_LINE = re.compile(r"(?m)^Accuracy of the model on the test images: (\d+\.\d\d) %$")


def read_checkpoint(path):
    """A minires .npz checkpoint as (arrays by name, meta dict), read without pickle."""
    with numpy.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    return arrays, json.loads(str(arrays.pop("meta")))


def read_metrics(folder):
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def assert_same_state(path_a, path_b):
    """Model and optimizer states of two checkpoints are bit-identical."""
    arrays_a, meta_a = read_checkpoint(path_a)
    arrays_b, meta_b = read_checkpoint(path_b)
    assert sorted(arrays_a) == sorted(arrays_b)
    assert any(name.startswith("optimizer/") for name in arrays_a)
    differing = [name for name in arrays_a if not numpy.array_equal(arrays_a[name], arrays_b[name])]
    assert differing == [], f"{len(differing)} entries differ, e.g. {differing[:5]}"
    assert meta_a["optimizer"] == meta_b["optimizer"]      # lr and Adam's step count
    assert meta_a["scheduler"] == meta_b["scheduler"]
    assert meta_a["epoch"] == meta_b["epoch"]


def assert_no_traceback(result):
    assert "Traceback" not in result.stderr, result.stderr


def error_lines(result):
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_cifar_folder(tmp_path_factory.mktemp("data"))   # 5 x 8 training images, 8 test


@pytest.fixture(scope="module")
def common(data_dir):
    """Arguments of the training runs: 4 steps of 10 images an epoch, lr divided by 4 each epoch."""
    return ["--data-dir", data_dir, "--batch-size", 10, "--limit-test", 10, "--seed", 7,
            "--lr-step", 1, "--lr-factor", 4]


@pytest.fixture(scope="module")
def run_one_epoch(common, tmp_path_factory):
    """Run B: one epoch, a loss line at every step."""
    folder = tmp_path_factory.mktemp("one_epoch")
    return run_script(*common, "--epochs", 1, "--log-every", 1, "--checkpoint-dir", folder,
                      check=True), folder


@pytest.fixture(scope="module")
def run_two_epochs(common, tmp_path_factory):
    """Run A: two epochs in one go, a loss line every 3 steps (step 3 of 4)."""
    folder = tmp_path_factory.mktemp("two_epochs")
    return run_script(*common, "--epochs", 2, "--log-every", 3, "--checkpoint-dir", folder,
                      check=True), folder


@pytest.fixture(scope="module")
def run_resumed(common, run_one_epoch, tmp_path_factory):
    """Run C: run B's last.npz continued to two epochs, into another folder."""
    folder = tmp_path_factory.mktemp("resumed")
    result = run_script(*common, "--epochs", 2, "--log-every", 3, "--checkpoint-dir", folder,
                        "--resume", run_one_epoch[1] / "last.npz", check=True)
    return result, folder


# ---------------------------------------------------------------- command line and output format

@pytest.mark.slow
def test_help_lists_every_flag():
    result = run_script("--help", check=True)
    missing = [flag for flag in FLAGS
               if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", result.stdout)]
    assert missing == []


@pytest.mark.slow
def test_log_lines_have_the_course_format(run_one_epoch):
    result, _ = run_one_epoch
    lines = result.stdout.splitlines()
    step_lines = [line for line in lines if line.startswith("Epoch [")]
    assert [STEP_LINE.match(line) is not None for line in step_lines] == [True] * len(step_lines), \
        step_lines
    assert [line.split("Loss")[0] for line in step_lines] == [
        f"Epoch [1/1], Step [{step}/4] " for step in (1, 2, 3, 4)]
    accuracy_lines = [index for index, line in enumerate(lines) if ACCURACY_LINE.match(line)]
    assert len(accuracy_lines) == 1, lines
    assert accuracy_lines[0] > lines.index(step_lines[-1])     # the course's last line
    assert "\r" not in result.stdout                           # no progress bar on a pipe
    assert result.stderr == ""


@pytest.mark.slow
def test_loss_lines_appear_every_log_every_steps_and_at_each_epochs_end(run_two_epochs):
    result, _ = run_two_epochs
    step_lines = [line for line in result.stdout.splitlines() if line.startswith("Epoch [")]
    assert all(STEP_LINE.match(line) for line in step_lines), step_lines
    assert [line.split("Loss")[0] for line in step_lines] == [      # and each epoch's last step
        "Epoch [1/2], Step [3/4] ", "Epoch [1/2], Step [4/4] ",
        "Epoch [2/2], Step [3/4] ", "Epoch [2/2], Step [4/4] "]


@pytest.mark.slow
def test_metrics_hold_one_record_per_logged_step_and_per_epoch(run_one_epoch, run_two_epochs):
    records = read_metrics(run_one_epoch[1])
    steps = [(r["epoch"], r["step"]) for r in records if "step" in r]
    assert steps == [(1, 1), (1, 2), (1, 3), (1, 4)]
    epochs = [r for r in records if "step" not in r]
    assert len(epochs) == 1 and epochs[0]["epoch"] == 1
    for key in ("train_loss", "test_accuracy", "lr", "seconds"):
        assert numpy.isfinite(epochs[0][key]), key
    assert epochs[0]["train_loss"] == records[3]["loss"]       # the mean over the epoch's 4 steps
    printed = ACCURACY_LINE.search(run_one_epoch[0].stdout).group(1)
    assert f"{epochs[0]['test_accuracy']:.2f}" == printed
    two = read_metrics(run_two_epochs[1])
    assert [(r["epoch"], "step" in r) for r in two] == [(1, True), (1, True), (1, False),
                                                        (2, True), (2, True), (2, False)]


@pytest.mark.slow
def test_metrics_name_the_run_and_count_global_steps_across_a_resume(run_one_epoch, run_resumed):
    """Every record carries its run id, a time and the global step; a resumed run is a new run
    whose global steps continue where the resumed checkpoint stopped (4 steps an epoch)."""
    first, resumed = read_metrics(run_one_epoch[1]), read_metrics(run_resumed[1])
    for record in first + resumed:
        assert {"run", "time", "global_step"} <= set(record), record
    assert len({r["run"] for r in first}) == 1 and len({r["run"] for r in resumed}) == 1
    assert first[0]["run"] != resumed[0]["run"]
    assert [r["global_step"] for r in first] == [1, 2, 3, 4, 4]       # 4 steps, then the epoch
    assert [r["global_step"] for r in resumed] == [7, 8, 8]   # steps 3 and 4 of epoch 2, the epoch
    times = [r["time"] for r in first]
    assert times == sorted(times)


@pytest.mark.slow
def test_train_log_holds_the_printed_lines(run_one_epoch):
    result, folder = run_one_epoch
    assert (folder / "train.log").read_text().splitlines() == result.stdout.splitlines()


@pytest.mark.slow
def test_lr_in_metrics_is_the_lr_each_epoch_trained_with(run_two_epochs):
    """--lr-step 1 --lr-factor 4: epoch 1 trains at --lr (0.001), epoch 2 at 0.001 / 4."""
    epochs = [r for r in read_metrics(run_two_epochs[1]) if "step" not in r]
    assert [r["lr"] for r in epochs] == pytest.approx([1e-3, 1e-3 / 4], rel=1e-12)


@pytest.mark.slow
def test_checkpoints_are_written_under_the_course_names(run_one_epoch, run_two_epochs):
    folder = run_one_epoch[1]
    for name in ("last.npz", "resnet50_final.npz", "resnet50_final.ckpt", "resnet50_epoch1.npz",
                 "resnet50_epoch1.ckpt"):
        assert (folder / name).is_file(), name
    arrays, meta = read_checkpoint(folder / "last.npz")        # allow_pickle=False works
    assert meta["epoch"] == 1 and meta["step"] == 0
    assert len([name for name in arrays if name.startswith("model/")]) == 373
    assert zipfile.is_zipfile(folder / "resnet50_final.ckpt")
    folder = run_two_epochs[1]
    for name in ("resnet50_epoch1.npz", "resnet50_epoch1.ckpt", "resnet50_epoch2.npz",
                 "resnet50_epoch2.ckpt", "resnet50_final.npz", "resnet50_final.ckpt"):
        assert (folder / name).is_file(), name
    lrs = [read_checkpoint(folder / f"resnet50_epoch{n}.npz")[1]["optimizer"]["lr"] for n in (1, 2)]
    assert lrs == pytest.approx([1e-3 / 4, 1e-3 / 16], rel=1e-12)  # the lr the next epoch uses
    assert_same_state(folder / "resnet50_epoch2.npz", folder / "resnet50_final.npz")


# ---------------------------------------------------------------- exact resume

@pytest.mark.slow
def test_resuming_last_checkpoint_is_exact(run_two_epochs, run_resumed):
    """A: 2 epochs in one run; C: B's epoch 1 resumed to 2 epochs; same weights and Adam state."""
    assert "Resumed" in run_resumed[0].stdout
    assert_same_state(run_two_epochs[1] / "resnet50_final.npz",
                      run_resumed[1] / "resnet50_final.npz")


@pytest.mark.slow
def test_resumed_run_logs_the_same_second_epoch(run_two_epochs, run_resumed):
    def course_lines(result):
        return [line for line in result.stdout.splitlines()
                if line.startswith("Epoch [") or ACCURACY_LINE.match(line)]
    second_epoch = [line for line in course_lines(run_two_epochs[0])
                    if not line.startswith("Epoch [1/2]")]
    assert course_lines(run_resumed[0]) == second_epoch


@pytest.mark.slow
def test_eval_only_reproduces_the_final_accuracy(common, run_one_epoch, tmp_path):
    result, folder = run_one_epoch
    final = [line for line in result.stdout.splitlines() if ACCURACY_LINE.match(line)]
    evaluated = run_script(*common, "--eval-only", "--resume", folder / "resnet50_final.npz",
                       "--checkpoint-dir", tmp_path, check=True)
    assert [line for line in evaluated.stdout.splitlines() if ACCURACY_LINE.match(line)] == final
    assert not any(line.startswith("Epoch") for line in evaluated.stdout.splitlines())
    assert sorted(path.suffix for path in tmp_path.iterdir()) in ([], [".jsonl", ".log"])  # no checkpoints


# ---------------------------------------------------------------- interruption

@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_that_resumes_exactly(common, run_one_epoch, tmp_path):
    """Run B's command, stopped by SIGTERM after its first loss line, then resumed: B's result."""
    args = [*common, "--epochs", 1, "--log-every", 1, "--checkpoint-dir", tmp_path]
    process = subprocess.Popen(script_command(*args), cwd=REPO, env=ENV,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in process.stdout:
            if line.startswith("Epoch ["):
                process.send_signal(signal.SIGTERM)
                break
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 128 + signal.SIGTERM, (stdout, stderr)
    assert "Traceback" not in stderr, stderr
    assert "SIGTERM" in stdout and "interrupted.npz" in stdout
    _, meta = read_checkpoint(tmp_path / "interrupted.npz")
    assert meta["epoch"] == 0 and 1 <= meta["step"] < 4, meta
    assert not (tmp_path / "resnet50_final.npz").exists()

    resumed = run_script(*args, "--resume", tmp_path / "interrupted.npz", check=True)
    steps = [int(STEP_LINE.match(line).group(3)) for line in resumed.stdout.splitlines()
             if line.startswith("Epoch [")]
    assert steps == list(range(meta["step"] + 1, 5))       # the epoch is finished, no step twice
    assert_same_state(run_one_epoch[1] / "resnet50_final.npz", tmp_path / "resnet50_final.npz")


# The script run by a stand-in for a user who presses Ctrl-C right after the epoch's last step.
TERMINATED_AFTER_LAST_STEP = """
import importlib.util, os, signal, sys
spec = importlib.util.spec_from_file_location("train_cifar", sys.argv[1])
script = importlib.util.module_from_spec(spec)
spec.loader.exec_module(script)
print_line = script.Run.say

def say_then_terminate(run, line, bar=None):
    print_line(run, line, bar)
    if line.startswith("Epoch [") and "Step [4/4]" in line:
        os.kill(os.getpid(), signal.SIGTERM)

script.Run.say = say_then_terminate
script.main(sys.argv[2:])
"""


@pytest.mark.slow
def test_interrupt_at_the_last_step_resumes_to_the_same_epoch(common, run_one_epoch, tmp_path):
    """SIGTERM right after the epoch's last step: the resumed run ends as run B did, loss too."""
    args = [*common, "--epochs", 1, "--log-every", 1, "--checkpoint-dir", tmp_path]
    result = run_script(*args, python_options=("-c", TERMINATED_AFTER_LAST_STEP))
    assert result.returncode == 128 + signal.SIGTERM, (result.stdout, result.stderr)
    assert read_checkpoint(tmp_path / "interrupted.npz")[1]["step"] == 4
    run_script(*args, "--resume", tmp_path / "interrupted.npz", check=True)
    assert_same_state(run_one_epoch[1] / "resnet50_final.npz", tmp_path / "resnet50_final.npz")
    [expected] = [r["train_loss"] for r in read_metrics(run_one_epoch[1]) if "train_loss" in r]
    [resumed] = [r["train_loss"] for r in read_metrics(tmp_path) if "train_loss" in r]
    assert resumed == expected


# ---------------------------------------------------------------- a diverging loss

@pytest.mark.slow
def test_non_finite_loss_stops_with_status_3(common, tmp_path):
    result = run_script(*common, "--limit-train", 20, "--lr", "1e30", "--log-every", 1,
                        "--checkpoint-dir", tmp_path)
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert_no_traceback(result)
    errors = error_lines(result)
    assert len(errors) == 1 and errors[0] == result.stderr.splitlines()[-1], result.stderr
    assert re.search(r"loss became (nan|inf|-inf)", errors[0]), errors[0]
    assert "checkpoint" in errors[0] and "--lr" in errors[0]      # no epoch finished: none yet
    assert not (tmp_path / "resnet50_final.npz").exists()


@pytest.mark.slow
def test_non_finite_loss_names_the_last_good_checkpoint(common, tmp_path):
    """Epoch 1 at lr 1e-3 is fine; --lr-factor 1e-33 makes epoch 2's lr 1e30: the loss diverges."""
    result = run_script(*common, "--limit-train", 20, "--epochs", 2, "--lr-factor", "1e-33",
                        "--log-every", 1, "--checkpoint-dir", tmp_path)
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert_no_traceback(result)
    errors = error_lines(result)
    assert len(errors) == 1 and "in epoch 2" in errors[0], result.stderr
    assert str(tmp_path / "last.npz") in errors[0]
    arrays, meta = read_checkpoint(tmp_path / "last.npz")
    assert meta["epoch"] == 1
    assert all(numpy.isfinite(array).all() for array in arrays.values())


# ---------------------------------------------------------------- bad command lines

@pytest.mark.slow
def test_cupy_without_a_gpu_is_a_one_sentence_error(data_dir, tmp_path):
    result = run_script("--backend", "cupy", "--data-dir", data_dir, "--checkpoint-dir", tmp_path)
    assert result.returncode == 2
    assert_no_traceback(result)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "--backend numpy" in result.stderr


@pytest.mark.slow
def test_missing_resume_file_is_an_error(common, tmp_path):
    result = run_script(*common, "--resume", tmp_path / "nothing.npz", "--checkpoint-dir", tmp_path)
    assert result.returncode == 2
    assert_no_traceback(result)
    assert "nothing.npz" in result.stderr


@pytest.mark.slow
def test_malformed_data_file_is_an_error_naming_it(tmp_path):
    data_dir = write_cifar_folder(tmp_path / "data")
    test_file = data_dir / "cifar-10-batches-bin" / "test_batch.bin"
    test_file.write_bytes(test_file.read_bytes()[:-1])          # truncated by one byte
    result = run_script("--data-dir", data_dir, "--checkpoint-dir", tmp_path / "checkpoints")
    assert result.returncode == 2
    assert_no_traceback(result)
    assert str(test_file) in result.stderr


@pytest.mark.slow
def test_checkpoint_dir_that_is_a_file_is_an_error(common, tmp_path):
    not_a_folder = tmp_path / "checkpoints"
    not_a_folder.write_text("")
    result = run_script(*common, "--limit-train", 10, "--checkpoint-dir", not_a_folder)
    assert result.returncode == 2, (result.stdout, result.stderr[-2000:])
    assert_no_traceback(result)
    assert str(not_a_folder) in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("option", [
    ["--epochs", 0], ["--batch-size", 0], ["--log-every", 0], ["--lr-step", 0],
    ["--lr-factor", 0], ["--lr", -1], ["--limit-train", 0], ["--limit-test", 0],
], ids=lambda option: f"{option[0]}={option[1]}")
def test_impossible_values_are_usage_errors(common, tmp_path, option):
    result = run_script(*common, "--limit-train", 10, *option, "--checkpoint-dir", tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr[-2000:])
    assert_no_traceback(result)
    assert option[0] in result.stderr


def _closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def unreachable_download(tmp_path, monkeypatch, capsys):
    """main() on an empty data folder with a dead --data-url; the retries' waits are recorded."""
    import minires.data.downloading as downloading
    waits = []
    monkeypatch.setattr(downloading.time, "sleep", waits.append)
    spec = importlib.util.spec_from_file_location("train_cifar_under_test", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    url = f"http://127.0.0.1:{_closed_port()}/x.tar.gz"
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--data-dir", str(tmp_path / "empty"), "--data-url", url,
                     "--checkpoint-dir", str(tmp_path / "checkpoints")])
    return exit_info.value.code, capsys.readouterr().err, waits


def test_unreachable_data_url_is_an_error_naming_folder_and_flag(unreachable_download, tmp_path):
    status, stderr, _ = unreachable_download
    assert status == 2
    assert "Traceback" not in stderr
    assert "--data-url" in stderr and str((tmp_path / "empty").resolve()) in stderr


def test_unreachable_data_url_gives_up_within_20_seconds(unreachable_download):
    """Connection refused is immediate, so the time to the error is the backoff's waiting."""
    _, _, waits = unreachable_download
    assert sum(waits) <= 20, f"waits {waits} s before reporting a dead --data-url"


@pytest.mark.slow
def test_mid_epoch_resume_with_other_batches_is_refused(common, tmp_path):
    """Resuming mid-epoch skips the batches already done: they must be the same batches."""
    model = ResNet50_layer4()
    optimizer = minires.optim.Adam(model.parameters())
    path = tmp_path / "interrupted.npz"
    save_checkpoint(path, model, optimizer, epoch=0, step=2,
                    settings={"batch_size": 10, "limit_train": None, "seed": 7})
    result = run_script(*common, "--batch-size", "5", "--resume", path, "--checkpoint-dir", tmp_path)
    assert result.returncode == 2
    assert_no_traceback(result)
    assert "--batch-size 10" in result.stderr


@pytest.mark.slow
def test_resumed_run_keeps_its_schedule_and_says_so(common, run_one_epoch, tmp_path):
    """B ran with --lr-step 1 --lr-factor 4; resuming it with other values changes nothing but says so."""
    result = run_script(*common, "--epochs", 2, "--lr", 0.5, "--lr-step", 7, "--checkpoint-dir", tmp_path,
                    "--resume", run_one_epoch[1] / "last.npz", check=True)
    assert "--lr 0.5, --lr-step 7 not applied" in result.stdout
    epochs = [r for r in read_metrics(tmp_path) if "step" not in r]
    assert [r["lr"] for r in epochs] == pytest.approx([1e-3 / 4], rel=1e-12)


@pytest.fixture(scope="module")
def script_module():
    spec = importlib.util.spec_from_file_location("train_cifar_flags", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_every_integer_flag_has_its_range_checked(script_module):
    typed_int = set(re.findall(r'add_argument\("--([\w-]+)", type=int', SCRIPT.read_text()))
    assert typed_int == {name.replace("_", "-") for name in script_module.INTEGER_FLAGS}


@pytest.mark.parametrize("flag, value", [("--seed", -1), ("--epochs", 0), ("--batch-size", -5),
                                         ("--lr-step", 0), ("--limit-train", 0), ("--limit-test", 0),
                                         ("--log-every", 0), ("--lr", "inf"), ("--lr", "nan"),
                                         ("--lr-factor", "inf")])
def test_a_flag_out_of_range_is_one_sentence_naming_it(script_module, capsys, flag, value):
    """--seed -1 once ended in a traceback from seeding.py."""
    with pytest.raises(SystemExit) as exit_info:
        script_module.parse_args([flag, value])
    stderr = capsys.readouterr().err
    assert exit_info.value.code == 2 and stderr.startswith(f"error: {flag} must be "), stderr
    assert f"got {value}" in stderr and "Traceback" not in stderr


def test_a_checkpoint_dir_that_is_a_file_is_named_as_such(script_module, capsys, tmp_path):
    """It once read "cannot write there (File exists)"."""
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit):
        script_module.parse_args(["--checkpoint-dir", tmp_path / "file"])
    assert capsys.readouterr().err.startswith(f"error: --checkpoint-dir {tmp_path / 'file'} is a "
                                              "file, not a folder")


def test_a_resume_folder_is_named_as_a_folder(script_module, capsys, tmp_path):
    """It once read "no such file"."""
    with pytest.raises(SystemExit):
        script_module.main(["--resume", tmp_path, "--checkpoint-dir", tmp_path / "run"])
    assert capsys.readouterr().err.strip() == (f"error: --resume {tmp_path}: is a folder, not a "
                                               "checkpoint file")
