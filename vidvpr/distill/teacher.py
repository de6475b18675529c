"""The teacher: the model `vidvpr eval` evaluates, made ready the same way, and the student made from it.

`--teacher NAME[:WEIGHTS]` as `vidvpr eval --model` takes it. A model without weights (the
offline `netvlad-efficientnet-lite0`) has its NetVLAD initialised on the training database frames
by `vidvpr.evaluate.models.prepare_model` itself (same frames, same k-means seed), so the teacher
is the model `vidvpr eval` evaluates on that manifest, fingerprint for fingerprint. For an image
folder the same initialisation runs on the same number of images, sampled the same way (evenly).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vidvpr.core.errors import BadInput
from vidvpr.descriptors.cache import DescriptorCache
from vidvpr.descriptors.extract import ForwardCounter
from vidvpr.descriptors.frames import normalise_images
from vidvpr.distill.config import FREEZE_CHOICES
from vidvpr.distill.pairs import ImageTrainingSet, TrainingSet, VideoTrainingSet
from vidvpr.evaluate.models import (INIT_BATCH_SIZE, INIT_IMAGES, MODELS_DIR, ModelChoice, netvlad_init_checkpoint,
                                    parse_model_choice, prepare_model)
from vidvpr.models import VPRModel, initialise_netvlad, load_model
from vidvpr.models.efficientnet import STAGES
from vidvpr.models.registry import model_spec


def _folder_init_batches(training: ImageTrainingSet, device: torch.device) -> Iterator[torch.Tensor]:
    """The sampled images in batches of `INIT_BATCH_SIZE`, whatever --batch-size (the fit must not follow it)."""
    chosen = sorted({int(i) for i in np.linspace(0, len(training.places) - 1, num=min(INIT_IMAGES, len(training.places)))})
    for start in range(0, len(chosen), INIT_BATCH_SIZE):
        images = training.hq_images(chosen[start:start + INIT_BATCH_SIZE])
        for shape in dict.fromkeys(image.shape for image in images):  # one tensor per image size
            yield normalise_images([image for image in images if image.shape == shape]).to(device)


def prepare_teacher(text: str, training: TrainingSet, run_dir: Path, cache: DescriptorCache, device: torch.device,
                    batch_size: int) -> tuple[VPRModel, ModelChoice]:
    """The frozen teacher on `device` (eval mode, no gradients) and how it was named."""
    choice = parse_model_choice(text)
    if isinstance(training, VideoTrainingSet):
        teacher = prepare_model(choice, training.manifest, training.reference, run_dir, cache, device, batch_size,
                                None, ForwardCounter())
    else:
        teacher = load_model(choice.name, choice.weights).to(device)
        if choice.weights is None and not model_spec(choice.name).requires_weights:
            assert isinstance(training, ImageTrainingSet)
            models_dir = Path(run_dir) / MODELS_DIR
            models_dir.mkdir(parents=True, exist_ok=True)
            record = training.hq_sources()[0].record
            initialise_netvlad(teacher, _folder_init_batches(training, device),
                               netvlad_init_checkpoint(models_dir, choice.name),
                               images_source=f"training images {record.hash}")
            teacher.to(device)
    teacher.eval()
    teacher.requires_grad_(False)
    return teacher, choice


VGG16_CONV5 = 24  # encoder index of conv5_1: pytorch-NetVlad trains conv5 and NetVLAD, not conv1-4


def _efficientnet_early(options: dict[str, Any]) -> list[str]:
    """The stem and every stage but the last two kept ones (stage 5: stem + stages 1-3, stride <= 8)."""
    frozen_stage = options["stage"] - 2
    if frozen_stage < 1:
        return []
    return ["encoder._conv_stem.", "encoder._bn0."] + [f"encoder._blocks.{i}." for i in range(STAGES[frozen_stage].blocks)]


# what `freeze="early"` keeps fixed, per model: the high-resolution early layers, as NetVLAD trains
EARLY_LAYERS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "netvlad-vgg16": lambda options: [f"encoder.{i}." for i in range(VGG16_CONV5)],
    "netvlad-efficientnet-lite0": _efficientnet_early,
}


def make_student(teacher: VPRModel, freeze: str = "early") -> VPRModel:
    """A trainable copy of the teacher (same weights); batch-norm statistics stay frozen.

    `freeze="early"` also keeps the early layers fixed (`EARLY_LAYERS`): they see the most pixels,
    so they cost the most backward computation, and NetVLAD's own training never updates them;
    "none" trains every weight.

    Batch norm keeps the teacher's running statistics (eval mode) while the weights train: with
    the small batches of a CPU the batch statistics would be noise, and a fine-tuned network
    normalised by its pretraining statistics is the usual practice (EfficientNet has batch norm;
    VGG16 has none).
    """
    if freeze not in FREEZE_CHOICES:
        raise BadInput(f"Unknown --freeze '{freeze}'. Use {' or '.join(FREEZE_CHOICES)}.")
    student = copy.deepcopy(teacher)
    student.requires_grad_(True)
    if freeze == "early":
        prefixes = tuple(EARLY_LAYERS[student.name](student.options))
        for name, parameter in student.named_parameters():
            if name.startswith(prefixes):
                parameter.requires_grad_(False)
    set_training(student, True)
    return student


def set_training(model: VPRModel, training: bool) -> None:
    """Train or eval mode, with batch norm always in eval mode."""
    model.train(training)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()

