"""Einstein summation, differentiable: ``minires.einsum("nk,km->nm", a, b)`` is ``a @ b``.

Each operand's dimensions get a letter; letters shared by operands are multiplied
along, and letters missing from the output are summed over. The gradient of
operand i is itself an einsum, of gy with the other operands, that gives back
operand i's letters:

    y = einsum("nk,km->nm", a, b):   ga = einsum("nm,km->nk", gy, b),   gb = einsum("nm,nk->km", gy, a)

A letter of operand i that nothing else has (summed away on its own, "ij->i") gets
gy broadcast along it. Not supported: "..." and a letter twice in one operand
(a diagonal or a trace).
"""
from minires import backend
from minires.arguments import check_tensor
from minires.autograd import Function
from minires.functional.casting import promote


class Einsum(Function):
    saves_inputs = True

    def __init__(self, inputs, output):
        self.inputs_letters, self.output = inputs, output       # ["nk", "km"], "nm"

    def forward(self, *operands):
        self.operands = operands
        return backend.get_array_module().einsum(f"{','.join(self.inputs_letters)}->{self.output}", *operands)

    def backward(self, gy):
        xp = backend.get_array_module()
        grads = []
        for i, (letters, operand) in enumerate(zip(self.inputs_letters, self.operands)):
            if not self.needs_input_grad[i]:
                grads.append(None)
                continue
            others = [(s, a) for j, (s, a) in enumerate(zip(self.inputs_letters, self.operands)) if j != i]
            available = set(self.output).union(*(s for s, _ in others))
            present = "".join(c for c in letters if c in available)        # in operand i's order
            spec = ",".join([self.output] + [s for s, _ in others]) + "->" + present
            g = xp.einsum(spec, gy, *(a for _, a in others))
            shape = [n if c in available else 1 for c, n in zip(letters, operand.shape)]
            grads.append(xp.broadcast_to(g.reshape(shape), operand.shape))
        return tuple(grads)


def einsum(equation, *operands):
    """PyTorch's ``torch.einsum(equation, *operands)`` (or a list of operands)."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not isinstance(equation, str):
        raise TypeError(f"einsum(): equation must be a str such as 'ij,jk->ik', got {equation!r}")
    for operand in operands:
        check_tensor("einsum()", "operands", operand, floating=False)
    equation = equation.replace(" ", "")
    if "." in equation:
        raise ValueError("einsum(): '...' is not supported; name every dimension")
    inputs, _, output = equation.partition("->")
    inputs = inputs.split(",")
    if not _:       # no "->": the letters that appear once, in alphabetical order (NumPy's rule)
        letters = "".join(inputs)
        output = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    if len(inputs) != len(operands):
        raise ValueError(f"einsum(): equation {equation!r} names {len(inputs)} operands, got "
                         f"{len(operands)} operands")
    sizes = {}
    for letters, operand in zip(inputs, operands):
        if len(set(letters)) != len(letters):
            raise ValueError(f"einsum(): {letters!r} repeats a letter (a diagonal or trace): not supported")
        if len(letters) != operand.ndim:
            raise ValueError(f"einsum(): {letters!r} of the equation names {len(letters)} dimensions of "
                             f"an operand of shape {tuple(operand.shape)}")
        for letter, size in zip(letters, operand.shape):
            if sizes.setdefault(letter, size) != size:
                raise ValueError(f"einsum(): the equation's letter {letter!r} stands for sizes "
                                 f"{sizes[letter]} and {size} of the operands")
    return Einsum(inputs, output)(*promote(*operands))
