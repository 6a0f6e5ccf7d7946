"""Deterministic generator of realistic sample business documents: the demo corpus, test data, DVC's default dataset.

Five classes: IRS Form W-9, Form 1040 (pages and schedules), invoices, payslips and "other" (look-alike hard
negatives such as W-4, 1099-NEC, purchase orders, receipts, letters, bank statements, meeting notes). Each
document is drawn as a born-digital PDF with a text layer; a scanned variant renders it to a noisy, slightly
skewed grayscale raster and writes an image-only PDF, PNG, JPEG or (multi-page) TIFF. Content comes from small
built-in word lists and a ``numpy.random.Generator``, so the same seed gives byte-identical files.

Where things are, from the entry points down (each module imports only modules below it):

- :mod:`~pipelines.samples.corpus`: :func:`generate_corpus`, a labelled corpus on disk (folders or labels.csv)
  and its manifest;
- :mod:`~pipelines.samples.bundle`: :func:`make_bundle`, several documents concatenated into one PDF;
- :mod:`~pipelines.samples.document`: :func:`make_document`, one document of a class, born-digital or scanned;
  the classes, kinds, formats and rotations;
- one module per class, each with ``build(pdf, rng)`` drawing one document's pages: :mod:`~pipelines.samples.w9`,
  :mod:`~pipelines.samples.form1040`, :mod:`~pipelines.samples.invoice`, :mod:`~pipelines.samples.payslip`,
  :mod:`~pipelines.samples.other`;
- :mod:`~pipelines.samples.scan`: scan simulation (noise, skew, blur) and image encodings;
- :mod:`~pipelines.samples.blocks`: page blocks several kinds share (IRS form header, address block, item table);
- :mod:`~pipelines.samples.canvas`: :class:`~pipelines.samples.canvas.Canvas`, drawing on one page, the palette,
  and writing a PDF with fixed metadata;
- :mod:`~pipelines.samples.fake`: word lists and seeded fake names, companies, addresses, dates and IDs.

To add a document kind to "other", write a private drawing function ``(pdf, rng) -> None`` in
:mod:`~pipelines.samples.other` and give it a weight in ``OTHER_BUILDERS``; a new class needs a module with ``build`` and an entry in ``CLASSES`` and
``BUILDERS`` (:mod:`~pipelines.samples.document`). A new weight in ``OTHER_BUILDERS`` changes which "other"
documents a seed gives; a class appended to ``CLASSES`` leaves the files of the existing classes as they were.
"""

from pipelines.samples.bundle import make_bundle
from pipelines.samples.corpus import EXTENSIONS, LAYOUTS, generate_corpus
from pipelines.samples.document import CLASSES, FORMATS, KINDS, ROTATIONS, SampleSpec, make_document
from pipelines.samples.scan import SCAN_DPI

__all__ = [
    "CLASSES",
    "EXTENSIONS",
    "FORMATS",
    "KINDS",
    "LAYOUTS",
    "ROTATIONS",
    "SCAN_DPI",
    "SampleSpec",
    "generate_corpus",
    "make_bundle",
    "make_document",
]
