"""minires.functional.einsum: differentiable Einstein summation against PyTorch."""
import numpy
import pytest

import minires
from tests.support.gradients import TOL, leaf
from tests.support.torch_oracle import same_as_torch

EQUATIONS = [("nk,km->nm", [(2, 3), (3, 4)]), ("bij,bjk->bik", [(2, 2, 3), (2, 3, 2)]),
             ("ij->i", [(3, 4)]), ("ij->", [(3, 4)]), ("ij->ji", [(2, 3)]), ("i,j->ij", [(3,), (2,)]),
             ("nchw,oc->nohw", [(2, 3, 2, 2), (4, 3)]), ("ij,jk,kl", [(2, 3), (3, 2), (2, 2)]),
             ("bhqd,bhkd->bhqk", [(1, 2, 3, 4), (1, 2, 5, 4)]), ("ij,ij->i", [(2, 3), (2, 3)])]


@pytest.mark.parametrize("equation, shapes", EQUATIONS)
def test_einsum_gradcheck_and_matches_torch(rng, equation, shapes):
    leaves = [leaf(rng, *shape) for shape in shapes]
    assert minires.gradcheck(lambda *xs: minires.einsum(equation, *xs), leaves, **TOL)
    torch = pytest.importorskip("torch")
    same_as_torch(lambda *xs: minires.einsum(equation, *xs), lambda *xs: torch.einsum(equation, *xs),
                  *[rng.standard_normal(s) for s in shapes])


def test_einsum_refuses_what_it_does_not_support():
    x = minires.ones(2, 2)
    for equation, message in (("ii->", "repeats a letter"), ("...i->i", "not supported"),
                              ("ij,jk->ik", "2 operands"), ("ijk->i", "names 3 dimensions")):
        with pytest.raises(ValueError, match=message):
            minires.einsum(equation, x)
    numpy.testing.assert_array_equal(minires.einsum("ij,jk->ik", [x, x]).numpy(), numpy.full((2, 2), 2.0))
