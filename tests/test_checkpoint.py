"""Tests for minires.checkpoint: .npz training checkpoints saved atomically and read defensively.

Hostile files are tiny and built here (tests/support/hostile_zip.py for what zipfile will not write). Loads
that a memory bomb could turn into gigabytes run in a child process with a capped address space
(tests/support/limited_process.py), and the tests assert they are refused quickly and cheaply.

The round trip runs on the strict stand-in device (minires.testing.strict_device), so it also
proves that saving reads the device only explicitly and that loading puts every array back on
the device. The training script's checkpoints (names, exact resume) are tested in
test_train_script.py, the PyTorch format in test_torch_format.py.
"""
import errno
import io
import json
import os
import zipfile

import numpy
import pytest

import minires
import minires.functional as F
from minires import backend, checkpoint, nn, optim
from minires.checkpoint import (
    NonFiniteError,
    is_checkpoint,
    load_checkpoint,
    nonfinite_keys,
    require_finite,
    save_checkpoint,
)
from minires.testing import strict_device
from tests.support.full_disk import file_size_limit
from tests.support.hostile_zip import DEFLATED, Entry, deflate_bomb, zip_bytes
from tests.support.limited_process import assert_refused_cheaply, load_limited


def test_checkpoint_round_trip_on_the_device(device, tmp_path):
    model = nn.Sequential(nn.Conv2d(in_channels=3, out_channels=4, kernel_size=3), nn.BatchNorm2d(4),
                          nn.Flatten(), nn.Linear(in_features=4 * 6 * 6, out_features=3))
    optimizer = optim.Adam(model.parameters(), lr=1e-2)
    scheduler = optim.StepLR(optimizer, step_size=1, gamma=0.5)
    x = device.asarray(numpy.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(numpy.float32))
    y = device.asarray(numpy.array([0, 2]))
    loss = F.cross_entropy(model(minires.Tensor(x)), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()
    data_rng = numpy.random.default_rng(5)
    path = tmp_path / "run.npz"
    with strict_device.counting() as saving:
        checkpoint.save_checkpoint(str(path), model, optimizer, scheduler, epoch=3,
                                   settings={"lr": 1e-2},
                                   rng_state=data_rng.bit_generator.state)
    assert saving.implicit == 0 and saving.d2h > 0          # explicit reads only

    minires.manual_seed(9)
    restored = nn.Sequential(nn.Conv2d(in_channels=3, out_channels=4, kernel_size=3),
                             nn.BatchNorm2d(4), nn.Flatten(),
                             nn.Linear(in_features=4 * 6 * 6, out_features=3))
    restored_optimizer = optim.Adam(restored.parameters(), lr=1.0)
    restored_scheduler = optim.StepLR(restored_optimizer, step_size=1, gamma=0.5)
    with strict_device.counting() as loading:
        meta = checkpoint.load_checkpoint(str(path), restored, restored_optimizer, restored_scheduler)
    assert loading.implicit == 0 and loading.d2h == 0
    assert meta["epoch"] == 3 and meta["settings"] == {"lr": 1e-2}
    assert meta["rng_state"] == data_rng.bit_generator.state
    for (key, saved), (_, loaded) in zip(model.state_dict().items(), restored.state_dict().items()):
        assert isinstance(loaded, strict_device.ndarray), key
        numpy.testing.assert_array_equal(backend.to_host(loaded), backend.to_host(saved), err_msg=key)
    for name, array in optimizer.flat_state_dict().items():
        loaded = restored_optimizer.flat_state_dict()[name]
        if hasattr(array, "shape"):
            numpy.testing.assert_array_equal(backend.to_host(loaded), backend.to_host(array))
        else:
            assert loaded == array, name
    assert restored_scheduler.state_dict() == scheduler.state_dict()


def small_model():
    return nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.Flatten(), nn.Linear(3, 2))


def trained_run(seed=0):
    """A model, Adam and StepLR with state that differs from a fresh run's."""
    model = small_model()
    rng = numpy.random.default_rng(seed)
    for parameter in model.parameters():
        parameter.data[...] = rng.standard_normal(parameter.shape)
    model.state_dict()["1.running_mean"][...] = [0.5, -0.5, 1.5]
    optimizer = optim.Adam(model.parameters(), lr=0.01)
    optimizer.exp_avg[...] = rng.standard_normal(optimizer.exp_avg.shape)
    optimizer.step_count = 7
    scheduler = optim.StepLR(optimizer, step_size=3, gamma=0.5)
    for _ in range(4):
        scheduler.step()
    return model, optimizer, scheduler


def save_run(path, **options):
    model, optimizer, scheduler = trained_run()
    generator = numpy.random.default_rng(5)
    generator.random(3)
    save_checkpoint(path, model, optimizer, scheduler, epoch=4, step=2, settings={"lr": 0.01},
                    rng_state=generator.bit_generator.state, progress={"loss": [1.5, 2]},
                    **options)
    return model, optimizer, scheduler


def fresh_run():
    model = small_model()
    optimizer = optim.Adam(model.parameters(), lr=0.01)
    return model, optimizer, optim.StepLR(optimizer, step_size=3, gamma=0.5)


def entries(path):
    """{name: bytes} of every entry of a zip file."""
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write_entries(path, contents):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in contents.items():
            archive.writestr(name, data)


def npy(array):
    buffer = io.BytesIO()
    numpy.lib.format.write_array(buffer, numpy.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def with_meta(path, target, change):
    """Copy the checkpoint at path to target with its meta dict changed by ``change(meta)``."""
    contents = entries(path)
    meta = json.loads(str(numpy.load(io.BytesIO(contents["meta.npy"]))))
    change(meta)
    contents["meta.npy"] = npy(numpy.array(json.dumps(meta)))
    write_entries(target, contents)


def assert_state_equal(model_a, model_b):
    for (key, a), b in zip(model_a.state_dict().items(), model_b.state_dict().values()):
        numpy.testing.assert_array_equal(a, b, err_msg=key)


def snapshot(model):
    return {key: value.copy() for key, value in model.state_dict().items()}


def assert_untouched(model, before):
    for key, value in model.state_dict().items():
        numpy.testing.assert_array_equal(value, before[key], err_msg=key)


# ---------------------------------------------------------------- saving and loading

def test_round_trip_restores_everything(tmp_path):
    path = tmp_path / "run.npz"
    model, optimizer, scheduler = save_run(path)
    model2, optimizer2, scheduler2 = fresh_run()

    meta = load_checkpoint(path, model2, optimizer2, scheduler2)

    assert_state_equal(model, model2)
    numpy.testing.assert_array_equal(optimizer2.exp_avg, optimizer.exp_avg)
    assert (optimizer2.step_count, optimizer2.lr) == (7, optimizer.lr)
    assert scheduler2.state_dict() == scheduler.state_dict()
    assert (meta["epoch"], meta["step"], meta["settings"]) == (4, 2, {"lr": 0.01})
    assert meta["progress"] == {"loss": [1.5, 2]}
    generator = numpy.random.default_rng(0)
    generator.bit_generator.state = meta["rng_state"]
    expected = numpy.random.default_rng(5)
    expected.random(3)
    assert generator.random() == expected.random()
    assert os.listdir(tmp_path) == ["run.npz"]


def test_nonfinite_keys_names_float_arrays_with_nan_or_inf():
    state = {"a": numpy.ones(3), "b": numpy.array([1.0, numpy.inf]), "n": numpy.array(3),
             "c": numpy.full((2, 2), numpy.nan, dtype=numpy.float16)}
    assert nonfinite_keys(state) == ["b", "c"]
    with pytest.raises(NonFiniteError, match=r"^where: 2 of 4 arrays hold nan or inf, the "
                                             r"first 'b'"):
        require_finite(state, "where")
    require_finite({"a": numpy.ones(2)}, "where")       # finite: no error


def test_save_refuses_non_finite_parameters_and_keeps_the_previous_file(tmp_path):
    path = tmp_path / "last.npz"
    save_run(path)
    before = path.read_bytes()
    model, optimizer, scheduler = trained_run()
    model.state_dict()["0.weight"][0, 0, 0, 0] = numpy.inf
    model.state_dict()["3.bias"][1] = numpy.nan

    with pytest.raises(NonFiniteError) as raised:
        save_checkpoint(path, model, optimizer, scheduler)

    assert str(raised.value) == (f"{path} not saved: 2 of 12 arrays hold nan or inf, the first "
                                 "'model/0.weight'")
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["last.npz"]
    save_checkpoint(path, model, optimizer, scheduler, check_finite=False)   # on request
    assert path.read_bytes() != before


def test_load_refuses_non_finite_arrays_before_changing_the_model(tmp_path):
    path = tmp_path / "nan.npz"
    model, optimizer, scheduler = trained_run()
    model.state_dict()["1.running_var"][0] = numpy.nan
    save_checkpoint(path, model, optimizer, scheduler, check_finite=False)
    fresh, fresh_optimizer, _ = fresh_run()
    before = snapshot(fresh)

    with pytest.raises(NonFiniteError, match=r"nan\.npz: 1 of 12 arrays hold nan or inf, the "
                                             r"first 'model/1\.running_var'"):
        load_checkpoint(path, fresh, fresh_optimizer)

    assert_untouched(fresh, before)
    load_checkpoint(path, fresh, check_finite=False)
    assert numpy.isnan(fresh.state_dict()["1.running_var"][0])


# ---------------------------------------------------------------- crashes and failed writes

def test_leftovers_of_killed_saves_are_removed_and_same_pid_does_not_block(tmp_path):
    path = tmp_path / "last.npz"
    same_pid = tmp_path / f"last.npz.{os.getpid()}.tmp"    # a killed earlier run with our PID
    other_run = tmp_path / "last.npz.1f2e3d4c.tmp"
    other_name = tmp_path / "interrupted.npz.1234.tmp"
    for leftover in (same_pid, other_run, other_name):
        leftover.write_bytes(b"half a checkpoint")

    save_run(path)

    assert sorted(os.listdir(tmp_path)) == ["interrupted.npz.1234.tmp", "last.npz"]
    assert is_checkpoint(path)



def test_failed_write_leaves_previous_file_and_no_temporary(tmp_path):
    path = tmp_path / "last.npz"
    model = nn.Linear(2, 1)
    save_checkpoint(path, model)
    before = path.read_bytes()
    big = nn.Linear(64, 64)      # 16 KB of weights: past the limit below

    with pytest.raises(OSError) as raised, file_size_limit(len(before) + 1000):
        save_checkpoint(path, big)

    assert raised.value.errno == errno.EFBIG
    assert raised.value.filename == str(path)           # the real name, not the temporary one
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["last.npz"]


def test_interrupted_write_leaves_previous_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "last.npz"
    save_checkpoint(path, nn.Linear(2, 1))
    before = path.read_bytes()

    def interrupted(file, **arrays):
        file.write(b"PK partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(numpy, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, nn.Linear(2, 1))

    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["last.npz"]


def test_folder_that_is_a_file_is_an_os_error_naming_the_checkpoint(tmp_path):
    (tmp_path / "checkpoints").write_text("")
    path = tmp_path / "checkpoints" / "last.npz"
    with pytest.raises(OSError) as raised:
        save_checkpoint(path, nn.Linear(2, 1))
    assert raised.value.errno in (errno.EEXIST, errno.ENOTDIR)
    assert raised.value.filename == str(path)


# ---------------------------------------------------------------- is_checkpoint

def test_is_checkpoint_is_false_for_anything_but_a_checkpoint(tmp_path):
    save_run(tmp_path / "run.npz")
    (tmp_path / "README.md").write_text("# not a checkpoint\n")
    (tmp_path / "cut.npz").write_bytes((tmp_path / "run.npz").read_bytes()[:300])
    write_entries(tmp_path / "torch.pt", {"torch/data.pkl": b"\x80\x02}q\x00.",
                                          "torch/version": b"3\n"})
    assert is_checkpoint(tmp_path / "run.npz")
    for name in ("README.md", "cut.npz", "torch.pt", "missing.npz", "."):
        assert not is_checkpoint(tmp_path / name), name


# ---------------------------------------------------------------- damaged and hostile files

def test_every_flipped_byte_is_a_value_error_naming_the_file(tmp_path):
    path = tmp_path / "flip.npz"
    save_checkpoint(path, nn.Linear(2, 1))
    data = path.read_bytes()
    survived = 0
    for position in range(0, len(data), 3):      # every third byte: about 400 loads
        damaged = bytearray(data)
        damaged[position] ^= 0xFF
        path.write_bytes(damaged)
        try:
            load_checkpoint(path, nn.Linear(2, 1))
            survived += 1                 # e.g. a byte of a date field: harmless
        except ValueError as error:
            assert "flip.npz" in str(error), (position, str(error))
    assert survived < len(data) // 6     # most flips are caught, none escapes as another type


@pytest.mark.parametrize("cut", [0, 10, 100, 400, -30, -1])
def test_truncated_file_is_a_value_error(tmp_path, cut):
    path = tmp_path / "cut.npz"
    save_run(path)
    path.write_bytes(path.read_bytes()[:cut])
    with pytest.raises(ValueError, match="cut.npz.*(truncated or corrupt|not a zip)"):
        load_checkpoint(path, small_model())


def test_missing_file_is_a_value_error_naming_it(tmp_path):
    with pytest.raises(ValueError, match="nothing.npz: cannot be read"):
        load_checkpoint(tmp_path / "nothing.npz", small_model())


def meta_entry():
    meta = {"format": "minires-checkpoint", "version": 1, "epoch": 0, "step": 0}
    return Entry("meta.npy", npy(numpy.array(json.dumps(meta))))


GIB = 1 << 30
BOMBS = {   # name: (the hostile entry beside a valid meta.npy and model/bias.npy, the refusal)
    # 1 MB on disk, 1 GiB of zeros once inflated
    "deflated entry": (Entry("model/weight.npy", deflate_bomb(GIB), DEFLATED, size=GIB),
                       "'model/weight.npy' is compressed"),
    "extra entry": (Entry("extra.bin", deflate_bomb(GIB), DEFLATED, size=GIB),
                    "unexpected entry 'extra.bin'"),
    # numpy.load allocates the array a header describes before it reads the data
    "header of 1e11 elements": (
        Entry("model/weight.npy", npy(numpy.zeros(0, numpy.float32)).replace(
            b"(0,)", b"(100000000000,)")), "header for 400,000,000,000 bytes"),
    "stored size that lies": (
        Entry("model/weight.npy", npy(numpy.ones((1, 2), numpy.float32)), size=GIB),
        "is stored as 136 bytes but records a size of 1,073,741,824"),
    "both sizes lie": (
        Entry("model/weight.npy", npy(numpy.ones((1, 2), numpy.float32)), size=GIB,
              stored_size=GIB), "claim 1,073,742,"),
}


@pytest.fixture(scope="module")
def bomb_outcomes(tmp_path_factory):
    """Every bomb loaded in one child process with 800 MB of address space."""
    folder = tmp_path_factory.mktemp("bombs")
    bias = Entry("model/bias.npy", npy(numpy.ones(1, numpy.float32)))
    paths = {}
    for kind, (hostile, _) in BOMBS.items():
        paths[kind] = folder / f"{kind.replace(' ', '_')}.npz"
        paths[kind].write_bytes(zip_bytes([meta_entry(), bias, hostile]))
        assert paths[kind].stat().st_size < 2 << 20
    setup = """
from minires import nn
from minires.checkpoint import load_checkpoint
def load(path):
    load_checkpoint(path, nn.Linear(2, 1))
"""
    outcomes = load_limited(setup, paths.values())
    return {kind: (path, outcomes[str(path)]) for kind, path in paths.items()}


@pytest.mark.parametrize("kind", BOMBS)
def test_memory_bombs_are_refused_quickly_and_cheaply(bomb_outcomes, kind):
    path, outcome = bomb_outcomes[kind]
    assert_refused_cheaply(outcome, "ValueError", BOMBS[kind][1], path)


def valid_meta():
    return {"format": "minires-checkpoint", "version": 1, "epoch": 0, "step": 0}


@pytest.mark.parametrize("name, contents, message", [
    ("duplicate", {"meta.npy": ..., "model/weight.npy": numpy.ones((1, 2), numpy.float32)},
     "'model/weight.npy' appears twice"),
    ("negative shape", {"meta.npy": ..., "model/weight.npy": b"neg"}, "negative shape"),
    ("strings as weights", {"meta.npy": ..., "model/weight.npy": numpy.array([["a", "b"]])},
     "holds dtype <U1 and shape (1, 2), not an array of numbers"),
    ("structured weights", {"meta.npy": ..., "model/weight.npy":
                            numpy.zeros((1, 2), dtype=[("a", "<f4")])}, "not an array of numbers"),
    ("numeric meta", {"meta.npy": numpy.array(1.5)}, "'meta.npy' holds dtype float64"),
    ("bad magic", {"meta.npy": ..., "model/weight.npy": b"\x93NUMPZ\x01\x00"},
     "no valid .npy header"),
    ("short data", {"meta.npy": ..., "model/weight.npy": b"short"},
     "header for 8 bytes of float32 (1, 2) but 4 bytes of data"),
])
def test_malformed_entries_are_value_errors_naming_file_and_entry(tmp_path, name, contents,
                                                                  message):
    path = tmp_path / "bad.npz"
    meta = npy(numpy.array(json.dumps(valid_meta())))
    weight = npy(numpy.ones((1, 2), numpy.float32))
    special = {b"neg": weight.replace(b"(1, 2)", b"(-1, -2)"), b"short": weight[:-4]}
    built = []
    for entry, value in contents.items():
        data = meta if value is ... else special.get(value) if isinstance(value, bytes) \
            and value in special else value if isinstance(value, bytes) else npy(value)
        built.append(Entry(entry, data))
    if name == "duplicate":
        built.append(Entry("model/weight.npy", weight))
    path.write_bytes(zip_bytes(built))

    with pytest.raises(ValueError) as raised:
        load_checkpoint(path, nn.Linear(2, 1))

    assert "bad.npz" in str(raised.value) and message in str(raised.value), str(raised.value)


def deep_json(depth):
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("change, message", [
    (lambda meta: meta.update(epoch=-1), "meta 'epoch' is -1, not an integer >= 0"),
    (lambda meta: meta.update(epoch="3"), "meta 'epoch' is '3'"),
    (lambda meta: meta.update(step=True), "meta 'step' is True"),
    (lambda meta: meta.update(step=1.5), "meta 'step' is 1.5"),
    (lambda meta: meta.pop("epoch"), "meta 'epoch' is None"),
    (lambda meta: meta.update(version=2), "meta 'version' is 2; this minires reads up to 1"),
    (lambda meta: meta.update(format="other"), "not a minires checkpoint"),
    (lambda meta: meta.update(settings=[1]), "meta 'settings' is not a JSON object"),
    (lambda meta: meta.update(progress="half"), "meta 'progress' is not a JSON object"),
    (lambda meta: meta.update(rng_state={"bit_generator": "os.system"}),
     "meta 'rng_state' names the bit generator 'os.system'"),
    (lambda meta: meta["rng_state"].update(state=7), "meta 'rng_state' is not a valid PCG64 state"),
    (lambda meta: meta["optimizer"].pop("lr"), "meta 'optimizer' has lr = None"),
    (lambda meta: meta["optimizer"].update(lr="fast"), "meta 'optimizer' has lr = 'fast'"),
    (lambda meta: meta["optimizer"].update(lr=float("nan")), "has lr = nan, not a finite number"),
    (lambda meta: meta["optimizer"].update(step_count=-1), "has step_count = -1"),
    (lambda meta: meta.update(optimizer=[]), "meta 'optimizer' is not a JSON object"),
    (lambda meta: meta.pop("optimizer"), "holds no optimizer state"),
    (lambda meta: meta["scheduler"].update(step_size=0), "meta 'scheduler' is refused by StepLR"),
    (lambda meta: meta["scheduler"].update(gamma=None), "meta 'scheduler' has gamma = None"),
    (lambda meta: meta["scheduler"].update(last_lr=[0.1, 0.2]),
     "last_lr must be a list of 1 finite rates >= 0"),
])
def test_malformed_meta_is_a_value_error_naming_the_field(tmp_path, change, message):
    save_run(tmp_path / "good.npz")
    with_meta(tmp_path / "good.npz", tmp_path / "bad.npz", change)
    model, optimizer, scheduler = fresh_run()
    before = snapshot(model), optimizer.lr, scheduler.state_dict()

    with pytest.raises(ValueError) as raised:
        load_checkpoint(tmp_path / "bad.npz", model, optimizer, scheduler)

    assert "bad.npz" in str(raised.value) and message in str(raised.value), str(raised.value)
    assert_untouched(model, before[0])      # validate first, then change anything
    assert (optimizer.lr, scheduler.state_dict()) == before[1:]


@pytest.mark.parametrize("text, message", [
    ("{not json", "meta is not valid JSON"),
    (deep_json(100_000), "meta is not valid JSON"),      # RecursionError inside json
    ("[1, 2]", "not a minires checkpoint"),
], ids=["broken", "nested 100,000 deep", "a list"])
def test_meta_that_is_not_a_json_object_is_a_value_error(tmp_path, text, message):
    save_run(tmp_path / "good.npz")
    contents = entries(tmp_path / "good.npz")
    contents["meta.npy"] = npy(numpy.array(text))
    write_entries(tmp_path / "bad.npz", contents)
    with pytest.raises(ValueError, match=f"bad.npz: {message}"):
        load_checkpoint(tmp_path / "bad.npz", *fresh_run())


def test_checkpoint_of_another_model_changes_nothing(tmp_path):
    path = tmp_path / "other.npz"
    other = nn.Linear(3, 2)
    save_checkpoint(path, other, optim.Adam(other.parameters()))
    model, optimizer, _ = fresh_run()
    before = snapshot(model)

    with pytest.raises(ValueError, match=r"other.npz: the entry 'optimizer/steps' has shape "
                                         r"\(2,\), expected \(6,\)"):
        load_checkpoint(path, model, optimizer)
    with pytest.raises(ValueError, match=r"other.npz: load_state_dict .*missing keys"):
        load_checkpoint(path, model)

    assert_untouched(model, before)


def test_an_array_of_objects_is_named_as_such_not_as_a_byte_count(tmp_path):
    """numpy.savez pickles an object array; the reader says what it holds, and runs no pickle."""
    save_run(tmp_path / "good.npz")
    with numpy.load(tmp_path / "good.npz") as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["model/0.weight"] = numpy.array([None, "text"], dtype=object)
    numpy.savez(tmp_path / "objects.npz", **arrays)
    with pytest.raises(ValueError, match=r"objects.npz: the entry 'model/0.weight.npy' holds dtype "
                                         r"object and shape \(2,\), not an array of numbers"):
        load_checkpoint(tmp_path / "objects.npz", *fresh_run())
