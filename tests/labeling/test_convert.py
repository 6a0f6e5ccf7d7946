"""Pure converters and the config builder: no server."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from PIL import Image

from labeling.config import SAMPLING, LabelConfigError, build_label_config, config_classes
from labeling.convert import (
    CREATED,
    DELETED,
    UPDATED,
    Watermark,
    annotation_choice,
    check_sha256,
    diff_labels,
    labels_in_use,
    normalise_time,
    prediction_result,
    resolve_tasks,
    tasks_to_records,
)
from labeling.importer import page_url, render_pages
from labeling.pull import (
    COLUMNS,
    NOT_IMPORTED,
    PullState,
    find_original,
    load_state,
    save_state,
    write_snapshot,
)
from pipelines.dataset import list_dataset
from pipelines.ingest import PDF, TIFF, RawDocument, TooManyPagesError, sha256_of
from tests.params import ingest_limits

CLASSES = ["invoice", "payslip", "w9"]


def annotation(
    aid: int, label: str | list[str] | None, updated: str, *, cancelled: bool = False, user: int = 1
):
    labels = [label] if isinstance(label, str) else label
    result = [] if labels is None else prediction_result(labels[0])
    if labels is not None and len(labels) > 1:
        result[0]["value"]["choices"] = labels
    return {
        "id": aid,
        "result": result,
        "was_cancelled": cancelled,
        "completed_by": user,
        "created_at": updated,
        "updated_at": updated,
    }


def digest(tid: int) -> str:
    """A well-formed document digest for task ``tid``."""
    return f"{tid:064x}"


def task(tid: int, *annotations: dict, sha256: str | None = None) -> dict:
    return {
        "id": tid,
        "data": {"sha256": digest(tid) if sha256 is None else sha256, "name": f"doc{tid}.pdf"},
        "annotations": list(annotations),
    }


def test_config_has_single_choice_page_navigator_and_round_trips():
    xml = build_label_config(["w9", "1040", 'a "quoted" & <odd> class'])
    assert 'valueList="$pages"' in xml and 'choice="single"' in xml and 'required="true"' in xml
    assert config_classes(xml) == ["w9", "1040", 'a "quoted" & <odd> class']
    assert SAMPLING == "Uncertainty sampling"


@pytest.mark.parametrize(
    ("classes", "match"),
    [([], "no classes"), (["a", "a"], r"duplicate classes \['a'\]"), (["a", " "], "empty class name")],
)
def test_config_rejects_bad_classes(classes, match):
    with pytest.raises(LabelConfigError, match=match):
        build_label_config(classes)


def test_config_classes_needs_our_choices():
    with pytest.raises(LabelConfigError, match="no <Choices"):
        config_classes("<View><Text name='t' value='$text'/></View>")
    with pytest.raises(LabelConfigError, match="not valid XML"):
        config_classes("<View>")


def test_annotation_choice_says_what_was_expected():
    assert annotation_choice(annotation(1, "w9", "t"), CLASSES) == "w9"
    with pytest.raises(ValueError, match=r"label 'cat' is not in the project config: expected one of"):
        annotation_choice(annotation(1, "cat", "t"), CLASSES)
    with pytest.raises(ValueError, match="2 classes chosen"):
        annotation_choice(annotation(1, ["w9", "invoice"], "t"), CLASSES)
    with pytest.raises(ValueError, match="no class chosen"):
        annotation_choice({"id": 1, "result": [{"type": "textarea"}]}, CLASSES)


def test_latest_valid_annotation_wins_and_skips_are_ignored():
    tasks = [
        task(
            1, annotation(10, "w9", "2025-01-01T10:00:00Z"), annotation(11, "invoice", "2025-01-02T10:00:00Z")
        ),
        task(
            2,
            annotation(20, "payslip", "2025-01-01T10:00:00Z"),
            annotation(21, None, "2025-01-03T00:00:00Z", cancelled=True),
        ),
        task(3, annotation(30, None, "2025-01-01T10:00:00Z", cancelled=True)),
        task(4, annotation(40, "w9", "2025-01-01T10:00:00Z"), annotation(41, "cat", "2025-01-05T10:00:00Z")),
        task(5),
        # Same timestamp: the higher id wins (deterministic).
        task(
            6, annotation(61, "w9", "2025-01-01T10:00:00Z"), annotation(60, "invoice", "2025-01-01T10:00:00Z")
        ),
    ]
    resolution = resolve_tasks(tasks, CLASSES, users={1: "ann@example.com"})
    labels = {tid: r.label for tid, r in resolution.labels.items()}
    assert labels == {1: "invoice", 2: "payslip", 4: "w9", 6: "w9"}
    assert resolution.labels[1].annotation_id == 11 and resolution.labels[1].annotator == "ann@example.com"
    assert [(r.task_id, r.annotation_id) for r in resolution.rejected] == [(4, 41)]
    assert "'cat' is not in the project config" in resolution.rejected[0].reason
    assert resolution.newest == Watermark("2025-01-05T10:00:00.000000Z", 41)
    assert [r.task_id for r in tasks_to_records(tasks, CLASSES)] == [1, 2, 4, 6]


def test_annotator_from_export_dict_or_unknown_id():
    tasks = [
        task(1, {**annotation(1, "w9", "2025-01-01T00:00:00Z"), "completed_by": {"id": 3, "email": "x@y.z"}}),
        task(2, annotation(2, "w9", "2025-01-01T00:00:00Z", user=9)),
    ]
    records = tasks_to_records(tasks, CLASSES)
    assert [r.annotator for r in records] == ["x@y.z", "user:9"]


def test_normalise_time_sorts_chronologically():
    assert normalise_time("2025-01-01T10:00:00Z") == "2025-01-01T10:00:00.000000Z"
    assert normalise_time("2025-01-01T12:00:00.5+02:00") == "2025-01-01T10:00:00.500000Z"
    assert normalise_time(None) == ""


def test_diff_reports_created_relabelled_deleted_and_nothing_else():
    first = [
        task(1, annotation(10, "w9", "2025-01-01T00:00:00Z")),
        task(2, annotation(20, "invoice", "2025-01-01T00:00:00Z")),
        task(3, annotation(30, "payslip", "2025-01-01T00:00:00Z")),
    ]
    before = resolve_tasks(first, CLASSES)
    changes = diff_labels({}, {}, before, Watermark())
    assert [(c.kind, c.task_id) for c in changes] == [(CREATED, 1), (CREATED, 2), (CREATED, 3)]
    ids = {k: sorted(v) for k, v in before.annotation_ids.items()}
    # Nothing happened: no changes.
    assert diff_labels(before.labels, ids, resolve_tasks(first, CLASSES), before.newest) == []
    second = [
        task(1, annotation(10, "invoice", "2025-02-01T00:00:00Z")),  # relabelled in place
        task(2),  # annotation deleted
        task(
            3,
            annotation(30, "payslip", "2025-01-01T00:00:00Z"),
            annotation(31, None, "2025-02-02T00:00:00Z", cancelled=True),
        ),
        task(4, annotation(40, "cat", "2025-02-03T00:00:00Z")),  # invalid: no label
    ]
    after = resolve_tasks(second, CLASSES)
    changes = diff_labels(before.labels, ids, after, before.newest)
    assert [(c.kind, c.task_id) for c in changes] == [(UPDATED, 1), (DELETED, 2)]
    assert changes[0].previous.label == "w9" and changes[0].record.label == "invoice"
    assert changes[1].record is None and changes[1].previous.label == "invoice"


def test_diff_sees_deleted_tasks_and_another_annotation_winning():
    before = resolve_tasks(
        [
            task(1, annotation(10, "w9", "2025-01-01T00:00:00Z")),
            task(2, annotation(20, "w9", "2025-01-01T00:00:00Z")),
        ],
        CLASSES,
    )
    ids = {k: sorted(v) for k, v in before.annotation_ids.items()}
    after = resolve_tasks(
        [task(1, annotation(10, "w9", "2025-01-01T00:00:00Z"), annotation(11, "w9", "2025-03-01T00:00:00Z"))],
        CLASSES,
    )
    changes = diff_labels(before.labels, ids, after, before.newest)
    assert [(c.kind, c.task_id) for c in changes] == [(UPDATED, 1), (DELETED, 2)]


def test_labels_in_use_counts_every_non_skipped_choice():
    tasks = [
        task(1, annotation(1, "w9", "t")),
        task(2, annotation(2, "w9", "t"), annotation(3, None, "t", cancelled=True)),
        task(3, annotation(4, "cat", "t")),
    ]
    assert labels_in_use(tasks) == {"w9": [1, 2], "cat": [3]}


def test_snapshot_is_a_dataset_train_reads(tmp_path: Path):
    originals = tmp_path / "originals"
    originals.mkdir()
    for tid in (1, 2):
        (originals / f"{digest(tid)}.pdf").write_bytes(b"%PDF-1.4 fake")
    labels = resolve_tasks(
        [
            task(1, annotation(10, "w9", "2025-01-01T00:00:00Z")),
            task(2, annotation(20, "invoice", "2025-01-01T00:00:00Z")),
            task(3, annotation(30, "w9", "2025-01-01T00:00:00Z")),
        ],
        CLASSES,
    ).labels
    out = tmp_path / "snapshot"
    missing = write_snapshot(labels, originals, out)
    assert missing == [f"task 3 (doc3.pdf): {NOT_IMPORTED}"]
    rows = list(csv.DictReader(io.StringIO((out / "labels.csv").read_text())))
    assert list(rows[0]) == COLUMNS
    assert [(r["file"], r["label"], r["task_id"], r["annotation_id"]) for r in rows] == [
        (f"documents/{digest(1)}.pdf", "w9", "1", "10"),
        (f"documents/{digest(2)}.pdf", "invoice", "2", "20"),
    ]
    assert sorted(f.label for f in list_dataset(out)) == ["invoice", "w9"]
    # A deleted label removes its document from the next snapshot.
    write_snapshot({1: labels[1]}, originals, out)
    assert sorted(p.name for p in (out / "documents").iterdir()) == [f"{digest(1)}.pdf"]
    assert [f.label for f in list_dataset(out)] == ["w9"]


@pytest.mark.parametrize(
    ("value", "found"),
    [
        ("../../secret", "'../../secret' (12 characters)"),
        ("*", "'*' (1 character)"),
        ("A" * 64, f"'{'A' * 64}' (64 characters)"),
        ("0" * 63, f"'{'0' * 63}' (63 characters)"),
        ("0" * 64 + "\n", "(65 characters)"),
        ("0" * 62 + "/x", "(64 characters)"),
        (None, "None (NoneType)"),
    ],
)
def test_check_sha256_refuses_anything_but_64_lowercase_hex(value, found):
    with pytest.raises(ValueError, match="expected 64 lowercase hex characters, found") as raised:
        check_sha256(value)
    assert found in str(raised.value)


def test_check_sha256_returns_a_digest_unchanged():
    assert check_sha256(digest(7)) == digest(7)
    assert check_sha256(sha256_of(b"abc")) == sha256_of(b"abc")


def _crafted_layout(tmp_path: Path) -> tuple[Path, Path]:
    """An originals folder two levels down, and a secret file outside it that ``../../secret`` names."""
    originals = tmp_path / "data" / "originals"
    originals.mkdir(parents=True)
    (originals / f"{digest(1)}.pdf").write_bytes(b"%PDF-1.4 fake")
    secret = tmp_path / "secret.txt"
    secret.write_text("not a document")
    return originals, secret


def test_find_original_never_globs_a_crafted_sha256(tmp_path: Path):
    originals, _ = _crafted_layout(tmp_path)
    assert find_original(originals, digest(1)) == originals / f"{digest(1)}.pdf"
    assert find_original(originals, digest(2)) is None
    assert find_original(originals, "") is None  # a task not imported by docclass
    for crafted in ("../../secret", "*", f"{digest(1)[:-1]}*"):
        with pytest.raises(ValueError, match="expected 64 lowercase hex characters"):
            find_original(originals, crafted)


def test_snapshot_skips_a_task_whose_sha256_points_outside_the_originals(tmp_path: Path):
    originals, secret = _crafted_layout(tmp_path)
    labels = resolve_tasks(
        [
            task(1, annotation(10, "w9", "2025-01-01T00:00:00Z")),
            task(2, annotation(20, "invoice", "2025-01-01T00:00:00Z"), sha256="../../secret"),
        ],
        CLASSES,
    ).labels
    out = tmp_path / "snapshot"
    missing = write_snapshot(labels, originals, out)
    assert missing == [
        "task 2 (doc2.pdf): data.sha256 is not a document digest: "
        "expected 64 lowercase hex characters, found '../../secret' (12 characters)"
    ]
    assert sorted(p.name for p in (out / "documents").iterdir()) == [f"{digest(1)}.pdf"]
    assert all(p.read_bytes() != secret.read_bytes() for p in (out / "documents").iterdir())
    assert [f.label for f in list_dataset(out)] == ["w9"]  # the rest went on


def test_preannotate_skips_a_task_whose_sha256_points_outside_the_originals(tmp_path: Path):
    """The crafted task is skipped with the reason; the model never sees the outside file; the rest go on."""
    import json
    from types import SimpleNamespace

    from labeling.config import build_label_config
    from labeling.preannotate import preannotate

    originals, _ = _crafted_layout(tmp_path)
    project = SimpleNamespace(id=1, title="docclass", label_config=build_label_config(CLASSES))
    tasks = [task(1), task(2, sha256="../../secret")]
    created: list[dict] = []
    client = SimpleNamespace(
        projects=SimpleNamespace(
            list=lambda **_: [project],
            get=lambda **_: project,
            update=lambda **_: None,
            exports=SimpleNamespace(download_sync=lambda *_, **__: [json.dumps(tasks).encode()]),
        ),
        predictions=SimpleNamespace(list=lambda **_: [], create=lambda **kwargs: created.append(kwargs)),
    )
    seen: list[Path] = []

    def predict(paths):
        seen.extend(paths)
        return [("w9", 0.9) for _ in paths]

    report = preannotate(client, "docclass", predict, "1.1", originals)
    assert seen == [originals / f"{digest(1)}.pdf"]  # never the secret file
    assert report.predicted == [1] and [task_id for task_id, _ in report.skipped] == [2]
    assert "expected 64 lowercase hex characters, found '../../secret'" in report.skipped[0][1]
    assert [c["task"] for c in created] == [1]


def test_pull_state_round_trips(tmp_path: Path):
    resolution = resolve_tasks([task(1, annotation(10, "w9", "2025-01-01T00:00:00Z"))], CLASSES)
    state = PullState(7, resolution.newest, resolution.labels, {1: [10]})
    save_state(state, tmp_path / "state.json")
    assert load_state(tmp_path / "state.json") == state
    assert load_state(tmp_path / "absent.json") == PullState()
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="unreadable"):
        load_state(tmp_path / "bad.json")


def _pdf(pages: int) -> bytes:
    import pymupdf

    doc = pymupdf.open()
    for number in range(pages):
        doc.new_page(width=595, height=842).insert_text((72, 72), f"page {number + 1}")
    return doc.tobytes()


def test_render_pages_of_pdf_and_multipage_tiff():
    data = _pdf(2)
    pages = render_pages(RawDocument("a.pdf", data, PDF, sha256_of(data)), dpi=50, limits=ingest_limits())
    assert [p.size for p in pages] == [(414, 585)] * 2
    buffer = io.BytesIO()
    frames = [Image.new("L", (3000, 2000), 255), Image.new("L", (3000, 2000), 0)]
    frames[0].save(buffer, format="TIFF", save_all=True, append_images=frames[1:])
    tiff = buffer.getvalue()
    pages = render_pages(RawDocument("b.tif", tiff, TIFF, sha256_of(tiff)), dpi=50, limits=ingest_limits())
    assert len(pages) == 2 and max(pages[0].size) == 585
    with pytest.raises(TooManyPagesError, match="has 2 pages: the limit is 1"):
        render_pages(
            RawDocument("a.pdf", data, PDF, sha256_of(data)), dpi=50, limits=ingest_limits(max_pages=1)
        )


def test_page_url_is_relative_to_the_document_root(tmp_path: Path):
    root = tmp_path / "files"
    assert page_url(root / "ab" / "page 1.png", root) == "/data/local-files/?d=files/ab/page%201.png"
