"""Checks of chapter 8: ``SGD._update`` and ``Adam._update`` (and AdamW through it).

Two parameters, (3, 4) and (5,), float64, take four steps with random gradients; in step 3
the second has no gradient, so it skips that step and its own step count t falls behind
(Adam's bias correction must use it). After every step both are compared with the rule
written out here in NumPy.
"""
import numpy

from minires import nn, optim

from .compare import SKIPPED_WITHOUT_TORCH, assert_close, each_case, optional_torch

SHAPES = [(3, 4), (5,)]
STEPS = 4
SGD_CASES = [
    ("plain", {"lr": 0.1}),
    ("momentum 0.9", {"lr": 0.1, "momentum": 0.9}),
    ("momentum 0.9, dampening 0.5", {"lr": 0.1, "momentum": 0.9, "dampening": 0.5}),
    ("Nesterov", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("weight decay 0.1 with momentum", {"lr": 0.1, "momentum": 0.8, "weight_decay": 0.1}),
]
ADAM_CASES = [
    ("Adam, defaults but lr 0.01", optim.Adam, {"lr": 0.01}),
    ("Adam, betas (0.8, 0.9), eps 0.1", optim.Adam, {"lr": 0.01, "betas": (0.8, 0.9), "eps": 0.1}),
    ("Adam, L2 weight decay 0.1", optim.Adam, {"lr": 0.01, "weight_decay": 0.1}),
    ("AdamW, decoupled weight decay 0.1", optim.AdamW, {"lr": 0.01, "weight_decay": 0.1}),
]


def _start():
    rng = numpy.random.default_rng(70)
    values = [rng.standard_normal(shape) for shape in SHAPES]
    gradients = [[rng.standard_normal(shape) for shape in SHAPES] for _ in range(STEPS)]
    gradients[2][1] = None          # the second parameter has no gradient in step 3
    return values, gradients


def reference_sgd(p, g, state, t, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    g = g + weight_decay * p
    if momentum:
        state["buf"] = g.copy() if t == 1 else momentum * state["buf"] + (1 - dampening) * g
        g = g + momentum * state["buf"] if nesterov else state["buf"]
    return p - lr * g


def reference_adam(p, g, state, t, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
    beta1, beta2 = betas
    if decoupled:
        p = p * (1 - lr * weight_decay)
    else:
        g = g + weight_decay * p
    state["m"] = beta1 * state.get("m", 0.0) + (1 - beta1) * g
    state["v"] = beta2 * state.get("v", 0.0) + (1 - beta2) * g * g
    m_hat, v_hat = state["m"] / (1 - beta1 ** t), state["v"] / (1 - beta2 ** t)
    return p - lr * m_hat / (numpy.sqrt(v_hat) + eps)


def compare_steps(make_optimizer, reference, options):
    """Run the learner's optimizer and the reference side by side, comparing after every step."""
    values, gradients = _start()
    params = [nn.Parameter(value.copy()) for value in values]
    optimizer = make_optimizer(params)
    expected, states, steps = [value.copy() for value in values], [{} for _ in values], [0] * len(values)
    for step, step_gradients in enumerate(gradients, 1):
        optimizer.zero_grad()
        for k, (param, g) in enumerate(zip(params, step_gradients)):
            param.grad = None if g is None else g.copy()
            if g is not None:
                steps[k] += 1
                expected[k] = reference(expected[k], g, states[k], steps[k], **options)
        optimizer.step()
        for k, param in enumerate(params):
            assert_close(f"parameter {k} {SHAPES[k]} after step {step}", param.data, expected[k],
                         atol=1e-12, rtol=1e-10)


def sgd_against_numpy():
    each_case(SGD_CASES, lambda what, options: compare_steps(
        lambda params: optim.SGD(params, **options), reference_sgd, options))


def adam_against_numpy():
    def check(what, kind, options):
        reference_options = dict(options, decoupled=kind is optim.AdamW)
        if kind is optim.AdamW:
            reference_options.setdefault("weight_decay", 1e-2)
        compare_steps(lambda params: kind(params, **options), reference_adam, reference_options)
    each_case(ADAM_CASES, check)


def against_torch(cases, make_theirs):
    """The learner's steps against torch.optim's, same start and gradients, for every case."""
    torch = optional_torch()
    if torch is None:
        return SKIPPED_WITHOUT_TORCH

    def check(what, make_ours, make_torch):
        values, gradients = _start()
        ours = [nn.Parameter(value.copy()) for value in values]
        theirs = [torch.tensor(value, requires_grad=True) for value in values]
        optimizer, torch_optimizer = make_ours(ours), make_torch(theirs)
        for step, step_gradients in enumerate(gradients, 1):
            optimizer.zero_grad()
            torch_optimizer.zero_grad()
            for param, torch_param, g in zip(ours, theirs, step_gradients):
                param.grad = None if g is None else g.copy()
                torch_param.grad = None if g is None else torch.tensor(g)
            optimizer.step()
            torch_optimizer.step()
            for k, (param, torch_param) in enumerate(zip(ours, theirs)):
                assert_close(f"parameter {k} {SHAPES[k]} after step {step} against PyTorch", param.data,
                             torch_param.detach().numpy(), atol=1e-12, rtol=1e-10)
    each_case([(what, *make_theirs(torch, *case)) for what, *case in cases], check)
    return None


def sgd_against_torch():
    return against_torch(SGD_CASES, lambda torch, options: (
        lambda params: optim.SGD(params, **options), lambda params: torch.optim.SGD(params, **options)))


def adam_against_torch():
    return against_torch(ADAM_CASES, lambda torch, kind, options: (
        lambda params: kind(params, **options),
        lambda params: getattr(torch.optim, kind.__name__)(params, **options)))


CHECKS = {
    "SGD._update": [
        (f"{STEPS} steps against the rule in NumPy, {len(SGD_CASES)} cases (momentum, dampening, "
         "Nesterov, weight decay)", sgd_against_numpy),
        ("torch.optim.SGD", sgd_against_torch),
    ],
    "Adam._update": [
        (f"{STEPS} steps against the rule in NumPy, {len(ADAM_CASES)} cases (bias correction with each "
         "parameter's own t, betas, eps, L2 and decoupled decay)", adam_against_numpy),
        ("torch.optim.Adam and AdamW", adam_against_torch),
    ],
}
