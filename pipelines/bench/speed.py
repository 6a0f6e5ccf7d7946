"""Speed part of the benchmark: extraction per page kind (one core, no cache), OCR with one Tesseract per core,
and prediction time of fitted candidates on the text-layer documents."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from pipelines.document import Document
from pipelines.extract import ExtractConfig, extract_documents
from pipelines.ingest import Limits, RawDocument, Rejected
from pipelines.models.semantic import clear_embedding_cache
from pipelines.predict import ReviewRule, predict_documents


def measure_extraction(
    raws: Sequence[RawDocument], config: ExtractConfig, limits: Limits, warm_runs: int = 2
) -> tuple[list[Document | Rejected], dict[str, Any]]:
    """Extract each document alone on one worker (no cache) and time it: per-core cost by page kind.

    Text-layer documents are timed again ``warm_runs`` times and the best pass is kept, as in a running
    service; the first (cold) pass is reported too.
    """
    single = replace(config, workers=1)
    results: list[Document | Rejected] = []
    text_raws: list[RawDocument] = []
    text_pages = ocr_pages = 0
    text_seconds = ocr_seconds = 0.0
    mixed = 0
    ocr_documents: list[dict[str, Any]] = []
    for raw in raws:
        started = time.perf_counter()
        (result,) = extract_documents([raw], single, limits)
        elapsed = time.perf_counter() - started
        results.append(result)
        if isinstance(result, Rejected):
            continue
        sources = {page.source for page in result.pages}
        if sources == {"text"}:
            text_pages += result.n_pages
            text_seconds += elapsed
            text_raws.append(raw)
        elif "text" not in sources:
            ocr_pages += result.n_pages
            ocr_seconds += elapsed
            ocr_documents.append(
                {
                    "name": raw.name,
                    "pages": result.n_pages,
                    "seconds": round(elapsed, 3),
                    "words": sum(len(page.text.split()) for page in result.pages),
                    "rotations": [page.rotation for page in result.pages],
                }
            )
        else:
            mixed += 1
    warm = text_seconds
    for _ in range(warm_runs):
        started = time.perf_counter()
        for raw in text_raws:
            extract_documents([raw], single, limits)
        warm = min(warm, time.perf_counter() - started)
    return results, {
        "text_layer_pages": text_pages,
        "text_layer_extract_seconds_per_page_cold": text_seconds / max(1, text_pages),
        "text_layer_extract_seconds_per_page": warm / max(1, text_pages),
        "ocr_pages": ocr_pages,
        "ocr_seconds_per_page_per_core": ocr_seconds / max(1, ocr_pages),
        "ocr_documents": ocr_documents,
        "mixed_documents_not_timed": mixed,
    }


def measure_parallel_ocr(
    raws: Sequence[RawDocument], config: ExtractConfig, limits: Limits
) -> dict[str, Any]:
    """OCR documents with one Tesseract per core, as a batch upload would."""
    workers = config.n_workers()
    started = time.perf_counter()
    results = extract_documents(raws, replace(config, workers=workers), limits)
    elapsed = time.perf_counter() - started
    pages = sum(r.n_pages for r in results if isinstance(r, Document))
    return {
        "workers": workers,
        "pages": pages,
        "wall_seconds_per_page": elapsed / max(1, pages),
        "seconds_per_page_per_core": elapsed * workers / max(1, pages),
    }


def measure_prediction(
    model: Any, docs: Sequence[Document], review: ReviewRule | float, repeats: int = 3
) -> dict[str, Any]:
    """Document + per-page prediction time (best of a few runs), as the prediction code does it.

    Each run starts without cached embeddings: a new document is never in the semantic view's cache, so a
    cached run would time a model that skips its most expensive step.
    """
    pages = sum(doc.n_pages for doc in docs)
    best = float("inf")
    for _ in range(repeats):
        clear_embedding_cache()
        started = time.perf_counter()
        predict_documents(model, docs, review)
        best = min(best, time.perf_counter() - started)
    return {"pages": pages, "predict_seconds_per_page": best / max(1, pages)}


def measure_speed(
    raws: Sequence[RawDocument],
    config: ExtractConfig,
    limits: Limits,
    models: Mapping[str, Any],
    review: ReviewRule | float,
) -> dict[str, Any]:
    """Extraction (one core, no cache; OCR also with one Tesseract per core) and, per fitted model, extraction +
    prediction pages per second per core on the text-layer documents.

    Args:
        raws: the corpus documents as read.
        config: extraction settings.
        limits: ingestion limits.
        models: candidate name -> model fitted on the corpus.
        review: the review rule of params ``predict:``.

    Returns:
        The measurements: ``extraction`` fields of :func:`measure_extraction`, ``parallel_ocr`` and per model
        ``prediction`` with ``text_pages_per_second_per_core``.
    """
    extracted, speed = measure_extraction(raws, config, limits)
    docs = [d for d in extracted if isinstance(d, Document)]
    ocr_raws = [
        raw
        for raw, d in zip(raws, extracted, strict=True)
        if isinstance(d, Document) and "text" not in {p.source for p in d.pages}
    ]
    speed["parallel_ocr"] = measure_parallel_ocr(ocr_raws, config, limits)
    text_docs = [d for d in docs if {p.source for p in d.pages} == {"text"}]
    speed["prediction"] = {}
    for name, model in models.items():
        prediction = measure_prediction(model, text_docs, review)
        per_page = speed["text_layer_extract_seconds_per_page"] + prediction["predict_seconds_per_page"]
        prediction["text_pages_per_second_per_core"] = 1.0 / per_page if per_page else 0.0
        speed["prediction"][name] = prediction
    return speed
