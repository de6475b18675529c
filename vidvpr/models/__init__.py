"""Image description models: the registry, NetVLAD, backbones, checkpoints and whitening.

    model = load_model("netvlad-efficientnet-lite0", weights="netvlad-init.pt")
    descriptors = model(images)          # ImageNet-normalised (B, 3, H, W) -> L2-normalised (B, D)
"""

from vidvpr.models.checkpoints import load_checkpoint, save_checkpoint
from vidvpr.models.efficientnet import EfficientNetLite0Features, packaged_weights_path
from vidvpr.models.initialise import NetVLADInitRecord, initialise_netvlad
from vidvpr.models.model import VPRModel
from vidvpr.models.netvlad import NetVLAD
from vidvpr.models.registry import MODELS, ModelInfo, ModelSpec, list_models, load_model, save_model
from vidvpr.models.vgg16 import vgg16_features, vgg16_netvlad_encoder
from vidvpr.models.whitening import PCAWhitening, fit_pca_whitening

__all__ = [
    "MODELS", "EfficientNetLite0Features", "ModelInfo", "ModelSpec", "NetVLAD", "NetVLADInitRecord",
    "PCAWhitening", "VPRModel", "fit_pca_whitening", "initialise_netvlad", "list_models", "load_checkpoint",
    "load_model", "packaged_weights_path", "save_checkpoint", "save_model", "vgg16_features",
    "vgg16_netvlad_encoder",
]
