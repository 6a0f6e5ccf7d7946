"""Property-based: whatever bytes arrive, ingestion and extraction answer with documents or typed errors."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.document import Document
from pipelines.extract import extract_documents
from pipelines.ingest import IngestError, RawDocument, Rejected, expand
from tests.params import extract_config, ingest_limits
from tests.pipelines.conftest import image_bytes, page_image, text_pdf, zip_bytes

CONFIG = extract_config(workers=1)
LIMITS = ingest_limits(max_pages=5, max_image_pixels=4_000_000)


def _valid_samples() -> list[bytes]:
    image = page_image(dpi=20)
    return [
        text_pdf(),
        image_bytes(image, "PNG"),
        image_bytes(image, "JPEG"),
        image_bytes(image, "TIFF"),
        image_bytes(image, "WEBP"),
        zip_bytes({"a/b.pdf": text_pdf("zipped")}),
    ]


SAMPLES = _valid_samples()
PREFIXES = [
    b"%PDF-1.7\n",
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff\xe0",
    b"II*\x00",
    b"PK\x03\x04",
    b"RIFF\x00\x00\x00\x00WEBP",
]


def _ingest_everything(data: bytes) -> None:
    items = list(expand(data, "fuzz", LIMITS))
    for item in items:
        assert isinstance(item, (RawDocument, Rejected))
        if isinstance(item, Rejected):
            assert isinstance(item.error, IngestError) and item.reason
    raws = [item for item in items if isinstance(item, RawDocument)]
    for result in extract_documents(raws, CONFIG, LIMITS):
        assert isinstance(result, (Document, Rejected))
        if isinstance(result, Rejected):
            assert isinstance(result.error, IngestError)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_random_bytes(data):
    _ingest_everything(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PREFIXES), st.binary(max_size=4096))
def test_valid_magic_then_garbage(prefix, tail):
    _ingest_everything(prefix + tail)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(range(len(SAMPLES))),
    st.data(),
)
def test_mutated_valid_documents(index, data):
    """Truncate and flip bytes of real documents: the classic corrupt-upload shapes."""
    sample = bytearray(SAMPLES[index])
    cut = data.draw(st.integers(min_value=1, max_value=len(sample)))
    sample = sample[:cut]
    for _ in range(data.draw(st.integers(min_value=0, max_value=8))):
        position = data.draw(st.integers(min_value=0, max_value=len(sample) - 1))
        sample[position] = data.draw(st.integers(min_value=0, max_value=255))
    _ingest_everything(bytes(sample))


@pytest.mark.parametrize("sample", SAMPLES, ids=["pdf", "png", "jpeg", "tiff", "webp", "zip"])
def test_valid_samples_pass(sample):
    items = list(expand(sample, "ok", LIMITS))
    assert items and all(isinstance(item, RawDocument) for item in items)
