"""Tests for the sample document generator (pipelines/samples/), through its public API."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pymupdf
import pytest
from PIL import Image

from pipelines.samples import CLASSES, SampleSpec, generate_corpus, make_bundle, make_document
from pipelines.samples.document import BUILDERS

TYPICAL_WORDS = {
    "w9": ("Form W-9", "Request for Taxpayer", "Identification Number and Certification"),
    "1040": ("1040",),
    "invoice": ("Invoice",),
    "payslip": ("Pay",),
    "other": (),
}
PDF_MAGIC = b"%PDF-"
IMAGE_FORMATS = {"png": "PNG", "jpeg": "JPEG", "tiff": "TIFF"}


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(list(key))


def _pdf_text(data: bytes) -> str:
    with pymupdf.open(stream=data, filetype="pdf") as pdf:
        return "\n".join(page.get_text() for page in pdf)


@pytest.mark.parametrize("label", CLASSES)
def test_born_digital_pdf_has_class_typical_text(label):
    for index in range(4):
        data, spec = make_document(label, _rng(7, index))
        assert data.startswith(PDF_MAGIC)
        assert spec == SampleSpec(label, "born-digital", "pdf", spec.n_pages, 0)
        with pymupdf.open(stream=data, filetype="pdf") as pdf:
            assert pdf.page_count == spec.n_pages >= 1
        text = _pdf_text(data)
        assert len(text.split()) >= 40, f"{label} {index}: too little text"
        for word in TYPICAL_WORDS[label]:
            assert word.lower() in text.lower(), f"{label} {index}: {word!r} missing"


def test_every_class_has_exactly_one_builder():
    assert list(BUILDERS) == list(CLASSES)
    assert len(set(BUILDERS.values())) == len(CLASSES)


def test_payslip_and_invoice_vocabulary():
    payslips = " ".join(_pdf_text(make_document("payslip", _rng(3, i))[0]) for i in range(6))
    for word in ("Net Pay", "Gross Pay", "Pay Period", "Deductions", "Medicare"):
        assert word in payslips
    invoices = " ".join(_pdf_text(make_document("invoice", _rng(3, i))[0]).lower() for i in range(6))
    for word in ("invoice", "due", "subtotal", "bill"):
        assert word in invoices


def test_w9_page_one_is_wordy_and_1040_covers_variants():
    data, _ = make_document("w9", _rng(11))
    with pymupdf.open(stream=data, filetype="pdf") as pdf:
        assert len(pdf[0].get_text().split()) >= 300
    texts = [_pdf_text(make_document("1040", _rng(5, i))[0]) for i in range(30)]
    assert any("U.S. Individual Income Tax Return" in t for t in texts)
    assert any("SCHEDULE 1" in t for t in texts)
    assert any("SCHEDULE C" in t and "Profit or Loss From Business" in t for t in texts)


def test_other_contains_look_alike_hard_negatives():
    texts = [_pdf_text(make_document("other", _rng(9, i))[0]) for i in range(40)]
    joined = "\n".join(texts)
    for marker in ("Form W-4", "Form 1099-NEC", "PURCHASE ORDER", "Account Statement", "SUBTOTAL"):
        assert marker in joined, f"{marker!r} never generated"
    assert not any("Request for Taxpayer" in t and "Part II" in t for t in texts)


@pytest.mark.parametrize("label", CLASSES)
@pytest.mark.parametrize("fmt", ["pdf", "png", "jpeg", "tiff"])
def test_scanned_variants_open_and_have_no_text_layer(label, fmt):
    data, spec = make_document(label, _rng(1, 2), kind="scanned", fmt=fmt)
    assert spec.kind == "scanned" and spec.fmt == fmt and spec.label == label
    if fmt == "pdf":
        assert data.startswith(PDF_MAGIC)
        with pymupdf.open(stream=data, filetype="pdf") as pdf:
            assert pdf.page_count == spec.n_pages
            assert all(page.get_text().strip() == "" for page in pdf)
            assert all(page.get_images() for page in pdf)
        return
    image = Image.open(io.BytesIO(data))
    assert image.format == IMAGE_FORMATS[fmt]
    assert image.mode == "L"
    assert getattr(image, "n_frames", 1) == spec.n_pages
    assert image.width < image.height  # portrait letter page at 150 dpi
    pixels = np.asarray(image)
    assert pixels.min() < 80 and pixels.mean() > 150  # dark text on light paper


def test_scanned_tiff_keeps_all_pages():
    for index in range(20):
        born, spec = make_document("1040", _rng(4, index))
        if spec.n_pages > 1:
            break
    else:
        pytest.fail("no multi-page 1040 among 20 samples")
    data, scanned = make_document("1040", _rng(4, index), kind="scanned", fmt="tiff")
    assert scanned.n_pages == spec.n_pages
    assert Image.open(io.BytesIO(data)).n_frames == spec.n_pages


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_scanned_rotation_turns_the_page(rotation):
    data, spec = make_document("invoice", _rng(2), kind="scanned", fmt="png", rotation=rotation)
    image = Image.open(io.BytesIO(data))
    assert spec.rotation == rotation
    assert (image.width > image.height) == (rotation in (90, 270))


def test_born_digital_rotation_sets_page_rotation():
    data, spec = make_document("payslip", _rng(2), rotation=90)
    with pymupdf.open(stream=data, filetype="pdf") as pdf:
        assert [page.rotation for page in pdf] == [90] * spec.n_pages


@pytest.mark.parametrize("kind,fmt", [("born-digital", "pdf"), ("scanned", "pdf"), ("scanned", "png")])
def test_make_document_is_deterministic(kind, fmt):
    first, _ = make_document("w9", _rng(42), kind=kind, fmt=fmt)
    again, _ = make_document("w9", _rng(42), kind=kind, fmt=fmt)
    other, _ = make_document("w9", _rng(43), kind=kind, fmt=fmt)
    assert first == again
    assert first != other


def test_generate_corpus_folders_is_byte_identical_for_the_same_seed(tmp_path):
    runs = [
        generate_corpus(tmp_path / name, per_class=3, seed=seed, scanned_share=0.4, classes=("w9", "invoice"))
        for name, seed in (("a", 1), ("b", 1), ("c", 2))
    ]
    assert runs[0] == runs[1]
    for row in runs[0]:
        assert (tmp_path / "a" / row["file"]).read_bytes() == (tmp_path / "b" / row["file"]).read_bytes()
    assert [r["sha256"] for r in runs[0]] != [r["sha256"] for r in runs[2]]


def test_generate_corpus_folders_layout(tmp_path):
    manifest = generate_corpus(tmp_path, per_class=4, seed=3, scanned_share=0.5)
    assert len(manifest) == 4 * len(CLASSES)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(CLASSES)
    for label in CLASSES:
        rows = [row for row in manifest if row["label"] == label]
        assert [row["file"].split(".")[0] for row in rows] == [f"{label}/{label}_{i:03d}" for i in range(4)]
        assert sum(row["kind"] == "scanned" for row in rows) == 2
    for row in manifest:
        assert set(row) == {"file", "label", "kind", "fmt", "n_pages", "rotation", "sha256"}
        data = (tmp_path / row["file"]).read_bytes()
        if row["fmt"] == "pdf":
            assert row["file"].endswith(".pdf") and data.startswith(PDF_MAGIC)
        else:
            assert Image.open(io.BytesIO(data)).format == IMAGE_FORMATS[row["fmt"]]
        if row["kind"] == "born-digital":
            assert row["fmt"] == "pdf" and row["rotation"] == 0
    scans = {row["fmt"] for row in manifest if row["kind"] == "scanned"}
    assert scans == {"pdf", "png", "jpeg", "tiff"}


def test_generate_corpus_class_subset_does_not_reshuffle(tmp_path):
    full = generate_corpus(tmp_path / "full", per_class=3, seed=5, scanned_share=0.0)
    subset = generate_corpus(tmp_path / "sub", per_class=3, seed=5, scanned_share=0.0, classes=("payslip",))
    assert subset == [row for row in full if row["label"] == "payslip"]


def test_generate_corpus_labels_csv_layout(tmp_path):
    manifest = generate_corpus(
        tmp_path, per_class=2, seed=8, scanned_share=0.5, classes=("1040", "other"), layout="labels_csv"
    )
    with (tmp_path / "labels.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["file", "label"]
    assert rows[1:] == [[row["file"], row["label"]] for row in manifest]
    assert all(row["file"].startswith("documents/") for row in manifest)
    assert sorted(p.name for p in (tmp_path / "documents").iterdir()) == sorted(
        row["file"].removeprefix("documents/") for row in manifest
    )
    assert {row["label"] for row in manifest} == {"1040", "other"}


def test_make_bundle_page_count_is_the_sum_of_parts():
    parts = [
        make_document("w9", _rng(1))[0],
        make_document("invoice", _rng(2), kind="scanned", fmt="png")[0],
        make_document("payslip", _rng(3), kind="scanned", fmt="jpeg")[0],
        make_document("1040", _rng(4), kind="scanned", fmt="tiff")[0],
        make_document("other", _rng(5), kind="scanned", fmt="pdf")[0],
    ]
    expected = 0
    for part in parts:
        if part.startswith(PDF_MAGIC):
            with pymupdf.open(stream=part, filetype="pdf") as pdf:
                expected += pdf.page_count
        else:
            expected += getattr(Image.open(io.BytesIO(part)), "n_frames", 1)
    bundle = make_bundle(parts)
    with pymupdf.open(stream=bundle, filetype="pdf") as pdf:
        assert pdf.page_count == expected
        assert "Request for Taxpayer" in pdf[0].get_text()
    assert make_bundle(parts) == bundle


NOWHERE = Path("/nonexistent/never-written")


@pytest.mark.parametrize(
    "call,message",
    [
        (
            lambda: make_document("x", _rng(0)),
            r"unknown class 'x': expected one of w9, 1040, invoice, payslip, other",
        ),
        (lambda: make_document("w9", _rng(0), fmt="png"), r"born-digital documents are PDFs: got fmt 'png'"),
        (
            lambda: make_document("w9", _rng(0), kind="scanned", fmt="gif"),
            r"unknown fmt 'gif': expected one of pdf, png, jpeg, tiff",
        ),
        (
            lambda: make_document("w9", _rng(0), kind="photo"),
            r"unknown kind 'photo': expected one of born-digital, scanned",
        ),
        (
            lambda: make_document("w9", _rng(0), kind="scanned", rotation=45),
            r"rotation must be one of 0, 90, 180, 270 \(degrees clockwise\): got 45",
        ),
        (
            lambda: generate_corpus(NOWHERE, per_class=1, seed=0, scanned_share=0.0, classes=("w9", "w2")),
            r"unknown class 'w2'",
        ),
        (
            lambda: generate_corpus(NOWHERE, per_class=1, seed=0, scanned_share=0.0, layout="flat"),
            r"unknown layout 'flat'",
        ),
        (
            lambda: generate_corpus(NOWHERE, per_class=1, seed=0, scanned_share=1.5),
            r"scanned_share must be between 0 and 1: got 1.5",
        ),
        (
            lambda: generate_corpus(NOWHERE, per_class=-1, seed=0, scanned_share=0.0),
            r"per_class must be >= 0: got -1",
        ),
        (lambda: make_bundle([]), r"make_bundle needs at least one part"),
        (lambda: make_bundle([b"GIF89a not supported"]), r"part 0 is not a PDF, PNG, JPEG or TIFF file"),
    ],
)
def test_errors_say_what_was_expected(call, message):
    with pytest.raises(ValueError, match=message):
        call()
    assert not NOWHERE.exists()
