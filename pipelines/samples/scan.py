"""Scan simulation: a drawn page rendered to a noisy, slightly skewed grayscale raster, and its encodings.

:func:`scan_page` turns one born-digital page into what a desk scanner would produce; :func:`encode` writes it
as PNG or JPEG at :data:`SCAN_DPI`, :func:`image_pdf` wraps encoded pages into an image-only PDF (no text layer).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import pymupdf
from PIL import Image, ImageFilter

from pipelines.samples.canvas import pdf_bytes

SCAN_DPI = 150


def scan_page(page: pymupdf.Page, rng: np.random.Generator, rotation: int) -> Image.Image:
    """Render one page to grayscale and add skew, blur or contrast change, noise and speckles."""
    pix = page.get_pixmap(dpi=SCAN_DPI, colorspace=pymupdf.csGRAY, alpha=False)
    image = Image.frombytes("L", (pix.width, pix.height), pix.samples)
    paper = int(rng.integers(228, 252))
    angle = float(rng.uniform(-1.5, 1.5))
    image = image.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=255)
    if rng.random() < 0.5:
        image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 0.8))))
    pixels = np.asarray(image, dtype=np.float32)
    ink = float(rng.uniform(0, 40))
    pixels = ink + pixels * ((paper - ink) / 255.0)
    sigma = float(rng.uniform(3, 8))
    pixels += rng.standard_normal(pixels.shape, dtype=np.float32) * sigma
    # Scanners level the paper to near-uniform white; without this the noise makes PNG/TIFF pages
    # incompressible (1.5 MB instead of a few hundred KB). Only the darker noise tail stays on the paper.
    pixels[pixels > paper - 1.5 * sigma] = paper
    h, w = pixels.shape
    for _ in range(int(rng.integers(5, 40))):
        y, x = int(rng.integers(h - 3)), int(rng.integers(w - 3))
        s = int(rng.integers(1, 4))
        pixels[y : y + s, x : x + s] = float(rng.uniform(0, 90))
    if rng.random() < 0.3:
        edge = int(rng.integers(4, 20))
        pixels[:, :edge] *= 0.55
    out = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="L")
    if rotation:
        # PIL rotates counter-clockwise; rotation is clockwise.
        out = out.transpose(
            {90: Image.Transpose.ROTATE_270, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_90}[
                rotation
            ]
        )
    return out


def encode(image: Image.Image, fmt: str, quality: int = 85) -> bytes:
    """One page image as PNG or JPEG bytes at SCAN_DPI."""
    buffer = io.BytesIO()
    if fmt == "png":
        image.save(buffer, format="PNG", dpi=(SCAN_DPI, SCAN_DPI), compress_level=3)
    elif fmt == "jpeg":
        image.save(buffer, format="JPEG", dpi=(SCAN_DPI, SCAN_DPI), quality=quality)
    else:
        raise ValueError(f"cannot encode a single image as {fmt!r}")
    return buffer.getvalue()


def image_pdf(pages: Sequence[tuple[bytes, int, int, float]]) -> bytes:
    """An image-only PDF from encoded page images given as (bytes, width px, height px, dpi)."""
    pdf = pymupdf.open()
    for data, width, height, dpi in pages:
        page = pdf.new_page(width=width * 72 / dpi, height=height * 72 / dpi)
        page.insert_image(page.rect, stream=data)
    return pdf_bytes(pdf)
