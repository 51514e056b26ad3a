"""minires.functional.conv_transpose and nn.ConvTranspose2d: float64 gradient checks with a random
upstream gradient, then PyTorch parity (forward, input, weight and bias gradients)."""
import numpy
import pytest

import minires
import minires.functional as F
from minires import Tensor, nn
from tests.support.gradients import TOL, leaf
from tests.support.parity import check_layer
from tests.support.torch_oracle import same_as_torch

# (C, OC, kernel, stride, padding, output_padding, groups, dilation)
CASES = [(2, 3, 3, 1, 0, 0, 1, 1), (2, 3, 3, 2, 1, 1, 1, 1), (4, 2, (2, 3), (2, 1), (0, 1), (1, 0), 2, 1),
         (2, 2, 3, 1, 1, 0, 1, 2), (3, 3, 1, 2, 0, 1, 3, 1), (2, 4, 4, 3, 2, 2, 2, 2)]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_conv_transpose_gradcheck(rng, case):
    C, OC, kernel, stride, padding, output_padding, groups, dilation = case
    KH, KW = (kernel, kernel) if isinstance(kernel, int) else kernel
    x, w, b = leaf(rng, 2, C, 3, 2), leaf(rng, C, OC // groups, KH, KW), leaf(rng, OC)
    assert minires.gradcheck(lambda x, w, b: F.conv_transpose2d(x, w, b, stride, padding, output_padding,
                                                                groups, dilation), [x, w, b], **TOL)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_conv_transpose_matches_torch(rng, case):
    torch = pytest.importorskip("torch")
    C, OC, kernel, stride, padding, output_padding, groups, dilation = case
    KH, KW = (kernel, kernel) if isinstance(kernel, int) else kernel
    arguments = (stride, padding, output_padding, groups, dilation)
    same_as_torch(lambda x, w, b: F.conv_transpose2d(x, w, b, *arguments),
                  lambda x, w, b: torch.nn.functional.conv_transpose2d(x, w, b, *arguments),
                  rng.standard_normal((2, C, 4, 3)), rng.standard_normal((C, OC // groups, KH, KW)),
                  rng.standard_normal(OC))
    layer = nn.ConvTranspose2d(C, OC, kernel, *arguments[:3], groups, True, dilation)
    theirs = torch.nn.ConvTranspose2d(C, OC, kernel, *arguments[:3], groups, True, dilation)
    check_layer(layer, theirs, rng.standard_normal((2, C, 4, 3)).astype(numpy.float32))


def test_conv_transpose_inverts_a_strided_convolutions_shape_and_refuses_bad_arguments(rng):
    x = Tensor(rng.standard_normal((1, 2, 8, 7)).astype(numpy.float32))
    down = nn.Conv2d(2, 4, 3, stride=2, padding=1)
    up = nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=(1, 0))
    assert up(down(x)).shape == x.shape
    assert nn.ConvTranspose2d(2, 2, 3)(x[0]).shape == (2, 10, 9)          # one unbatched image
    with pytest.raises(RuntimeError, match="expected input"):
        up(x)
    with pytest.raises(ValueError, match="output_padding"):
        F.conv_transpose2d(down(x), up.weight, stride=2, output_padding=2)
