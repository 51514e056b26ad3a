"""See it: the autograd graph as Graphviz DOT, and the training log read for plotting.

    loss = F.cross_entropy(model(x), y)
    dot = minires.viz.to_dot(loss, params=dict(model.named_parameters()))
    minires.viz.render(dot, "graph.svg")             # needs the [viz] extra and dot

    with minires.viz.record_modules(model):          # to collapse modules into single nodes
        loss = F.cross_entropy(model(x), y)
    minires.viz.render(minires.viz.to_dot(loss, group_by=model, depth=1), "model.svg")

    runs = minires.viz.metrics.read_metrics("checkpoints/metrics.jsonl")

Nothing here imports a third-party package when minires is imported: ``render``
imports graphviz when called, and the plotting lives in ``examples/plot_metrics.py``.
"""
from minires.viz import metrics
from minires.viz.graph import to_dot
from minires.viz.modules import record_modules
from minires.viz.render import render

__all__ = ["metrics", "record_modules", "render", "to_dot"]
