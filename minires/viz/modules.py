"""Which module made which Function: a recorded forward pass, for ``to_dot(group_by=model)``.

    with minires.viz.record_modules(model):
        loss = F.cross_entropy(model(x), y)
    print(minires.viz.to_dot(loss, group_by=model, depth=1))

While the block runs, every module of ``model`` carries a forward hook. When a
module returns, its hook walks the graph back from the module's output and stops
at the Functions that made the module's inputs: every Function met on the way was
made inside the module. Inner modules return before the module that calls them,
so each Function is claimed first, and kept, by the innermost module that made it
(a Conv2d by ``layer2.0.layer.0.0``, the residual Add by ``layer2.0``). Functions
made outside every module, such as the loss, belong to none.

The hooks are removed when the block ends, so a model costs nothing extra outside
it. The record holds its Functions weakly: it never keeps a graph alive.
"""
import contextlib
import weakref

from minires.autograd import Tensor

# model -> {Function: name of the module that made it, "" for the model itself}
_records = weakref.WeakKeyDictionary()


@contextlib.contextmanager
def record_modules(model):
    """Within the block, note which module of ``model`` made each Function (see the module docstring).

    A new block replaces the record of an earlier one for the same model.
    """
    owners = weakref.WeakKeyDictionary()
    _records[model] = owners
    handles = [module.register_forward_hook(_claim(owners, name))
               for name, module in model.named_modules()]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def module_names(model):
    """{Function: module name} as recorded for ``model``; None if it was never recorded."""
    return _records.get(model)


def _claim(owners, name):
    """A forward hook giving ``name`` every not yet claimed Function between inputs and output."""
    def hook(module, inputs, output):
        if not isinstance(output, Tensor) or output.creator is None:
            return      # no graph was recorded (no_grad, or nothing needed a gradient)
        boundary = {id(x.creator) for x in inputs if isinstance(x, Tensor) and x.creator is not None}
        stack, seen = [output.creator], set()
        while stack:
            function = stack.pop()
            if id(function) in seen or id(function) in boundary:
                continue
            seen.add(id(function))
            owners.setdefault(function, name)
            stack.extend(edge.creator for edge in function.inputs or () if edge.creator is not None)
    return hook
