"""minires.speed.blockwise: large element-wise updates in cache-sized blocks on several threads."""
import numpy
import pytest

import minires
from minires import optim
from minires.speed import blockwise


@pytest.mark.parametrize("make", [lambda ps: optim.Adam(ps, lr=1e-2, weight_decay=1e-3),
                                  lambda ps: optim.SGD(ps, lr=1e-2, momentum=0.9, nesterov=True)])
def test_blockwise_update_equals_whole_array_update(make, monkeypatch):
    """The optimizers update 1M+ parameters in cache-sized blocks on several threads;
    element-wise arithmetic must give bit-identical results either way."""
    rng = numpy.random.default_rng(0)
    values = rng.standard_normal((1100, 1000)).astype(numpy.float32)    # 1.1 M elements
    grads = [rng.standard_normal(values.shape).astype(numpy.float32) for _ in range(3)]

    def run():
        parameter = minires.nn.Parameter(values.copy())
        optimizer = make([parameter])
        for g in grads:
            optimizer.zero_grad()
            parameter.grad = g.copy()
            optimizer.step()
        return parameter.numpy()

    blocked = run()
    monkeypatch.setattr(blockwise, "MIN_ELEMENTS", 1 << 40)
    whole = run()
    numpy.testing.assert_array_equal(blocked, whole)
    assert not numpy.array_equal(blocked, values)


def test_blockwise_threads_keep_the_callers_numpy_error_state():
    """numpy.errstate around a step holds inside the optimizer's worker threads too."""
    import warnings
    parameter = minires.nn.Parameter(numpy.full((1100, 1000), 3e38, dtype=numpy.float32))
    optimizer = optim.SGD([parameter], lr=1.0)
    parameter.grad = numpy.full((1100, 1000), -3e38, dtype=numpy.float32)   # p - lr * g: inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with numpy.errstate(over="ignore"):
            optimizer.step()
    assert numpy.isinf(parameter.numpy()).all()


def test_one_thread_still_updates_in_blocks_with_the_same_result(monkeypatch):
    """With OMP_NUM_THREADS=1 the blocks run one after the other, in this thread."""
    import threading
    monkeypatch.setattr(blockwise, "thread_count", lambda: 1)
    seen = []

    def record(block):
        seen.append((threading.current_thread(), len(block)))
        block += 1

    values = numpy.zeros(3 << 20, dtype=numpy.float32)
    blockwise.blockwise(record, values)
    assert len(seen) == 12 and {thread for thread, _ in seen} == {threading.current_thread()}
    assert (values == 1).all()
