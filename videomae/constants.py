"""Pixel statistics shared by the data pipeline and the reconstruction targets (timm's ImageNet defaults)."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
