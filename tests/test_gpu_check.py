"""The GPU check's scripts, proved without a GPU: benchmarks/gpu_parity.py on the strict stand-in,
the kernel count of benchmarks/gpu_launches.py on a trace, how benchmarks/gpu_check.py reads
pytest's summary, and each script's refusal without a usable GPU.

On a machine with a GPU, ``python benchmarks/gpu_check.py`` runs them on CuPy (README, "On a GPU").
"""
import importlib.util
import subprocess
import sys

import numpy
import pytest

from minires import backend, nn
from tests.support.scripts import ENV, REPO

BENCHMARKS = REPO / "benchmarks"


def load(name):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gpu_check = load("gpu_check")
gpu_parity = load("gpu_parity")
gpu_launches = load("gpu_launches")


def small_network():
    """Every kind of layer ResNet50_layer4 has, small: (N, 3, 32, 32) -> (N, 10)."""
    return nn.Sequential(
        nn.Conv2d(in_channels=3, out_channels=4, kernel_size=3, stride=2, padding=1),   # (N, 4, 16, 16)
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=2, stride=2),                                          # (N, 4, 8, 8)
        nn.AvgPool2d(kernel_size=2, stride=2),                                          # (N, 4, 4, 4)
        nn.Flatten(),
        nn.Linear(in_features=64, out_features=10),
    )


def test_parity_on_the_stand_in_is_within_every_tolerance():
    rows = gpu_parity.parity(stand_in=True, batch=2, make_model=small_network)
    assert [quantity for quantity, *_ in rows] == ["loss", "gradients", "weights", "running statistics"]
    for quantity, difference, _, tolerance in rows:
        assert difference <= tolerance, quantity
    parameters = dict(small_network().named_parameters())
    assert rows[1][2] in parameters and rows[2][2] in parameters


def test_parity_finds_a_wrong_gradient_and_names_it():
    backend.set_backend("numpy")
    state = small_network().state_dict()
    rng = numpy.random.default_rng(0)
    images, labels = rng.standard_normal((2, 3, 32, 32)), numpy.array([1, 7])
    on_host = gpu_parity.training_step(small_network, state, images, labels)
    wrong = gpu_parity.training_step(small_network, state, images, labels)
    wrong["gradients"]["6.weight"] = wrong["gradients"]["6.weight"] * (1 + 1e-6)
    rows = {quantity: (difference, where) for quantity, difference, where, _ in
            gpu_parity.largest_differences(wrong, on_host)}
    assert rows["gradients"][1] == "6.weight"
    assert rows["gradients"][0] == pytest.approx(1e-6, rel=1e-3)
    assert rows["loss"][0] == 0.0


def test_noise_gradients_are_measured_against_the_models_largest():
    """A conv bias before batch norm has a true gradient of zero: its noise is not a difference."""
    host = {"gradients": {"w": numpy.array([2.0, -1.0]), "b": numpy.array([1e-17, -3e-17])},
            "weights": {"w": numpy.array([0.5, 0.25]), "b": numpy.array([0.1, 0.2])}}
    device = {"gradients": {"w": numpy.array([2.0, -1.0]), "b": numpy.array([-2e-17, 1e-17])},
              "weights": {"w": numpy.array([0.5, 0.25 + 1e-9]), "b": numpy.array([0.3, 0.0])}}
    rows = {quantity: (difference, where) for quantity, difference, where, _ in
            gpu_parity.largest_differences(device, host)}
    assert rows["gradients"] == (pytest.approx(4e-17 / 2.0, rel=1e-6, abs=0), "b")
    # b's gradient is noise, so Adam moved its weights by noise only: they are not compared
    assert rows["weights"] == (pytest.approx(1e-9 / 0.5, rel=1e-6, abs=0), "w")


@pytest.mark.slow
def test_the_parity_script_runs_resnet_on_the_stand_in():
    result = subprocess.run([sys.executable, str(BENCHMARKS / "gpu_parity.py"), "--stand-in",
                             "--batch", "2"], cwd=REPO, env=ENV, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line.split("|")[1].strip() for line in result.stdout.splitlines() if line.startswith("| ")]
    assert rows == ["quantity", "loss", "gradients", "weights", "running statistics"]


def test_the_kernels_of_a_trace_are_counted_by_kind():
    """torch.profiler's Chrome trace: GPU work has the categories kernel, gpu_memcpy, gpu_memset."""
    trace = {"traceEvents": [
        {"ph": "X", "cat": "kernel", "name": "cupy_multiply__float_float_float"},
        {"ph": "X", "cat": "kernel", "name": "sm90_xmma_gemm_f32f32"},
        {"ph": "X", "cat": "Kernel", "name": "cupy_sum"},
        {"ph": "X", "cat": "gpu_memset", "name": "Memset (Device)"},
        {"ph": "X", "cat": "gpu_memcpy", "name": "Memcpy HtoD (Pageable -> Device)"},
        {"ph": "X", "cat": "cuda_driver", "name": "cuLaunchKernel"},
        {"ph": "f", "cat": "ac2g", "name": "ac2g"},
    ]}
    assert gpu_launches.kernels_in(trace) == {"kernels": 3, "copies": 1, "memsets": 1}


@pytest.mark.slow
def test_the_tests_row_reads_pytests_own_summary(tmp_path):
    (tmp_path / "test_three.py").write_text(
        "import pytest\n"
        "@pytest.mark.parametrize('i', [1, 2])\n"
        "def test_skips(i):\n    pytest.skip('a usable GPU is present')\n"
        "def test_fails():\n    assert 1 == 2\n"
        "def test_passes():\n    pass\n")
    command = gpu_check.PARTS[0][1][:-len(gpu_check.CUPY_TESTS)] + ["test_three.py"]
    result = subprocess.run([sys.executable, *command], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    rows = gpu_check.tests_rows(result.stdout, result.stderr)
    assert rows[0][1] == "1 failed, 1 passed, 2 skipped"
    assert ("skipped (2)", "a usable GPU is present") in rows
    assert ("failed", "test_three.py::test_fails - assert 1 == 2") in rows
    assert gpu_check.tests_rows("", "/usr/bin/python3: No module named pytest\n") == \
        [("", "not run: pytest is not importable here")]


def test_a_table_cell_is_one_line_with_its_bars_escaped():
    assert gpu_check.cell("fuse: a | b\n  left") == "fuse: a \\| b left"


@pytest.mark.parametrize("script", ["gpu_check.py", pytest.param("gpu_launches.py", marks=pytest.mark.slow),
                                    pytest.param("gpu_parity.py", marks=pytest.mark.slow)])
@pytest.mark.slow
def test_without_a_usable_gpu_the_scripts_stop_with_one_sentence(script):
    problem = backend.cupy_problem()
    if problem is None:
        pytest.skip("a usable GPU is present")
    result = subprocess.run([sys.executable, str(BENCHMARKS / script)], cwd=REPO, env=ENV,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == f"{script[:-3]}: {problem}.\n"
