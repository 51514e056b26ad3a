"""Tests for minires.torch_format: PyTorch state-dict files read and written without torch.

Tests that build or read files with PyTorch take the ``torch`` fixture and skip without it.
Loads that a memory bomb could turn into gigabytes run in a child process with a capped address
space (tests/limited_process.py) and must be refused quickly and cheaply.
"""
import io
import os
import pickle
import pickletools
import struct
import subprocess
import zipfile

import numpy
import pytest

from minires.torch_format import (
    TorchFormatError,
    UnsafeCheckpointError,
    load_torch_state_dict,
    save_torch_state_dict,
)
from tests.support.hostile_zip import DEFLATED, Entry, deflate_bomb, zip_bytes
from tests.support.limited_process import assert_refused_cheaply, load_limited

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


# ---------------------------------------------------------------- hostile and unusual files
#
# data.pkl programs are assembled opcode by opcode, as a crafted file would be; the zips around
# them come from tests/hostile_zip.py, which also writes what zipfile will not (deflate bombs).

def op_global(module, name):
    return pickle.GLOBAL + f"{module}\n{name}\n".encode()


def op_value(obj):
    """Opcodes that push a plain value (str, int, tuple of ints); [2:-1] drops PROTO and STOP."""
    return pickletools.optimize(pickle.dumps(obj, protocol=2))[2:-1]


def op_storage(key, numel, storage_type="FloatStorage"):
    return (pickle.MARK + op_value("storage") + op_global("torch", storage_type) + op_value(key)
            + op_value("cpu") + op_value(numel) + pickle.TUPLE + pickle.BINPERSID)


def op_tensor(storage, size, stride, offset=0):
    """_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())"""
    return (op_global("torch._utils", "_rebuild_tensor_v2") + pickle.MARK + storage
            + op_value(offset) + op_value(size) + op_value(stride) + pickle.NEWFALSE
            + op_global("collections", "OrderedDict") + pickle.EMPTY_TUPLE + pickle.REDUCE
            + pickle.TUPLE + pickle.REDUCE)


def op_state_dict(items):
    """A data.pkl program: OrderedDict() with items [(name, opcodes of the value)]."""
    body = b"".join(op_value(name) + value for name, value in items)
    return (pickle.PROTO + bytes([2]) + op_global("collections", "OrderedDict") + pickle.EMPTY_TUPLE
            + pickle.REDUCE + pickle.MARK + body + pickle.SETITEMS + pickle.STOP)


def torch_zip(program, records=(), extra=()):
    """A torch-style zip (prefix 'f'): data.pkl, data/<key> records, byteorder and version."""
    return zip_bytes([Entry("f/data.pkl", program)]
                     + [Entry(f"f/data/{key}", data) for key, data in records]
                     + [Entry("f/byteorder", b"little"), Entry("f/version", b"3\n"), *extra])


def test_hand_assembled_file_reads_as_expected(tmp_path):
    """The helpers below build valid files: the hostile ones differ from this in one thing."""
    program = op_state_dict([("w", op_tensor(op_storage("0", 6), (2, 3), (1, 2)))])
    (tmp_path / "f.pt").write_bytes(torch_zip(program, [("0", numpy.arange(6.0, dtype="<f4")
                                                          .tobytes())]))
    loaded = load_torch_state_dict(tmp_path / "f.pt")
    numpy.testing.assert_array_equal(loaded["w"], numpy.arange(6.0).reshape(3, 2).T)


GIB = 1 << 30
ONE_MB_OF_FLOATS = numpy.zeros(1 << 18, dtype="<f4").tobytes()


def many_views_program(count):
    """count names, each a full view of one 1 MB storage: the call's arguments are built once
    and reused from the memo, so each further tensor costs the file a few bytes."""
    arguments = (pickle.MARK + op_storage("0", 1 << 18) + op_value(0) + op_value((1 << 18,))
                 + op_value((1,)) + pickle.NEWFALSE + op_global("collections", "OrderedDict")
                 + pickle.EMPTY_TUPLE + pickle.REDUCE + pickle.TUPLE + pickle.BINPUT + bytes([1]))
    first = (op_global("torch._utils", "_rebuild_tensor_v2") + pickle.BINPUT + bytes([0])
             + arguments + pickle.REDUCE)
    again = pickle.BINGET + bytes([0]) + pickle.BINGET + bytes([1]) + pickle.REDUCE
    return op_state_dict([("t0", first)] + [(f"t{i}", again) for i in range(1, count)])


TORCH_BOMBS = {   # name: (file bytes, the refusal)
    # 635 bytes in the issue: a 40000 x 40000 view of a single number
    "stride-0 tensor": (
        torch_zip(op_state_dict([("w", op_tensor(op_storage("0", 1), (40000, 40000), (0, 0)))]),
                  [("0", bytes(4))]),
        "copy the storages' 4 bytes more than 4 times over (and more than 67,108,864 bytes"),
    "1000 views of one storage": (
        torch_zip(many_views_program(1000), [("0", ONE_MB_OF_FLOATS)]),
        "copy the storages' 1,048,576 bytes more than 4 times over"),
    "deflated data.pkl": (
        zip_bytes([Entry("f/data.pkl", deflate_bomb(GIB), DEFLATED, size=GIB)]),
        "the record f/data.pkl is compressed"),
    "deflated storage": (
        torch_zip(op_state_dict([("w", op_tensor(op_storage("0", GIB // 4), (GIB // 4,), (1,)))]),
                  extra=[Entry("f/data/0", deflate_bomb(GIB), DEFLATED, size=GIB)]),
        "the record f/data/0 is compressed"),
    # The unpickler sizes its memo table from the index: 8 bytes per entry up to it
    "memo index 2**31": (
        torch_zip(pickle.PROTO + bytes([2]) + pickle.NONE + pickle.LONG_BINPUT
                  + struct.pack("<I", 1 << 31) + pickle.STOP),
        "stores memo entry 2,147,483,648 after only 0"),
    "storage of 1e12 elements": (
        torch_zip(op_state_dict([("w", op_tensor(op_storage("0", 10 ** 12), (2,), (1,)))]),
                  [("0", bytes(8))]),
        "holds 8 bytes but its storage needs 4000000000000"),
    "record sizes that lie": (
        zip_bytes([Entry("f/data.pkl", op_state_dict([]), size=GIB, stored_size=GIB)]),
        "records claim 1,073,74"),
}


@pytest.fixture(scope="module")
def torch_bomb_outcomes(tmp_path_factory):
    """Every bomb loaded in one child process with 800 MB of address space."""
    folder = tmp_path_factory.mktemp("bombs")
    paths = {}
    for kind, (data, _) in TORCH_BOMBS.items():
        paths[kind] = folder / f"{kind.replace(' ', '_')}.pt"
        paths[kind].write_bytes(data)
        assert paths[kind].stat().st_size < 2 << 20
    setup = "from minires.torch_format import load_torch_state_dict as load"
    outcomes = load_limited(setup, paths.values())
    return {kind: (path, outcomes[str(path)]) for kind, path in paths.items()}


@pytest.mark.parametrize("kind", TORCH_BOMBS)
def test_memory_bombs_are_refused_quickly_and_cheaply(torch_bomb_outcomes, kind):
    path, outcome = torch_bomb_outcomes[kind]
    assert_refused_cheaply(outcome, "TorchFormatError", TORCH_BOMBS[kind][1], path)


def test_an_expanded_tensor_loads_as_its_values(torch, tmp_path):
    """A stride-0 view saved by torch (storage of 3, 12 elements) is a valid file, read as torch reads it."""
    base = torch.arange(3, dtype=torch.float32)
    torch.save({"e": base.expand(4, 3), "wide": base[:1].expand(1000, 1000)}, tmp_path / "e.pt")
    loaded = load_torch_state_dict(tmp_path / "e.pt")
    numpy.testing.assert_array_equal(loaded["e"], numpy.tile(numpy.arange(3.0), (4, 1)))
    numpy.testing.assert_array_equal(loaded["wide"], numpy.zeros((1000, 1000)))


def test_tied_views_within_the_copy_limit_still_load(tmp_path):
    """Tied weights (one storage under several names) are legitimate: 4 full copies load."""
    (tmp_path / "tied.pt").write_bytes(torch_zip(many_views_program(4),
                                                 [("0", ONE_MB_OF_FLOATS)]))
    assert list(load_torch_state_dict(tmp_path / "tied.pt")) == ["t0", "t1", "t2", "t3"]


@pytest.mark.parametrize("program, records, message", [
    (op_state_dict([("a", op_tensor(op_storage("0", 2), (2,), (1,))),
                    ("b", op_tensor(op_storage("0", 1, "LongStorage"), (1,), (1,)))]),
     [("0", bytes(8))], "the storage f/data/0 is read as 1 int64 and as 2 float32"),
    (op_state_dict([("a", op_tensor(op_value([1, 2]), (2,), (1,)))]), [],
     "is not built on a storage of the file"),
    (op_state_dict([("a", op_tensor(op_storage("0", 2), (2.0,), (1,)))]), [("0", bytes(8))],
     "is malformed"),
    (op_state_dict([("a", op_tensor(op_storage("0", 2), (1,) * 65, (1,) * 65))]),
     [("0", bytes(8))], "is malformed"),
    (op_state_dict([("a", op_tensor(op_storage("0", 2), (3,), (1,)))]), [("0", bytes(8))],
     "does not fit in its storage of 2 elements"),
    (op_state_dict([("a", op_storage(0, 2))]), [("0", bytes(8))], "unexpected persistent id"),
    (pickle.PROTO + bytes([2]) + op_global("collections", "OrderedDict") + op_value(((1, 2),))
     + pickle.REDUCE + pickle.STOP, [], "calls OrderedDict with arguments"),
    (pickle.PROTO + bytes([9]) + pickle.STOP, [], "f/data.pkl is corrupt"),   # pickle's own error
    (b"\xff\xfe not a pickle", [], "f/data.pkl is corrupt"),
    (op_state_dict([("a", op_value(3))]), [], "the entry 'a' is of type int, not a tensor"),
], ids=["two dtypes", "not a storage", "float size", "65 dimensions", "past the storage",
        "integer key", "OrderedDict(args)", "protocol 9", "garbage", "not a tensor"])
def test_malformed_file_is_a_torch_format_error_naming_it(tmp_path, program, records, message):
    (tmp_path / "bad.pt").write_bytes(torch_zip(program, records))
    with pytest.raises(TorchFormatError) as raised:
        load_torch_state_dict(tmp_path / "bad.pt")
    assert "bad.pt" in str(raised.value) and message in str(raised.value), str(raised.value)
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize("byteorder, message", [
    (b"\xff\xfe", r"holds b'\\xff\\xfe', not b'little' or b'big'"),    # not UTF-8
    (b"middle", "holds b'middle'"),
    (b"little" * 1000, "holds b'littlelittlelitt',"),                  # read 16 bytes only
], ids=["not UTF-8", "unknown", "6,000 bytes"])
def test_bad_byteorder_record_is_refused(tmp_path, byteorder, message):
    program = op_state_dict([("w", op_tensor(op_storage("0", 1), (1,), (1,)))])
    records = zip_bytes([Entry("f/data.pkl", program), Entry("f/data/0", bytes(4)),
                         Entry("f/byteorder", byteorder), Entry("f/version", b"3\n")])
    (tmp_path / "order.pt").write_bytes(records)
    with pytest.raises(TorchFormatError, match=f"order.pt: the record f/byteorder {message}"):
        load_torch_state_dict(tmp_path / "order.pt")


@pytest.mark.parametrize("dtype, named", [
    ("complex64", "complex64"), ("uint16", "uint16"), ("float8_e4m3fn", "float8_e4m3fn"),
    ("uint32", "uint32"),
])
def test_legitimate_unsupported_dtypes_say_dtype_unsupported(torch, tmp_path, dtype, named):
    torch.save({"w": torch.zeros(2, dtype=getattr(torch, dtype))}, tmp_path / "x.pt")
    with pytest.raises(TorchFormatError, match=f"holds {named} tensors: dtype unsupported") \
            as raised:
        load_torch_state_dict(tmp_path / "x.pt")
    assert not isinstance(raised.value, UnsafeCheckpointError)


def test_non_zip_file_is_named_as_neither_kind_of_checkpoint(tmp_path):
    (tmp_path / "README.md").write_text("# minires\n")
    with pytest.raises(TorchFormatError, match="README.md: not a minires checkpoint or a "
                                               "PyTorch state dict"):
        load_torch_state_dict(tmp_path / "README.md")


def test_every_flipped_byte_is_a_torch_format_error_naming_the_file(torch):
    stream = io.BytesIO()
    torch.save({"w": torch.arange(6.0).reshape(2, 3), "t": torch.arange(6.0).reshape(2, 3).t(),
                "n": torch.tensor(3)}, stream)
    data = stream.getvalue()
    for position in range(0, len(data), 2):
        damaged = io.BytesIO(bytes(data[:position]) + bytes([data[position] ^ 0xFF])
                             + data[position + 1:])
        damaged.name = "flip.pt"
        try:
            load_torch_state_dict(damaged)
        except TorchFormatError as error:
            assert "flip.pt" in str(error), (position, str(error))


def test_save_is_not_blocked_by_a_leftover_of_the_same_process_id(tmp_path):
    path = tmp_path / "model.ckpt"
    (tmp_path / f"model.ckpt.{os.getpid()}.tmp").write_bytes(b"left by a killed save")
    save_torch_state_dict({"w": numpy.ones(2, dtype=numpy.float32)}, path)
    assert os.listdir(tmp_path) == ["model.ckpt"]
