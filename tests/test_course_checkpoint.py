"""The course's PyTorch checkpoints and minires, both ways, with PyTorch as the oracle.

A stand-in for the course's ``resnet50_epoch285.ckpt`` is written by
``torch.save(model.state_dict())`` from the course's network (minires.testing.torch_reference)
with non-trivial BatchNorm statistics. minires must read it to the same logits as torch, the training
script must measure the same test accuracy as torch does with the course's normalisation, and the
``.ckpt`` the script writes must load into the torch model (``weights_only=True``, strict) and
give minires's logits. Every test here reads the whole network or runs the script: all are slow.
"""
import re

import numpy
import pytest

torch = pytest.importorskip("torch")

import minires  # noqa: E402
from minires.checkpoint import load_checkpoint  # noqa: E402
from minires.models import ResNet50_layer4  # noqa: E402
from minires.testing.torch_reference import ResNet50_layer4 as TorchResNet50_layer4  # noqa: E402
from minires.torch_format import load_torch_state_dict  # noqa: E402
from tests.support.cifar_files import write_cifar_folder  # noqa: E402
from tests.support.scripts import run_script  # noqa: E402

pytestmark = pytest.mark.slow

COURSE_MEAN, COURSE_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
N_TEST, N_RIGHT = 20, 13            # labels are made so that torch gets 13 of 20 right: 65.00 %
ACCURACY_LINE = re.compile(r"(?m)^Accuracy of the model on the test images: (\d+\.\d\d) %$")


def course_normalize(images):
    """The course's test transform in torch: ToTensor (pixels / 255), then Normalize."""
    x = torch.from_numpy(images).float() / 255                             # (N, 3, 32, 32)
    mean = torch.tensor(COURSE_MEAN).view(1, 3, 1, 1)                      # (1, C, 1, 1)
    std = torch.tensor(COURSE_STD).view(1, 3, 1, 1)                        # (1, C, 1, 1)
    return (x - mean) / std


def torch_logits(model, x):
    with torch.no_grad():
        return model.eval()(x).numpy()                                     # (N, 10)


def minires_logits(model, x):
    with minires.no_grad():
        return minires.backend.to_host(model.eval()(minires.Tensor(x)).data)   # (N, 10)


def assert_same_logits(expected, got):
    """Equal to float32 accuracy: rounding errors scale with the logits (about 3 here)."""
    error, scale = numpy.abs(expected - got).max(), max(1.0, numpy.abs(expected).max())
    assert numpy.allclose(got, expected, rtol=1e-4, atol=1e-4 * scale), f"max |error| {error:.3g}"
    assert (got.argmax(axis=1) == expected.argmax(axis=1)).all()


@pytest.fixture(scope="module")
def test_images():
    return numpy.random.default_rng(3).integers(0, 256, size=(N_TEST, 3, 32, 32), dtype=numpy.uint8)


@pytest.fixture(scope="module")
def course_model(test_images):
    """The course's network, as if trained: BatchNorm with its own affine values and running
    statistics of three train-mode batches, and a classifier head that reads the differences
    between images (a random network's features barely vary, so its predictions would not)."""
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = TorchResNet50_layer4()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5, generator=generator)
                module.bias.uniform_(-0.2, 0.2, generator=generator)
        model.train()
        for _ in range(3):
            model(torch.randn(16, 3, 32, 32, generator=generator))
        model.eval()
        body = torch.nn.Sequential(model.layer1, model.layer2, model.layer3, model.layer4,
                                   model.avgpool, torch.nn.Flatten())
        features = body(course_normalize(test_images))                    # (N, 1024)
        mean, std = features.mean(dim=0), features.std(dim=0).clamp_min(1e-3)   # dead ReLUs: 0
        weight = torch.randn(10, 1024, generator=generator) / (std * 1024 ** 0.5)
        model.fc.weight.copy_(weight)
        model.fc.bias.copy_(-weight @ mean)
    return model


@pytest.fixture(scope="module")
def course_checkpoint(course_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("course") / "resnet50_epoch285.ckpt"
    torch.save(course_model.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def course_data(course_model, test_images, tmp_path_factory):
    """A data folder whose test labels torch gets exactly N_RIGHT of N_TEST right."""
    logits = torch_logits(course_model, course_normalize(test_images))
    top2 = numpy.sort(logits, axis=1)[:, -2:]
    assert (top2[:, 1] - top2[:, 0]).min() > 1e-3, "a near tie: pick other seeds"
    predicted = logits.argmax(axis=1)
    assert len(set(predicted)) >= 3, f"predictions barely differ: {predicted}"
    labels = predicted.copy()
    labels[N_RIGHT:] = (predicted[N_RIGHT:] + 1 + numpy.arange(N_TEST - N_RIGHT) % 9) % 10
    data_dir = write_cifar_folder(tmp_path_factory.mktemp("data"), records_per_file=2, seed=5,
                                  test_images=test_images, test_labels=labels)
    return data_dir, labels


def test_course_checkpoint_gives_torch_logits_in_minires(course_model, course_checkpoint,
                                                         test_images):
    state = load_torch_state_dict(course_checkpoint)
    assert len(state) == 373
    assert state["layer1.1.num_batches_tracked"] == 3
    model = ResNet50_layer4()
    model.load_state_dict(state)
    x = course_normalize(test_images)
    assert_same_logits(torch_logits(course_model, x), minires_logits(model, x.numpy()))


def test_script_measures_torch_accuracy_of_course_checkpoint(course_model, course_checkpoint,
                                                             course_data, test_images, tmp_path):
    data_dir, labels = course_data
    predicted = torch_logits(course_model, course_normalize(test_images)).argmax(axis=1)
    torch_accuracy = 100.0 * (predicted == labels).mean()
    assert torch_accuracy == 100.0 * N_RIGHT / N_TEST
    result = run_script("--resume", course_checkpoint, "--eval-only", "--data-dir", data_dir,
                        "--batch-size", 10, "--limit-test", N_TEST, "--checkpoint-dir", tmp_path,
                        check=True)
    assert "Loaded PyTorch weights" in result.stdout
    assert ACCURACY_LINE.search(result.stdout).group(1) == f"{torch_accuracy:.2f}"


def test_script_checkpoint_loads_into_torch(course_checkpoint, course_data, test_images, tmp_path):
    """The course's experiment in small: start from its checkpoint, train, save; torch reads it."""
    data_dir, _ = course_data
    run_script("--resume", course_checkpoint, "--data-dir", data_dir, "--epochs", 1,
               "--batch-size", 10, "--limit-train", 10, "--limit-test", 10,
               "--checkpoint-dir", tmp_path, check=True)
    state = torch.load(tmp_path / "resnet50_final.ckpt", weights_only=True)
    model = TorchResNet50_layer4()
    assert [(key, value.dtype) for key, value in state.items()] == \
        [(key, value.dtype) for key, value in model.state_dict().items()]
    model.load_state_dict(state)                                           # strict
    assert state["layer1.1.num_batches_tracked"] == 3 + 1                  # one training step

    minires_model = ResNet50_layer4()
    load_checkpoint(tmp_path / "resnet50_final.npz", minires_model)
    same = {key: numpy.array_equal(value.numpy(), minires_model.state_dict()[key])
            for key, value in state.items()}
    assert all(same.values()), [key for key, equal in same.items() if not equal][:5]
    course = load_torch_state_dict(course_checkpoint)
    assert not numpy.array_equal(course["fc.weight"], state["fc.weight"].numpy())   # it trained
    x = course_normalize(test_images)
    assert_same_logits(torch_logits(model, x), minires_logits(minires_model, x.numpy()))
