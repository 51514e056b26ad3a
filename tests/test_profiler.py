"""minires.profiler: time per Function, forward and backward."""
import numpy

import minires
import minires.functional as F
from minires import nn


def test_profile_counts_every_function_call_and_stops_afterwards():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 4 * 4, 2))
    x = minires.Tensor(numpy.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype(numpy.float32))
    with minires.profiler.profile() as report:
        F.cross_entropy(model(x), numpy.array([0, 1])).backward()
    assert report.calls["Conv2d", "forward"] == 1 and report.calls["Conv2d", "backward"] == 1
    assert report.calls["BatchNorm2d", "backward"] == 1 and report.calls["CrossEntropy", "forward"] == 1
    assert 0 < sum(report.seconds.values()) <= report.total
    table = report.table()
    assert table.splitlines()[0].split() == ["function", "phase", "calls", "ms", "share"]
    assert "Conv2d" in table and table.splitlines()[-1].startswith("total")
    model(x)                                    # outside the block: nothing more is recorded
    assert report.calls["Conv2d", "forward"] == 1
