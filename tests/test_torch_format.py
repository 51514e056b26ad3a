"""Tests for minires.torch_format: PyTorch state-dict files read and written without torch.

Tests that build or read files with PyTorch take the ``torch`` fixture and skip without it.
"""
import io
import os
import pickle
import subprocess
import zipfile

import numpy
import pytest

from minires.torch_format import (UnsafeCheckpointError, load_torch_state_dict,
                                  save_torch_state_dict)

SUPPORTED_DTYPES = ["float32", "float64", "float16", "int64", "int32", "int16", "int8", "uint8",
                    "bool"]


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def make_model(torch, seed=0):
    """Conv2d -> BatchNorm2d -> ReLU -> Flatten -> Linear, run once so the statistics move."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(in_channels=3, out_channels=4, kernel_size=3),
        torch.nn.BatchNorm2d(num_features=4),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(in_features=16, out_features=5),
    )
    model(torch.randn(2, 3, 4, 4))  # (N, C, H, W) -> (2, 5); num_batches_tracked becomes 1
    return model


def make_state_dict(torch):
    """The model's state dict plus a transposed view and two slices of one storage."""
    state_dict = make_model(torch).state_dict()
    state_dict["transposed"] = torch.arange(12.0).reshape(3, 4).t()
    base = torch.arange(10, dtype=torch.float64)
    state_dict["head"] = base[:6]
    state_dict["tail"] = base[4:].view(2, 3)
    assert not state_dict["transposed"].is_contiguous()
    assert state_dict["tail"].storage_offset() == 4
    assert state_dict["tail"].untyped_storage().data_ptr() == base.untyped_storage().data_ptr()
    assert state_dict["1.num_batches_tracked"].dtype == torch.int64
    assert state_dict["1.num_batches_tracked"].dim() == 0
    return state_dict


def assert_same_as_torch(loaded, state_dict):
    assert list(loaded) == list(state_dict)
    for name, tensor in state_dict.items():
        expected = tensor.numpy()
        assert loaded[name].shape == expected.shape, name
        assert loaded[name].dtype == expected.dtype, name
        numpy.testing.assert_array_equal(loaded[name], expected, err_msg=name)


def test_reads_torch_file_saved_to_path(torch, tmp_path):
    state_dict = make_state_dict(torch)
    path = tmp_path / "weights.pt"
    torch.save(state_dict, path)
    assert zipfile.ZipFile(path).namelist()[0].startswith("weights/")

    loaded = load_torch_state_dict(path)

    assert type(loaded) is dict
    assert_same_as_torch(loaded, state_dict)
    assert loaded["1.num_batches_tracked"] == 1
    assert loaded["transposed"].flags.c_contiguous


def test_reads_torch_file_saved_to_stream(torch):
    state_dict = make_state_dict(torch)
    stream = io.BytesIO()
    torch.save(state_dict, stream)
    assert zipfile.ZipFile(stream).namelist()[0].startswith("archive/")
    stream.seek(0)

    assert_same_as_torch(load_torch_state_dict(stream), state_dict)


def test_reads_parameters_of_keep_vars_state_dict(torch, tmp_path):
    state_dict = make_model(torch).state_dict(keep_vars=True)
    torch.save(state_dict, tmp_path / "params.pt")

    loaded = load_torch_state_dict(tmp_path / "params.pt")

    assert_same_as_torch(loaded, {name: value.detach() for name, value in state_dict.items()})


def test_minires_file_loads_in_torch(torch, tmp_path):
    model = make_model(torch)
    arrays = {name: tensor.numpy() for name, tensor in model.state_dict().items()}
    path = tmp_path / "minires.pt"

    save_torch_state_dict(arrays, path)
    loaded = torch.load(path, weights_only=True)

    assert list(loaded) == list(arrays)
    for name, array in arrays.items():
        assert loaded[name].numpy().dtype == array.dtype, name
        numpy.testing.assert_array_equal(loaded[name].numpy(), array, err_msg=name)
    fresh = make_model(torch, seed=1)
    assert not numpy.array_equal(fresh.state_dict()["0.weight"].numpy(), arrays["0.weight"])
    fresh.load_state_dict(loaded)
    for name, tensor in fresh.state_dict().items():
        numpy.testing.assert_array_equal(tensor.numpy(), arrays[name], err_msg=name)


@pytest.mark.parametrize("dtype", SUPPORTED_DTYPES)
def test_minires_file_of_each_dtype_loads_in_torch(torch, tmp_path, dtype):
    array = (numpy.arange(24) % 7).astype(dtype).reshape(2, 3, 4)
    save_torch_state_dict({"x": array}, tmp_path / "x.pt")

    loaded = torch.load(tmp_path / "x.pt", weights_only=True)["x"].numpy()

    assert loaded.dtype == array.dtype
    numpy.testing.assert_array_equal(loaded, array)


@pytest.mark.parametrize("dtype", SUPPORTED_DTYPES)
def test_round_trip_is_exact(tmp_path, dtype):
    rng = numpy.random.default_rng(0)
    arrays = {
        "matrix": (rng.standard_normal((3, 5)) * 50).astype(dtype),
        "transposed": (rng.standard_normal((4, 2)) * 50).astype(dtype).T,  # not C-contiguous
        "scalar": numpy.array(7, dtype=dtype),
        "empty": numpy.zeros((0, 3), dtype=dtype),
    }
    path = tmp_path / "round.pt"

    save_torch_state_dict(arrays, path)
    loaded = load_torch_state_dict(path)

    assert list(loaded) == list(arrays)
    for name, array in arrays.items():
        assert loaded[name].dtype == array.dtype, name
        assert loaded[name].shape == array.shape, name
        numpy.testing.assert_array_equal(loaded[name], array, err_msg=name)


def test_refuses_unsupported_dtype_and_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match="complex64"):
        save_torch_state_dict({"z": numpy.zeros(2, dtype=numpy.complex64)}, tmp_path / "z.pt")
    assert os.listdir(tmp_path) == []


def test_atomic_write_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "model.pt"
    save_torch_state_dict({"w": numpy.ones(3, dtype=numpy.float32)}, path)
    save_torch_state_dict({"w": numpy.full(3, 2.0, dtype=numpy.float32)}, path)  # overwrite

    assert os.listdir(tmp_path) == ["model.pt"]
    assert zipfile.ZipFile(path).namelist()[0] == "model/data.pkl"
    numpy.testing.assert_array_equal(load_torch_state_dict(path)["w"], [2.0, 2.0, 2.0])


def write_zip(path, records):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in records.items():
            archive.writestr(name, data)


class Exploit:
    """Pickles as a call to ``function(*args)``, as a malicious checkpoint would."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


@pytest.mark.parametrize("function, args, refused", [
    (os.system, ("touch {pwned}",), "system"),
    (eval, ("__import__('os').system('touch {pwned}')",), "eval"),
    (subprocess.call, (["touch", "{pwned}"],), "call"),
])
def test_refuses_malicious_pickle_without_running_it(tmp_path, function, args, refused):
    pwned = tmp_path / "pwned"
    args = tuple(arg.format(pwned=pwned) if isinstance(arg, str) else
                 [part.format(pwned=pwned) for part in arg] for arg in args)
    path = tmp_path / "evil.pt"
    write_zip(path, {"evil/data.pkl": pickle.dumps({"w": Exploit(function, *args)}, protocol=2),
                     "evil/version": "3\n"})

    with pytest.raises(UnsafeCheckpointError, match=refused) as error:
        load_torch_state_dict(path)

    assert isinstance(error.value, ValueError)
    assert not pwned.exists()


def test_refuses_whole_pickled_model(torch, tmp_path):
    torch.save(make_model(torch), tmp_path / "whole.pt")

    with pytest.raises(UnsafeCheckpointError, match=r"model\.state_dict\(\)"):
        load_torch_state_dict(tmp_path / "whole.pt")


def test_refuses_legacy_format(torch, tmp_path):
    path = tmp_path / "old.pt"  # a name without "legacy", so the match below tests the message
    torch.save(make_model(torch).state_dict(), path, _use_new_zipfile_serialization=False)

    with pytest.raises(ValueError, match="legacy .* re-saving"):
        load_torch_state_dict(path)


def test_refuses_bfloat16(torch, tmp_path):
    torch.save({"w": torch.ones(2, dtype=torch.bfloat16)}, tmp_path / "bf16.pt")

    with pytest.raises(ValueError, match="bfloat16"):
        load_torch_state_dict(tmp_path / "bf16.pt")


def test_truncated_file_raises_value_error(torch, tmp_path):
    path = tmp_path / "cut.pt"
    torch.save(make_state_dict(torch), path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])

    with pytest.raises(ValueError, match="cut.pt"):
        load_torch_state_dict(path)


def rewrite_storage(source, target, key, change):
    """Copy the zip at source to target with the record data/<key> changed (None: left out)."""
    with zipfile.ZipFile(source) as archive:
        records = {name: archive.read(name) for name in archive.namelist()}
    record = next(name for name in records if name.endswith(f"/data/{key}"))
    data = change(records.pop(record))
    if data is not None:
        records[record] = data
    write_zip(target, records)


def test_missing_storage_record_raises_value_error(tmp_path):
    save_torch_state_dict({"a": numpy.ones(4), "b": numpy.zeros(3)}, tmp_path / "full.pt")
    rewrite_storage(tmp_path / "full.pt", tmp_path / "broken.pt", 1, lambda data: None)

    with pytest.raises(ValueError, match="full/data/1 is missing"):
        load_torch_state_dict(tmp_path / "broken.pt")


def test_short_storage_record_raises_value_error(tmp_path):
    save_torch_state_dict({"a": numpy.ones((4, 4), dtype=numpy.float32)}, tmp_path / "full.pt")
    rewrite_storage(tmp_path / "full.pt", tmp_path / "short.pt", 0, lambda data: data[:-4])

    with pytest.raises(ValueError, match="holds 60 bytes but its storage needs 64"):
        load_torch_state_dict(tmp_path / "short.pt")
