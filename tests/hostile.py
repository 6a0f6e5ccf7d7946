"""Hostile inputs, generated here (nothing binary is committed), for the hostile-file suite: every kind is sent to
`docclass predict` (tests/flows/test_hostile_predict.py), to the import's pure part (ingest and page images,
tests/labeling/test_hostile_import.py) and to the real service (tests/serving/test_hostile_service.py).

Each :class:`Case` says what every front end must answer: per document of the input, in order, ``"label"`` or the
error kind (:mod:`pipelines.ingest`, :mod:`pipelines.render`), and the service's HTTP status. The suites write what
they measured (answer, seconds, peak RSS) to ``$DOCCLASS_HOSTILE_REPORT/<front>.json`` when that is set;
``python -m tests.hostile <folder>`` prints the table of the three and writes it to ``<folder>/hostile.md``.
"""

from __future__ import annotations

import io
import json
import os
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymupdf
from PIL import Image

from tests.failure_cases import bomb_png, cycle_pdf, empty_zip, encrypted_pdf, scanned_png
from tests.params import PARAMS
from tests.pipelines.conftest import image_bytes, text_pdf, zip_bytes

MB = 1024 * 1024
LIMITS = PARAMS["ingest"]
SERVE = PARAMS["serve"]
LABEL = "label"

# Time and memory every input must stay within, per front end (the CLI's figure includes its ~3 s start).
MAX_SECONDS = 60.0
MAX_RSS_MB = 1500.0


@dataclass(frozen=True)
class Case:
    """One hostile (or benign control) input.

    Attributes:
        kind: the table's row name (also the test id).
        filename: the name it is uploaded or stored under.
        make: builds its bytes.
        answers: per document it holds, in order: ``"label"`` or the error kind the CLI and the import must give.
        status: the service's HTTP status for it.
        note: what makes it hostile.
    """

    kind: str
    filename: str
    make: Callable[[], bytes]
    answers: tuple[str, ...]
    status: int
    note: str
    import_answers: tuple[str, ...] | None = None  # where the import (no text extraction) answers otherwise

    @property
    def benign(self) -> bool:
        return all(answer == LABEL for answer in self.answers)


# ------------------------------------------------------------------------------------------------- archives


def _zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    return zip_bytes(members, compression=compression)


def _zip_infos(entries: list[tuple[zipfile.ZipInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for info, data in entries:
            archive.writestr(info, data)
    return buffer.getvalue()


def zip_bomb_ratio() -> bytes:
    """One member of 40 MB of zeros, deflated ~1000:1 (the limit is ingest.zip_max_ratio)."""
    return _zip({"zeros.pdf": b"%PDF-1.4\n" + bytes(40 * MB)})


def _patch_sizes(data: bytes, declared: int) -> bytes:
    """Rewrite every member's uncompressed size, in the local headers and the central directory, to ``declared``."""
    out = bytearray(data)
    position = 0
    while (position := out.find(b"PK\x03\x04", position)) >= 0:
        struct.pack_into("<I", out, position + 22, declared)
        position += 4
    position = 0
    while (position := out.find(b"PK\x01\x02", position)) >= 0:
        struct.pack_into("<I", out, position + 24, declared)
        position += 4
    return bytes(out)


def zip_bomb_total() -> bytes:
    """Twelve members whose headers claim 60 MB each (720 MB: over ingest.zip_max_total_mb), stored small."""
    members = {f"part-{n:02d}.pdf": text_pdf(f"part {n}") for n in range(12)}
    return _patch_sizes(_zip(members, zipfile.ZIP_STORED), 60 * MB)


def zip_lying_header() -> bytes:
    """A member whose headers claim 1 KB while it inflates to 4 MB: a reader trusting them would overrun."""
    return _patch_sizes(_zip({"liar.pdf": b"%PDF-1.4\n" + b"A" * (4 * MB)}), 1024)


def zip_bomb_members() -> bytes:
    """More members than ingest.zip_max_members, each a few bytes."""
    count = int(LIMITS["zip_max_members"]) + 500
    return _zip({f"m{n:05d}.txt": b"x" for n in range(count)})


def zip_nested_too_deep() -> bytes:
    """A PDF inside archives nested two levels deeper than ingest.zip_max_depth."""
    data = text_pdf("nested far too deep")
    for level in range(int(LIMITS["zip_max_depth"]) + 2):
        data = _zip({f"level-{level}.zip" if level else "deep.pdf": data})
    return data


def zip_with(name: str) -> Callable[[], bytes]:
    def make() -> bytes:
        return _zip({name: text_pdf("a member with an unsafe name")})

    return make


def zip_symlink() -> bytes:
    """A member that is a symbolic link (Unix mode 0o120777) to /etc/passwd, named like a PDF."""
    info = zipfile.ZipInfo("passwd.pdf")
    info.create_system = 3
    info.external_attr = (0o120777 << 16) | 0
    return _zip_infos([(info, b"/etc/passwd")])


def zip_encrypted_member() -> bytes:
    """A member flagged as encrypted (general purpose bit 0), as a password-protected archive has."""
    out = bytearray(_zip({"secret.pdf": text_pdf("encrypted member")}))
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # local header, central directory
        position = out.find(signature)
        struct.pack_into(
            "<H", out, position + offset, struct.unpack_from("<H", out, position + offset)[0] | 0x1
        )
    return bytes(out)


def zip_only_metadata() -> bytes:
    """Folders and file-system metadata, no document."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("docs/"), b"")
        archive.writestr("__MACOSX/._a.pdf", b"\x00\x05\x16\x07")
        archive.writestr("docs/.DS_Store", b"\x00\x00\x00\x01Bud1")
    return buffer.getvalue()


def zip_truncated() -> bytes:
    return _zip({"a.pdf": text_pdf(), "b.pdf": text_pdf("second")})[:-200]


def zip_duplicate_names() -> bytes:
    """Two different members under the same name: both are documents, neither may be lost."""
    return _zip_infos(
        [
            (zipfile.ZipInfo("same.pdf"), text_pdf("first of two members named same.pdf")),
            (zipfile.ZipInfo("same.pdf"), text_pdf("second of two members named same.pdf")),
        ]
    )


def zip_benign() -> bytes:
    return _zip({"a/invoice.pdf": text_pdf(), "scan.png": scanned_png(600, height=700)})


# ----------------------------------------------------------------------------------------------------- PDFs


def truncated_pdf() -> bytes:
    data = text_pdf()
    return data[: len(data) // 3]


def thousands_of_pages() -> bytes:
    pdf = pymupdf.open()
    for _ in range(3000):
        pdf.new_page(width=200, height=200)
    return pdf.tobytes(garbage=1)


def many_pages_under_document_limit() -> bytes:
    """More pages than a service request may have (serve.max_pages), fewer than a document (ingest.max_pages)."""
    return text_pdf(pages=int(SERVE["max_pages"]) + 20, fontsize=10)


def wide_page(text: bool) -> Callable[[], bytes]:
    def make() -> bytes:
        """A page 400 inches wide (28,800 pt) and 11 inches high."""
        pdf = pymupdf.open()
        page = pdf.new_page(width=400 * 72, height=11 * 72)
        if text:
            page.insert_textbox(pymupdf.Rect(50, 50, 2000, 700), "INVOICE No. 7\nTotal due 170.00 USD\n" * 6)
        else:
            for x in range(0, 400 * 72, 720):
                page.draw_rect(pymupdf.Rect(x + 10, 100, x + 600, 140), fill=(0, 0, 0))
        return pdf.tobytes()

    return make


def javascript_pdf() -> bytes:
    """A text PDF with a JavaScript OpenAction and a page-open action (nothing may run it)."""
    pdf = pymupdf.open(stream=text_pdf(), filetype="pdf")
    script = pdf.get_new_xref()
    pdf.update_object(script, "<</S/JavaScript/JS(app.alert('pwned'); while(true){})>>")
    pdf.xref_set_key(pdf.pdf_catalog(), "OpenAction", f"{script} 0 R")
    pdf.xref_set_key(pdf[0].xref, "AA", f"<</O {script} 0 R>>")
    return pdf.tobytes()


def huge_text_layer() -> bytes:
    """One page whose text layer holds ~6 MB (200,000 lines drawn at 1 pt)."""
    lines = "".join(
        f"BT /F1 1 Tf 10 {700 - (n % 690)} Td (invoice line {n:06d} total due) Tj ET\n"
        for n in range(200_000)
    )
    pdf = pymupdf.open()
    page = pdf.new_page(width=612, height=792)
    page.insert_text((50, 50), "INVOICE", fontsize=12)  # registers the font /F1... under a name we look up
    font = next(iter(page.get_fonts()))[4]
    contents = pdf.get_new_xref()
    pdf.update_object(contents, "<<>>")
    pdf.update_stream(contents, lines.replace("/F1 ", f"/{font} ").encode())
    pdf.xref_set_key(page.xref, "Contents", f"[{page.get_contents()[0]} 0 R {contents} 0 R]")
    return pdf.tobytes(deflate=True)


def pdf_image_bomb() -> bytes:
    """A page whose only content is an image XObject claiming 100,000 x 100,000 pixels (tiny stream)."""
    pdf = pymupdf.open()
    page = pdf.new_page(width=612, height=792)
    image = pdf.get_new_xref()
    pdf.update_object(
        image,
        "<</Type/XObject/Subtype/Image/Width 100000/Height 100000/ColorSpace/DeviceGray/BitsPerComponent 8>>",
    )
    pdf.update_stream(image, zlib.compress(bytes(1 * MB)), compress=False)
    pdf.xref_set_key(image, "Filter", "/FlateDecode")
    pdf.xref_set_key(page.xref, "Resources", f"<</XObject<</Im0 {image} 0 R>>>>")
    contents = pdf.get_new_xref()
    pdf.update_object(contents, "<<>>")
    pdf.update_stream(contents, b"q 612 0 0 792 0 0 cm /Im0 Do Q")
    pdf.xref_set_key(page.xref, "Contents", f"{contents} 0 R")
    return pdf.tobytes()


def pdf_stream_bomb() -> bytes:
    """A content stream of 1 GB of spaces, deflated to ~1 MB."""
    pdf = pymupdf.open()
    page = pdf.new_page(width=612, height=792)
    contents = pdf.get_new_xref()
    pdf.update_object(contents, "<<>>")
    compressor = zlib.compressobj(9)
    chunk = b" " * (16 * MB)
    stream = b"".join(compressor.compress(chunk) for _ in range(64)) + compressor.flush()
    pdf.update_stream(contents, stream, compress=False)
    pdf.xref_set_key(contents, "Filter", "/FlateDecode")
    pdf.xref_set_key(page.xref, "Contents", f"{contents} 0 R")
    return pdf.tobytes()


def junk_before_pdf_header() -> bytes:
    """HTML with "%PDF-" in its first KiB: sniffed as a PDF, which it is not."""
    return b"<html><body>see %PDF-1.7 spec</body></html>\n" + b"<p>x</p>" * 100


# --------------------------------------------------------------------------------------------------- images


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> Callable[[], bytes]:
    def make() -> bytes:
        return bomb_png(width, height)

    return make


def jpeg_claiming(width: int, height: int) -> Callable[[], bytes]:
    def make() -> bytes:
        """A real small JPEG whose SOF0 frame header is rewritten to ``width`` x ``height``."""
        data = bytearray(image_bytes(Image.new("L", (16, 16), 255), "JPEG"))
        sof = data.find(b"\xff\xc0")
        struct.pack_into(">HH", data, sof + 5, height, width)
        return bytes(data)

    return make


def tiff_claiming(width: int, height: int) -> Callable[[], bytes]:
    def make() -> bytes:
        """A little-endian TIFF with one IFD claiming ``width`` x ``height`` 8-bit gray pixels in one strip."""
        entries = [
            (256, 4, 1, width),  # ImageWidth, LONG
            (257, 4, 1, height),  # ImageLength
            (258, 3, 1, 8),  # BitsPerSample
            (259, 3, 1, 1),  # Compression: none
            (262, 3, 1, 1),  # Photometric: BlackIsZero
            (273, 4, 1, 8),  # StripOffsets
            (277, 3, 1, 1),  # SamplesPerPixel
            (278, 4, 1, height),  # RowsPerStrip
            (279, 4, 1, width * height & 0xFFFFFFFF),  # StripByteCounts
        ]
        ifd = struct.pack("<H", len(entries))
        ifd += b"".join(struct.pack("<HHII", tag, kind, count, value) for tag, kind, count, value in entries)
        ifd += struct.pack("<I", 0)
        pixels = b"\xff" * 64
        return b"II*\x00" + struct.pack("<I", 8 + len(pixels)) + pixels + ifd

    return make


def webp_claiming(width: int, height: int) -> Callable[[], bytes]:
    def make() -> bytes:
        """A WebP whose VP8X canvas claims ``width`` x ``height`` (24-bit fields), followed by a tiny real image."""
        small = image_bytes(Image.new("RGB", (16, 16), "white"), "WEBP", lossless=True)
        vp8l = small[12:]  # the VP8L chunk of the small image
        vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00"
        vp8x += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
        body = b"WEBP" + vp8x + vp8l
        return b"RIFF" + struct.pack("<I", len(body)) + body

    return make


def tiff_frames(count: int) -> Callable[[], bytes]:
    def make() -> bytes:
        frames = [Image.new("L", (32, 32), 255) for _ in range(count)]
        return image_bytes(frames[0], "TIFF", save_all=True, append_images=frames[1:])

    return make


def png_truncated() -> bytes:
    data = scanned_png(600, height=700)
    return data[: len(data) // 2]


def png_text_bomb() -> bytes:
    """A small PNG with a zTXt chunk inflating to 200 MB (over Pillow's text-chunk limit)."""
    data = image_bytes(Image.new("L", (64, 64), 255), "PNG")
    compressor = zlib.compressobj(9)
    chunk = b"A" * (16 * MB)
    text = b"".join(compressor.compress(chunk) for _ in range(13)) + compressor.flush()
    ztxt = _png_chunk(b"zTXt", b"Comment\x00\x00" + text)
    end = data.index(b"IDAT") - 4
    return data[:end] + ztxt + data[end:]


def gif() -> bytes:
    return image_bytes(Image.new("L", (64, 64), 255), "GIF")


# ---------------------------------------------------------------------------------------- polyglots, names


def pdf_zip_polyglot() -> bytes:
    """A text PDF with a zip archive (holding an executable) appended: a PDF to a PDF reader, a zip to unzip."""
    return text_pdf() + _zip({"payload.exe": b"MZ" + bytes(100)})


def png_zip_polyglot() -> bytes:
    return scanned_png(600, height=700) + _zip({"payload.pdf": text_pdf("hidden in the PNG")})


def exe() -> bytes:
    return b"MZ\x90\x00" + bytes(1000)


def cases() -> list[Case]:
    """Every kind, hostile first, the benign controls last."""
    max_pixels = int(LIMITS["max_image_pixels"])
    over = 413  # the service's status for size limits (FileTooLargeError, TooManyPagesError, ZipBombError)
    return [
        Case(
            "zip bomb (ratio)",
            "ratio.zip",
            zip_bomb_ratio,
            ("ZipBombError",),
            over,
            "40 MB of zeros in ~40 KB",
        ),
        Case(
            "zip bomb (total size)",
            "total.zip",
            zip_bomb_total,
            ("ZipBombError",),
            over,
            "headers claim 720 MB",
        ),
        Case(
            "zip bomb (lying header)",
            "liar.zip",
            zip_lying_header,
            ("CorruptDocumentError",),
            422,
            "claims 1 KB, inflates to 4 MB",
        ),
        Case(
            "zip bomb (member count)",
            "members.zip",
            zip_bomb_members,
            ("ZipBombError",),
            over,
            "1,500 members",
        ),
        Case(
            "nested archives too deep", "nested.zip", zip_nested_too_deep, ("ZipBombError",), over, "4 levels"
        ),
        Case(
            "path traversal member",
            "traversal.zip",
            zip_with("../../etc/cron.d/evil.pdf"),
            ("UnsafeArchivePathError",),
            422,
            "../../etc/cron.d/evil.pdf",
        ),
        Case(
            "absolute path member",
            "absolute.zip",
            zip_with("/etc/evil.pdf"),
            ("UnsafeArchivePathError",),
            422,
            "/etc/evil.pdf",
        ),
        Case(
            "drive letter member",
            "drive.zip",
            zip_with("C:\\Windows\\evil.pdf"),
            ("UnsafeArchivePathError",),
            422,
            "C:\\Windows\\evil.pdf",
        ),
        Case(
            "symlink member",
            "symlink.zip",
            zip_symlink,
            ("UnsafeArchivePathError",),
            422,
            "passwd.pdf -> /etc/passwd",
        ),
        Case(
            "encrypted member",
            "encrypted.zip",
            zip_encrypted_member,
            ("EncryptedDocumentError",),
            422,
            "flag bit 0",
        ),
        Case("empty archive", "empty.zip", empty_zip, ("EmptyArchiveError",), 422, "no members"),
        Case(
            "archive of metadata only",
            "metadata.zip",
            zip_only_metadata,
            ("EmptyArchiveError",),
            422,
            "__MACOSX, .DS_Store, a folder",
        ),
        Case(
            "truncated archive",
            "truncated.zip",
            zip_truncated,
            ("CorruptDocumentError",),
            422,
            "central directory cut",
        ),
        Case(
            "duplicate member names",
            "duplicates.zip",
            zip_duplicate_names,
            (LABEL, LABEL),
            200,
            "two same.pdf",
        ),
        Case(
            "encrypted PDF",
            "locked.pdf",
            encrypted_pdf,
            ("EncryptedDocumentError",),
            422,
            "AES-256 user password",
        ),
        Case("truncated PDF", "truncated.pdf", truncated_pdf, ("CorruptDocumentError",), 422, "first third"),
        Case("PDF page-tree cycle", "cycle.pdf", cycle_pdf, ("CorruptDocumentError",), 422, "Kids loop"),
        Case(
            "PDF with 3,000 pages",
            "pages.pdf",
            thousands_of_pages,
            ("TooManyPagesError",),
            over,
            "blank pages",
        ),
        Case(
            "PDF over the request's pages",
            "long.pdf",
            many_pages_under_document_limit,
            (LABEL,),
            over,
            "serve.max_pages + 20",
        ),
        Case(
            "page 400 inches wide (text)", "wide-text.pdf", wide_page(True), (LABEL,), 200, "28,800 x 792 pt"
        ),
        Case(
            "page 400 inches wide (no text)",
            "wide-scan.pdf",
            wide_page(False),
            (LABEL,),
            200,
            "rendered for OCR",
        ),
        Case("JavaScript actions", "script.pdf", javascript_pdf, (LABEL,), 200, "OpenAction + page AA"),
        Case(
            "huge text layer",
            "text.pdf",
            huge_text_layer,
            ("TextLayerTooLargeError",),
            422,
            "5.8 million characters on one page",
            import_answers=(LABEL,),  # the import renders the page, it does not read its text
        ),
        Case(
            "PDF image claiming 10^10 pixels",
            "image-bomb.pdf",
            pdf_image_bomb,
            (LABEL,),
            200,
            "XObject 100,000 x 100,000 (MuPDF skips it)",
        ),
        Case(
            "PDF content stream bomb",
            "stream-bomb.pdf",
            pdf_stream_bomb,
            (LABEL,),
            200,
            "1 GB of spaces deflated",
        ),
        Case(
            "junk with a PDF marker",
            "page.html",
            junk_before_pdf_header,
            ("CorruptDocumentError",),
            422,
            "HTML holding %PDF-",
        ),
        Case(
            "PNG claiming 10^10 pixels",
            "bomb.png",
            png_claiming(100_000, 100_000),
            ("ImageBombError",),
            422,
            "IHDR 100,000 x 100,000",
        ),
        Case(
            "PNG just over the pixel limit",
            "over.png",
            png_claiming(max_pixels // 9000 + 1000, 9000),
            ("ImageBombError",),
            422,
            "~1.1x ingest.max_image_pixels",
        ),
        Case(
            "JPEG claiming 4x10^9 pixels",
            "bomb.jpg",
            jpeg_claiming(65_000, 65_000),
            ("ImageBombError",),
            422,
            "SOF0 65,000 x 65,000",
        ),
        Case(
            "TIFF claiming 10^10 pixels",
            "bomb.tif",
            tiff_claiming(100_000, 100_000),
            ("ImageBombError",),
            422,
            "IFD 100,000 x 100,000",
        ),
        Case(
            "WebP claiming 2.7x10^8 pixels",
            "bomb.webp",
            webp_claiming(16_383, 16_383),
            ("ImageBombError",),
            422,
            "VP8X 16,383 x 16,383",
        ),
        Case(
            "TIFF with 300 frames", "frames.tif", tiff_frames(300), ("TooManyPagesError",), over, "300 IFDs"
        ),
        Case("truncated PNG", "cut.png", png_truncated, ("CorruptDocumentError",), 422, "IDAT cut"),
        Case(
            "PNG text-chunk bomb",
            "ztxt.png",
            png_text_bomb,
            ("CorruptDocumentError",),
            422,
            "zTXt inflating to 200 MB",
        ),
        Case("GIF", "anim.gif", gif, ("UnsupportedTypeError",), 415, "not an accepted type"),
        Case("PDF+ZIP polyglot", "polyglot.pdf", pdf_zip_polyglot, (LABEL,), 200, "zip appended to a PDF"),
        Case("PNG+ZIP polyglot", "polyglot.png", png_zip_polyglot, (LABEL,), 200, "zip appended to a PNG"),
        Case(
            "null bytes",
            "nulls.pdf",
            lambda: bytes(64 * 1024),
            ("UnsupportedTypeError",),
            415,
            "64 KB of NUL",
        ),
        Case("zero bytes", "zero.pdf", lambda: b"", ("EmptyFileError",), 422, "empty file"),
        Case("wrong extension (PDF as .png)", "invoice.png", text_pdf, (LABEL,), 200, "type from content"),
        Case(
            "wrong extension (EXE as .pdf)", "invoice.pdf", exe, ("UnsupportedTypeError",), 415, "MZ header"
        ),
        Case("name with newlines", "in\nvoice\r\n.pdf", text_pdf, (LABEL,), 200, "CR LF in the name"),
        Case(
            "unicode name", "счёт 請求書 🧾 ﬁ\u200f.pdf", text_pdf, (LABEL,), 200, "Cyrillic, CJK, emoji, RLM"
        ),
        Case(
            "very long name",
            "n" * 1000 + ".pdf",
            text_pdf,
            (LABEL,),
            200,
            "1,004 characters (cut to 240 on disk)",
        ),
        Case("benign PDF", "benign.pdf", text_pdf, (LABEL,), 200, "control"),
        Case(
            "benign PNG scan",
            "benign.png",
            lambda: scanned_png(600, height=700),
            (LABEL,),
            200,
            "control (OCR)",
        ),
        Case("benign zip", "benign.zip", zip_benign, (LABEL, LABEL), 200, "control"),
    ]


def says_expected(message: str) -> bool:
    """An error message that says what was expected (or the limit) besides what was found."""
    return "expected" in message or "the limit is" in message


def case_id(case: Case) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in case.kind.lower()).strip("-")


def stored_name(case: Case) -> str:
    """The case's file name on disk: its own, with slashes replaced and cut to 240 bytes (Linux allows 255)."""
    name = case.filename.replace("/", "_")
    stem, dot, extension = name.rpartition(".")
    while len(name.encode()) > 240:
        stem = stem[:-1]
        name = f"{stem}{dot}{extension}"
    return name


def _status_mb(pid: int | str, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise LookupError(f"no {field} in /proc/{pid}/status")


def peak_rss_mb(pid: int | str = "self") -> float:
    """VmHWM (peak resident set) of a process in MB, from /proc."""
    return _status_mb(pid, "VmHWM")


def rss_mb(pid: int | str = "self") -> float:
    """VmRSS (resident set now) of a process in MB, from /proc."""
    return _status_mb(pid, "VmRSS")


def reset_peak_rss(pid: int | str = "self") -> None:
    """Reset a process's VmHWM to its current RSS (writing 5 to clear_refs, Linux >= 4.0)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


# ------------------------------------------------------------------------------------------------- report


def record(front: str, rows: list[dict[str, Any]]) -> Path | None:
    """Write one front end's rows to ``$DOCCLASS_HOSTILE_REPORT/<front>.json`` when the variable is set."""
    folder = os.environ.get("DOCCLASS_HOSTILE_REPORT")
    if not folder:
        return None
    path = Path(folder) / f"{front}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=1, ensure_ascii=False))
    return path


def table(folder: Path) -> str:
    """The markdown table of the rows the three suites wrote to ``folder``."""
    fronts = {}
    for front in ("predict", "import", "service"):
        path = folder / f"{front}.json"
        fronts[front] = {row["kind"]: row for row in json.loads(path.read_text())} if path.exists() else {}
    lines = [
        "| input | CLI answer | CLI s | CLI peak RSS MB | import answer | import s | service status | service s "
        "| service peak RSS MB | ready after |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---|",
    ]
    for case in cases():
        p, i, s = (fronts[front].get(case.kind, {}) for front in ("predict", "import", "service"))
        lines.append(
            f"| {case.kind} | {p.get('answer', '-')} | {p.get('seconds', '-')} | {p.get('rss_mb', '-')} "
            f"| {i.get('answer', '-')} | {i.get('seconds', '-')} | {s.get('status', '-')} | {s.get('seconds', '-')} "
            f"| {s.get('rss_mb', '-')} | {s.get('ready', '-')} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tests.hostile <report folder>", file=sys.stderr)
        return 2
    folder = Path(argv[0])
    text = table(folder)
    (folder / "hostile.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
