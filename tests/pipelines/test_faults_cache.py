"""Fault suite (issue 13): the extraction cache on a full or unwritable disk, and damaged entries planted in it.

The cache only saves work: a document whose entry cannot be written is still extracted and classified (a warning is
logged, once until a write succeeds again), an entry is written whole or not at all, and an entry that cannot be
read back whole (truncated, corrupt, inconsistent) is never used: it is extracted again and rewritten.

The full disk is real: the extraction runs in a subprocess whose file-size limit (RLIMIT_FSIZE, with SIGXFSZ
ignored) makes every write past a few hundred bytes fail with EFBIG, as ENOSPC would on a full disk.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from pipelines.document import Document
from pipelines.extract import ExtractionCache, extract_documents
from pipelines.ingest import PDF, RawDocument, sha256_of
from pipelines.models import save_model
from tests.conftest import ROOT
from tests.params import candidate, extract_config, ingest_limits
from tests.pipelines._docs import make_docs
from tests.pipelines.conftest import text_pdf

pytestmark = pytest.mark.faults

CONFIG = extract_config()
KEY = CONFIG.cache_key()
# Smaller than any cache entry (a page thumbnail alone compresses to more), larger than nothing else written.
FILE_SIZE_LIMIT = 256

TEXTS = [
    "Invoice number 4471 from the vendor: net amount due, remit to the account below by the due date",
    "Payslip for the employee: gross salary, deductions, net pay for the period, year to date totals",
]

# Run in a subprocess: classify the files with the cache given, one JSON line per document.
CLASSIFY = """
import json, sys
from pathlib import Path
from pipelines.classify import classify_inputs
from pipelines.extract import ExtractConfig, ExtractionCache
from pipelines.ingest import Limits
from pipelines.models import load_model
from pipelines.params import load_params

params = load_params(Path(sys.argv[1]))
model, _ = load_model(Path(sys.argv[2]))
files = [Path(name) for name in sys.argv[4:]]
for group in classify_inputs(
    model, files, ExtractConfig.from_params(params["extract"]), Limits.from_params(params["ingest"]), 0.5,
    cache=ExtractionCache(Path(sys.argv[3])),
):
    for entry in group:
        label = entry.prediction["label"] if hasattr(entry, "prediction") else None
        print(json.dumps({"name": entry.name, "label": label, "error": getattr(entry, "reason", None)}), flush=True)
"""


def raw(data: bytes, name: str) -> RawDocument:
    return RawDocument(name=name, data=data, mime=PDF, sha256=sha256_of(data))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    docs, labels = make_docs(4, seed=0)
    out = tmp_path_factory.mktemp("model")
    save_model(candidate("text", calibration_folds=0).fit(docs, labels), out, {"candidate": "text"})
    return out


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    out = []
    for index, text in enumerate(TEXTS):
        path = tmp_path / "in" / f"doc{index}.pdf"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(text_pdf(text))
        out.append(path)
    return out


# Prepended to a child's code: writes past FILE_SIZE_LIMIT bytes fail with EFBIG instead of killing it (SIGXFSZ
# ignored). Set in the child itself, not by a preexec_fn in this multi-threaded test process.
FULL_DISK = f"""
import resource, signal
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, ({FILE_SIZE_LIMIT}, {FILE_SIZE_LIMIT}))
"""


def classify_in_subprocess(
    model_dir: Path, cache: Path, files: list[Path], full_disk: bool
) -> tuple[list[dict], str]:
    code = (FULL_DISK if full_disk else "") + CLASSIFY
    arguments = [str(ROOT / "params.yaml"), str(model_dir), str(cache), *map(str, files)]
    result = subprocess.run(
        [sys.executable, "-c", code, *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line) for line in result.stdout.splitlines()], result.stderr


def cache_files(cache: Path) -> list[Path]:
    return sorted(path for path in cache.rglob("*") if path.is_file()) if cache.exists() else []


def test_the_limit_really_fails_writes(tmp_path: Path) -> None:
    """The fault is real: a write past the limit fails with EFBIG in a process that has it."""
    target = tmp_path / "big"
    code = f"with open({str(target)!r}, 'wb', buffering=0) as f: f.write(b'x' * {FILE_SIZE_LIMIT}); f.write(b'x')"
    result = subprocess.run(
        [sys.executable, "-c", FULL_DISK + code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0 and "File too large" in result.stderr, result.stderr
    assert target.stat().st_size <= FILE_SIZE_LIMIT


def test_a_full_disk_costs_the_cache_not_the_answers(
    model_dir: Path, files: list[Path], tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    answers, stderr = classify_in_subprocess(model_dir, cache, files, full_disk=True)
    # Every document is classified although no entry could be written ...
    assert [a["name"] for a in answers] == [str(f) for f in files]
    assert all(a["label"] and a["error"] is None for a in answers), answers
    # ... the user is told once, with the reason, and nothing half-written is left behind
    assert stderr.count("cannot be stored in the cache") == 1, stderr
    assert os.strerror(errno.EFBIG) in stderr, stderr
    assert "going on without the cache" in stderr, stderr
    assert cache_files(cache) == []
    # The fault clears: the next run writes whole entries, which read back equal to a fresh extraction.
    again, stderr = classify_in_subprocess(model_dir, cache, files, full_disk=False)
    assert [a["label"] for a in again] == [a["label"] for a in answers]
    assert "cache" not in stderr, stderr
    entries = cache_files(cache)
    assert [path.suffix for path in entries] == [".npz", ".npz"]
    store = ExtractionCache(cache)
    for path in files:
        document = raw(path.read_bytes(), path.name)
        (fresh,) = extract_documents([document], CONFIG, ingest_limits())
        assert same(store.get(document, KEY), fresh)


@pytest.mark.parametrize("how", ["read-only folder", "folder under a file"])
def test_an_unwritable_cache_costs_the_cache_not_the_answers(
    how: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if how == "read-only folder":
        if os.geteuid() == 0:
            pytest.skip(
                "running as root: chmod 0o500 does not stop root's writes ('folder under a file' fails them)"
            )
        root = tmp_path / "cache"
        root.mkdir()
        root.chmod(0o500)
    else:
        (tmp_path / "file").write_bytes(b"not a folder")
        root = tmp_path / "file" / "cache"
    cache = ExtractionCache(root)
    batch = [raw(text_pdf(text), f"doc{i}.pdf") for i, text in enumerate(TEXTS)]
    try:
        with caplog.at_level(logging.WARNING, logger="pipelines.extract"):
            results = extract_documents(batch, CONFIG, ingest_limits(), cache=cache)
            again = extract_documents(batch, CONFIG, ingest_limits(), cache=cache)
    finally:
        if how == "read-only folder":
            root.chmod(0o700)
    assert [type(r).__name__ for r in results + again] == ["Document"] * 4
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings  # once, not once per document
    assert "doc0.pdf: its extraction cannot be stored in the cache" in warnings[0]
    assert "going on without the cache" in warnings[0]


def same(a: Document | None, b: Document) -> bool:
    assert a is not None
    return [(p.text, p.source, p.title) for p in a.pages] == [
        (p.text, p.source, p.title) for p in b.pages
    ] and all(np.array_equal(x.image, y.image) for x, y in zip(a.pages, b.pages, strict=True))


def _truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip(path: Path, where: float) -> None:
    """One byte of the compressed page images changed, ``where`` of the way in (the zip's headers intact)."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("images.npy")
    # the local header's own name and extra lengths (its zip64 extra is not in the central directory's copy)
    name_length, extra_length = struct.unpack("<HH", data[info.header_offset + 26 : info.header_offset + 30])
    start = info.header_offset + 30 + name_length + extra_length
    data[start + int(info.compress_size * where)] ^= 0xFF
    path.write_bytes(bytes(data))


def _undecodable(path: Path) -> None:
    """The deflate block header damaged: zlib cannot decompress the images."""
    _flip(path, 0.0)


def _bad_checksum(path: Path) -> None:
    """The compressed images changed in the middle: they decompress, to other bytes (the CRC-32 tells)."""
    _flip(path, 0.5)


def _inconsistent(path: Path) -> None:
    """A well-formed archive whose metadata lists more pages than it holds images."""
    with np.load(path) as stored:
        meta, images = json.loads(stored["meta"].tobytes()), stored["images"]
    meta["pages"].append(dict(meta["pages"][0], index=1))
    with path.open("wb") as handle:
        np.savez_compressed(
            handle, images=images, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        )


def _empty(path: Path) -> None:
    path.write_bytes(b"")


@pytest.mark.parametrize(
    "damage", [_truncated, _undecodable, _bad_checksum, _inconsistent, _empty], ids=lambda f: f.__name__[1:]
)
def test_a_damaged_entry_is_never_read_back(damage, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = ExtractionCache(tmp_path / "cache")
    document = raw(text_pdf(TEXTS[0]), "doc.pdf")
    (fresh,) = extract_documents([document], CONFIG, ingest_limits(), cache=cache)
    (entry,) = cache_files(tmp_path / "cache")
    damage(entry)
    with caplog.at_level(logging.WARNING, logger="pipelines.extract"):
        assert cache.get(document, KEY) is None
        (result,) = extract_documents([document], CONFIG, ingest_limits(), cache=cache)
    assert "ignoring unreadable cache entry" in caplog.text
    assert isinstance(result, Document) and same(result, fresh)  # extracted again, not read back
    assert same(cache.get(document, KEY), fresh)  # and the entry rewritten whole
