"""The speed wing: what makes minires fast, kept apart from what makes it correct.

Nothing here changes a result; each module says what it buys, with a figure
measured on the project's 2-core machine.

    host_memory      keep freed host memory for reuse (no page faults every step)
    blockwise        large element-wise work in cache-sized blocks on every core
    flat_parameters  all parameters and gradients in two flat arrays (one update, not 214)
    profiler         where the time of a step goes, per Function

The library turns none of them on by itself except where a class uses them
(the optimizers use ``flat_parameters`` and ``blockwise``); the process-wide
allocator setting is the caller's choice:

    minires.speed.keep_freed_host_memory()
"""
from minires.speed import profiler
from minires.speed.host_memory import keep_freed_host_memory

__all__ = ["keep_freed_host_memory", "profiler"]
