"""Helpers the test files share (fixtures live in ``tests/conftest.py``).

    gradients   float64 leaves and the tolerances of the finite-difference checks
    parity      the same layer in minires and PyTorch: same weights, input and upstream gradient
    networks    the small Conv-BN-ReLU-Pool-Linear network several files train
    scripts     run examples/train_cifar.py as a user does
    cifar_files write a CIFAR-10 folder in the official binary layout

The tools that also serve the benchmarks (the strict stand-in device, the course's PyTorch
network) live in ``minires.testing``.
"""
