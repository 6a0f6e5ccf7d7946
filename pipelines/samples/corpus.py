"""A labelled corpus on disk: :func:`generate_corpus` writes many sample documents and returns their manifest."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipelines.samples.document import CLASSES, FORMATS, ROTATIONS, make_document
from pipelines.samples.fake import pick

LAYOUTS: tuple[str, ...] = ("folders", "labels_csv")
EXTENSIONS: dict[str, str] = {"pdf": "pdf", "png": "png", "jpeg": "jpg", "tiff": "tif"}


def _document_rng(seed: int, class_index: int, doc_index: int) -> np.random.Generator:
    return np.random.default_rng([seed, class_index, doc_index])


def generate_corpus(
    out_dir: Path,
    *,
    per_class: int,
    seed: int,
    scanned_share: float,  # params.yaml sample.scanned_share for the demo and DVC corpus
    classes: Sequence[str] = CLASSES,
    layout: str = "folders",
) -> list[dict]:
    """Write a labelled corpus of generated documents.

    Each document's randomness comes from ``(seed, index of its class in CLASSES, document index)``, so
    choosing fewer classes or more documents leaves the other files unchanged. Per class, the first
    ``round(per_class * scanned_share)`` positions of a seeded permutation are scans, cycling through
    image-only PDF, PNG, JPEG and TIFF.

    Args:
        out_dir: directory to write to (created if missing).
        per_class: documents per class.
        seed: corpus seed.
        scanned_share: share of documents per class that are scans, in [0, 1].
        classes: labels to generate, a subset of ``CLASSES``.
        layout: ``"folders"`` (``out_dir/<label>/<label>_<nnn>.<ext>``) or ``"labels_csv"``
            (``out_dir/documents/...`` plus ``out_dir/labels.csv`` with header ``file,label``).

    Returns:
        One dict per file: file (path relative to out_dir), label, kind, fmt, n_pages, rotation, sha256.

    Raises:
        ValueError: for an unknown class or layout, a negative per_class or a share outside [0, 1].
    """
    unknown = [label for label in classes if label not in CLASSES]
    if unknown:
        raise ValueError(f"unknown class {unknown[0]!r}: expected one of {', '.join(CLASSES)}")
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}: expected one of {', '.join(LAYOUTS)}")
    if per_class < 0:
        raise ValueError(f"per_class must be >= 0: got {per_class}")
    if not 0.0 <= scanned_share <= 1.0:
        raise ValueError(f"scanned_share must be between 0 and 1: got {scanned_share}")
    out_dir = Path(out_dir)
    manifest: list[dict] = []
    for label in dict.fromkeys(classes):
        class_index = CLASSES.index(label)
        order = np.random.default_rng([seed, class_index]).permutation(per_class)
        n_scans = round(per_class * scanned_share)
        scan_rank = {int(doc): rank for rank, doc in enumerate(order[:n_scans])}
        folder = out_dir / (label if layout == "folders" else "documents")
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            rng = _document_rng(seed, class_index, index)
            if index in scan_rank:
                # Offsetting by class spreads the formats even when each class has only a few scans.
                kind, fmt = "scanned", FORMATS[(scan_rank[index] + class_index) % len(FORMATS)]
                rotation = int(pick(rng, ROTATIONS[1:])) if rng.random() < 0.1 else 0
            else:
                kind, fmt, rotation = "born-digital", "pdf", 0
            data, spec = make_document(label, rng, kind=kind, fmt=fmt, rotation=rotation)
            path = folder / f"{label}_{index:03d}.{EXTENSIONS[fmt]}"
            path.write_bytes(data)
            manifest.append(
                {
                    "file": path.relative_to(out_dir).as_posix(),
                    "label": label,
                    "kind": kind,
                    "fmt": fmt,
                    "n_pages": spec.n_pages,
                    "rotation": rotation,
                    "sha256": hashlib.sha256(data).hexdigest(),
                }
            )
    if layout == "labels_csv":
        with (out_dir / "labels.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(("file", "label"))
            writer.writerows((row["file"], row["label"]) for row in manifest)
    return manifest
