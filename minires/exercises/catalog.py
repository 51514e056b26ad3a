"""The exercises: which function a learner writes, what it must compute, and where the book explains it.

Each exercise names a function of the library as ``file:qualified.name`` (the file relative to the
minires package); ``start`` finds its body there with ``ast``, so the library needs no markers.
Its name is the qualified name, as the code has it (``ReLU.backward``).
"""
import difflib
from dataclasses import dataclass

CHAPTERS = {
    1: "Tensors and the graph",
    2: "Broadcasting and sum_to",
    3: "Matrix multiply and linear",
    4: "Convolution as im2col",
    5: "Pooling",
    6: "Batch normalisation",
    7: "Softmax and cross-entropy",
    8: "Optimizers",
    11: "Checking",
}


@dataclass(frozen=True)
class Exercise:
    target: str         # "file:qualified.name", the file relative to the minires package
    task: str           # what to write, one sentence
    shapes: str         # the arrays it takes and returns
    chapter: int
    # functions of the same file that hold part of its arithmetic (what a GPU runs fused, through
    # backend.fuse): their bodies are gone too, so that the copy keeps no part of the answer
    helpers: tuple = ()

    @property
    def file(self):
        return self.target.partition(":")[0]

    @property
    def name(self):
        return self.target.partition(":")[2]

    @property
    def chapter_title(self):
        return f"chapter {self.chapter}, {CHAPTERS[self.chapter]}"

    @property
    def start_command(self):
        """The command that starts it, for the book's "Try it"."""
        return f"python -m minires.exercises start {self.name} my_copy"

    def message(self):
        """What the blanked body raises: the exercise, what to write, the shapes and the chapter."""
        helpers = (f" (its helpers {', '.join(self.helpers)} are blanked too: write them, or do "
                   f"their arithmetic in {self.name} itself)" if self.helpers else "")
        return (f"exercise {self.name} ({self.chapter_title}): write {self.name} in "
                f"minires/{self.file}{helpers}: {self.task}; shapes: {self.shapes}")


EXERCISES = [
    Exercise("autograd.py:topological_order",
             "every Function reachable from root, each after every Function that feeds it, "
             "without recursion",
             "root: a Function; returns a list of Functions, root last", 1),
    Exercise("functional/activation.py:ReLU.backward",
             "the gradient of max(x, 0): gy where x > 0, 0 elsewhere (forward kept self.y)",
             "gy and self.y: the input's shape; returns gx: the input's shape", 1,
             helpers=('_relu_grad',)),
    Exercise("functional/arithmetic.py:sum_to",
             "sum g over the axes that broadcasting added (leading) or stretched (size 1 in shape)",
             "g: the broadcast shape; returns an array of shape `shape`", 2),
    Exercise("functional/linear.py:MatMul.backward",
             "ga = gy b^T and gb = a^T gy, summed over broadcast batch dimensions, for 1-D operands too",
             "a: (..., n, k), b: (..., k, m), gy: (..., n, m); returns ga, gb in a's and b's shapes", 3),
    Exercise("functional/linear.py:Linear.backward",
             "gx = gy W, gW = gy^T x over all rows, gb = the column sums of gy (no gb without a bias)",
             "x: (N, *, in), W: (out, in), gy: (N, *, out); returns gx (N, *, in), gW (out, in), "
             "gb (out,)", 3),
    Exercise("functional/conv.py:im2col",
             "the KH*KW*Cg input numbers every output pixel's kernel covers, as one row, "
             "columns ordered (kh, kw, c), with stride, padding, dilation, extra padding and groups",
             "x: (N, C, H, W); returns col: (G, N*OH*OW, KH*KW*Cg)", 4),
    Exercise("functional/conv.py:col2im",
             "the adjoint of im2col: send every row's numbers back to their pixels, summing where "
             "windows overlap",
             "gcol: (G, N*OH*OW, KH*KW*Cg); returns gx: (N, C, H, W)", 4),
    Exercise("functional/conv.py:Conv2d.backward",
             "gW from the saved rows self.col, gb the column sums of gy, gx by col2im of gy W "
             "(or None when x needs no gradient)",
             "gy: (N, OC, OH, OW); returns gx (N, C, H, W), gW (OC, C/G, KH, KW), gb (OC,)", 4),
    Exercise("functional/pool.py:MaxPool2d.backward",
             "send each window's gradient to the offset that held its maximum (self.argmax; the "
             "first in row-major order on a tie)",
             "gy: (N, C, OH, OW); returns gx: (N, C, H, W)", 5,
             helpers=('_add_where',)),
    Exercise("functional/pool.py:AvgPool2d.backward",
             "give every pixel of a window an equal share (self.scale) of the window's gradient",
             "gy: (N, C, OH, OW); returns gx: (N, C, H, W)", 5,
             helpers=('_add_scaled',)),
    Exercise("functional/norm.py:BatchNorm2d.forward",
             "training: normalise with the batch's mean and biased variance, update the running "
             "statistics (update_running_stats); evaluation: use the running ones; then "
             "gamma * x_hat + beta; keep self.x_rows, self.mean, self.gamma, and self.V, self.f "
             "with the variance V * f (training: the sum of squared deviations and 1 / M; "
             "evaluation: the running variance and 1), for backward",
             "x: (N, C, H, W), gamma and beta: (C,); returns y: (N, C, H, W)", 6,
             helpers=('_normalise_batch', '_normalise', '_move_running_stats')),
    Exercise("functional/norm.py:BatchNorm2d.backward",
             "gbeta = sum(gy), ggamma = sum(gy * x_hat), and in training "
             "gx = scale * (gy - mean(gy) - x_hat * mean(gy * x_hat)) per channel (scale * gy in eval)",
             "gy: (N, C, H, W); returns gx (N, C, H, W), ggamma (C,), gbeta (C,)", 6,
             helpers=('_gamma_beta_grads', '_input_grad', '_scaled')),
    Exercise("functional/loss.py:LogSoftmax.backward",
             "gx = gy - softmax(x) * sum(gy) along the axis (forward kept self.y = log softmax)",
             "gy and self.y: the input's shape; returns gx: the input's shape", 7),
    Exercise("functional/loss.py:CrossEntropy.backward",
             "sum(q_n) softmax(x_n) - q_n per row, with weights, label smoothing and ignore_index, "
             "times gy (divided by the total weight for the mean)",
             "gy: () or (N,) for reduction 'none'; returns gx: (N, K)", 7,
             helpers=('_softmax_minus_target', '_mean_scale')),
    Exercise("optim/sgd.py:SGD._update",
             "one SGD step in place: weight decay, momentum buffer (dampening, Nesterov), p -= lr * g",
             "p, g, buf: (P,) flat slices; t: the step number from 1; returns nothing", 8,
             helpers=('_descend', '_momentum_step', '_nesterov_step')),
    Exercise("optim/adam.py:Adam._update",
             "one Adam step in place: L2 or decoupled (AdamW) weight decay, the moving averages m "
             "and v, the bias-corrected step (with amsgrad, the running maximum of v; with "
             "maximize, the step up the gradient)",
             "p, g, exp_avg, exp_avg_sq, max_exp_avg_sq (None without amsgrad): (P,) flat slices; "
             "t: the step number from 1; returns nothing", 8,
             helpers=('_adam_step', '_amsgrad_step', '_update_moments', '_descend_by_moments')),
    Exercise("gradcheck.py:compare_gradients",
             "backward's gradient of sum(fn(*inputs) * gy) with gy random, and central differences "
             "for every element of every input that requires a gradient (gradcheck compares them)",
             "inputs: Tensors of any shape; returns [(position, analytic, numeric)], each gradient "
             "a host array of its input's shape", 11),
]

BY_NAME = {exercise.name: exercise for exercise in EXERCISES}


def of_chapter(chapter):
    """The exercises of one chapter of the book, in the order ``list`` prints them."""
    return [exercise for exercise in EXERCISES if exercise.chapter == chapter]


def find(name):
    """The exercise called ``name``; a ValueError naming the closest names otherwise."""
    if name in BY_NAME:
        return BY_NAME[name]
    lowered = {known.lower(): known for known in BY_NAME}
    close = difflib.get_close_matches(name.lower(), lowered, n=3, cutoff=0.3)
    close += [known for known in lowered if name.lower() in known and known not in close]
    suggestion = ", ".join(lowered[known] for known in close[:3]) or "see `list`"
    raise ValueError(f"unknown exercise {name!r}; the closest: {suggestion}")


def line(exercise):
    """One line of ``list``: the name, what to write, the chapter."""
    return f"{exercise.name:<22} {exercise.task}  [{exercise.chapter_title}]"
