"""OCR in every script: the language choice (pure, below) and Tesseract reading generated pages (integration).

The pages are rendered with DejaVu Sans (Debian fonts-dejavu-core: Latin, Greek, Cyrillic, Hebrew, Arabic) through
Pillow's Raqm layout, which shapes Arabic and orders right-to-left text as a printed page has it.
"""

from __future__ import annotations

import functools
import io
import re
from pathlib import Path
from typing import Any

import pytesseract
import pytest
from PIL import Image, ImageDraw, ImageFont, features

from pipelines import ocr
from pipelines.document import Document
from pipelines.extract import ExtractConfig, extract_documents
from pipelines.ingest import RawDocument, sha256_of
from pipelines.ocr import OcrResult, OcrUnavailableError
from pipelines.ocr_lang import (
    OcrLanguages,
    ScriptDetection,
    guess_latin_language,
    looks_latin,
)
from tests.params import PARAMS, extract_config, ingest_limits, ocr_read

ROOT = Path(__file__).resolve().parents[2]
LANGUAGES = extract_config().ocr_languages()  # params.yaml's extract: language settings
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")

# Four lines of an invoice per language; the words each reading must contain; the languages it must be read with.
PAGES: dict[str, tuple[list[str], list[str], str]] = {
    "heb": (
        [
            "חשבונית מס מספר 2024 לכבוד חברת אופק",
            "תיאור השירות: ייעוץ חודשי עבור הלקוח",
            "סכום לתשלום כולל מעמ: 1,500 שקלים",
            "תאריך פירעון: חמישה עשר במרץ",
        ],
        ["חשבונית", "לתשלום", "פירעון"],
        "heb+eng",
    ),
    "ara": (
        [
            "فاتورة ضريبية رقم 2024 إلى شركة النور للتجارة",
            "وصف الخدمة: خدمات استشارية شهرية للعميل",
            "المبلغ الإجمالي المستحق مع الضريبة: 1500 ريال",
            "تاريخ الاستحقاق: الخامس عشر من شهر مارس",
        ],
        ["فاتورة", "الإجمالي", "الاستحقاق"],
        "ara+eng",
    ),
    "rus": (
        [
            "Счёт-фактура номер 2024 для покупателя",
            "Наименование услуги: консультации за месяц",
            "Итого к оплате с учётом НДС: 1500 рублей",
            "Срок оплаты: пятнадцатое марта",
        ],
        ["покупателя", "учётом", "рублей"],
        "rus+eng",
    ),
    "ell": (
        [
            "Τιμολόγιο παροχής υπηρεσιών 2024 για τον πελάτη",
            "Περιγραφή: υπηρεσίες συμβούλου του μήνα",
            "Συνολικό ποσό πληρωμής με ΦΠΑ: 1.500 ευρώ",
            "Ημερομηνία λήξης: δεκαπέντε Μαρτίου",
        ],
        ["Τιμολόγιο", "πληρωμής", "Μαρτίου"],
        "ell+eng",
    ),
    "deu": (
        [
            "Rechnung für die Beratung der Firma Müller",
            "Die Leistungen des Monats und die Mehrwertsteuer",
            "Gesamtbetrag zahlbar bis zum 15. März ohne Abzug",
            "Bitte überweisen Sie den Betrag auf das Konto",
        ],
        ["für", "März", "überweisen"],
        "deu+eng",
    ),
    "fra": (
        [
            "Facture pour le client de la société Lefèvre",
            "Les prestations du mois et la TVA à payer",
            "Montant total dû avant l'échéance du 15 mars",
            "Reçu après le paiement par virement",
        ],
        ["société", "échéance", "Reçu"],
        "fra+eng",
    ),
    "spa": (
        [
            "Factura para el cliente de la compañía Peñalosa",
            "Los servicios del mes y el IVA a pagar",
            "Importe total con vencimiento el año próximo",
            "Dirección y teléfono de la empresa",
        ],
        ["compañía", "próximo", "teléfono"],
        "spa+eng",
    ),
    "ita": (
        [
            "Fattura per il cliente della società Rossi",
            "I servizi del mese e la IVA da pagare",
            "Importo totale con scadenza il 15 marzo",
            "La quantità è già più alta del previsto",
        ],
        ["società", "quantità", "più"],
        "ita+eng",
    ),
    "por": (
        [
            "Fatura para o cliente da empresa em São Paulo",
            "Os serviços do mês e os impostos a pagar",
            "Descrição do valor total com vencimento em março",
            "Endereço da sede, não após a data",
        ],
        ["São", "serviços", "Endereço"],
        "por+eng",
    ),
    "nld": (
        [
            "Factuur voor de klant van het bedrijf Jansen",
            "De diensten van de maand en de btw te betalen",
            "Totaalbedrag met vervaldatum op vijftien maart",
            "Het bedrag wordt overgemaakt naar een rekening",
        ],
        ["Factuur", "vervaldatum", "overgemaakt"],
        "nld+eng",
    ),
    "eng": (
        [
            "Invoice for the customer of the company Northwind",
            "The services of the month and the tax to pay",
            "Total amount due on the fifteenth of March",
            "Please transfer the amount to the account",
        ],
        ["Northwind", "fifteenth", "transfer"],
        "eng",
    ),
}


@functools.cache
def page(language: str, rotate: int = 0) -> Image.Image:
    """A page of ``language`` at about 200 dpi (22 px is a 8 pt line), optionally turned clockwise."""
    if not FONT.exists():
        pytest.fail(f"{FONT} not found: expected Debian fonts-dejavu-core (run `make install`)")
    if not features.check("raqm"):
        pytest.fail(
            "Pillow has no Raqm layout (libfribidi0 missing?): expected it to shape Arabic and Hebrew"
        )
    size = 22
    font = ImageFont.truetype(str(FONT), size, layout_engine=ImageFont.Layout.RAQM)
    lines = PAGES[language][0]
    step = int(size * 1.7)
    width = int(max(font.getlength(line) for line in lines)) + 2 * size
    image = Image.new("L", (width, 2 * size + len(lines) * step), 255)
    draw = ImageDraw.Draw(image)
    for number, line in enumerate(lines):
        draw.text((size, size + number * step), line, font=font, fill=0)
    return image.rotate(-rotate, expand=True, fillcolor=255) if rotate else image


@functools.cache
def read(language: str, lang: str = "auto") -> OcrResult:
    return ocr_read(page(language), lang)


class Spy:
    """Records the pytesseract calls of a test (the language of each reading, and OSD calls)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.readings: list[str] = []
        self.osd = 0
        data, osd = pytesseract.image_to_data, pytesseract.image_to_osd

        def image_to_data(*args: Any, **kwargs: Any) -> Any:
            self.readings.append(kwargs["lang"])
            return data(*args, **kwargs)

        def image_to_osd(*args: Any, **kwargs: Any) -> Any:
            self.osd += 1
            return osd(*args, **kwargs)

        monkeypatch.setattr(pytesseract, "image_to_data", image_to_data)
        monkeypatch.setattr(pytesseract, "image_to_osd", image_to_osd)


# --- Tesseract reading generated pages -------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("language", list(PAGES))
def test_each_script_and_language_is_read_with_its_languages(language: str) -> None:
    _, words, languages = PAGES[language]
    result = read(language)
    assert result.languages == languages
    missing = [word for word in words if word not in result.text]
    assert not missing, f"{language}: {missing} not in {result.text!r}"
    assert result.rotation == 0 and result.confidence > 80


@pytest.mark.integration
def test_a_fixed_language_skips_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    spy = Spy(monkeypatch)
    result = ocr_read(page("heb"), "eng")
    assert result.languages == "eng"
    assert set(spy.readings) == {"eng"}, "a fixed language must never be switched for the page's script"
    assert not any(word in result.text for word in PAGES["heb"][1])


@pytest.mark.integration
@pytest.mark.parametrize("language", ["eng", "deu"])
def test_a_latin_page_read_well_never_runs_osd(monkeypatch: pytest.MonkeyPatch, language: str) -> None:
    spy = Spy(monkeypatch)
    result = ocr_read(page(language))
    assert spy.osd == 0
    # English: one pass, as before languages were chosen per page; German: read again with deu+eng.
    assert spy.readings == (["eng"] if language == "eng" else ["eng", "deu+eng"])
    assert result.languages == PAGES[language][2]


@pytest.mark.integration
def test_one_osd_call_gives_orientation_and_script_of_an_upside_down_page(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spy = Spy(monkeypatch)
    result = ocr_read(page("rus", rotate=180))
    assert spy.osd == 1
    assert result.rotation == 180 and result.languages == "rus+eng"
    assert all(word in result.text for word in PAGES["rus"][1]), result.text


@pytest.mark.integration
def test_missing_language_data_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pytesseract, "get_languages", lambda config="": ["eng", "osd"])
    ocr._installed_languages.cache_clear()
    try:
        with pytest.raises(
            OcrUnavailableError, match=r"Hebrew script.*\['heb'\] is not installed.*tesseract-ocr-heb"
        ):
            ocr_read(page("heb"))
    finally:
        ocr._installed_languages.cache_clear()


@pytest.mark.integration
def test_extraction_reads_a_greek_scan_with_the_default_settings() -> None:
    buffer = io.BytesIO()
    page("ell").save(buffer, format="PNG", dpi=(200, 200))
    data = buffer.getvalue()
    raw = RawDocument(name="greek.png", data=data, mime="image/png", sha256=sha256_of(data))
    (document,) = extract_documents([raw], extract_config(workers=1), ingest_limits())
    assert isinstance(document, Document), document
    (extracted,) = document.pages
    assert extracted.source == "ocr"
    assert all(word in extracted.text for word in PAGES["ell"][1]), extracted.text


# --- the choice of languages, without Tesseract ----------------------------------------------------------------

# How Tesseract's English model read Cyrillic and Greek pages (with their mean confidence): all Latin letters.
CYRILLIC_AS_LATIN = (
    "PacuéTHbIA NUCTOK 3a MapT 2024 Oxnag 85 000,00 py6. Npemua 12 500,00 py6é. HOOJ1 13% 12 675,00 Utoro",
    77.3,
)
GREEK_CAPITALS_AS_LATIN = (
    "TIMOAOTO NOQAHZH2 2024 ETAIPEIA OPIZON AE NEPIFPA®H MNOZOTHTA TIMH KA®EZ 10 3,50 35,00 ZYNOAO 35,00",
    82.3,
)


def detection(script: str, rotation: int = 0) -> ScriptDetection:
    return ScriptDetection(
        rotation=rotation, orientation_confidence=5.0, script=script, script_confidence=2.0
    )


def test_osd_output_is_parsed() -> None:
    parsed = ScriptDetection.from_osd(
        {"rotate": 180, "orientation_conf": 6.7, "script": "Hebrew", "script_conf": 6.25, "page_num": 0}
    )
    assert parsed == ScriptDetection(180, 6.7, "Hebrew", 6.25)
    with pytest.raises(ValueError, match="expected rotate, orientation_conf, script and script_conf"):
        ScriptDetection.from_osd({"rotate": 0, "script": "Latin"})


@pytest.mark.parametrize(
    ("script", "text", "expected"),
    [
        ("Hebrew", "", "heb+eng"),
        ("Arabic", "", "ara+eng"),
        ("Cyrillic", "", "rus+eng"),
        ("Greek", "", "ell+eng"),
        ("Han", "", "eng"),  # no entry: the Latin languages
        ("Latin", "Rechnung für die Beratung der Firma und die Steuer", "deu+eng"),
        (None, "Facture pour le client de la société et la TVA", "fra+eng"),
        (None, "Invoice for the customer of the company and the tax", "eng"),
        (None, "TOTAL 12.50 CASH", "eng"),  # too few words to tell
    ],
)
def test_languages_follow_the_script_then_the_latin_language(
    script: str | None, text: str, expected: str
) -> None:
    found = detection(script) if script is not None else None
    assert LANGUAGES.choose(found, text) == expected


def test_a_fixed_language_is_kept_whatever_the_page() -> None:
    fixed = OcrLanguages("eng+deu", (), ())
    assert not fixed.auto and fixed.first == "eng+deu"
    assert fixed.choose(detection("Hebrew"), "Facture pour le client de la société") == "eng+deu"
    assert not fixed.needs_script(*CYRILLIC_AS_LATIN, 60.0)
    assert fixed.codes() == ["deu", "eng"]


@pytest.mark.parametrize("language", list(PAGES))
def test_the_latin_language_is_recognised_from_its_common_words(language: str) -> None:
    expected = language if language in dict(LANGUAGES.latin) or language == "eng" else None
    assert guess_latin_language(" ".join(PAGES[language][0])) == expected


def test_english_reading_of_umlauts_still_names_german() -> None:
    # What the English model made of the German page: für -> fiir, ß -> &.
    reading = "Rechnung Nummer 2024 fiir Beratung Kunde Muller GmbH Hauptstra&e 12 Zahlbar bis zum 15. Marz ohne Abzug"
    assert guess_latin_language(reading) == "deu"


@pytest.mark.parametrize(
    ("text", "confidence", "latin"),
    [
        (*CYRILLIC_AS_LATIN, False),
        (*GREEK_CAPITALS_AS_LATIN, False),
        ("Invoice for the customer of the company and the tax to pay", 70.0, True),
        ("TOTAL 12.50 CASH CHANGE 0.40 VISA", 92.0, True),  # a receipt read well: no common words needed
        ("TOTAL 12.50 CASH CHANGE 0.40 VISA", 75.0, False),
    ],
)
def test_only_a_plainly_latin_reading_spares_osd(text: str, confidence: float, latin: bool) -> None:
    assert looks_latin(text, confidence) is latin
    assert LANGUAGES.needs_script(text, confidence, 60.0) is not latin


def test_a_poor_reading_always_asks_osd_for_the_script() -> None:
    assert LANGUAGES.needs_script("Invoice for the customer of the company and the tax", 45.0, 60.0)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"lang": "eng deu"},
            r"ocr_lang is 'eng deu': expected 'auto' or Tesseract languages joined by '\+'",
        ),
        ({"scripts": {"Cyrillic": "rus+eng"}}, r"no 'Latin' entry.*found \['Cyrillic'\]"),
        (
            {"scripts": {"Latin": "eng", "cyrillic": "rus"}},
            "script 'cyrillic': expected a Tesseract OSD script name",
        ),
        (
            {"scripts": {"Latin": "eng, deu"}},
            r"ocr_scripts.Latin is 'eng, deu': expected Tesseract languages",
        ),
        (
            {"latin": {"pol": "pol+eng"}},
            r"ocr_latin_languages names \['pol'\]: expected languages it can recognise",
        ),
        ({"scripts": ["Latin"]}, "ocr_scripts: expected a mapping of names to Tesseract languages"),
    ],
)
def test_malformed_language_settings_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        OcrLanguages(**{"lang": "auto", "scripts": LANGUAGES.scripts, "latin": LANGUAGES.latin, **settings})


def test_a_fixed_language_needs_no_latin_script_entry() -> None:
    assert OcrLanguages("eng", (("Cyrillic", "rus"),), ()).first == "eng"


def test_every_language_the_settings_use() -> None:
    languages = OcrLanguages("auto", (("Latin", "eng"), ("Cyrillic", "rus+eng")), (("deu", "deu+eng"),))
    assert languages.codes() == ["deu", "eng", "rus"]
    assert OcrLanguages("eng+fra", (), ()).codes() == ["eng", "fra"]


def test_the_extraction_cache_key_follows_the_language_settings() -> None:
    default = extract_config()
    changed = [
        extract_config(ocr_lang="eng"),
        extract_config(ocr_scripts={**dict(LANGUAGES.scripts), "Cyrillic": "rus+ukr+eng"}),
        extract_config(ocr_latin_languages={"deu": "deu+eng"}),
    ]
    keys = {default.cache_key(), *(config.cache_key() for config in changed)}
    assert len(keys) == 4
    # The same settings written as a mapping or as pairs, in any order, are the same settings.
    for same in (
        extract_config(ocr_scripts=tuple(reversed(LANGUAGES.scripts))),
        ExtractConfig.from_params({**PARAMS["extract"], "ocr_scripts": dict(reversed(LANGUAGES.scripts))}),
    ):
        assert same.cache_key() == default.cache_key() and same == default


def test_extract_config_refuses_malformed_language_settings() -> None:
    with pytest.raises(ValueError, match="ocr_lang is 'eng,deu'"):
        ExtractConfig.from_params({**PARAMS["extract"], "ocr_lang": "eng,deu"})


def test_make_install_installs_every_language_of_the_defaults() -> None:
    makefile = (ROOT / "Makefile").read_text()
    line = re.search(r"^APT_PACKAGES := ((?:.*\\\n)*.*)$", makefile, re.MULTILINE)
    assert line is not None, "Makefile: expected an APT_PACKAGES := ... line"
    packages = set(line.group(1).replace("\\\n", " ").split())
    assert {f"tesseract-ocr-{code}" for code in LANGUAGES.codes()} <= packages
    assert {"fonts-dejavu-core", "libfribidi0"} <= packages
