"""examples/predict.py: probabilities as the training script's normalisation gives them, image
files cropped and resized as CIFAR-10's, both checkpoint formats, the top-3 lines, the grid and
the confusion matrix on the shared CIFAR-10 sample, and one sentence with exit 2 for bad input.

The model is ResNet50_layer4 at its seeded initialisation with a sharpened classifier (fc weights
x 30), so its probabilities are not all equal; it is saved once per module as .npz and .ckpt.
"""
import importlib.util
import re

import numpy
import pytest

import minires
from minires.data import CIFAR10_MEAN, CIFAR10_STD, read_records
from minires.models import ResNet50_layer4
from minires.torch_format import save_torch_state_dict
from tests.support.cifar_sample import extracted_sample
from tests.support.scripts import REPO, run_example

SCRIPT = REPO / "examples" / "predict.py"
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
LINE = re.compile(r"^(.+?)(?: \(true: (\w+)\))?: (\w+) ([\d.]+) %, (\w+) ([\d.]+) %, (\w+) ([\d.]+) %$")


def load_script():
    spec = importlib.util.spec_from_file_location("predict", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


predict = load_script()


@pytest.fixture(scope="module")
def model():
    minires.manual_seed(0)
    model = ResNet50_layer4().eval()
    model.fc.weight.data *= 30
    return model


@pytest.fixture(scope="module")
def checkpoints(model, tmp_path_factory):
    """{"npz": minires checkpoint, "ckpt": PyTorch state dict} of ``model``."""
    folder = tmp_path_factory.mktemp("checkpoints")
    minires.save_checkpoint(folder / "model.npz", model)
    save_torch_state_dict({k: minires.to_host(v) for k, v in model.state_dict().items()},
                          folder / "model.ckpt")
    return {"npz": folder / "model.npz", "ckpt": folder / "model.ckpt"}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return extracted_sample(tmp_path_factory)


def course_probabilities(model, images):
    """The course's test transform written out (ToTensor, Normalize), the model, softmax."""
    x = (images / 255.0 - numpy.array(CIFAR10_MEAN).reshape(1, 3, 1, 1)) \
        / numpy.array(CIFAR10_STD).reshape(1, 3, 1, 1)                          # (N, 3, 32, 32)
    with minires.no_grad():
        logits = model(minires.Tensor(x.astype(numpy.float32))).numpy().astype(numpy.float64)
    exp = numpy.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)                                 # (N, 10)


@pytest.mark.slow
def test_probabilities_use_the_training_normalisation(model, rng):
    images = rng.integers(0, 256, size=(5, 3, 32, 32), dtype=numpy.uint8)
    got = predict.probabilities(model, images, batch_size=2)        # batches of 2, 2 and 1
    assert got.shape == (5, 10) and numpy.allclose(got.sum(axis=1), 1)
    numpy.testing.assert_allclose(got, course_probabilities(model, images), atol=1e-5)
    assert len(set(got.argmax(axis=1))) >= 1 and got.max() > 0.3          # not uniform


def test_top_line_names_the_best_classes_in_order():
    row = numpy.array([0.05, 0.6, 0.05, 0.2, 0.0, 0.0, 0.0, 0.0, 0.0, 0.1])
    assert predict.top_line("test image 7", row, CLASSES, 3, true=3) == \
        "test image 7 (true: cat): automobile 60.0 %, cat 20.0 %, truck 10.0 %"
    assert predict.top_line("x.png", row, CLASSES, 1) == "x.png: automobile 60.0 %"


def test_confusion_matrix_counts_true_rows_against_predicted_columns():
    matrix = predict.confusion_matrix(numpy.array([0, 0, 1, 2, 2, 2]), numpy.array([0, 1, 1, 2, 0, 2]), 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


def test_image_files_are_cropped_to_the_central_square_and_resized_to_32(tmp_path):
    image_module = pytest.importorskip("PIL.Image")
    pixels = numpy.zeros((40, 120, 3), dtype=numpy.uint8)      # (H, W, C): green sides, red square
    pixels[:, :, 1] = 255
    pixels[:, 40:80] = (255, 0, 0)
    image_module.fromarray(pixels).save(tmp_path / "wide.png")
    image = predict.read_image(tmp_path / "wide.png")
    assert image.dtype == numpy.uint8 and image.shape == (3, 32, 32)
    assert (image[0] == 255).all() and (image[1] == 0).all() and (image[2] == 0).all()
    image_module.fromarray(pixels[:, :40]).convert("L").save(tmp_path / "grey.jpg")   # grey JPEG
    assert predict.read_image(tmp_path / "grey.jpg").shape == (3, 32, 32)


@pytest.mark.slow
def test_both_checkpoint_formats_and_identity_shortcuts_load(model, checkpoints, tmp_path, rng):
    images = rng.integers(0, 256, size=(2, 3, 32, 32), dtype=numpy.uint8)
    expected = predict.probabilities(model, images, 2)
    for path in checkpoints.values():
        numpy.testing.assert_array_equal(predict.probabilities(predict.load_model(path), images, 2),
                                         expected)
    identity = ResNet50_layer4(identity_shortcut=True)
    minires.save_checkpoint(tmp_path / "identity.npz", identity)
    loaded = predict.load_model(tmp_path / "identity.npz")
    assert [block.identity for block in loaded.layer4] == [False] + [True] * 5


def test_class_names_come_from_batches_meta(data_dir, tmp_path, capsys):
    assert predict.class_names(data_dir) == CLASSES
    assert predict.class_names(tmp_path) == CLASSES                    # no data: the built-in names
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    (folder / "batches.meta.txt").write_text("one\ntwo\n")
    with pytest.raises(SystemExit) as stop:
        predict.class_names(tmp_path)
    assert stop.value.code == 2
    assert capsys.readouterr().err == f"error: {folder / 'batches.meta.txt'}: expected 10 class names, " \
                                      "one a line, found 2\n"


# ---------------------------------------------------------------- the script end to end

def run_script(*args, prefix=()):
    return run_example("predict.py", *args, python_options=prefix)


@pytest.mark.slow
def test_predict_prints_top_3_of_files_and_test_images_and_saves_the_grid(model, checkpoints, data_dir,
                                                                          tmp_path):
    image_module = pytest.importorskip("PIL.Image")
    pytest.importorskip("matplotlib")
    test_images, test_labels = read_records(data_dir / "cifar-10-batches-bin" / "test_batch.bin")
    image_module.fromarray(test_images[3].transpose(1, 2, 0)).save(tmp_path / "ship.png")
    grid = tmp_path / "grid.png"
    result = run_script("--checkpoint", checkpoints["ckpt"], "--data-dir", data_dir, tmp_path / "ship.png",
                        "--test-index", 0, 5, 17, "--grid", grid)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == f"wrote {grid}" and len(lines) == 5
    expected = course_probabilities(model, test_images[[3, 0, 5, 17]])     # the file is test image 3
    names = [str(tmp_path / "ship.png"), "test image 0", "test image 5", "test image 17"]
    for line, name, true, row in zip(lines, names, [None, 0, 5, 17], expected):
        match = LINE.match(line)
        assert match and match.group(1) == name, line
        assert match.group(2) == (CLASSES[test_labels[true]] if true is not None else None)
        best = numpy.argsort(-row)[:3]
        assert [match.group(k) for k in (3, 5, 7)] == [CLASSES[k] for k in best]
        assert numpy.allclose([float(match.group(k)) for k in (4, 6, 8)], 100 * row[best], atol=0.051)
    with image_module.open(grid) as picture:
        assert picture.format == "PNG" and picture.size == (640, 210)
    assert 20_000 < grid.stat().st_size < 300_000


@pytest.mark.slow
def test_predict_confusion_matrix_of_the_test_set(model, checkpoints, data_dir, tmp_path):
    pytest.importorskip("matplotlib")
    test_images, test_labels = read_records(data_dir / "cifar-10-batches-bin" / "test_batch.bin")
    out = tmp_path / "confusion.png"
    result = run_script("--checkpoint", checkpoints["npz"], "--data-dir", data_dir, "--confusion", out,
                        "--limit-test", 200)
    assert result.returncode == 0, result.stderr
    predicted = course_probabilities(model, test_images[:200]).argmax(axis=1)
    accuracy = 100 * (predicted == test_labels[:200]).mean()
    lines = result.stdout.splitlines()
    assert lines[0] == f"Accuracy of the model on the 200 test images: {accuracy:.2f} %"
    matrix = numpy.array([[int(n) for n in line.split()[1:]] for line in lines[2:12]])
    assert [line.split()[0] for line in lines[2:12]] == CLASSES
    assert matrix.sum() == 200 and numpy.trace(matrix) == (predicted == test_labels[:200]).sum()
    assert matrix.sum(axis=1).tolist() == numpy.bincount(test_labels[:200], minlength=10).tolist()
    assert matrix.sum(axis=0).tolist() == numpy.bincount(predicted, minlength=10).tolist()
    assert lines[-1] == f"wrote {out}" and 20_000 < out.stat().st_size < 300_000


@pytest.mark.slow
def test_predict_bad_input_exits_2_with_one_sentence(checkpoints, data_dir, tmp_path):
    (tmp_path / "notes.jpg").write_text("not an image")
    no_package = ("-c", "import runpy, sys; sys.modules[sys.argv[1]] = None; "
                  "sys.argv = sys.argv[2:]; runpy.run_path(sys.argv[0], run_name='__main__')")
    ckpt = ("--checkpoint", checkpoints["ckpt"], "--data-dir", data_dir)
    cases = [
        (ckpt + ("--test-index", 846), "error: --test-index 846: the test set has 846 images (0..845)"),
        (ckpt + (tmp_path / "notes.jpg",), f"error: {tmp_path / 'notes.jpg'}: cannot be read as an image"),
        (("--checkpoint", tmp_path / "none.ckpt", "--test-index", 0),
         f"error: --checkpoint {tmp_path / 'none.ckpt'}: no such file"),
        (("--checkpoint", tmp_path / "notes.jpg", "--test-index", 0),
         f"error: --checkpoint {tmp_path / 'notes.jpg'}: not a ResNet50_layer4 checkpoint"),
    ]
    for args, message in cases:
        result = run_script(*args)
        assert result.returncode == 2 and result.stderr.startswith(message), result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    result = run_script(*ckpt)
    assert result.returncode == 2 and "error: give image files, --test-index or --confusion" in result.stderr
    result = run_script(*ckpt, tmp_path / "notes.jpg", prefix=(*no_package, "PIL"))
    assert result.returncode == 2
    assert result.stderr == 'error: reading image files needs Pillow: pip install -e ".[viz]"\n'
    result = run_script(*ckpt, "--test-index", 0, "--grid", tmp_path / "g.png",
                        prefix=(*no_package, "matplotlib"))
    assert result.returncode == 2
    assert result.stderr == 'error: drawing --grid or --confusion needs matplotlib: pip install -e ".[viz]"\n'
