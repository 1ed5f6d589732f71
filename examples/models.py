"""Models from the libraries people train, for `cnncalc import torch`: each factory builds
one without weights (nothing is downloaded). torchvision's and timm's models are pure
Python; where torchvision's compiled operators do not load (a CPU build of torch other than
the one it was built for), the stand-in below lets its models import all the same."""

import sys
import types

sys.modules.setdefault("torchvision._meta_registrations",
                       types.ModuleType("torchvision._meta_registrations"))


def resnet50():
    import torchvision
    return torchvision.models.resnet50()


def densenet121():
    import torchvision
    return torchvision.models.densenet121()


def efficientnet_b0():
    import timm
    return timm.create_model("tf_efficientnet_b0", pretrained=False)


def unet():
    import segmentation_models_pytorch as smp
    return smp.Unet("resnet34", encoder_weights=None, classes=3)


def vit():
    import timm
    return timm.create_model("vit_tiny_patch16_224", pretrained=False)


def yolov8n():
    """Ultralytics' YOLOv8n from its yaml: 'cnncalc import torch ... --partial' writes it up
    to the Detect head's raw maps (its eval-mode box decoding has no statement yet)."""
    from ultralytics.nn.tasks import DetectionModel
    return DetectionModel("yolov8n.yaml", verbose=False)
