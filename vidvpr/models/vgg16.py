"""The VGG16 convolutional stack, laid out exactly as torchvision's ``vgg16().features``.

Layers are a plain ``nn.Sequential`` so state-dict keys are ``0.weight``, ``0.bias``,
``2.weight``, ... as in torchvision, and pytorch-NetVlad's ``encoder.*`` weights load as they are.
"""

from __future__ import annotations

from torch import nn

# output channels of each 3×3 convolution; "M" is a 2×2 max-pool with stride 2
VGG16_LAYOUT: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
                                 512, 512, 512, "M", 512, 512, 512, "M"]
VGG16_CHANNELS = 512
NETVLAD_STRIDE = 16  # four max-pools remain once the last one is cut


def vgg16_features() -> nn.Sequential:
    """The 13 conv3×3+ReLU layers and 5 max-pools of VGG16 (31 modules), randomly initialised."""
    layers: list[nn.Module] = []
    channels = 3
    for item in VGG16_LAYOUT:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, int(item), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = int(item)
    return nn.Sequential(*layers)


def vgg16_netvlad_encoder() -> nn.Sequential:
    """VGG16 cut where pytorch-NetVlad cuts it: without the last ReLU and max-pool.

    Output: conv5_3 before its ReLU, 512 channels at stride 16 (keys ``0.weight`` .. ``28.bias``);
    inputs need H, W >= 16 (four 2×2 max-pools).
    """
    return nn.Sequential(*list(vgg16_features().children())[:-2])
