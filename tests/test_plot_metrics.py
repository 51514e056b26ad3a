"""minires.viz.metrics (the metrics.jsonl schema, checked line by line; runs joined into series)
and examples/plot_metrics.py end to end, on made-up runs and on what the training script writes.
"""
import json

import pytest

from minires.viz.metrics import MetricsError, read_metrics, runs, series
from tests.support.cifar_sample import extracted_sample
from tests.support.scripts import REPO, run_example

SCRIPT = REPO / "examples" / "plot_metrics.py"
STEPS_PER_EPOCH, LOG_EVERY = 10, 5


def run_records(run, epochs, start_time=1.8e9, with_ids=True):
    """The records the training script writes for ``epochs`` (1-based) of one run."""
    records, time = [], start_time
    for epoch in epochs:
        for step in range(LOG_EVERY, STEPS_PER_EPOCH + 1, LOG_EVERY):
            time += 1.5
            records.append({"run": run, "time": time,
                            "global_step": (epoch - 1) * STEPS_PER_EPOCH + step,
                            "epoch": epoch, "step": step, "loss": 2.0 / epoch - 0.01 * step})
        time += 3.0
        records.append({"run": run, "time": time, "global_step": epoch * STEPS_PER_EPOCH,
                        "epoch": epoch, "train_loss": 2.0 / epoch, "test_accuracy": 10.0 * epoch,
                        "lr": 0.001, "seconds": 15.0, "images_per_second": 66.7})
    if not with_ids:
        for record in records:
            del record["run"], record["time"], record["global_step"]
    return records


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


# ---------------------------------------------------------------- reading and checking

def test_read_metrics_returns_every_record_and_skips_blank_lines(tmp_path):
    path = write_jsonl(tmp_path / "metrics.jsonl", run_records("a", [1, 2]))
    path.write_text(path.read_text() + "\n\n")
    records = read_metrics(path)
    assert len(records) == 6 and records[2]["test_accuracy"] == 10.0
    assert [r["global_step"] for r in records] == [5, 10, 10, 15, 20, 20]


@pytest.mark.parametrize("line, problem", [
    ('{"epoch": 1, "step": 5, "loss": 2.1', "not JSON (Expecting ',' delimiter at column 36)"),
    ("[1, 2]", "a JSON list, expected an object"),
    ('{"epoch": 1, "accuracy": 3}', "neither a step record (with step and loss) nor an epoch record"),
    ('{"epoch": 1, "step": 5}', "the record lacks loss"),
    ('{"epoch": 1, "step": 5, "loss": "2.1"}', "loss should be a number, got '2.1'"),
    ('{"epoch": 1.5, "step": 5, "loss": 2.1}', "epoch should be an integer, got 1.5"),
    ('{"run": "a", "epoch": 1, "step": 5, "loss": 2.1}', "the record lacks time, global_step"),
    ('{"epoch": 1, "train_loss": 2.0, "test_accuracy": 50.0}',
     "the record lacks lr, seconds, images_per_second"),
])
def test_a_bad_line_is_named_by_file_and_line_number(tmp_path, line, problem):
    path = write_jsonl(tmp_path / "metrics.jsonl", run_records("a", [1]))
    path.write_text(path.read_text() + line + "\n")
    with pytest.raises(MetricsError) as error:
        read_metrics(path)
    assert str(error.value).startswith(f"{path}, line 4: {problem}")


def test_missing_and_empty_files_are_named(tmp_path):
    with pytest.raises(MetricsError, match=r"nope.jsonl: cannot be read \(No such file"):
        read_metrics(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(MetricsError, match="empty.jsonl: holds no records"):
        read_metrics(tmp_path / "empty.jsonl")


# ---------------------------------------------------------------- runs and series

def test_a_resumed_run_continues_its_series_and_a_fresh_run_starts_another(tmp_path):
    records = (run_records("first", [1, 2]) + run_records("resumed", [3, 4], start_time=1.9e9)
               + run_records("again", [1], start_time=2e9))
    found = series(read_metrics(write_jsonl(tmp_path / "metrics.jsonl", records)))
    assert [one.runs for one in found] == [["first", "resumed"], ["again"]]
    steps = [r["global_step"] for r in found[0].records]
    assert steps == sorted(steps) and steps[-1] == 40 and len(found[0].epochs) == 4
    assert len(found[1].steps) == 2 and found[1].epochs[0]["test_accuracy"] == 10.0


def test_a_run_resumed_mid_epoch_1_continues_and_one_resumed_from_an_earlier_checkpoint_replaces(tmp_path):
    first = run_records("first", [1, 2, 3])
    interrupted = [r for r in first if r["global_step"] <= 25 and not (r["epoch"] == 3 and "train_loss" in r)]
    # resumed from the end of epoch 2 after an interruption in epoch 3: epoch 3 is redone
    redone = run_records("resumed", [3, 4], start_time=1.9e9)
    found = series(read_metrics(write_jsonl(tmp_path / "m.jsonl", interrupted + redone)))
    assert len(found) == 1 and found[0].runs == ["first", "resumed"]
    assert [(r["run"], r["global_step"]) for r in found[0].records if r["epoch"] == 3] == \
        [("resumed", 25), ("resumed", 30), ("resumed", 30)]

    in_epoch_1 = run_records("first", [1])[:1] + [
        dict(r, run="second") for r in run_records("x", [1, 2])[1:]]
    found = series(read_metrics(write_jsonl(tmp_path / "m1.jsonl", in_epoch_1)))
    assert [one.runs for one in found] == [["first", "second"]]


def test_old_records_without_run_ids_still_plot_in_epoch_and_step_order(tmp_path):
    records = run_records(None, [1, 2], with_ids=False) + run_records(None, [1], with_ids=False)
    loaded = read_metrics(write_jsonl(tmp_path / "old.jsonl", records))
    assert [r["global_step"] for r in loaded] == [5, 10, 10, 15, 20, 20, 5, 10, 10]
    assert [len(run) for run in runs(loaded)] == [6, 3]     # the second starts again at epoch 1
    assert [one.runs for one in series(loaded)] == [[None], [None]]


# ---------------------------------------------------------------- the script

def run_script(*args, prefix=()):
    return run_example("plot_metrics.py", *args, python_options=prefix)


def png_size(path):
    from PIL import Image
    with Image.open(path) as image:
        return image.format, image.size


@pytest.mark.slow
def test_plot_metrics_draws_several_files_and_runs_into_one_png(tmp_path):
    pytest.importorskip("matplotlib")
    pytest.importorskip("PIL")
    (tmp_path / "base").mkdir()
    (tmp_path / "wide").mkdir()
    base = write_jsonl(tmp_path / "base" / "metrics.jsonl",
                       run_records("r1", [1, 2]) + run_records("r2", [3], start_time=1.9e9))
    wide = write_jsonl(tmp_path / "wide" / "metrics.jsonl",
                       run_records("w1", [1]) + run_records("w2", [1, 2], start_time=1.9e9))
    out = tmp_path / "curves.png"
    result = run_script(base, wide, "--label", "base", "--label", "wide", "-o", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"wrote {out}",
        "  base: 3 epoch(s), 6 logged step(s), 2 run(s), last test accuracy 30.00 %",
        "  wide, run w1: 1 epoch(s), 2 logged step(s), 1 run(s), last test accuracy 10.00 %",
        "  wide, run w2: 2 epoch(s), 4 logged step(s), 1 run(s), last test accuracy 20.00 %"]
    assert png_size(out) == ("PNG", (1100, 700)) and 30_000 < out.stat().st_size < 300_000


@pytest.mark.slow
def test_plot_metrics_bad_input_exits_2_with_one_sentence(tmp_path):
    bad = tmp_path / "metrics.jsonl"
    bad.write_text(json.dumps(run_records("a", [1])[0]) + "\n{oops\n")
    for args, message in [((bad,), f"error: {bad}, line 2: not JSON"),
                          ((tmp_path / "none.jsonl",), "cannot be read (No such file or directory)"),
                          ((bad, bad, "--label", "one"), "give --label once per file")]:
        result = run_script(*args, "-o", tmp_path / "x.png")
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and not (tmp_path / "x.png").exists()

    good = write_jsonl(tmp_path / "good.jsonl", run_records("a", [1]))
    no_matplotlib = ("-c", "import runpy, sys; sys.modules['matplotlib'] = None; "
                     "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")
    result = run_script(good, "-o", tmp_path / "x.png", prefix=no_matplotlib)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr == 'error: plot_metrics.py needs matplotlib: pip install -e ".[viz]" ' \
                            "(or pip install matplotlib)\n"


@pytest.mark.slow
def test_plot_metrics_reads_what_the_training_script_writes(tmp_path_factory, tmp_path):
    """Two epochs of the real training script on the shared CIFAR sample, then the plot."""
    pytest.importorskip("matplotlib")
    data_dir = extracted_sample(tmp_path_factory)
    run_example("train_cifar.py", "--data-dir", data_dir, "--checkpoint-dir", tmp_path,
                "--epochs", 2, "--batch-size", 10, "--limit-train", 20, "--limit-test", 10,
                "--log-every", 1, check=True)
    result = run_script(tmp_path / "metrics.jsonl", "-o", tmp_path / "c.png")    # named by its folder
    assert result.returncode == 0, result.stderr
    summary = f"  {tmp_path.name}: 2 epoch(s), 4 logged step(s), 1 run(s)"
    assert result.stdout.splitlines()[1].startswith(summary)
