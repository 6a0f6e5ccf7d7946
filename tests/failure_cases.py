"""One input of every per-document failure kind, and a fake `tesseract` executable, for the tests that check that
every input gets exactly one answer (CLI predict, import, the service) and that OCR is bounded in time and count.

The fake tesseract is a small Python script put in place of the binary (``pytesseract.pytesseract.tesseract_cmd``).
It decides what to do from the width of the page image it is given (``ok``: a short reading after ``sleep``
seconds, ``hang``: sleeps for an hour, ``fail``: exits with an error) and keeps a log: one line per run with the
number of fake Tesseract processes alive when it started.
"""

from __future__ import annotations

import io
import struct
import sys
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import pymupdf
from PIL import Image

from tests.pipelines.conftest import image_bytes, page_image, text_pdf

# Page widths (pixels) of the scanned test pages, which the fake tesseract dispatches on.
OK_WIDTH, HANG_WIDTH, FAIL_WIDTH = 600, 601, 602

_SCRIPT = """#!{python}
import os, pathlib, signal, struct, sys, time

MODES = {modes!r}
DEFAULT = {default!r}
SLEEP = {sleep!r}
LOG = pathlib.Path({log!r})

args = sys.argv[1:]
if args[:1] == ["--version"]:
    print("tesseract 5.3.0")
    sys.exit(0)
source, base = args[0], args[1]
with open(source, "rb") as handle:
    width = struct.unpack(">I", handle.read(24)[16:20])[0]
mode = MODES.get(width, DEFAULT)
marker = LOG / f"run-{{os.getpid()}}"
marker.touch()


def stop(*_):
    marker.unlink(missing_ok=True)
    os._exit(143)


signal.signal(signal.SIGTERM, stop)
with open(LOG / "log", "a") as log:
    log.write(f"{{len(list(LOG.glob('run-*')))}} {{mode}}\\n")
try:
    if mode == "hang":
        time.sleep(3600)
    if mode == "fail":
        sys.stderr.write("Error in pixReadStreamPng: cannot read the image\\n")
        sys.exit(1)
    time.sleep(SLEEP)
    header = "level page_num block_num par_num line_num word_num left top width height conf text".split()
    rows = ["\\t".join(header)]
    for number, word in enumerate("invoice vendor remit purchase order quantity".split(), start=1):
        rows.append("\\t".join(map(str, [5, 1, 1, 1, 1, number, 10 * number, 10, 40, 12, 95.0, word])))
    pathlib.Path(base + ".tsv").write_text("\\n".join(rows) + "\\n")
finally:
    marker.unlink(missing_ok=True)
"""


@dataclass(frozen=True)
class FakeTesseract:
    """A fake tesseract executable and its log folder."""

    command: Path
    log_dir: Path

    def runs(self) -> list[tuple[int, str]]:
        """One ``(processes alive at start, mode)`` per run so far."""
        log = self.log_dir / "log"
        if not log.exists():
            return []
        return [(int(alive), mode) for alive, mode in (line.split() for line in log.read_text().splitlines())]

    def alive(self) -> int:
        """Fake tesseract processes running now."""
        return len(list(self.log_dir.glob("run-*")))


def fake_tesseract(
    folder: Path, modes: dict[int, str] | None = None, default: str = "ok", sleep: float = 0.0
) -> FakeTesseract:
    """Write a fake tesseract into ``folder``; see the module docstring for ``modes`` (page width -> mode)."""
    folder.mkdir(parents=True, exist_ok=True)
    log_dir = folder / "log"
    log_dir.mkdir(exist_ok=True)
    command = folder / "tesseract"
    command.write_text(
        _SCRIPT.format(
            python=sys.executable,
            modes=dict(modes or {}),
            default=default,
            sleep=float(sleep),
            log=str(log_dir),
        )
    )
    command.chmod(0o755)
    return FakeTesseract(command, log_dir)


def scanned_png(width: int, height: int = 800) -> bytes:
    """A scanned page (a PNG with printed text, no text layer) exactly ``width`` pixels wide."""
    page = page_image(dpi=100)
    return image_bytes(page.crop((0, 0, width, height)), "PNG")


def cycle_pdf() -> bytes:
    """A PDF whose page tree is a cycle: MuPDF opens it and raises its own FzErrorFormat (not a RuntimeError)
    when the page is loaded."""
    return (
        b"%PDF-1.4\n1 0 obj <</Type/Catalog/Pages 2 0 R>> endobj\n"
        b"2 0 obj <</Type/Pages/Kids[3 0 R]/Count 1>> endobj\n"
        b"3 0 obj <</Type/Pages/Kids[2 0 R]/Count 1>> endobj\n"
        b"trailer <</Root 1 0 R>>\n%%EOF"
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int = 20000, height: int = 10000) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels: Pillow raises DecompressionBombError on open
    (more than twice ``Image.MAX_IMAGE_PIXELS``)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )


def encrypted_pdf() -> bytes:
    pdf = pymupdf.open(stream=text_pdf(), filetype="pdf")
    return pdf.tobytes(encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="secret", owner_pw="owner")


def empty_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w"):
        pass
    return buffer.getvalue()


def zip_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


# Inputs that fail before any OCR, by the error kind they must give.
def decode_failures() -> dict[str, tuple[str, bytes]]:
    """kind -> (file name, bytes): one input for every failure of reading, expanding and decoding."""
    return {
        "EmptyFileError": ("empty.pdf", b""),
        "UnsupportedTypeError": ("report.exe", b"MZ\x90\x00" + b"\x00" * 64),
        "EmptyArchiveError": ("nothing.zip", empty_zip()),
        "CorruptDocumentError": ("cycle.pdf", cycle_pdf()),
        "ImageBombError": ("bomb.png", bomb_png()),
        "EncryptedDocumentError": ("locked.pdf", encrypted_pdf()),
    }


def blank_png() -> bytes:
    return image_bytes(Image.new("L", (300, 400), 255), "PNG")
