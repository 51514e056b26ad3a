"""minires.functional.smooth_activation (silu, elu, softplus) and their nn modules."""
import numpy
import pytest

import minires
import minires.functional as F
from minires import nn
from tests.support.gradients import TOL, leaf
from tests.support.torch_oracle import same_as_torch


def test_gradchecks(rng):
    for function in (F.silu, lambda x: F.elu(x, 0.7), lambda x: F.softplus(x, beta=2.0, threshold=3.0)):
        assert minires.gradcheck(function, [leaf(rng, 3, 4)], **TOL)


def test_functions_and_modules_match_torch(rng):
    torch = pytest.importorskip("torch")
    x = numpy.concatenate([rng.standard_normal(8) * 3, [-100.0, 100.0, 0.0, 25.0]])
    tF = torch.nn.functional
    for ours, theirs in ((F.silu, tF.silu), (F.elu, tF.elu),
                         (lambda x: F.elu(x, 0.3), lambda x: tF.elu(x, 0.3)), (F.softplus, tF.softplus),
                         (lambda x: F.softplus(x, 2, 5), lambda x: tF.softplus(x, 2, 5)),
                         (nn.SiLU(), torch.nn.SiLU()), (nn.ELU(0.5), torch.nn.ELU(0.5)),
                         (nn.Softplus(3.0, 10.0), torch.nn.Softplus(3.0, 10.0))):
        same_as_torch(ours, theirs, x)
    same_as_torch(F.silu, tF.silu, x.astype(numpy.float32), rtol=1e-6, atol=1e-6)


def test_erf_is_exact_to_float64_rounding():
    import math

    from minires.functional.smooth_activation import erf
    x = numpy.linspace(-7, 7, 20001)
    numpy.testing.assert_allclose(erf(x), [math.erf(v) for v in x], rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_gradchecks_and_matches_torch(rng, approximate):
    assert minires.gradcheck(lambda x: F.gelu(x, approximate), [leaf(rng, 3, 4)], **TOL)
    torch = pytest.importorskip("torch")
    x = numpy.concatenate([rng.standard_normal(20) * 3, [-30.0, -5.0, 0.0, 2.0, 2.9, 40.0]])
    same_as_torch(lambda x: F.gelu(x, approximate=approximate),
                  lambda x: torch.nn.functional.gelu(x, approximate=approximate), x)
    same_as_torch(nn.GELU(approximate), torch.nn.GELU(approximate), x.astype(numpy.float32),
                  rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="approximate"):
        F.gelu(minires.zeros(1), "erf")
