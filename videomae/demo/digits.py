"""Moving handwritten-style digits: a labelled video set whose classes can only be told apart by motion.

Nothing is downloaded. Digit glyphs are rendered with the font Pillow ships (`ImageFont.load_default`) and
distorted per "writer" (rotation, shear, stretch, stroke width), so every clip shows a different-looking
digit. A clip's class is *what the digit does* over time, in the spirit of Something-Something:

    move left, move right, move up, move down, turn clockwise, turn anticlockwise, grow, shrink

Every class starts from the same distribution of digit, position, angle and size, so one frame says little
about the class; the change between frames says everything. Clips are generated in batches with
`F.affine_grid` / `F.grid_sample` (one affine warp per frame), so thousands of clips take a few seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from videomae.seeding import numpy_generator

CLASS_NAMES = (
    "move left",
    "move right",
    "move up",
    "move down",
    "turn clockwise",
    "turn anticlockwise",
    "grow",
    "shrink",
)
GLYPH_SIZE = 28  # glyphs are rendered at MNIST resolution, then warped onto the frame
_GLYPH_STREAM, _CLIP_STREAM = 0, 1


@dataclass(frozen=True)
class DigitsConfig:
    """Settings of a moving-digits set.

    Attributes:
        num_frames: frames per clip.
        size: frame side in pixels (square frames).
        glyphs_per_digit: distinct "writers" per digit 0-9; clips draw one glyph at random.
        digit_scale: digit height as a fraction of the frame side.
        speed: translation per frame as a fraction of the frame side.
        turn: rotation per frame in degrees.
        zoom: relative size change per frame for grow / shrink.
        noise: standard deviation of per-pixel noise (0-255 scale), so frames are not piecewise constant.
    """

    num_frames: int = 8
    size: int = 32
    glyphs_per_digit: int = 40
    digit_scale: float = 0.55
    speed: float = 0.04
    turn: float = 12.0
    zoom: float = 0.07
    noise: float = 8.0


def _font(pixels: int) -> ImageFont.ImageFont:
    """Pillow's own scalable font (needs FreeType, present in Pillow wheels); the bitmap font otherwise."""
    try:
        return ImageFont.load_default(size=pixels)
    except (TypeError, ImportError, OSError):  # Pillow < 10.1 or built without FreeType
        return ImageFont.load_default()


def render_glyph(digit: int, rng: np.random.Generator) -> np.ndarray:
    """One handwritten-looking digit: float32 (28, 28) in [0, 1], ink = 1, roughly centred.

    The glyph is drawn large, thickened or thinned at random, sheared, rotated and stretched, then shrunk
    to 28x28 with antialiasing.
    """
    canvas = 4 * GLYPH_SIZE
    image = Image.new("L", (canvas, canvas), 0)
    draw = ImageDraw.Draw(image)
    font = _font(int(canvas * 0.8))
    left, top, right, bottom = draw.textbbox((0, 0), str(digit), font=font)
    draw.text(
        ((canvas - (right - left)) / 2 - left, (canvas - (bottom - top)) / 2 - top), str(digit), fill=255, font=font
    )
    stroke = int(rng.integers(0, 4))  # 0 = thin, up to 3 dilations = bold
    for _ in range(stroke):
        image = image.filter(ImageFilter.MaxFilter(5))
    shear, stretch = rng.uniform(-0.35, 0.35), rng.uniform(0.8, 1.15)
    centre = canvas / 2
    # PIL's affine maps output (x, y) to input; shear around the centre and stretch horizontally.
    image = image.transform(
        (canvas, canvas),
        Image.Transform.AFFINE,
        (1 / stretch, shear, centre - centre / stretch - shear * centre, 0, 1, 0),
        resample=Image.Resampling.BILINEAR,
    )
    image = image.rotate(float(rng.uniform(-15, 15)), resample=Image.Resampling.BILINEAR)
    image = image.resize((GLYPH_SIZE, GLYPH_SIZE), Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.float32) / 255.0


def glyph_bank(cfg: DigitsConfig, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All glyphs of a set: (10·G, 1, 28, 28) float ink and (10·G,) long digit labels."""
    glyphs, digits = [], []
    for digit in range(10):
        for writer in range(cfg.glyphs_per_digit):
            glyphs.append(render_glyph(digit, numpy_generator(seed, _GLYPH_STREAM, digit, writer)))
            digits.append(digit)
    return torch.from_numpy(np.stack(glyphs)).unsqueeze(1), torch.tensor(digits)


@dataclass(frozen=True)
class Motion:
    """Per-clip, per-frame pose of the digit: centre (x, y) in [-1, 1] frame units, angle (rad), scale."""

    x: torch.Tensor  # (B, T)
    y: torch.Tensor  # (B, T)
    angle: torch.Tensor  # (B, T)
    scale: torch.Tensor  # (B, T)


def sample_motion(labels: torch.Tensor, cfg: DigitsConfig, generator: torch.Generator) -> Motion:
    """Poses for clips of the given classes.

    Time is centred (t - (T-1)/2), so every class passes through the same middle pose distribution:
    a single frame carries almost no class information.
    """
    b, t = labels.shape[0], cfg.num_frames
    time = torch.arange(t, dtype=torch.float32) - (t - 1) / 2  # (T,)

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(b, 1, generator=generator)  # (B, 1)

    step = 2 * cfg.speed * uniform(0.7, 1.3)  # frame units per frame ([-1, 1] spans the side: x2)
    turn = math.radians(cfg.turn) * uniform(0.7, 1.3)
    zoom = cfg.zoom * uniform(0.7, 1.3)
    x, y = uniform(-0.15, 0.15).expand(b, t), uniform(-0.15, 0.15).expand(b, t)  # (B, T): still by default
    angle = uniform(-0.3, 0.3).expand(b, t)
    scale = (cfg.digit_scale * uniform(0.85, 1.15)).expand(b, t)
    sign = {0: (-1, 0), 1: (1, 0), 2: (0, -1), 3: (0, 1)}  # image y grows downwards: "up" is -y
    for label, (dx, dy) in sign.items():
        chosen = (labels == label).unsqueeze(1)  # (B, 1)
        x = torch.where(chosen, x + dx * step * time, x)
        y = torch.where(chosen, y + dy * step * time, y)
    angle = torch.where((labels == 4).unsqueeze(1), angle + turn * time, angle)  # clockwise on screen
    angle = torch.where((labels == 5).unsqueeze(1), angle - turn * time, angle)
    scale = torch.where((labels == 6).unsqueeze(1), scale * torch.exp(zoom * time), scale)
    scale = torch.where((labels == 7).unsqueeze(1), scale * torch.exp(-zoom * time), scale)
    return Motion(x, y, angle, scale)


def render_clips(glyphs: torch.Tensor, motion: Motion, cfg: DigitsConfig, generator: torch.Generator) -> torch.Tensor:
    """Warp each clip's glyph to its per-frame pose and colour it: uint8 (B, T, H, W, 3)."""
    b, t = motion.x.shape
    cos, sin = torch.cos(motion.angle), torch.sin(motion.angle)  # (B, T)
    inv = 1.0 / motion.scale
    # affine_grid maps output frame coords to glyph coords: glyph = R(-angle)·(out - centre) / scale.
    theta = torch.stack(
        [
            torch.stack([cos * inv, sin * inv, -(cos * motion.x + sin * motion.y) * inv], dim=-1),
            torch.stack([-sin * inv, cos * inv, (sin * motion.x - cos * motion.y) * inv], dim=-1),
        ],
        dim=-2,
    ).view(b * t, 2, 3)  # (B·T, 2, 3)
    grid = F.affine_grid(theta, [b * t, 1, cfg.size, cfg.size], align_corners=False)
    source = glyphs.repeat_interleave(t, dim=0)  # (B·T, 1, 28, 28)
    ink = F.grid_sample(source, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    ink = ink.view(b, t, cfg.size, cfg.size, 1)  # (B, T, H, W, 1)
    foreground = 150 + 105 * torch.rand(b, 1, 1, 1, 3, generator=generator)  # bright ink colour
    background = 70 * torch.rand(b, 1, 1, 1, 3, generator=generator)  # dark paper colour
    noise = cfg.noise * torch.randn(b, t, cfg.size, cfg.size, 3, generator=generator)
    frames = background + ink * (foreground - background) + noise
    return frames.round().clamp(0, 255).to(torch.uint8)


@dataclass
class DigitClips:
    """A generated set: frames uint8 (N, T, H, W, 3), class labels (N,) and the digit shown (N,)."""

    frames: torch.Tensor
    labels: torch.Tensor
    digits: torch.Tensor

    def __len__(self) -> int:
        return self.labels.shape[0]


def make_digit_clips(
    num_clips: int,
    cfg: DigitsConfig,
    seed: int,
    *,
    stream: int = 0,
    glyphs: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> DigitClips:
    """Generate `num_clips` clips, each class equally often (up to one clip), in shuffled order.

    Args:
        num_clips: clips to generate.
        cfg: set settings.
        seed: base seed; the same (seed, stream) always gives the same clips.
        stream: separates independent sets drawn from one seed (e.g. train 0, test 1, unlabelled 2).
        glyphs: a `glyph_bank` to draw from; rendered from `seed` when None.

    Returns:
        The clips.
    """
    bank, bank_digits = glyphs if glyphs is not None else glyph_bank(cfg, seed)
    generator = torch.Generator().manual_seed(int(numpy_generator(seed, _CLIP_STREAM, stream).integers(2**62)))
    labels = torch.arange(num_clips) % len(CLASS_NAMES)
    labels = labels[torch.randperm(num_clips, generator=generator)]
    pick = torch.randint(0, bank.shape[0], (num_clips,), generator=generator)
    motion = sample_motion(labels, cfg, generator)
    frames = render_clips(bank[pick], motion, cfg, generator)
    return DigitClips(frames, labels, bank_digits[pick])
