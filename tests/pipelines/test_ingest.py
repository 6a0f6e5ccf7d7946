import hashlib
import io
import zipfile

import pytest

from pipelines.ingest import (
    JPEG,
    PDF,
    PNG,
    TIFF,
    WEBP,
    ZIP,
    CorruptDocumentError,
    EmptyFileError,
    EncryptedDocumentError,
    FileTooLargeError,
    RawDocument,
    Rejected,
    UnsafeArchivePathError,
    UnsupportedTypeError,
    ZipBombError,
    check_bytes,
    detect_type,
    expand,
    ingest_paths,
    safe_member_name,
)
from tests.params import ingest_limits
from tests.pipelines.conftest import image_bytes, page_image, text_pdf, zip_bytes


@pytest.fixture(scope="module")
def small_image():
    return page_image(dpi=30)


def test_detect_type_from_content_not_extension(small_image):
    assert detect_type(text_pdf()) == PDF
    assert detect_type(image_bytes(small_image, "PNG")) == PNG
    assert detect_type(image_bytes(small_image, "JPEG")) == JPEG
    assert detect_type(image_bytes(small_image, "TIFF")) == TIFF
    assert detect_type(image_bytes(small_image, "WEBP")) == WEBP
    assert detect_type(zip_bytes({"a.pdf": text_pdf()})) == ZIP
    assert detect_type(b"hello world") is None


def test_unsupported_type_names_what_was_found():
    with pytest.raises(
        UnsupportedTypeError, match=r"'application/x-msdownload' for report.exe: expected PDF, PNG"
    ):
        check_bytes(b"MZ\x90\x00" + b"\x00" * 100, "report.exe", ingest_limits())
    with pytest.raises(UnsupportedTypeError, match=r"'text/plain' for notes.pdf"):
        check_bytes(b"just some text", "notes.pdf", ingest_limits())
    with pytest.raises(UnsupportedTypeError, match=r"'image/gif'"):
        check_bytes(b"GIF89a" + b"\x00" * 20, "x.gif", ingest_limits())


def test_empty_and_too_large():
    with pytest.raises(EmptyFileError, match=r"empty.pdf is empty \(0 bytes\)"):
        check_bytes(b"", "empty.pdf", ingest_limits())
    with pytest.raises(FileTooLargeError, match="limit is"):
        check_bytes(text_pdf(), "big.pdf", ingest_limits(max_file_bytes=100))


@pytest.mark.parametrize(
    "name", ["../evil.pdf", "/etc/passwd", "a/../../b.pdf", "C:\\Windows\\x.pdf", "..\\..\\x.pdf", "a\x00b"]
)
def test_unsafe_member_names(name):
    with pytest.raises(UnsafeArchivePathError, match="unsafe path"):
        safe_member_name(name)


def test_safe_member_name_normalises():
    assert safe_member_name("./folder//sub/doc.pdf") == "folder/sub/doc.pdf"
    assert safe_member_name("folder\\doc.pdf") == "folder/doc.pdf"


def test_zip_members_are_documents_with_nested_folders_and_mixed_types(small_image):
    inner = zip_bytes({"deep/inner.png": image_bytes(small_image, "PNG")})
    archive = zip_bytes(
        {
            "invoices/a.pdf": text_pdf("first"),
            "scans/2024/b.jpg": image_bytes(small_image, "JPEG"),
            "nested.zip": inner,
            "__MACOSX/._a.pdf": b"\x00\x05\x16\x07",
            "readme.txt": b"not a document",
            "../escape.pdf": text_pdf("escape"),
            "empty.pdf": b"",
        }
    )
    items = list(expand(archive, "upload.zip", ingest_limits()))
    documents = {item.name: item for item in items if isinstance(item, RawDocument)}
    rejected = {item.name: item for item in items if isinstance(item, Rejected)}
    assert set(documents) == {
        "upload.zip/invoices/a.pdf",
        "upload.zip/scans/2024/b.jpg",
        "upload.zip/nested.zip/deep/inner.png",
    }
    assert documents["upload.zip/scans/2024/b.jpg"].mime == JPEG
    assert isinstance(rejected["upload.zip/readme.txt"].error, UnsupportedTypeError)
    assert isinstance(rejected["upload.zip/../escape.pdf"].error, UnsafeArchivePathError)
    assert isinstance(rejected["upload.zip/empty.pdf"].error, EmptyFileError)
    assert not any("__MACOSX" in name for name in [*documents, *rejected])


def test_zip_bomb_by_ratio():
    archive = zip_bytes({"bomb.pdf": b"%PDF-1.4\n" + b"\x00" * 5_000_000})
    (item,) = expand(archive, "bomb.zip", ingest_limits())
    assert isinstance(item, Rejected) and isinstance(item.error, ZipBombError)
    assert "compresses" in item.reason and "limit" in item.reason


def test_zip_bomb_by_total_size_and_member_count():
    archive = zip_bytes({f"{i}.pdf": text_pdf(f"doc {i}") for i in range(5)})
    (item,) = expand(archive, "many.zip", ingest_limits(zip_max_members=3))
    assert isinstance(item.error, ZipBombError) and "5 members: the limit is 3" in item.reason
    (item,) = expand(archive, "big.zip", ingest_limits(zip_max_total_bytes=1000))
    assert isinstance(item.error, ZipBombError) and "uncompressed" in item.reason


def test_zip_nesting_depth_limited():
    archive = text_pdf("core")
    for level in range(4):
        archive = zip_bytes({f"level{level}.zip" if level else "doc.pdf": archive})
    items = list(expand(archive, "deep.zip", ingest_limits(zip_max_depth=1)))
    assert all(isinstance(item, Rejected) for item in items)
    assert any("nested" in item.reason for item in items)


def test_zip_lying_header_is_caught(tmp_path):
    data = bytearray(zip_bytes({"a.pdf": b"%PDF-1.4 " + b"x" * 2000}, compression=zipfile.ZIP_STORED))
    # Shrink the declared size in the central directory: the reader must not trust it.
    archive = zipfile.ZipFile(io.BytesIO(bytes(data)))
    info = archive.infolist()[0]
    declared = info.file_size.to_bytes(4, "little")
    index = bytes(data).rfind(declared)
    data[index : index + 4] = (100).to_bytes(4, "little")
    items = list(expand(bytes(data), "liar.zip", ingest_limits()))
    assert len(items) == 1 and isinstance(items[0], Rejected)
    assert isinstance(items[0].error, (ZipBombError, CorruptDocumentError))


def test_encrypted_zip_member_rejected():
    data = bytearray(zip_bytes({"a.pdf": text_pdf()}))
    # Set the "encrypted" flag bit in both local and central headers.
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = bytes(data).find(signature)
        data[start + offset] |= 0x1
    (item,) = expand(bytes(data), "locked.zip", ingest_limits())
    assert isinstance(item, Rejected) and isinstance(item.error, EncryptedDocumentError)


def test_corrupt_zip():
    (item,) = expand(b"PK\x03\x04" + b"garbage" * 10, "broken.zip", ingest_limits())
    assert isinstance(item.error, CorruptDocumentError) and "not a readable zip" in item.reason


def test_ingest_paths_collapses_duplicates_and_keeps_going(tmp_path):
    (tmp_path / "sub").mkdir()
    same, other = text_pdf("same"), text_pdf("other")
    (tmp_path / "a.pdf").write_bytes(same)
    (tmp_path / "sub" / "copy.bin").write_bytes(same)
    (tmp_path / "b.pdf").write_bytes(other)
    (tmp_path / "bad.exe").write_bytes(b"MZ" + b"\x00" * 10)
    (tmp_path / ".hidden.pdf").write_bytes(text_pdf("hidden"))
    result = ingest_paths([tmp_path, tmp_path / "missing.pdf"], ingest_limits())
    assert len(result.documents) == 2
    assert list(result.duplicates.values()) == [str(tmp_path / "a.pdf")]
    reasons = {r.name: r.reason for r in result.rejected}
    assert "unsupported file type 'application/x-msdownload'" in reasons[str(tmp_path / "bad.exe")]
    assert "does not exist" in reasons[str(tmp_path / "missing.pdf")]
    assert {doc.sha256 for doc in result.documents} == {hashlib.sha256(d).hexdigest() for d in (same, other)}


# Found by the hostile-file suite (tests/hostile.py).


def test_a_symlink_member_is_refused_as_a_link_not_read_as_text():
    from tests.hostile import zip_symlink

    [item] = list(expand(zip_symlink(), "links.zip", ingest_limits()))
    assert isinstance(item, Rejected) and isinstance(item.error, UnsafeArchivePathError)
    assert item.reason == (
        "links.zip/passwd.pdf is a symbolic link in the archive: expected regular files (PDF, PNG, JPEG, TIFF or WebP)"
    )


def test_nul_bytes_are_binary_not_text():
    with pytest.raises(UnsupportedTypeError, match="'application/octet-stream' for nulls.pdf"):
        check_bytes(bytes(4096), "nulls.pdf", ingest_limits())
    with pytest.raises(UnsupportedTypeError, match="'text/plain' for notes.pdf"):
        check_bytes(b"plain words\n" * 10, "notes.pdf", ingest_limits())


def test_damaged_archives_say_what_was_expected():
    from tests.hostile import zip_lying_header, zip_truncated

    [cut] = list(expand(zip_truncated(), "cut.zip", ingest_limits()))
    assert isinstance(cut.error, CorruptDocumentError)
    assert cut.reason.endswith(": expected an undamaged zip archive")
    [liar] = list(expand(zip_lying_header(), "liar.zip", ingest_limits()))
    assert isinstance(liar.error, CorruptDocumentError)
    assert liar.reason.startswith("liar.zip/liar.pdf cannot be decompressed: Bad CRC-32")
    assert liar.reason.endswith(": expected an undamaged archive member")
