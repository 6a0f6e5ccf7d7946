"""The benchmark's verdict and tables: the targets of issue 11 checked against the results, and one compact
table per protocol (rich tables; the CLI prints them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.table import Table

from pipelines.bench.accuracy import REFERENCE

# Issue 11 "Targets" and deliver 6 (speed), measured by `make bench` on ../shared/corpus.
TARGETS: dict[str, float] = {
    "size": 15,  # protocol (a) training documents per class the targets are read at
    "accuracy": 0.90,
    "gain_over_reference": 0.12,
    "unflagged_accuracy": 0.98,
    "unflagged_share": 0.60,
    "text_pages_per_second_per_core": 200.0,
    "ocr_seconds_per_page_per_core": 1.5,
}


def best_candidate(cells: Mapping[str, Mapping[str, Any]], key: str) -> str | None:
    """The candidate other than the reference with the highest ``key`` (None when none ran)."""
    ran = {
        name: cell[key] for name, cell in cells.items() if name != REFERENCE and cell.get("status") == "ok"
    }
    return max(ran, key=lambda name: ran[name]) if ran else None


def _row(target: str, candidate: str | None, figure: float | None, met: bool | None, note: str = "") -> dict:
    return {"target": target, "candidate": candidate, "figure": figure, "met": met, "note": note}


def _protocol_targets(label: str, cells: Mapping[str, Any] | None, key: str) -> list[dict[str, Any]]:
    accuracy, gain = TARGETS["accuracy"], TARGETS["gain_over_reference"]
    acc_ok, share_ok = TARGETS["unflagged_accuracy"], TARGETS["unflagged_share"]
    names = (
        f"{label}: best candidate accuracy >= {accuracy:.2f}",
        f"{label}: best candidate >= reference + {gain:.2f}",
        f"{label}: unflagged answers >= {acc_ok:.2f} right with >= {share_ok:.0%} unflagged",
    )
    best = best_candidate(cells, key) if cells else None
    if cells is None or best is None:
        return [_row(name, None, None, None, "not measured") for name in names]
    cell = cells[best]
    diff = cell["diff_vs_reference"]["mean"]
    selective = cell["selective"]
    unflagged_acc, unflagged_share = selective["unflagged_accuracy"], selective["unflagged_share"]
    return [
        _row(names[0], best, cell[key], cell[key] >= accuracy),
        _row(names[1], best, diff, None if diff is None else diff >= gain),
        _row(
            names[2],
            best,
            unflagged_acc,
            unflagged_acc is not None and unflagged_acc >= acc_ok and unflagged_share >= share_ok,
            f"unflagged share {unflagged_share:.2f}",
        ),
    ]


def check_targets(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each target of issue 11 with the best candidate's figure and whether it is met (None: not measured).

    The best candidate is chosen per protocol by accuracy, never the reference itself.
    """
    size = str(int(TARGETS["size"]))
    rows = _protocol_targets(f"{size} per class", results["draws"].get(size), "accuracy_mean")
    rows += _protocol_targets("source held out", results["source_held_out"].get("candidates"), "accuracy")
    speed = results.get("speed") or {}
    best = best_candidate(results["draws"].get(size, {}), "accuracy_mean")
    prediction = (speed.get("prediction") or {}).get(best or "")
    pages = prediction["text_pages_per_second_per_core"] if prediction else None
    ocr = speed.get("ocr_seconds_per_page_per_core")
    text_target, ocr_target = (
        TARGETS["text_pages_per_second_per_core"],
        TARGETS["ocr_seconds_per_page_per_core"],
    )
    rows.append(
        _row(
            f"text-layer pages/s/core (extraction + prediction) >= {text_target:.0f}",
            best,
            pages,
            None if pages is None else pages >= text_target,
            "" if pages is not None else "not measured",
        )
    )
    rows.append(
        _row(
            f"OCR seconds/page/core <= {ocr_target}",
            None,
            ocr,
            None if ocr is None else ocr <= ocr_target,
            "" if ocr is not None else "not measured",
        )
    )
    return rows


# --------------------------------------------------------------------------------------------- tables


def _f(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _diff(diff: Mapping[str, Any]) -> str:
    if diff.get("mean") is None:
        return "-"
    interval = diff.get("ci95")
    shown = f"{diff['mean']:+.3f}"
    return shown + (f" [{interval[0]:+.3f}, {interval[1]:+.3f}]" if interval else "")


def _selective(cell: Mapping[str, Any]) -> tuple[str, str, str]:
    s = cell["selective"]
    return _f(s["unflagged_accuracy"]), _f(s["unflagged_share"], 2), _f(s["coverage_at_target"], 2)


def _table(title: str, lead: tuple[str, ...], classes: list[str], spread: str) -> Table:
    table = Table(title=title, title_justify="left", pad_edge=False)
    for column in lead:
        table.add_column(column)
    table.add_column("candidate")
    table.add_column(f"acc ± {spread}", justify="right")
    table.add_column("macro-F1", justify="right")
    table.add_column("Δ acc vs ref [95% CI]", justify="right")
    for c in classes:
        table.add_column(f"rec {c}", justify="right")
    table.add_column("unflag acc", justify="right")
    table.add_column("unflag share", justify="right")
    table.add_column("cov@98%", justify="right")
    return table


def draws_table(results: Mapping[str, Any]) -> Table:
    """Protocol (a): one row per training size and candidate."""
    classes = results["corpus"]["class_names"]
    draws = results["protocol"]["draws"]["draws"]
    table = _table(
        f"(a) n training documents per class, rest tested, {draws} seeded draws per size "
        f"(sd over draws; Δ paired per draw)",
        ("n/class",),
        classes,
        "sd",
    )
    for size, cells in results["draws"].items():
        for name, cell in cells.items():
            if cell.get("status") != "ok":
                table.add_row(size, name, "skipped (see below)")
                continue
            acc = f"{cell['accuracy_mean']:.3f} ± {_f(cell['accuracy_sd'])}"
            diff = "(reference)" if name == REFERENCE else _diff(cell["diff_vs_reference"])
            recalls = [_f(cell["recall"].get(c), 2) for c in classes]
            table.add_row(size, name, acc, _f(cell["macro_f1_mean"]), diff, *recalls, *_selective(cell))
        table.add_section()
    return table


def sources_table(results: Mapping[str, Any]) -> Table:
    """Protocol (b): one row per candidate, pooled over the held-out sources."""
    part = results["source_held_out"]
    classes = results["corpus"]["class_names"]
    table = _table(
        f"(b) each of {part.get('n_sources', 0)} sources held out in turn, {part.get('n_evaluated', 0)} documents "
        f"evaluated (s.e. over documents; Δ paired per document)",
        (),
        classes,
        "s.e.",
    )
    for name, cell in (part.get("candidates") or {}).items():
        if cell.get("status") != "ok":
            table.add_row(name, "skipped (see below)")
            continue
        acc = f"{cell['accuracy']:.3f} ± {_f(cell['accuracy_se'])}"
        diff = "(reference)" if name == REFERENCE else _diff(cell["diff_vs_reference"])
        recalls = [_f(cell["recall"].get(c), 2) for c in classes]
        table.add_row(name, acc, _f(cell["macro_f1"]), diff, *recalls, *_selective(cell))
    return table


def targets_table(results: Mapping[str, Any]) -> Table:
    table = Table(title="targets of issue 11", title_justify="left", pad_edge=False)
    for column in ("target", "candidate", "figure", "met"):
        table.add_column(column)
    for row in results["targets"]:
        met = {True: "[green]yes[/green]", False: "[red]no[/red]", None: "-"}[row["met"]]
        figure = "-" if row["figure"] is None else f"{row['figure']:.3f}"
        note = f" ({row['note']})" if row["note"] else ""
        table.add_row(row["target"], row["candidate"] or "", figure + note, met)
    return table


def speed_table(results: Mapping[str, Any]) -> Table | None:
    speed = results.get("speed")
    if not speed:
        return None
    table = Table(
        title=(
            f"speed: text-layer extraction {1000 * speed['text_layer_extract_seconds_per_page']:.2f} ms/page "
            f"({speed['text_layer_pages']} pages); OCR {speed['ocr_seconds_per_page_per_core']:.2f} s/page/core "
            f"({speed['ocr_pages']} pages, one core), {speed['parallel_ocr']['wall_seconds_per_page']:.2f} s/page "
            f"wall on {speed['parallel_ocr']['workers']} workers"
        ),
        title_justify="left",
        pad_edge=False,
    )
    for column in ("candidate", "predict ms/page", "text pages/s/core (extract + predict)"):
        table.add_column(column)
    for name, prediction in speed["prediction"].items():
        table.add_row(
            name,
            f"{1000 * prediction['predict_seconds_per_page']:.2f}",
            f"{prediction['text_pages_per_second_per_core']:.0f}",
        )
    return table


def notes(results: Mapping[str, Any]) -> list[str]:
    """Protocol details a reader must see beside the tables: reduced classes, skipped documents, failures."""
    lines = []
    for size, classes in results["protocol"]["draws"]["reduced_classes"].items():
        shown = ", ".join(f"{c} {n}" for c, n in classes.items())
        lines.append(
            f"(a) at {size}/class these classes have fewer than {int(size) + 1} documents and train on n-1: {shown}"
        )
    part = results["source_held_out"]
    if part.get("status") == "skipped":
        lines.append(f"(b) not run: {part['reason']}")
    skipped = part.get("skipped_documents") or []
    if skipped:
        reasons: dict[str, int] = {}
        for doc in skipped:
            reasons[f"{doc['source']}: {doc['reason']}"] = (
                reasons.get(f"{doc['source']}: {doc['reason']}", 0) + 1
            )
        lines.append(
            f"(b) {len(skipped)} documents skipped (no training document of their class without their source): "
            + "; ".join(f"{reason} ({n})" for reason, n in reasons.items())
        )
    for name, reason in results["skipped_candidates"].items():
        lines.append(f"candidate {name} skipped: {reason}")
    for protocol, cells in (("(a)", results["draws"].values()), ("(b)", [part.get("candidates") or {}])):
        for cell in cells:
            for name, c in cell.items():
                for key, reason in (c.get("failed") or {}).items():
                    lines.append(f"{protocol} {name} failed on split {key}: {reason}")
    lines.append(
        "unflag acc / share: accuracy and share of the answers the shipped prediction code does not flag "
        f"needs_review ({results['protocol']['review_rule']}); cov@98%: the largest share a confidence threshold "
        "could leave unflagged at >= 98% accuracy"
    )
    return lines


def renderables(results: Mapping[str, Any]) -> list[Any]:
    """What `docclass bench` prints, in order: the protocol tables, notes, targets, speed."""
    out: list[Any] = [draws_table(results)]
    if results["source_held_out"].get("status") == "ok":
        out.append(sources_table(results))
    out += notes(results)
    out.append(targets_table(results))
    speed = speed_table(results)
    if speed is not None:
        out.append(speed)
    return out
