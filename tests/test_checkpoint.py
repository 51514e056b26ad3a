"""minires.checkpoint: a training run's state (model, optimizer, schedule, epoch, settings, the
data generator's state) saved to a .npz read without pickle, and loaded back.

The round trip runs on the strict stand-in device (minires.testing.strict_device), so it also
proves that saving reads the device only explicitly and that loading puts every array back on
the device. The training script's checkpoints (names, exact resume) are tested in
test_train_script.py, the PyTorch format in test_torch_format.py.
"""
import numpy

import minires
import minires.functional as F
from minires import backend, checkpoint, nn, optim
from minires.testing import strict_device


def test_checkpoint_round_trip_on_the_device(device, tmp_path):
    model = nn.Sequential(nn.Conv2d(in_channels=3, out_channels=4, kernel_size=3), nn.BatchNorm2d(4),
                          nn.Flatten(), nn.Linear(in_features=4 * 6 * 6, out_features=3))
    optimizer = optim.Adam(model.parameters(), lr=1e-2)
    scheduler = optim.StepLR(optimizer, step_size=1, gamma=0.5)
    x = device.asarray(numpy.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(numpy.float32))
    y = device.asarray(numpy.array([0, 2]))
    loss = F.cross_entropy(model(minires.Tensor(x)), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()
    data_rng = numpy.random.default_rng(5)
    path = tmp_path / "run.npz"
    with strict_device.counting() as saving:
        checkpoint.save_checkpoint(str(path), model, optimizer, scheduler, epoch=3,
                                   settings={"lr": 1e-2},
                                   rng_state=data_rng.bit_generator.state)
    assert saving.implicit == 0 and saving.d2h > 0          # explicit reads only

    minires.manual_seed(9)
    restored = nn.Sequential(nn.Conv2d(in_channels=3, out_channels=4, kernel_size=3),
                             nn.BatchNorm2d(4), nn.Flatten(),
                             nn.Linear(in_features=4 * 6 * 6, out_features=3))
    restored_optimizer = optim.Adam(restored.parameters(), lr=1.0)
    restored_scheduler = optim.StepLR(restored_optimizer, step_size=1, gamma=0.5)
    with strict_device.counting() as loading:
        meta = checkpoint.load_checkpoint(str(path), restored, restored_optimizer, restored_scheduler)
    assert loading.implicit == 0 and loading.d2h == 0
    assert meta["epoch"] == 3 and meta["settings"] == {"lr": 1e-2}
    assert meta["rng_state"] == data_rng.bit_generator.state
    for (key, saved), (_, loaded) in zip(model.state_dict().items(), restored.state_dict().items()):
        assert isinstance(loaded, strict_device.ndarray), key
        numpy.testing.assert_array_equal(backend.to_host(loaded), backend.to_host(saved), err_msg=key)
    for name, array in optimizer.state_dict().items():
        loaded = restored_optimizer.state_dict()[name]
        if hasattr(array, "shape"):
            numpy.testing.assert_array_equal(backend.to_host(loaded), backend.to_host(array))
        else:
            assert loaded == array, name
    assert restored_scheduler.state_dict() == scheduler.state_dict()
