"""The autograd graph as Graphviz DOT text: ``to_dot(loss)`` draws what ``backward()`` will walk.

    loss = F.cross_entropy(model(x), y)
    dot = minires.viz.to_dot(loss, params=dict(model.named_parameters()))
    minires.viz.render(dot, "graph.svg")     # or paste the text into any Graphviz viewer

The nodes, as PyTorch's ``grad_fn`` chain shows them:
    grey box     a Function, named as PyTorch names a grad_fn (``Conv2dBackward``), with the
                 shape of its output; the one that made ``tensor`` is green
    blue box     a leaf that requires a gradient: its name in ``params``, shape and dtype
    white oval   an input that needs no gradient (the images); the graph keeps no reference
                 to such a tensor, so each use of one is drawn as an oval of its own
    yellow box   a module collapsed into one node (``group_by``, ``depth``)

Edges follow the data, from each input to the Function that uses it: a tensor used
twice (a residual block's input) has two outgoing edges, and the Add that joins
the two paths has two incoming ones.

``direction="backward"`` draws the graph as ``backward()`` walks it: from the seed
``gy`` at the top, each Function sends a gradient to each of its inputs (the arrow
carries its shape) down to ``name.grad`` at the leaves; a dashed arrow goes to an
input that gets no gradient.
"""
from collections import Counter

from minires.autograd import topological_order
from minires.viz.modules import module_names

_STYLES = {
    "function": 'shape=box, style="rounded,filled", fillcolor=lightgrey',
    "output": 'shape=box, style="rounded,filled", fillcolor=darkolivegreen1',
    "leaf": 'shape=box, style=filled, fillcolor=lightblue',
    "input": 'shape=oval',
    "module": 'shape=box3d, style=filled, fillcolor=lightyellow',
    "seed": 'shape=plaintext',
}


def to_dot(tensor, params=None, show_shapes=True, group_by=None, depth=2, direction="forward"):
    """Graphviz DOT source of the graph that produced ``tensor``.

    Args:
        tensor: a Tensor made by Functions (a loss, a model's output); draw it before
            ``backward()``, which frees the graph.
        params: {name: Tensor} naming the leaves, e.g. ``dict(model.named_parameters())``.
        show_shapes: put shapes and dtypes into the labels.
        group_by: a Module whose forward pass ran inside ``record_modules(group_by)``:
            every submodule ``depth`` levels down, and every layer above that level,
            collapses into one node (its name, type, number of Functions and parameters,
            output shape). Its parameters name the leaves when ``params`` is None.
        depth: with ``group_by``, how far down modules stay open (1: the model's children
            are the nodes), as in ``minires.summary``.
        direction: "forward" (data flow) or "backward" (gradient flow).
    Returns:
        the DOT text (str); nodes are listed in data-flow order.
    Raises:
        ValueError: the graph was freed by ``backward()``, ``group_by`` was not recorded,
            or an argument is out of range.
    """
    if direction not in ("forward", "backward"):
        raise ValueError(f"to_dot: direction must be 'forward' or 'backward', got {direction!r}")
    if params is None and group_by is not None:
        params = dict(group_by.named_parameters())
    leaf_names = {id(t): name for name, t in (params or {}).items()}
    functions = topological_order(tensor.creator) if tensor.creator is not None else []
    if any(function.inputs is None for function in functions):
        raise ValueError("to_dot: the graph has been freed by backward(); draw it before "
                         "backward(), or call backward(retain_graph=True)")
    groups = _Groups(group_by, depth, functions, leaf_names) if group_by is not None else None
    drawing = _Drawing(direction == "backward", show_shapes)

    if not functions:           # a leaf on its own
        drawing.leaf(tensor, leaf_names.get(id(tensor), "leaf"), tensor.shape, tensor.dtype)
        return drawing.text()
    output_shapes = {id(tensor.creator): tensor.shape}
    for function in functions:
        for edge in function.inputs:
            if edge.creator is not None:
                output_shapes[id(edge.creator)] = edge.shape

    def collapsed(thing):
        """The collapsed module ``thing`` (a Function or a leaf) lies in, or None."""
        return groups.of(thing) if groups is not None else None

    def module_node(group):
        return drawing.module(group, groups.label(group), groups.output_shape(group, output_shapes))

    def node_of(function):
        group = collapsed(function)
        if group is not None:
            return module_node(group)
        return drawing.function(function, output_shapes[id(function)], function is tensor.creator)

    for function in functions:
        target = node_of(function)
        for edge in function.inputs:
            if edge.creator is not None:
                source = node_of(edge.creator)
            elif edge.leaf is not None and collapsed(edge.leaf) is not None:
                source = module_node(collapsed(edge.leaf))
            elif edge.leaf is not None:
                source = drawing.leaf(edge.leaf, leaf_names.get(id(edge.leaf), "leaf"),
                                      edge.shape, edge.dtype)
            else:
                source = drawing.input(edge.shape, edge.dtype)
            gets_gradient = edge.creator is not None or edge.leaf is not None
            drawing.edge(source, target, edge.shape, gets_gradient)
    drawing.seed(node_of(tensor.creator), tensor.shape)
    return drawing.text()


class _Drawing:
    """DOT lines for nodes and edges; each node is written once, when first met."""

    def __init__(self, backward, show_shapes):
        self.backward, self.show_shapes = backward, show_shapes
        self.ids = {}               # key of a drawn thing -> its DOT node id
        self.counts = Counter()     # nodes drawn so far, by id prefix
        self.module_ids = set()     # node ids of collapsed modules
        self.drawn_edges = set()
        self.nodes, self.edges = [], []

    def _node(self, key, prefix, label, style):
        if key not in self.ids:
            node = f"{prefix}{self.counts[prefix]}"
            self.counts[prefix] += 1
            self.ids[key] = node
            self.nodes.append(f'  {node} [label="{_escape(label)}", {_STYLES[style]}];')
        return self.ids[key]

    def function(self, function, shape, is_output):
        label = [f"{type(function).__name__}Backward"] + self._shape(shape)
        return self._node(("function", id(function)), "f", "\n".join(label),
                          "output" if is_output else "function")

    def leaf(self, tensor, name, shape, dtype):
        label = [f"{name}.grad" if self.backward else name] + self._shape(shape, dtype)
        return self._node(("leaf", id(tensor)), "p", "\n".join(label), "leaf")

    def input(self, shape, dtype):
        label = ["input, no grad"] + self._shape(shape, dtype)
        return self._node(("input", self.counts["i"]), "i", "\n".join(label), "input")

    def module(self, name, lines, shape):
        node = self._node(("module", name), "m", "\n".join(lines + self._shape(shape)), "module")
        self.module_ids.add(node)
        return node

    def seed(self, root, shape):
        """In a backward drawing, where the walk starts: gy = 1 for a loss, else the gradient passed."""
        if self.backward:
            label = ["backward()", "gy = 1"] if _numel(shape) == 1 else \
                ["backward(gradient)"] + self._shape(shape)
            node = self._node(("seed",), "s", "\n".join(label), "seed")
            self.edges.append(f"  {node} -> {root};")

    def edge(self, source, target, shape, gets_gradient):
        """``source`` feeds ``target``; backward sends a gradient back along it if ``gets_gradient``."""
        if source == target:            # both inside one collapsed module
            return
        if source in self.module_ids or target in self.module_ids:
            if (source, target) in self.drawn_edges:
                return                  # one arrow between a module and what it touches
            self.drawn_edges.add((source, target))
        if not self.backward:
            self.edges.append(f"  {source} -> {target};")
        elif gets_gradient:
            label = f' [label="{_escape(str(tuple(shape)))}"]' if self.show_shapes else ""
            self.edges.append(f"  {target} -> {source}{label};")
        else:
            self.edges.append(f'  {target} -> {source} [style=dashed, label="no grad"];')

    def _shape(self, shape, dtype=None):
        if not self.show_shapes:
            return []
        return [str(tuple(shape)) + (f" {dtype}" if dtype is not None else "")]

    def text(self):
        head = ["digraph minires {",
                "  graph [rankdir=TB, nodesep=0.2, ranksep=0.25];",
                '  node [fontname=Helvetica, fontsize=10, height=0.3];',
                "  edge [fontname=Helvetica, fontsize=8, arrowsize=0.6];"]
        return "\n".join(head + self.nodes + self.edges + ["}"]) + "\n"


class _Groups:
    """Which Functions and leaves fall inside a module collapsed at ``depth``, and its label."""

    def __init__(self, model, depth, functions, leaf_names):
        if depth < 1:
            raise ValueError(f"to_dot: depth must be 1 or more, got {depth}")
        owners = module_names(model)
        if owners is None or not any(function in owners for function in functions):
            raise ValueError(f"to_dot(group_by={type(model).__name__}): the forward pass was not "
                             "recorded; run it inside `with minires.viz.record_modules(model):`")
        self.depth = depth
        self.modules = dict(model.named_modules())
        self.members = {}           # id of a Function or leaf -> name of its collapsed module
        self.functions = {}         # name of a collapsed module -> its Functions, in order
        for function in functions:
            group = self._collapsed(owners.get(function, ""))
            if group is not None:
                self.members[id(function)] = group
                self.functions.setdefault(group, []).append(function)
        for leaf_id, name in leaf_names.items():
            group = self._collapsed(name.rpartition(".")[0])
            if group is not None:
                self.members[leaf_id] = group

    def _collapsed(self, module_name):
        """The collapsed module that holds ``module_name``, or None if it stays open.

        A module ``depth`` levels down collapses, and so does a layer (a module with no
        children) above that level: the rows of ``minires.summary(model, depth=depth)``
        that have nothing listed below them.
        """
        parts = module_name.split(".") if module_name else []
        for level in range(1, min(len(parts), self.depth) + 1):
            name = ".".join(parts[:level])
            if level == self.depth or next(self.modules[name].children(), None) is None:
                return name
        return None

    def of(self, thing):
        return self.members.get(id(thing))

    def label(self, name):
        """Name, type, number of Functions and of parameters of a collapsed module, one a line."""
        module = self.modules[name]
        count = len(self.functions.get(name, []))
        lines = [name, type(module).__name__, f"{count} function" + ("" if count == 1 else "s")]
        if module.num_parameters():
            lines.append(f"{module.num_parameters():,} parameters")
        return lines

    def output_shape(self, name, output_shapes):
        """The shape of what the module's last Function made (its output); () if it made none."""
        functions = self.functions.get(name)
        return output_shapes[id(functions[-1])] if functions else ()


def _escape(text):
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _numel(shape):
    count = 1
    for size in shape:
        count *= size
    return count
