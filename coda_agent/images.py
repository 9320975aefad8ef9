"""Screenshots to model images: resized to a patch-aligned size the model's processor keeps as is."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image

PATCH_FACTOR = 28  # Qwen2.5-VL: 14-pixel patches merged 2x2
DEFAULT_MAX_PIXELS = 1280 * 28 * 28  # the planner's default: about 1300 x 730 for a 16:9 screen
EXECUTOR_MAX_PIXELS = 16384 * 28 * 28  # the executor's default: full HD stays at full resolution
MIN_PIXELS = 4 * 28 * 28


def fit_size(width: int, height: int, max_pixels: int = DEFAULT_MAX_PIXELS, min_pixels: int = MIN_PIXELS,
             factor: int = PATCH_FACTOR) -> tuple[int, int]:
    """(width, height) near the input's aspect ratio, multiples of ``factor``, pixel count in range."""
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    w = max(factor, round(width / factor) * factor)
    h = max(factor, round(height / factor) * factor)
    if w * h > max_pixels:
        scale = math.sqrt(width * height / max_pixels)
        w = max(factor, math.floor(width / scale / factor) * factor)
        h = max(factor, math.floor(height / scale / factor) * factor)
    elif w * h < min_pixels:
        scale = math.sqrt(min_pixels / (width * height))
        w = math.ceil(width * scale / factor) * factor
        h = math.ceil(height * scale / factor) * factor
    return w, h


def model_image(screenshot: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """An RGB PIL image of ``screenshot`` ((H, W, 3) uint8 array or PIL image) at :func:`fit_size`."""
    image = screenshot if isinstance(screenshot, Image.Image) else Image.fromarray(np.asarray(screenshot, np.uint8))
    image = image.convert("RGB")
    size = fit_size(image.width, image.height, max_pixels)
    return image if image.size == size else image.resize(size, Image.Resampling.BICUBIC)


def screen_size_of(observation: Any) -> tuple[int, int]:
    """(width, height) of an observation's screenshot."""
    shot = observation["screenshot"]
    if isinstance(shot, Image.Image):
        return shot.size
    height, width = np.asarray(shot).shape[:2]
    return int(width), int(height)
