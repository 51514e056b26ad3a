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
