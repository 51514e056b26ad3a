"""Everything issue 16 asks of a GPU, in one command of under 5 minutes, printed as one Markdown table.

    PYTHONPATH=. python3 benchmarks/gpu_check.py        # from the repository root, on a machine with a GPU

It needs CuPy and a GPU (else it stops with one sentence), PyTorch built with CUDA for part 4
only, and pytest for part 1 only. Each part is a command of its own, run here as a child
process with a time limit (the limits add up to 4 minutes 40 s); the table gives each part's
seconds, and a part that runs out of time keeps the rows it printed.

1. The CuPy tests, slow ones included: tests/test_cupy_backend.py, test_fusion.py,
   test_fused_functions.py, test_backend.py. Most run on the strict stand-in device
   (minires/testing/strict_device.py) whether or not a GPU is present; the real CuPy is used
   for the names and keywords minires calls (they must exist in it), for NVRTC compiling
   CuPy-style kernel source and CuPy's own fusion tracer taking every fused function (no
   device needed for either), while test_backend.py's two tests of a CuPy without a usable GPU
   skip here.
2. ``benchmarks/gpu_parity.py``, fusion on and off: one ResNet50_layer4 training step in
   float64 on CuPy against NumPy (loss, gradients, weights after Adam, running statistics).
3. ``benchmarks/gpu_speed.py``, fusion on and off: images/s, training and evaluation, batches
   100 and 256.
4. ``benchmarks/gpu_launches.py``, fusion on and off: the kernels a training step and an
   evaluation forward run on the GPU (CUPTI, exact), beside the stand-in's operation count.

A warning a part printed (a fused function that left CuPy's fast fusion path warns) gets a row.
"""
import os
import re
import subprocess
import sys
import time

from minires import backend

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CUPY_TESTS = ["tests/test_cupy_backend.py", "tests/test_fusion.py", "tests/test_fused_functions.py",
              "tests/test_backend.py"]
BUDGET = 280        # seconds, all parts together: 5 minutes less the start and the summary
SUMMARY = re.compile(r"=* *(\d+ \w+.*) in [\d.]+s\b")      # pytest's last line: "69 passed in 25.10s"


def tests_rows(stdout, stderr):
    """(measured, result) rows from pytest -q -rfEs: the summary, each skip reason, each failure."""
    if "No module named pytest" in stderr:
        return [("", "not run: pytest is not importable here")]
    lines = stdout.splitlines()
    summary = [match.group(1) for match in map(SUMMARY.match, lines) if match]
    rows = [(", ".join(CUPY_TESTS) + ", slow included", summary[-1] if summary else "no summary")]
    for line in lines:
        skipped = re.match(r"SKIPPED \[(\d+)\] [^:]+:\d+: (.*)", line)
        if skipped:
            rows.append((f"skipped ({skipped.group(1)})", skipped.group(2)))
        elif line.startswith(("FAILED ", "ERROR ")):
            rows.append(("failed", line.split(" ", 1)[1]))
    return rows


def table_rows(stdout):
    """The cells of each row of the Markdown table a script printed, header and rule left out."""
    lines = [line for line in stdout.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def parity_rows(stdout, stderr):
    return [(quantity + (f" (largest: {where})" if where else ""), f"{difference}, tolerance {tolerance}")
            for quantity, difference, where, tolerance in table_rows(stdout)]


def speed_rows(stdout, stderr):
    rows = []
    for batch, training, evaluation in table_rows(stdout):
        rows += [(f"batch {batch}, training", f"{training} images/s"),
                 (f"batch {batch}, evaluation", f"{evaluation} images/s")]
    return rows


def launches_rows(stdout, stderr):
    rows = []
    for counted, training, evaluation in table_rows(stdout):
        rows += [(f"{counted}, training step", training), (f"{counted}, evaluation forward", evaluation)]
    return rows


FUSION = {"on": {"MINIRES_FUSION": "1"}, "off": {"MINIRES_FUSION": "0"}}
# (part, command after the Python executable, extra environment, rows of its output, seconds allowed)
PARTS = [("1. CuPy tests", ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfEs", *CUPY_TESTS], {},
          tests_rows, 70)]
PARTS += [(f"2. parity, fusion {state}", ["benchmarks/gpu_parity.py"], FUSION[state], parity_rows, 35)
          for state in FUSION]
PARTS += [(f"3. speed, fusion {state}", ["benchmarks/gpu_speed.py", "--rounds", "3", "--steps", "10"],
           FUSION[state], speed_rows, 45) for state in FUSION]
PARTS += [(f"4. launches, fusion {state}", ["benchmarks/gpu_launches.py"], FUSION[state],
           launches_rows, 25) for state in FUSION]


def run_part(command, environment, rows_of, seconds):
    """(rows, warnings, seconds taken) of one part, run as a child process for at most ``seconds``."""
    env = {**os.environ, **environment,
           "PYTHONPATH": os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")]))}
    start = time.perf_counter()
    try:
        result = subprocess.run([sys.executable, *command], cwd=REPO, env=env, capture_output=True,
                                text=True, timeout=seconds)
        stdout, stderr, status = result.stdout, result.stderr, result.returncode
    except subprocess.TimeoutExpired as expired:      # what it printed before: bytes, or None
        stdout, stderr, status = _text(expired.stdout), _text(expired.stderr), None
    taken = time.perf_counter() - start
    rows = rows_of(stdout, stderr)
    if status is None:
        rows.append(("", f"stopped: it ran out of its {seconds:.0f} s"))
    elif status != 0 and not rows:
        last = [line for line in stderr.splitlines() if line.strip()]
        rows.append(("", f"failed (exit {status}): {last[-1] if last else 'no message'}"))
    warnings = sorted(set(re.findall(r"(\w*Warning: .*)", stderr)))
    return rows, warnings, taken


def _text(output):
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""


def cell(text):
    """``text`` as a Markdown table cell: one line, its bars escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def machine():
    """One line: the GPU, CuPy, CUDA and the date."""
    import cupy
    runtime = cupy.cuda.runtime
    name = runtime.getDeviceProperties(0)["name"]
    name = name.decode() if isinstance(name, bytes) else name

    def version(number):
        return f"{number // 1000}.{number % 1000 // 10}"

    return (f"{name}, CuPy {cupy.__version__}, CUDA runtime {version(runtime.runtimeGetVersion())}, "
            f"driver {version(runtime.driverGetVersion())}, Python {sys.version.split()[0]}, "
            f"{time.strftime('%Y-%m-%d')}")


def main():
    problem = backend.cupy_problem()
    if problem is not None:
        print(f"gpu_check: {problem}.", file=sys.stderr)
        sys.exit(2)
    start = time.perf_counter()
    lines = ["| part | measured | result | seconds |", "|---|---|---|---:|"]
    for part, command, environment, rows_of, seconds in PARTS:
        left = BUDGET - (time.perf_counter() - start)
        if left < 5:
            lines.append(f"| {part} | | not run: the 5 minutes are spent | |")
            continue
        rows, warnings, taken = run_part(command, environment, rows_of, min(seconds, left))
        rows += [("warning", warning) for warning in warnings[:5]]
        for index, (measured, result) in enumerate(rows):
            seconds_taken = f"{taken:.0f}" if index == 0 else ""
            lines.append(f"| {part} | {cell(measured)} | {cell(result)} | {seconds_taken} |")
            print(lines[-1], file=sys.stderr, flush=True)       # progress, should the run be cut short
    print(machine())
    print("\n".join(lines))
    print(f"total: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
