"""AdamW: Adam with decoupled weight decay, PyTorch's rule."""
from minires.optim.adam import Adam


class AdamW(Adam):
    """AdamW (Loshchilov and Hutter, 2019): the decay shrinks the parameters directly,

    p = p * (1 - lr * weight_decay)             then Adam's step, with no decay in g

    where Adam's L2 decay, added to the gradient, is then divided by sqrt(v) like the
    rest of it, so parameters with large gradients are barely decayed. PyTorch's
    default ``weight_decay`` here is 1e-2 (Adam's is 0).
    """
    decoupled_weight_decay = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)
