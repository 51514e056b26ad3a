"""Models built from ``minires.nn``."""
from minires.models.resnet import ResidualBlock, ResNet50_layer4

__all__ = ["ResidualBlock", "ResNet50_layer4"]
