"""Issue 17: ``optimizer.state_dict()`` in PyTorch's layout, and a PyTorch optimizer's state, saved
with ``torch.save(optimizer.state_dict(), path)``, loaded through the safe reader
(``minires.load_torch_optimizer_state``) so that the next steps match PyTorch's."""
import io
import pickle

import numpy
import pytest

import minires
from minires import nn, optim
from minires.torch_format import TorchFormatError, UnsafeCheckpointError
from tests.support.optional_torch import torch

RULES = {
    "Adam amsgrad": ("Adam", {"lr": 0.05, "betas": (0.9, 0.6), "amsgrad": True, "weight_decay": 0.1}),
    "AdamW maximize": ("AdamW", {"lr": 0.05, "maximize": True}),
    "SGD momentum": ("SGD", {"lr": 0.01, "momentum": 0.9, "nesterov": True}),
    "SGD": ("SGD", {"lr": 0.1, "weight_decay": 0.1}),
    "RMSprop centered, momentum": ("RMSprop", {"lr": 0.01, "momentum": 0.5, "centered": True}),
    "Adagrad": ("Adagrad", {"lr": 0.1, "initial_accumulator_value": 0.3}),
}


def twin_models(dtype="float64"):
    """A convolution (channels-last weight in minires) and a linear layer, in both frameworks."""
    minires.manual_seed(0)
    ours = nn.Sequential(nn.Conv2d(2, 3, 3), nn.Flatten(), nn.Linear(12, 2)).to(dtype)
    theirs = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.Flatten(),
                                 torch.nn.Linear(12, 2)).to(getattr(torch, dtype))
    theirs.load_state_dict({key: torch.from_numpy(numpy.array(value))
                            for key, value in ours.state_dict().items()})
    return ours, theirs


def groups(model):
    """Two groups: the convolution's, and the linear layer's with its own rate."""
    conv, linear = list(model[0].parameters()), list(model[2].parameters())
    return [{"params": conv}, {"params": linear, "lr": 0.02}]


X = numpy.random.default_rng(3).standard_normal((2, 2, 4, 4))


def train(model, optimizer, steps, skip_bias_at=None):
    """``steps`` steps on a fixed batch; at step ``skip_bias_at`` the last bias has no gradient."""
    framework = torch if isinstance(model, torch.nn.Module) else minires
    x = torch.from_numpy(X.astype(numpy.dtype(str(model[0].weight.dtype).replace("torch.", ""))))\
        if framework is torch else minires.Tensor(X.astype(model[0].weight.dtype))
    for step in range(steps):
        optimizer.zero_grad()
        y = model(x)
        (y * y).sum().backward()
        if step == skip_bias_at:
            model[2].bias.grad = None
        optimizer.step()


def parameters(model):
    return [numpy.array(p.detach().numpy() if hasattr(p, "detach") else p.numpy())
            for p in model.parameters()]


@pytest.mark.parametrize("name", RULES)
def test_the_state_dict_has_pytorchs_layout_and_values(name):
    rule, kwargs = RULES[name]
    ours, theirs = twin_models()
    ours_optimizer = getattr(optim, rule)(groups(ours), **kwargs)
    theirs_optimizer = getattr(torch.optim, rule)(groups(theirs), **kwargs)
    for model, optimizer in ((ours, ours_optimizer), (theirs, theirs_optimizer)):
        train(model, optimizer, 1, skip_bias_at=0)      # the last bias has had no step yet
        train(model, optimizer, 2)
        train(model, optimizer, 1, skip_bias_at=0)
    mine, expected = ours_optimizer.state_dict(), theirs_optimizer.state_dict()
    assert mine["state"].keys() == expected["state"].keys()
    for index, entry in expected["state"].items():
        assert mine["state"][index].keys() == entry.keys(), index
        for key, value in entry.items():
            numpy.testing.assert_allclose(mine["state"][index][key], value.numpy(), rtol=1e-11,
                                          atol=1e-13, err_msg=f"state[{index}][{key!r}]")
    for group, theirs_group in zip(mine["param_groups"], expected["param_groups"]):
        assert group == {key: theirs_group[key] for key in group}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", RULES)
def test_a_pytorch_optimizers_saved_state_loads_and_the_next_steps_match(tmp_path, name, dtype):
    rule, kwargs = RULES[name]
    ours, theirs = twin_models(dtype)
    theirs_optimizer = getattr(torch.optim, rule)(groups(theirs), **kwargs)
    train(theirs, theirs_optimizer, 3, skip_bias_at=0)
    path = tmp_path / "optimizer.ckpt"
    torch.save(theirs_optimizer.state_dict(), path)
    ours.load_state_dict({key: value.numpy() for key, value in theirs.state_dict().items()})
    ours_optimizer = getattr(optim, rule)(groups(ours), **{**kwargs, "lr": 1.0})   # the file's lr wins
    ours_optimizer.load_state_dict(minires.load_torch_optimizer_state(str(path)))
    assert [g["lr"] for g in ours_optimizer.param_groups] == [g["lr"] for g in theirs_optimizer.param_groups]
    train(theirs, theirs_optimizer, 3)
    train(ours, ours_optimizer, 3)
    tolerance = {"float32": 1e-5, "float64": 1e-11}[dtype]
    for mine, expected in zip(parameters(ours), parameters(theirs)):
        numpy.testing.assert_allclose(mine, expected, rtol=tolerance, atol=tolerance)


def test_minires_state_resumes_as_the_uninterrupted_run():
    def run(resume):
        ours, _ = twin_models()
        optimizer = optim.Adam(groups(ours), lr=0.05, amsgrad=True)
        train(ours, optimizer, 2, skip_bias_at=0)
        if resume:
            state = optimizer.state_dict()
            optimizer = optim.Adam(groups(ours), lr=1.0, amsgrad=True)
            optimizer.load_state_dict(state)
        train(ours, optimizer, 3)
        return parameters(ours)
    for a, b in zip(run(False), run(True)):
        numpy.testing.assert_array_equal(a, b)


def test_a_state_that_needs_what_the_optimizer_lacks_is_refused_and_changes_nothing():
    ours, theirs = twin_models()
    theirs_optimizer = torch.optim.Adam(groups(theirs), lr=0.05, amsgrad=True)
    train(theirs, theirs_optimizer, 2)
    buffer = io.BytesIO()
    torch.save(theirs_optimizer.state_dict(), buffer)
    buffer.seek(0)
    state = minires.load_torch_optimizer_state(buffer)
    optimizer = optim.Adam(groups(ours), lr=0.05)       # no amsgrad: no running maximum kept
    before = repr(optimizer.state_dict())
    with pytest.raises(ValueError, match="'max_exp_avg_sq', which this Adam, built without them"):
        optimizer.load_state_dict(state)
    adamw = optim.AdamW(groups(ours), lr=0.05, amsgrad=True)
    with pytest.raises(ValueError, match="decoupled_weight_decay=False, which is Adam's rule"):
        adamw.load_state_dict(state)
    assert repr(optimizer.state_dict()) == before


def test_the_reader_refuses_a_model_state_and_runs_nothing_from_a_crafted_file(tmp_path, capsys):
    path = tmp_path / "model.ckpt"
    torch.save(torch.nn.Linear(2, 2).state_dict(), path)
    with pytest.raises(TorchFormatError, match="an optimizer's state dict .* was expected"):
        minires.load_torch_optimizer_state(str(path))

    class Payload:
        def __reduce__(self):
            return (print, ("ran",))
    crafted = tmp_path / "crafted.ckpt"
    torch.save({"state": {0: {"step": Payload()}}, "param_groups": []}, crafted,
               pickle_module=pickle)
    with pytest.raises(UnsafeCheckpointError, match=r"refused the global \w+\.print"):
        minires.load_torch_optimizer_state(str(crafted))
    assert "ran" not in capsys.readouterr().out
