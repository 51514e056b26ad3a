"""minires.functional.padding: F.pad with a constant, against PyTorch, forward and backward."""
import pytest

import minires
import minires.functional as F
from tests.support.gradients import TOL, leaf
from tests.support.torch_oracle import same_as_torch

PADS = [(1, 2), (1, 1, 2, 0), (0, 0, 0, 0, 1, 1), (-1, 2), (2, -1, -1, 1)]


@pytest.mark.parametrize("pad", PADS)
def test_pad_matches_torch(rng, pad):
    torch = pytest.importorskip("torch")
    same_as_torch(lambda x: F.pad(x, pad, value=0.5), lambda x: torch.nn.functional.pad(x, pad, value=0.5),
                  rng.standard_normal((2, 3, 4)))


def test_pad_gradcheck_and_refusals(rng):
    assert minires.gradcheck(lambda x: F.pad(x, (1, -1, 2, 0)), [leaf(rng, 2, 3, 3)], **TOL)
    x = minires.zeros(2, 3)
    with pytest.raises(ValueError, match="pairs"):
        F.pad(x, (1, 1, 1))
    with pytest.raises(ValueError, match="constant"):
        F.pad(x, (1, 1), mode="reflect")
