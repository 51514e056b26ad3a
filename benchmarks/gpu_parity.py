"""CuPy against NumPy: one ResNet50_layer4 training step in float64, the largest differences.

    python benchmarks/gpu_parity.py                     # CuPy on the GPU, fusion as MINIRES_FUSION says
    MINIRES_FUSION=0 python benchmarks/gpu_parity.py    # the unfused code on the GPU
    python benchmarks/gpu_parity.py --stand-in          # the strict stand-in device: no GPU needed

Both backends start from the same weights and the same batch and run the course's training
step (``examples/train_cifar.py``'s ``train_step``: forward, cross entropy, backward, Adam) in
float64. For the loss, every parameter's gradient, every weight after the Adam step and the
batch norms' running statistics it prints the largest relative difference,

    max |device - numpy| / max |numpy|      over one array, the largest over the arrays named,

and exits with status 1 if one exceeds its tolerance. The two backends add in different
orders, which in float64 moves a result by 1e-12 or less (measured on the stand-in at batch 2:
at most 3.5e-12); a float32 round trip shows at 1e-7 and a wrong kernel far above. The weights
have a looser tolerance, 1e-6: Adam's first step divides by |g| + eps, which magnifies the
rounding of the gradients whose size is near eps (4.9e-9 on the stand-in).

Rounding noise is measured as noise. A conv bias that feeds a batch norm has a true gradient of
zero (the normalisation removes any constant), so its computed gradient is noise on both sides:
an array whose largest gradient is below 1e-10 of the model's largest is measured against the
model's largest gradient instead of its own. Adam's first step, lr * g / (|g| + eps), turns a
noise gradient into a step of about lr, so weights are compared only where the gradient is
above that level (as tests/test_cupy_backend.py does), still against the array's largest weight.
"""
import argparse
import contextlib
import os
import sys

import numpy

import minires
from minires import backend
from minires.models import ResNet50_layer4
from minires.testing import strict_device

# the course's step, exactly as the training script runs it
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
from train_cifar import train_step  # noqa: E402

NOISE = 1e-10       # a gradient below NOISE x the model's largest is rounding noise
TOLERANCES = {"loss": 1e-9, "gradients": 1e-9, "weights": 1e-6, "running statistics": 1e-9}


@contextlib.contextmanager
def device(stand_in):
    """CuPy as the active backend inside the block, or the strict stand-in for it."""
    if stand_in:
        with strict_device.installed():
            yield
        return
    backend.set_backend("cupy")
    try:
        yield
    finally:
        backend.set_backend("numpy")


def training_step(make_model, initial_state, images, labels):
    """One float64 training step on the active backend from ``initial_state``; host copies of
    the loss, the gradients, the weights after the step and the buffers, by name."""
    model = make_model()
    model.load_state_dict(initial_state)        # host arrays -> the active backend
    model.double()
    optimizer = minires.optim.Adam(model.parameters(), lr=1e-3)
    x = backend.to_device(images, dtype="float64")      # (N, 3, 32, 32)
    y = backend.to_device(labels)                       # (N,)
    loss = train_step(model, optimizer, x, y)
    return {"loss": {"loss": numpy.asarray(loss.item())},
            "gradients": {k: backend.to_host(p.grad) for k, p in model.named_parameters()},
            "weights": {k: backend.to_host(p.data) for k, p in model.named_parameters()},
            "running statistics": {k: backend.to_host(b.data) for k, b in model.named_buffers()}}


def relative_difference(device_array, host_array, floor=0.0):
    """max |device - host| / max(max |host|, floor); 0 for two empty arrays."""
    if host_array.size == 0:
        return 0.0
    scale = max(float(numpy.abs(host_array).max()), floor)
    difference = float(numpy.abs(device_array.astype(numpy.float64) - host_array).max())
    return difference / scale if scale > 0 else difference


def largest_differences(on_device, on_host):
    """[(quantity, largest relative difference, the array where it is, tolerance)]."""
    gradients = on_host["gradients"]
    largest = max(float(numpy.abs(g).max()) for g in gradients.values())
    rows = []
    for quantity, host_arrays in on_host.items():
        differences = {}
        for name, host in host_arrays.items():
            device_array = on_device[quantity][name]
            if quantity == "gradients":     # a gradient that is all noise: against the largest
                noise = float(numpy.abs(host).max()) <= NOISE * largest
                differences[name] = relative_difference(device_array, host, largest if noise else 0.0)
            elif quantity == "weights":
                signal = numpy.abs(gradients[name]) > NOISE * largest     # Adam's noise steps left out
                differences[name] = relative_difference(device_array[signal], host[signal],
                                                        float(numpy.abs(host).max()))
            else:
                differences[name] = relative_difference(device_array, host)
        where = max(differences, key=differences.get)
        rows.append((quantity, differences[where], where if len(differences) > 1 else "",
                     TOLERANCES[quantity]))
    return rows


def parity(stand_in=False, batch=8, make_model=ResNet50_layer4, seed=0):
    """The rows of ``largest_differences`` for one training step of ``make_model()`` at ``batch``,
    on CuPy (or the stand-in) against NumPy."""
    backend.set_backend("numpy")
    minires.manual_seed(seed)
    initial_state = {k: v.copy() for k, v in make_model().state_dict().items()}
    rng = numpy.random.default_rng(seed)
    images = rng.standard_normal((batch, 3, 32, 32))       # (N, 3, 32, 32)
    labels = rng.integers(0, 10, size=batch)                # (N,)
    on_host = training_step(make_model, initial_state, images, labels)
    with device(stand_in):
        on_device = training_step(make_model, initial_state, images, labels)
    return largest_differences(on_device, on_host)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stand-in", action="store_true",
                        help="run the device side on minires.testing.strict_device (no GPU needed)")
    parser.add_argument("--batch", type=int, default=8, help="images in the step (default 8)")
    args = parser.parse_args()
    if not args.stand_in and backend.cupy_problem() is not None:
        print(f"gpu_parity: {backend.cupy_problem()}.", file=sys.stderr)
        sys.exit(2)
    rows = parity(args.stand_in, args.batch)
    device_name = "the strict stand-in" if args.stand_in else "CuPy"
    print(f"ResNet50_layer4, one training step in float64 at batch {args.batch}: {device_name} "
          f"(fusion {'on' if backend.fusion_enabled() else 'off'}) against NumPy")
    print("| quantity | largest relative difference | where | tolerance |")
    print("|---|---:|---|---:|")
    for quantity, difference, where, tolerance in rows:
        print(f"| {quantity} | {difference:.1e} | {where} | {tolerance:.0e} |")
    sys.exit(0 if all(difference <= tolerance for _, difference, _, tolerance in rows) else 1)


if __name__ == "__main__":
    main()
