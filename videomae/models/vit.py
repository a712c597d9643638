"""VideoMAE V2 video vision transformers: the classifier and the dual-masking pretraining model.

Parameter names, shapes and numerics are exactly those of the official code (reference §1-§3), so official
state dicts load with no renaming. Speed and memory come from things that leave the numerics unchanged:
`F.scaled_dot_product_attention`, gathers by index instead of boolean indexing (static shapes),
patch-embedding only the tokens the encoder sees, and a last decoder block that computes only the predicted
rows. Everything is plain autograd; activation checkpointing, compile and sharding are applied from outside
(`videomae.training.parallelize`).

Shapes: B batch, N tokens of the whole clip in (t, h, w) order, D encoder width, Dd decoder width,
P = 3 x tubelet x patch^2 values per token.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from videomae.errors import ConfigError
from videomae.masking import mask_indices, token_grid
from videomae.models.config import ModelConfig

# ----------------------------------------------------------------------------------------------------
# Tokens and positions
# ----------------------------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _sinusoid_table(num_positions: int, dim: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    position = np.arange(num_positions, dtype=np.float64)[:, None]  # (N, 1)
    angle = position / np.power(10000, 2 * (np.arange(dim) // 2) / dim)  # (N, D), float64 as official
    angle[:, 0::2] = np.sin(angle[:, 0::2])
    angle[:, 1::2] = np.cos(angle[:, 1::2])
    return torch.from_numpy(angle).float().to(device=device, dtype=dtype).unsqueeze(0)  # (1, N, D)


def sinusoid_table(num_positions: int, dim: int, like: torch.Tensor) -> torch.Tensor:
    """The official fixed 1-D sinusoid table over the flattened token index: (1, N, D), in like's dtype.

    It is never a parameter (official checkpoints have no pos_embed), so it is built for whatever grid
    the input has: any clip length and resolution work without interpolation.
    """
    return _sinusoid_table(num_positions, dim, like.device, like.dtype)


def tubelet_view(video: torch.Tensor, tubelet: int, patch: int, channels_last: bool) -> torch.Tensor:
    """A strided view of a clip as tubelets, no copy.

    (B, C, T, H, W) -> (B, T', H', W', C, t, p, p), or (B, T', H', W', t, p, p, C) if channels_last
    (the official target layout, colour fastest).
    """
    b, c, t, h, w = video.shape
    x = video.view(b, c, t // tubelet, tubelet, h // patch, patch, w // patch, patch)
    if channels_last:
        return x.permute(0, 2, 4, 6, 3, 5, 7, 1)
    return x.permute(0, 2, 4, 6, 1, 3, 5, 7)


def gather_tubelets(view: torch.Tensor, token_idx: torch.Tensor | None) -> torch.Tensor:
    """Flatten the tubelets of `view` (from `tubelet_view`) into (B, n, P), only those in token_idx."""
    b, gt, gh, gw = view.shape[:4]
    if token_idx is None:
        return view.reshape(b, gt * gh * gw, -1)  # (B, N, P)
    frame, rest = token_idx // (gh * gw), token_idx % (gh * gw)
    batch = torch.arange(b, device=token_idx.device).unsqueeze(1)  # (B, 1)
    return view[batch, frame, rest // gw, rest % gw].flatten(2)  # (B, n, P): copies only the chosen tokens


def gather_tokens(x: torch.Tensor, token_idx: torch.Tensor) -> torch.Tensor:
    """(B, N, D) gathered at (B, n) indices -> (B, n, D)."""
    return torch.gather(x, 1, token_idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


# ----------------------------------------------------------------------------------------------------
# Layers
# ----------------------------------------------------------------------------------------------------


def drop_path(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Stochastic depth: drop the whole residual branch per sample, scale the survivors by 1/keep."""
    if rate == 0.0 or not training:
        return x
    keep = 1.0 - rate
    survivors = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
    return x * survivors / keep


class PatchEmbed(nn.Module):
    """Tubelet embedding: a Conv3d with kernel = stride = (t, p, p), applied as a matrix product on the
    gathered tubelets so that only the tokens the encoder sees are embedded."""

    def __init__(self, in_chans: int, embed_dim: int, tubelet_size: int, patch_size: int):
        super().__init__()
        self.tubelet_size, self.patch_size = tubelet_size, patch_size
        kernel = (tubelet_size, patch_size, patch_size)
        self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=kernel, stride=kernel)

    def forward(self, video: torch.Tensor, token_idx: torch.Tensor | None = None) -> torch.Tensor:
        view = tubelet_view(video, self.tubelet_size, self.patch_size, channels_last=False)
        patches = gather_tubelets(view, token_idx)  # (B, n, P) in the conv weight's (c, t, h, w) order
        return F.linear(patches, self.proj.weight.flatten(1), self.proj.bias)  # (B, n, D)


class Attention(nn.Module):
    """Multi-head self-attention with the official bias layout: q_bias and v_bias, no k bias."""

    def __init__(
        self, dim: int, num_heads: int, qkv_bias: bool, attn_drop: float, proj_drop: float, fused: bool = True
    ):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.scale = self.head_dim**-0.5
        self.fused = fused
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim)) if qkv_bias else None
        self.v_bias = nn.Parameter(torch.zeros(dim)) if qkv_bias else None
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor, num_queries: int | None = None) -> torch.Tensor:
        """(B, N, D) -> (B, N, D), or only the last num_queries rows (B, Nq, D), which still attend to all N."""
        b, n, d = x.shape
        bias = None
        if self.q_bias is not None:
            bias = torch.cat([self.q_bias, torch.zeros_like(self.v_bias), self.v_bias])  # k has no bias
        qkv = F.linear(x, self.qkv.weight, bias).reshape(b, n, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 x (B, h, N, hd)
        if num_queries is not None:
            q = q[:, :, n - num_queries :]  # (B, h, Nq, hd)
        dropout = self.attn_drop if self.training else 0.0
        if self.fused:
            x = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout)  # (B, h, Nq, hd)
        else:  # the official explicit path, kept for FLOP counting and as a reference
            attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)  # (B, h, Nq, N)
            x = F.dropout(attn, dropout) @ v  # (B, h, Nq, hd)
        x = x.transpose(1, 2).reshape(b, q.shape[2], d)  # (B, Nq, D)
        return self.proj_drop(self.proj(x))


class Mlp(nn.Module):
    """fc1, exact GELU, fc2, dropout (the official has no dropout between GELU and fc2)."""

    def __init__(self, dim: int, hidden: int, drop: float):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(F.gelu(self.fc1(x))))  # (B, N, D) -> (B, N, 4D) -> (B, N, D)


class Block(nn.Module):
    """Pre-norm transformer block (no layer scale: no released checkpoint has one)."""

    def __init__(self, dim: int, num_heads: int, config: ModelConfig, drop_path_rate: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=config.norm_eps)
        self.attn = Attention(
            dim, num_heads, config.qkv_bias, config.attn_drop_rate, config.drop_rate, config.fused_attn
        )
        self.norm2 = nn.LayerNorm(dim, eps=config.norm_eps)
        self.mlp = Mlp(dim, int(dim * config.mlp_ratio), config.drop_rate)
        self.drop_path_rate = drop_path_rate

    def forward(self, x: torch.Tensor, num_out: int | None = None) -> torch.Tensor:
        """(B, N, D) -> (B, N, D), or only the last num_out rows (B, num_out, D) when the rest are not used."""
        residual = x if num_out is None else x[:, x.shape[1] - num_out :]  # (B, num_out or N, D)
        x = residual + drop_path(self.attn(self.norm1(x), num_out), self.drop_path_rate, self.training)
        return x + drop_path(self.mlp(self.norm2(x)), self.drop_path_rate, self.training)


def make_blocks(dim: int, num_heads: int, depth: int, config: ModelConfig) -> nn.ModuleList:
    rates = torch.linspace(0, config.drop_path_rate, depth, device="cpu").tolist()  # grows with depth
    return nn.ModuleList(Block(dim, num_heads, config, rate) for rate in rates)


def run_blocks(blocks: nn.ModuleList, x: torch.Tensor, num_out: int | None = None) -> torch.Tensor:
    """Apply the blocks in turn; the last one computes only the last num_out rows if given (the others
    are still needed as keys and values up to there, but not after)."""
    *inner, last = blocks
    for block in inner:
        x = block(x)
    return last(x, num_out)


def _init_trunc_normal(module: nn.Module) -> None:
    """Classifier init: Linear N(0, .02) (timm's trunc_normal_ with bounds ±2 is effectively untruncated)."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02, a=-2.0, b=2.0)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def _init_xavier(module: nn.Module) -> None:
    """Pretraining init: Linear xavier-uniform, zero bias."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


# ----------------------------------------------------------------------------------------------------
# Classifier (and the pretraining encoder)
# ----------------------------------------------------------------------------------------------------


class VisionTransformer(nn.Module):
    """The video ViT classifier: `model(video) -> logits`, `forward_features(video) -> pooled features`.

    `video` is (B, 3, T, H, W), normalized; T, H and W only need to divide into tubelets.
    With `use_mean_pooling=False` it ends in `norm` and is the pretraining encoder.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        c = self.config = config
        self.patch_embed = PatchEmbed(c.in_chans, c.embed_dim, c.tubelet_size, c.patch_size)
        self.pos_drop = nn.Dropout(c.drop_rate)
        self.blocks = make_blocks(c.embed_dim, c.num_heads, c.depth, c)
        self.norm = nn.Identity() if c.use_mean_pooling else nn.LayerNorm(c.embed_dim, eps=c.norm_eps)
        self.fc_norm = nn.LayerNorm(c.embed_dim, eps=c.final_norm_eps) if c.use_mean_pooling else None
        self.head_drop = nn.Dropout(c.head_drop_rate)
        self.head = nn.Linear(c.embed_dim, c.num_classes) if c.num_classes > 0 else nn.Identity()
        self.apply(_init_trunc_normal)
        self._scale_head(c.init_scale)

    def _scale_head(self, scale: float) -> None:
        if isinstance(self.head, nn.Linear):
            with torch.no_grad():
                self.head.weight.mul_(scale)
                self.head.bias.mul_(scale)

    @property
    def num_features(self) -> int:
        return self.config.embed_dim

    def token_grid(self, video: torch.Tensor) -> tuple[int, int, int]:
        """Validate a clip and return its (T', H', W') token grid."""
        c = self.config
        if video.dim() != 5 or video.shape[1] != c.in_chans:
            raise ConfigError(f"expected a video of shape (B, {c.in_chans}, T, H, W), got {tuple(video.shape)}")
        return token_grid(video.shape[2], (video.shape[3], video.shape[4]), c.tubelet_size, c.patch_size)

    def forward_tokens(self, video: torch.Tensor, token_idx: torch.Tensor | None = None) -> torch.Tensor:
        """Encode the tokens at token_idx (B, n) (all if None): (B, 3, T, H, W) -> (B, n, D)."""
        t, h, w = self.token_grid(video)
        x = self.patch_embed(video, token_idx)  # (B, n, D)
        pos = sinusoid_table(t * h * w, x.shape[-1], like=x)  # (1, N, D)
        x = x + (pos if token_idx is None else gather_tokens(pos.expand(x.shape[0], -1, -1), token_idx))
        x = run_blocks(self.blocks, self.pos_drop(x))  # (B, n, D)
        return self.norm(x)

    def forward_features(self, video: torch.Tensor) -> torch.Tensor:
        """Pooled clip features (B, D): fc_norm(mean of all tokens), as official."""
        x = self.forward_tokens(video)  # (B, N, D)
        if self.fc_norm is not None:
            return self.fc_norm(x.mean(dim=1))
        return x[:, 0]  # official --use_cls: the first patch token (the model has no CLS token)

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return features if pre_logits else self.head(self.head_drop(features))

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(video))  # (B, num_classes)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the head (fresh official init) for a new label set; 0 makes the model headless."""
        self.config = self.config.replace(num_classes=num_classes)
        device = self.fc_norm.weight.device if self.fc_norm is not None else None
        self.head = nn.Linear(self.config.embed_dim, num_classes, device=device) if num_classes else nn.Identity()
        self.head.apply(_init_trunc_normal)
        self._scale_head(self.config.init_scale)

    def get_num_layers(self) -> int:
        return self.config.depth

    def no_weight_decay(self) -> set[str]:
        return set()  # no pos_embed / cls_token parameters; 1-D tensors are excluded by the optimizer


# ----------------------------------------------------------------------------------------------------
# Pretraining: encoder on visible tokens, decoder on the kept part of the hidden ones
# ----------------------------------------------------------------------------------------------------


class PretrainDecoder(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        c = config
        self.blocks = make_blocks(c.decoder_embed_dim, c.decoder_num_heads, c.decoder_depth, c)
        self.norm = nn.LayerNorm(c.decoder_embed_dim, eps=c.final_norm_eps)
        self.head = nn.Linear(c.decoder_embed_dim, c.patch_dim)

    def forward(self, x: torch.Tensor, num_predicted: int) -> torch.Tensor:
        x = run_blocks(self.blocks, x, num_out=num_predicted)  # (B, N_dec, Dd)
        return self.head(self.norm(x))  # (B, N_dec, P)


class PretrainVisionTransformer(nn.Module):
    """`model(video, encoder_mask, decoder_mask=None) -> predictions (B, N_dec, P)`, or with the masks' indices.

    encoder_mask (B, N) bool: True = hidden from the encoder. decoder_mask (B, N) bool: True = not
    reconstructed; None = reconstruct exactly the hidden tokens (VideoMAE v1). Prediction rows are the
    reconstructed tokens in ascending token index, as official.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        c = self.config = config
        self.encoder = VisionTransformer(c.replace(kind="classifier", num_classes=0, use_mean_pooling=False))
        self.encoder_to_decoder = nn.Linear(c.embed_dim, c.decoder_embed_dim, bias=False)  # PyTorch default init
        self.mask_token = nn.Parameter(torch.zeros(1, 1, c.decoder_embed_dim))
        self.decoder = PretrainDecoder(c)
        self.encoder.apply(_init_xavier)
        self.decoder.apply(_init_xavier)
        nn.init.trunc_normal_(self.mask_token, std=0.02, a=-0.02, b=0.02)  # official: truncated at ±1 std

    def forward(
        self,
        video: torch.Tensor,
        encoder_mask: torch.Tensor | None = None,
        decoder_mask: torch.Tensor | None = None,
        *,
        visible_idx: torch.Tensor | None = None,
        predicted_idx: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predictions (B, N_dec, P) for the masks, or for their static-shape form `visible_idx` (B, N_vis) and
        `predicted_idx` (B, N_dec) (`videomae.masking.mask_indices`, ascending): with indices a training step never
        waits on the device to learn how many tokens a mask keeps."""
        t, h, w = self.encoder.token_grid(video)
        if visible_idx is None:
            visible_idx, predicted_idx = self._indices(video, (t, h, w), encoder_mask, decoder_mask)
        x = self.encoder.forward_tokens(video, visible_idx)  # (B, N_vis, D)
        x = self.encoder_to_decoder(x)  # (B, N_vis, Dd)
        pos = sinusoid_table(t * h * w, x.shape[-1], like=x).expand(x.shape[0], -1, -1)  # (B, N, Dd)
        visible = x + gather_tokens(pos, visible_idx)  # (B, N_vis, Dd)
        queries = self.mask_token + gather_tokens(pos, predicted_idx)  # (B, N_dec, Dd)
        x = torch.cat([visible, queries.to(visible.dtype)], dim=1)  # (B, N_vis + N_dec, Dd)
        return self.decoder(x, predicted_idx.shape[1])  # (B, N_dec, P)

    @staticmethod
    def _indices(video, grid, encoder_mask, decoder_mask) -> tuple[torch.Tensor, torch.Tensor]:
        n = grid[0] * grid[1] * grid[2]
        for name, mask in (("encoder_mask", encoder_mask), ("decoder_mask", decoder_mask)):
            if (mask is not None or name == "encoder_mask") and getattr(mask, "shape", None) != (video.shape[0], n):
                raise ConfigError(
                    f"{name} must have shape (B, N) = ({video.shape[0]}, {n}) for a clip of "
                    f"{'x'.join(map(str, grid))} tokens, got {None if mask is None else tuple(mask.shape)}"
                )
        decoder_mask = None if decoder_mask is None else decoder_mask.to(video.device)
        indices = mask_indices(encoder_mask.to(video.device), decoder_mask)
        return indices["visible_idx"], indices["predicted_idx"]

    def get_num_layers(self) -> int:
        return self.config.depth

    def no_weight_decay(self) -> set[str]:
        return {"mask_token"}
