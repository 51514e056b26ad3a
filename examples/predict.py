"""Classify images with a trained ResNet50_layer4: the top classes by name, with probabilities.

    python examples/predict.py --checkpoint checkpoints/resnet50_final.npz cat.png truck.jpg
    python examples/predict.py --checkpoint resnet50_epoch285.ckpt --test-index 0 5 17 --grid grid.png
    python examples/predict.py --checkpoint checkpoints/last.npz --confusion confusion.png

The checkpoint is a minires ``.npz`` (``save_checkpoint``, as the training script writes)
or a PyTorch state dict (the course's ``.ckpt``); the shortcut kind (projection or
identity) is read from its keys. Image files (PNG, JPEG, anything Pillow opens) are
cropped to their central square and resized to 32 x 32, as CIFAR-10's images were
made; ``--test-index`` takes images of the CIFAR-10 test set in ``--data-dir``. Both
are normalised exactly as the training script does (``minires.data.normalize``).
For each image it prints a line such as

    test image 3 (true: airplane): airplane 91.2 %, ship 6.1 %, bird 1.0 %

Class names come from the data's ``batches.meta.txt`` (the built-in CIFAR-10 names
when the data is absent). ``--grid`` saves the images with their predicted and true
labels (green when right, red when wrong); ``--confusion`` counts, over the test set,
how often each true class was predicted as each class, and draws that matrix.
Pillow (image files) and matplotlib (pictures) are optional: ``pip install -e ".[viz]"``.
Exits with status 2 and one sentence for bad input.
"""
import argparse
import importlib
import sys
from pathlib import Path

import numpy

import minires
from minires import backend
from minires.checkpoint import is_checkpoint, load_checkpoint
from minires.data import CLASSES, FOLDER_NAME, DatasetError, DownloadError, load_cifar10, normalize
from minires.models import ResNet50_layer4
from minires.torch_format import load_torch_state_dict

REPO = Path(__file__).resolve().parents[1]
INSTALL = 'pip install -e ".[viz]"'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("images", type=Path, nargs="*", help="image files to classify")
    parser.add_argument("--checkpoint", type=Path, required=True, help="a minires .npz or PyTorch .ckpt")
    parser.add_argument("--test-index", type=int, nargs="+", default=[],
                        help="classify these images of the CIFAR-10 test set")
    parser.add_argument("--data-dir", type=Path, default=REPO / "data",
                        help="where CIFAR-10 is (downloaded there if missing)")
    parser.add_argument("--top", type=int, default=3, help="classes printed per image")
    parser.add_argument("--grid", type=Path, help="save the images with their labels here (.png)")
    parser.add_argument("--confusion", type=Path,
                        help="save the confusion matrix of the test set here (.png)")
    parser.add_argument("--limit-test", type=int, help="--confusion on the first N test images only")
    parser.add_argument("--batch-size", type=int, default=100, help="images per forward pass")
    args = parser.parse_args(argv)
    if not (args.images or args.test_index or args.confusion):
        parser.error("give image files, --test-index or --confusion")
    if args.grid and not (args.images or args.test_index):
        parser.error("--grid needs image files or --test-index")
    if args.limit_test is not None and args.limit_test < 1:
        parser.error("--limit-test must be at least 1")
    if not 1 <= args.top <= len(CLASSES):
        parser.error(f"--top must be between 1 and {len(CLASSES)}")
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    return args


def fail(message):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def optional(module, package, purpose):
    """Import ``module`` of an optional package, or stop with one sentence saying what to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        fail(f"{purpose} needs {package}: {INSTALL}")


# ---------------------------------------------------------------- model, data, images

def load_model(path):
    """ResNet50_layer4 with the weights of a minires .npz or a PyTorch state dict, in eval mode."""
    if not path.is_file():
        fail(f"--checkpoint {path}: no such file")
    try:
        if is_checkpoint(path):
            with numpy.load(path, allow_pickle=False) as archive:
                keys = archive.files            # the zip's listing; no array is read
            model = _resnet_for(keys)
            load_checkpoint(path, model)
        else:
            state = load_torch_state_dict(path)
            model = _resnet_for(state)
            model.load_state_dict(state)
    except (ValueError, RuntimeError, OSError) as error:
        fail(f"--checkpoint {path}: not a ResNet50_layer4 checkpoint ({error})")
    return model.eval()


def _resnet_for(keys):
    """The network whose shortcuts the checkpoint's keys show (the course's have projections).

    layer2.1 keeps its channels (256 -> 256) and size, so it has a projection unit only if
    every block has one; ``identity_shortcut=True`` adds its input itself instead.
    """
    projection = any(key.endswith("layer2.1.make_equal_channel.0.weight") for key in keys)
    return ResNet50_layer4(identity_shortcut=not projection)


def class_names(data_dir):
    """The ten names in batches.meta.txt, one a line; the built-in names if the file is absent."""
    meta = data_dir / FOLDER_NAME / "batches.meta.txt"
    if not meta.is_file():
        return list(CLASSES)
    names = [line.strip() for line in meta.read_text().splitlines() if line.strip()]
    if len(names) != len(CLASSES):
        fail(f"{meta}: expected {len(CLASSES)} class names, one a line, found {len(names)}")
    return names


def test_set(data_dir):
    """CIFAR-10's test images uint8 (N, 3, 32, 32) and labels int64 (N,)."""
    try:
        data = load_cifar10(data_dir)
    except (DownloadError, DatasetError) as error:
        fail(str(error))
    return data["test_images"], data["test_labels"]


def read_image(path):
    """An image file as CIFAR-10 makes them: central square, 32 x 32, uint8 (3, 32, 32) RGB."""
    image_module = optional("PIL.Image", "Pillow", "reading image files")
    try:
        with image_module.open(path) as image:
            image = image.convert("RGB")
            side = min(image.size)
            left, top = (image.width - side) // 2, (image.height - side) // 2
            image = image.crop((left, top, left + side, top + side))
            image = image.resize((32, 32), image_module.Resampling.BICUBIC)
    except (OSError, ValueError) as error:     # missing, unreadable or not an image
        fail(f"{path}: cannot be read as an image ({error})")
    return numpy.asarray(image, dtype=numpy.uint8).transpose(2, 0, 1)    # (H, W, C) -> (3, 32, 32)


# ---------------------------------------------------------------- predicting

def probabilities(model, images, batch_size):
    """Softmax of the model's logits: uint8 (N, 3, 32, 32) -> float64 (N, 10) on the host."""
    rows = []
    with minires.no_grad():
        for start in range(0, len(images), batch_size):
            x = minires.Tensor(normalize(images[start:start + batch_size]))   # (B, 3, 32, 32)
            logits = backend.to_host(model(x).data).astype(numpy.float64)     # (B, 10)
            logits -= logits.max(axis=1, keepdims=True)      # exp cannot overflow
            exp = numpy.exp(logits)
            rows.append(exp / exp.sum(axis=1, keepdims=True))
    return numpy.concatenate(rows)


def top_line(name, probability_row, classes, top, true=None):
    """'NAME (true: cat): cat 81.0 %, dog 12.0 %, frog 3.0 %'."""
    best = numpy.argsort(-probability_row, kind="stable")[:top]
    truth = f" (true: {classes[true]})" if true is not None else ""
    return f"{name}{truth}: " + ", ".join(f"{classes[k]} {100 * probability_row[k]:.1f} %" for k in best)


def confusion_matrix(true, predicted, K):
    """int64 (K, K): row i, column j counts images of class i predicted as class j."""
    return numpy.bincount(true * K + predicted, minlength=K * K).reshape(K, K)


# ---------------------------------------------------------------- pictures

def save_grid(path, images, probability_rows, trues, classes):
    """Each image with its predicted class and probability, and the true class when known."""
    pyplot = optional("matplotlib.pyplot", "matplotlib", "--grid")
    columns = min(len(images), 8)
    rows = -(-len(images) // columns)
    figure, axes = pyplot.subplots(rows, columns, figsize=(1.6 * columns, 2.1 * rows), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, image, row, true in zip(axes.flat, images, probability_rows, trues):
        predicted = int(row.argmax())
        axis.imshow(image.transpose(1, 2, 0), interpolation="nearest")     # (32, 32, 3)
        title = f"{classes[predicted]} {100 * row[predicted]:.0f} %"
        colour = "black"
        if true is not None:
            title += f"\ntrue: {classes[true]}"
            colour = "green" if predicted == true else "red"
        axis.set_title(title, fontsize=8, color=colour)
    _save(figure, path, pyplot)


def save_confusion(path, matrix, classes):
    pyplot = optional("matplotlib.pyplot", "matplotlib", "--confusion")
    accuracy = 100 * numpy.trace(matrix) / matrix.sum()
    figure, axis = pyplot.subplots(figsize=(7, 6))
    axis.imshow(matrix, cmap="Blues")
    K = len(classes)
    axis.set_xticks(range(K), classes, rotation=45, ha="right")
    axis.set_yticks(range(K), classes)
    axis.set_xlabel("predicted class")
    axis.set_ylabel("true class")
    axis.set_title(f"{matrix.sum()} test images, accuracy {accuracy:.2f} %")
    for i in range(K):
        for j in range(K):
            dark = matrix[i, j] > matrix.max() / 2     # white text on dark cells
            axis.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8,
                      color="white" if dark else "black")
    _save(figure, path, pyplot)


def _save(figure, path, pyplot):
    figure.tight_layout()
    try:
        figure.savefig(path, dpi=100)
    except (OSError, ValueError) as error:
        fail(f"{path}: cannot write the picture ({error})")
    finally:
        pyplot.close(figure)
    print(f"wrote {path}")


# ---------------------------------------------------------------- the script

def main(argv=None):
    args = parse_args(argv)
    if args.grid or args.confusion:
        # files only: no display needed
        optional("matplotlib", "matplotlib", "drawing --grid or --confusion").use("Agg")
    images = [read_image(path) for path in args.images]
    model = load_model(args.checkpoint)
    test_images, test_labels = test_set(args.data_dir) if args.test_index or args.confusion else ((), ())
    classes = class_names(args.data_dir)
    for index in args.test_index:
        if not 0 <= index < len(test_images):
            fail(f"--test-index {index}: the test set has {len(test_images)} images "
                 f"(0..{len(test_images) - 1})")

    names = [str(path) for path in args.images] + [f"test image {i}" for i in args.test_index]
    trues = [None] * len(args.images) + [int(test_labels[i]) for i in args.test_index]
    chosen = numpy.array(images + [test_images[i] for i in args.test_index], dtype=numpy.uint8)
    if len(chosen):
        rows = probabilities(model, chosen, args.batch_size)       # (N, 10)
        for name, row, true in zip(names, rows, trues):
            print(top_line(name, row, classes, args.top, true))
        if args.grid:
            save_grid(args.grid, chosen, rows, trues, classes)

    if args.confusion:
        limit = slice(None, args.limit_test)
        predicted = probabilities(model, test_images[limit], args.batch_size).argmax(axis=1)
        matrix = confusion_matrix(test_labels[limit], predicted, len(classes))
        print(f"Accuracy of the model on the {matrix.sum()} test images: "
              f"{100 * numpy.trace(matrix) / matrix.sum():.2f} %")
        print("confusion matrix (rows: true class, columns: predicted class, in this order):")
        for name, counts in zip(classes, matrix):
            print(f"  {name:<11}" + "".join(f"{count:>6}" for count in counts))
        save_confusion(args.confusion, matrix, classes)


if __name__ == "__main__":
    main()
