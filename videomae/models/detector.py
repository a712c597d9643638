"""Spatio-temporal action detection on the video ViT: per-person action scores at a clip's keyframe (AVA).

As the VideoMAE AVA model: the last layer's tokens, normalized, reshaped to their (T', H', W') grid and averaged
over time; RoIAlign of each person box on that map, max-pooled to one vector; dropout and a linear layer give one
logit per action (multi-label: a sigmoid each). The network is the classifier with the same parameters, its head
sized to the actions, so any classifier or pretraining checkpoint loads into it and its weights save as one.
"""

from __future__ import annotations

import torch
from torchvision.ops import roi_align

from videomae.models.config import ModelConfig
from videomae.models.vit import VisionTransformer


class ActionDetector(VisionTransformer):
    """`model(video, boxes) -> logits`: video (B, 3, T, H, W) normalized, boxes (B, M, 4) as x1, y1, x2, y2 in [0, 1]
    of the frame, logits (B, M, num_classes). Padding boxes (any value) give logits that are simply not used.

    Args:
        config: the classifier's config; `num_classes` is the number of actions.
        roi_size: RoIAlign output side before the max pooling (official: 7).
    """

    def __init__(self, config: ModelConfig, roi_size: int = 7):
        super().__init__(config)
        self.roi_size = roi_size

    def feature_map(self, video: torch.Tensor) -> torch.Tensor:
        """The time-averaged map of normalized last-layer tokens: (B, D, H', W')."""
        t, h, w = self.token_grid(video)
        tokens = self.forward_tokens(video)  # (B, N, D), already through `norm` without mean pooling
        if self.fc_norm is not None:  # the classifier's final LayerNorm, applied to every token
            tokens = self.fc_norm(tokens)
        grid = tokens.view(tokens.shape[0], t, h, w, -1).mean(dim=1)  # (B, H', W', D)
        return grid.permute(0, 3, 1, 2)  # (B, D, H', W')

    def forward(self, video: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        features = self.feature_map(video)  # (B, D, H', W')
        b, m = boxes.shape[:2]
        scale = boxes.new_tensor([features.shape[3], features.shape[2]] * 2)  # to token units: W', H', W', H'
        batch_index = torch.arange(b, device=boxes.device, dtype=boxes.dtype).repeat_interleave(m)  # (B·M,)
        rois = torch.cat([batch_index[:, None], boxes.reshape(b * m, 4) * scale], dim=1)  # (B·M, 5)
        pooled = roi_align(features, rois.to(features.dtype), self.roi_size, spatial_scale=1.0, sampling_ratio=0)
        person = pooled.amax(dim=(2, 3))  # (B·M, D)
        return self.head(self.head_drop(person)).view(b, m, -1)  # (B, M, num_classes)


def detector_from_classifier(classifier: VisionTransformer, roi_size: int = 7) -> ActionDetector:
    """An `ActionDetector` holding the classifier's parameters (the same tensors, nothing copied)."""
    with torch.device("meta"):
        detector = ActionDetector(classifier.config, roi_size)
    detector.load_state_dict(classifier.state_dict(), assign=True)
    return detector.train(classifier.training)
