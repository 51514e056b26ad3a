"""Where the time of a training step goes, per Function, forward and backward.

    with minires.speed.profiler.profile() as report:
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    print(report.table())

Every Function call and every backward call inside the block is timed with
``time.perf_counter``; time outside them (the optimizer, Python glue) shows as
"other". On a GPU the kernels run asynchronously, so these are launch times,
not kernel times: profile on the CPU, or synchronise inside your own timer.
"""
import contextlib
import time
from collections import defaultdict

from minires import autograd


class Report:
    """Seconds and calls per (Function name, "forward" | "backward")."""

    def __init__(self):
        self.seconds = defaultdict(float)
        self.calls = defaultdict(int)
        self.total = 0.0

    def add(self, name, phase, seconds):
        self.seconds[name, phase] += seconds
        self.calls[name, phase] += 1

    def table(self):
        """Rows sorted by time: name, phase, calls, milliseconds, share of the block."""
        rows = sorted(self.seconds.items(), key=lambda item: -item[1])
        lines = [f"{'function':<16}{'phase':<10}{'calls':>6}{'ms':>10}{'share':>8}"]
        for (name, phase), seconds in rows:
            lines.append(f"{name:<16}{phase:<10}{self.calls[name, phase]:>6}"
                         f"{1e3 * seconds:>10.1f}{100 * seconds / self.total:>7.1f}%")
        other = self.total - sum(self.seconds.values())
        lines.append(f"{'other':<16}{'':<10}{'':>6}{1e3 * other:>10.1f}{100 * other / self.total:>7.1f}%")
        lines.append(f"{'total':<16}{'':<10}{'':>6}{1e3 * self.total:>10.1f}")
        return "\n".join(lines)


@contextlib.contextmanager
def profile():
    """Time every Function inside the block; yields the Report."""
    report = Report()
    previous = autograd.set_profiler(report)
    start = time.perf_counter()
    try:
        yield report
    finally:
        report.total = time.perf_counter() - start
        autograd.set_profiler(previous)
