"""Deterministic generator of realistic sample business documents.

Five classes: IRS Form W-9, Form 1040 (pages and schedules), invoices, payslips and "other" (look-alike
hard negatives such as W-4, 1099-NEC, purchase orders, receipts, letters, bank statements, meeting notes).
Each document is drawn as a born-digital PDF with a text layer; a scanned variant renders it to a noisy,
slightly skewed grayscale raster and writes an image-only PDF, PNG, JPEG or (multi-page) TIFF.

Content comes from small built-in word lists and a ``numpy.random.Generator``, so the same seed gives
byte-identical files.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import hashlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import pymupdf
from PIL import Image, ImageFilter, ImageSequence, UnidentifiedImageError

CLASSES: tuple[str, ...] = ("w9", "1040", "invoice", "payslip", "other")
KINDS: tuple[str, ...] = ("born-digital", "scanned")
FORMATS: tuple[str, ...] = ("pdf", "png", "jpeg", "tiff")
ROTATIONS: tuple[int, ...] = (0, 90, 180, 270)
LAYOUTS: tuple[str, ...] = ("folders", "labels_csv")
EXTENSIONS: dict[str, str] = {"pdf": "pdf", "png": "png", "jpeg": "jpg", "tiff": "tif"}
SCAN_DPI = 150

# Fixed metadata: pymupdf would otherwise stamp the current time, which breaks byte-identical output.
_FIXED_DATE = "D:20240101000000Z"
_METADATA = {
    "producer": "docclass sample generator",
    "creator": "",
    "title": "",
    "author": "",
    "subject": "",
    "keywords": "",
    "creationDate": _FIXED_DATE,
    "modDate": _FIXED_DATE,
}

T = TypeVar("T")
Color = tuple[float, float, float]
BLACK: Color = (0.0, 0.0, 0.0)
WHITE: Color = (1.0, 1.0, 1.0)
GREY: Color = (0.45, 0.45, 0.45)
LIGHT: Color = (0.9, 0.9, 0.9)
ACCENTS: tuple[Color, ...] = ((0.12, 0.25, 0.5), (0.1, 0.4, 0.35), (0.45, 0.15, 0.15), (0.25, 0.25, 0.3))


@dataclass(frozen=True)
class SampleSpec:
    """What was generated: class label, variant, file format, page count and clockwise page rotation."""

    label: str
    kind: str
    fmt: str
    n_pages: int
    rotation: int


# --------------------------------------------------------------------------------------------------------
# word lists

FIRST = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
    "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Carlos", "Maria",
    "Wei", "Priya", "Ahmed", "Fatima", "Olga", "Kenji", "Aisha", "Luca", "Sofia", "Daniel", "Grace", "Omar",
)
LAST = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee",
    "Nguyen", "Patel", "Kim", "Chen", "Okafor", "Schmidt", "Rossi", "Novak", "Kowalski", "O'Brien",
)
COMPANY_A = (
    "Blue Ridge", "Summit", "Northwind", "Cedar", "Harbor", "Pioneer", "Redwood", "Silverline", "Granite",
    "Lakeside", "Evergreen", "Atlas", "Beacon", "Keystone", "Prairie", "Copperfield", "Riverbend", "Oakmont",
)
COMPANY_B = (
    "Consulting", "Logistics", "Design Studio", "Supply Co.", "Analytics", "Builders", "Software",
    "Marketing Group", "Electric", "Landscaping", "Medical Group", "Legal Services", "Printing", "Catering",
    "Freight", "Solutions", "Manufacturing", "Health Partners",
)
SUFFIX = ("LLC", "Inc.", "Corp.", "LLP", "Co.", "")
STREETS = (
    "Main St", "Oak Ave", "Maple Dr", "Cedar Ln", "Park Blvd", "Washington St", "Lake Rd", "Hillcrest Ave",
    "Elm St", "Sunset Blvd", "Market St", "River Rd", "Pine St", "Broadway", "Industrial Pkwy", "Commerce Dr",
)
CITIES = (
    ("Springfield", "IL", "627"), ("Austin", "TX", "787"), ("Denver", "CO", "802"), ("Portland", "OR", "972"),
    ("Columbus", "OH", "432"), ("Raleigh", "NC", "276"), ("Madison", "WI", "537"), ("Phoenix", "AZ", "850"),
    ("Albany", "NY", "122"), ("Sacramento", "CA", "958"), ("Boise", "ID", "837"), ("Nashville", "TN", "372"),
    ("Tampa", "FL", "336"), ("Richmond", "VA", "232"), ("Omaha", "NE", "681"), ("Trenton", "NJ", "086"),
)
GOODS = (
    ("Copy paper, letter, 10 reams", 38, 65), ("Toner cartridge, black", 55, 140),
    ("Office chair, ergonomic", 180, 420),
    ("Standing desk frame", 260, 540), ("USB-C docking station", 120, 260), ('Monitor 27" IPS', 190, 380),
    ("Wireless keyboard and mouse", 35, 90), ("Network switch, 24-port", 150, 480),
    ("Safety gloves (box of 100)", 12, 30), ("Shipping boxes, medium (25)", 28, 55),
    ("Label printer rolls", 15, 40), ("LED panel light 2x4", 45, 110),
    ("Copper pipe 3/4in x 10ft", 22, 48), ("Pallet wrap film", 18, 45), ("Coffee beans, 5 lb bag", 40, 75),
)
SERVICES = (
    ("Consulting services", 95, 220), ("Website maintenance", 60, 150), ("Graphic design", 55, 125),
    ("Bookkeeping", 45, 95), ("On-site installation", 70, 140), ("Software development", 90, 190),
    ("Project management", 80, 160), ("Equipment repair labor", 65, 130), ("Cleaning service", 30, 60),
    ("Legal review", 180, 420), ("Photography session", 120, 300), ("Data migration", 85, 170),
    ("Training workshop", 150, 400), ("Lawn care visit", 40, 90), ("IT support", 75, 150),
)
STORE_ITEMS = (
    ("MILK 2% GAL", 3.2, 4.9), ("BREAD WHEAT", 2.5, 4.5), ("EGGS LARGE DZ", 2.9, 5.5), ("BANANAS", 0.9, 2.4),
    ("COFFEE GROUND", 6.5, 12.9), ("PAPER TOWELS 6PK", 7.9, 13.5), ("AA BATTERIES 8", 6.9, 11.9),
    ("CHICKEN BREAST", 7.5, 14.0), ("APPLES GALA", 3.0, 6.5), ("DISH SOAP", 2.5, 4.9), ("RICE 5LB", 4.9, 8.9),
    ("PRINTER INK", 19.9, 39.9), ("NOTEBOOK 3PK", 4.5, 8.5), ("WATER 24PK", 3.9, 6.9),
    ("CHEESE CHEDDAR", 3.5, 7.5),
)
JOBS = (
    "Software engineer", "Teacher", "Nurse", "Accountant", "Electrician", "Sales manager", "Pharmacist",
    "Graphic designer", "Retail associate", "Mechanic", "Consultant", "Office manager",
)
BANKS = ("First Federal Bank", "Riverbend Savings Bank", "Summit Credit Union", "Lakeside National Bank",
         "Pioneer Trust Bank", "Granite State Bank")
DATE_FORMATS = ("%m/%d/%Y", "%B %d, %Y", "%b %d, %Y", "%Y-%m-%d", "%m-%d-%Y")


def _pick(rng: np.random.Generator, seq: Sequence[T]) -> T:
    return seq[int(rng.integers(len(seq)))]


def _person(rng: np.random.Generator) -> str:
    middle = f" {chr(65 + int(rng.integers(26)))}." if rng.random() < 0.3 else ""
    return f"{_pick(rng, FIRST)}{middle} {_pick(rng, LAST)}"


def _company(rng: np.random.Generator) -> str:
    return f"{_pick(rng, COMPANY_A)} {_pick(rng, COMPANY_B)} {_pick(rng, SUFFIX)}".strip()


def _address(rng: np.random.Generator) -> tuple[str, str]:
    city, state, zip3 = _pick(rng, CITIES)
    street = f"{int(rng.integers(10, 9900))} {_pick(rng, STREETS)}"
    if rng.random() < 0.25:
        street += f", Suite {int(rng.integers(100, 900))}"
    return street, f"{city}, {state} {zip3}{int(rng.integers(10, 99)):02d}"


def _date(rng: np.random.Generator, start: dt.date = dt.date(2022, 1, 1), days: int = 1000) -> dt.date:
    return start + dt.timedelta(days=int(rng.integers(days)))


def _ssn(rng: np.random.Generator, masked: bool = False) -> str:
    last = f"{int(rng.integers(1000, 9999))}"
    return f"XXX-XX-{last}" if masked else f"{int(rng.integers(100, 899))}-{int(rng.integers(10, 99))}-{last}"


def _ein(rng: np.random.Generator) -> str:
    return f"{int(rng.integers(10, 99))}-{int(rng.integers(1000000, 9999999))}"


def _phone(rng: np.random.Generator) -> str:
    return f"({int(rng.integers(201, 989))}) {int(rng.integers(200, 999))}-{int(rng.integers(1000, 9999))}"


def _money(value: float, dollar: bool = False) -> str:
    text = f"{abs(value):,.2f}"
    text = f"${text}" if dollar else text
    return f"({text})" if value < 0 else text


def _initials(name: str) -> str:
    return "".join(word[0] for word in name.split()[:2] if word[0].isalpha()).upper() or "CO"


# --------------------------------------------------------------------------------------------------------
# drawing


@functools.cache
def _char_width(font: str, char: str) -> float:
    """Advance width of one character at font size 1 (base-14 fonts have no kerning here)."""
    return pymupdf.get_text_length(char, fontname=font, fontsize=1)


class _Canvas:
    """One page plus a pymupdf Shape (one content-stream commit per page keeps drawing fast), with jitter."""

    def __init__(self, pdf: pymupdf.Document, rng: np.random.Generator, width: float = 612,
                 height: float = 792):
        self.page = pdf.new_page(width=width, height=height)
        self.shape = self.page.new_shape()
        self.rng = rng
        self.w, self.h = width, height
        self.mx = float(rng.uniform(34, 58))
        self.top = float(rng.uniform(32, 54))
        self.fs = float(rng.uniform(0.94, 1.06))
        self.fonts: set[str] = set()

    @property
    def right(self) -> float:
        return self.w - self.mx

    def size(self, size: float) -> float:
        return size * self.fs

    def width(self, text: str, size: float = 9, font: str = "helv") -> float:
        return self.size(size) * sum(_char_width(font, ch) for ch in text)

    def text(self, x: float, y: float, text: str, size: float = 9, font: str = "helv",
             color: Color = BLACK) -> None:
        # Writes the same operators as Shape.insert_text, which re-scans the page's font resources on
        # every call and would make a form page several times slower.
        if not text:
            return
        if font not in self.fonts:
            self.page.insert_font(fontname=font)
            self.fonts.add(font)
        code = text.encode("latin-1", errors="replace").hex()
        r, g, b = color
        origin = f"{x:.2f} {self.h - y:.2f}"
        self.shape.text_cont += (f"\nq\nBT\n1 0 0 1 {origin} Tm\n/{font} {self.size(size):.2f} Tf "
                                 f"{r:g} {g:g} {b:g} rg [<{code}>]TJ\nET\nQ\n")

    def rtext(self, x: float, y: float, text: str, size: float = 9, font: str = "helv",
              color: Color = BLACK) -> None:
        self.text(x - self.width(text, size, font), y, text, size, font, color)

    def ctext(self, x: float, y: float, text: str, size: float = 9, font: str = "helv",
              color: Color = BLACK) -> None:
        self.text(x - self.width(text, size, font) / 2, y, text, size, font, color)

    def rect(self, x0: float, y0: float, x1: float, y1: float, *, width: float = 0.7,
             color: Color | None = BLACK,
             fill: Color | None = None) -> None:
        self.shape.draw_rect(pymupdf.Rect(x0, y0, x1, y1))
        self.shape.finish(color=color, fill=fill, width=width)

    def line(self, x0: float, y0: float, x1: float, y1: float, width: float = 0.6,
             color: Color = BLACK) -> None:
        self.shape.draw_line((x0, y0), (x1, y1))
        self.shape.finish(color=color, width=width)

    def checkbox(self, x: float, y: float, checked: bool = False, size: float = 7) -> None:
        self.rect(x, y - size, x + size, y, width=0.6)
        if checked:
            self.line(x + 1.2, y - size + 1.2, x + size - 1.2, y - 1.2, width=0.9)
            self.line(x + 1.2, y - 1.2, x + size - 1.2, y - size + 1.2, width=0.9)

    def para(self, x: float, y: float, width: float, text: str, size: float = 8, font: str = "helv",
             leading: float = 1.25, color: Color = BLACK) -> float:
        """Draw word-wrapped text starting at baseline y; return the baseline after the last line."""
        step = self.size(size) * leading
        space = self.width(" ", size, font)
        line: list[str] = []
        used = 0.0
        for word in text.split():
            w = self.width(word, size, font)
            if line and used + space + w > width:
                self.text(x, y, " ".join(line), size, font, color)
                y += step
                line, used = [], 0.0
            used = used + space + w if line else w
            line.append(word)
        if line:
            self.text(x, y, " ".join(line), size, font, color)
            y += step
        return y

    def field(self, x0: float, y0: float, x1: float, y1: float, label: str, value: str = "",
              value_font: str = "cour", value_size: float = 10) -> None:
        """A boxed form field with a small caption and an optional filled-in value."""
        self.rect(x0, y0, x1, y1, width=0.5)
        room, full = x1 - x0 - 4, self.width(label, 6.2)
        if full <= room:
            self.text(x0 + 2, y0 + 7, label, 6.2)
        elif y1 - y0 < 30 and full * 0.75 <= room:
            self.text(x0 + 2, y0 + 7, label, 6.2 * room / full)
        else:
            self.para(x0 + 2, y0 + 6.5, room, label, 5.4 if y1 - y0 < 30 else 6.2, leading=1.05)
        self.text(x0 + 4, y1 - 3.5, value, value_size, value_font)

    def commit(self) -> None:
        self.shape.commit()


def _numbered_lines(c: _Canvas, y: float, lines: Sequence[tuple[str, str, float | None]], *, x0: float,
                    x1: float, step: float = 13.0, size: float = 7.6) -> float:
    """IRS-style numbered lines: number, caption with dot leaders, boxed amount column at the right."""
    amount_x = x1 - 86
    for number, caption, value in lines:
        c.text(x0, y, number, size, "hebo")
        room = amount_x - x0 - 40
        if c.width(caption, size) > room:
            # Long captions wrap onto a second line, as on the printed forms.
            words = caption.split()
            cut = len(words)
            while cut > 1 and c.width(" ".join(words[:cut]), size) > room:
                cut -= 1
            c.text(x0 + 18, y, " ".join(words[:cut]), size)
            caption = " ".join(words[cut:])
            y += step * 0.75
        dots = int((room - c.width(caption, size)) // c.width(" .", size))
        c.text(x0 + 18, y, caption + " ." * min(max(dots, 0), 60), size)
        c.rect(amount_x - 16, y - 9, amount_x, y + 3, width=0.4, fill=LIGHT, color=None)
        c.text(amount_x - 14, y, number, size - 0.6, "hebo")
        c.rect(amount_x, y - 9, x1, y + 3, width=0.5)
        if value is not None:
            c.rtext(x1 - 4, y, _money(value), 9, "cour")
        y += step
    return y


def _irs_header(c: _Canvas, form: str, sub: str, title: Sequence[str], right: Sequence[str],
                y: float) -> float:
    """The three-cell header of IRS forms: form number | title | OMB number / year."""
    x0, x1 = c.mx, c.right
    left_w, right_w = 92 + float(c.rng.uniform(-6, 6)), 96 + float(c.rng.uniform(-6, 6))
    h = max(58.0, 8 + 15 * min(len(title), 2) + 9 * max(len(title) - 2, 0)) + float(c.rng.uniform(-2, 6))
    c.line(x0 + left_w, y, x0 + left_w, y + h, 1.0)
    c.line(x1 - right_w, y, x1 - right_w, y + h, 1.0)
    c.line(x0, y + h, x1, y + h, 1.8)
    if form:
        c.text(x0, y + 12, "Form", 7)
        c.text(x0 + 20, y + 16, form, 18 if len(form) < 6 else 13, "hebo")
    sy = y + 28
    for part in sub.split("\n"):
        c.text(x0, sy, part, 6.5)
        sy += 8
    mid = (x0 + left_w + x1 - right_w) / 2
    ty = y + 16
    for i, part in enumerate(title):
        c.ctext(mid, ty, part, 12.5 if i < 2 else 7, "hebo" if i < 2 else "helv")
        ty += 15 if i < 2 else 9
    ry = y + 14
    for part in right:
        c.text(x1 - right_w + 5, ry, part, 7.5 if len(part) > 6 else 14, "helv" if len(part) > 6 else "hebo")
        ry += 13
    return y + h + 12


# --------------------------------------------------------------------------------------------------------
# W-9

W9_REVISIONS = (("March 2024", "3-2024"), ("October 2018", "10-2018"), ("March 2024", "3-2024"))
W9_PART1 = (
    "Enter your TIN in the appropriate box. The TIN provided must match the name given on line 1 to avoid "
    "backup withholding. For individuals, this is generally your social security number (SSN). However, for "
    "a resident alien, sole proprietor, or disregarded entity, see the instructions for Part I, later. For "
    "other entities, it is your employer identification number (EIN). If you do not have a number, see How "
    "to get a TIN, later."
)
W9_NOTE = (
    "Note: If the account is in more than one name, see the instructions for line 1. See also What Name and "
    "Number To Give the Requester for guidelines on whose number to enter."
)
W9_CERT = (
    "1. The number shown on this form is my correct taxpayer identification number (or I am waiting for a "
    "number to be issued to me); and",
    "2. I am not subject to backup withholding because (a) I am exempt from backup withholding, or (b) I "
    "have not been notified by the Internal Revenue Service (IRS) that I am subject to backup withholding as "
    "a result of a failure to report all interest or dividends, or (c) the IRS has notified me that I am no "
    "longer subject to backup withholding; and",
    "3. I am a U.S. citizen or other U.S. person (defined below); and",
    "4. The FATCA code(s) entered on this form (if any) indicating that I am exempt from FATCA reporting is "
    "correct.",
)
W9_CERT_INSTR = (
    "Certification instructions. You must cross out item 2 above if you have been notified by the IRS that "
    "you are currently subject to backup withholding because you have failed to report all interest and "
    "dividends on your tax return. For real estate transactions, item 2 does not apply. For mortgage "
    "interest paid, acquisition or abandonment of secured property, cancellation of debt, contributions to "
    "an individual retirement arrangement (IRA), and, generally, payments other than interest and dividends, "
    "you are not required to sign the certification, but you must provide your correct TIN."
)
W9_GENERAL = (
    ("General Instructions", "Section references are to the Internal Revenue Code unless otherwise noted."),
    ("Future developments.", "For the latest information about developments related to Form W-9 and its "
     "instructions, such as legislation enacted after they were published, go to www.irs.gov/FormW9."),
    ("What's New", "Line 3a has been modified to clarify how a disregarded entity completes this line. An "
     "LLC that is a disregarded entity should check the appropriate box for the tax classification of its "
     "owner. Otherwise, it should check the LLC box and enter its appropriate tax classification."),
)
W9_INSTRUCTIONS = (
    ("Purpose of Form", "An individual or entity (Form W-9 requester) who is required to file an information "
     "return with the IRS is giving you this form because they must obtain your correct taxpayer "
     "identification number (TIN), which may be your social security number (SSN), individual taxpayer "
     "identification number (ITIN), adoption taxpayer identification number (ATIN), or employer "
     "identification number (EIN), to report on an information return the amount paid to you, or other "
     "amount reportable on an information return. Examples of information returns include, but are not "
     "limited to, Form 1099-INT (interest earned or paid), Form 1099-DIV (dividends, including those from "
     "stocks or mutual funds), Form 1099-MISC (various types of income, prizes, awards, or gross proceeds), "
     "Form 1099-NEC (nonemployee compensation), Form 1099-B (stock or mutual fund sales), Form 1099-S "
     "(proceeds from real estate transactions) and Form 1099-K (merchant card and third-party network "
     "transactions)."),
    ("", "Use Form W-9 only if you are a U.S. person (including a resident alien), to provide your correct "
     "TIN. If you do not return Form W-9 to the requester with a TIN, you might be subject to backup "
     "withholding."),
    ("By signing the filled-out form, you:", "1. Certify that the TIN you are giving is correct (or you are "
     "waiting for a number to be issued); 2. Certify that you are not subject to backup withholding; or 3. "
     "Claim exemption from backup withholding if you are a U.S. exempt payee; and 4. Certify to your "
     "non-foreign status for purposes of withholding under chapter 3 or 4 of the Code (if applicable); and "
     "5. Certify that FATCA code(s) entered on this form (if any) indicating that you are exempt from the "
     "FATCA reporting is correct."),
    ("Definition of a U.S. person.", "For federal tax purposes, you are considered a U.S. person if you are "
     "an individual who is a U.S. citizen or U.S. resident alien; a partnership, corporation, company, or "
     "association created or organized in the United States or under the laws of the United States; an "
     "estate (other than a foreign estate); or a domestic trust (as defined in Regulations section "
     "301.7701-7)."),
    ("Backup Withholding", "What is backup withholding? Persons making certain payments to you must under "
     "certain conditions withhold and pay to the IRS 24% of such payments. This is called backup "
     "withholding. Payments that may be subject to backup withholding include interest, tax-exempt interest, "
     "dividends, broker and barter exchange transactions, rents, royalties, nonemployee pay, payments made "
     "in settlement of payment card and third-party network transactions, and certain payments from fishing "
     "boat operators. Real estate transactions are not subject to backup withholding."),
    ("Penalties", "Failure to furnish TIN. If you fail to furnish your correct TIN to a requester, you are "
     "subject to a penalty of $50 for each such failure unless your failure is due to reasonable cause and "
     "not to willful neglect. Civil penalty for false information with respect to withholding. If you make a "
     "false statement with no reasonable basis that results in no backup withholding, you are subject to a "
     "$500 penalty. Misuse of TINs. If the requester discloses or uses TINs in violation of federal law, the "
     "requester may be subject to civil and criminal penalties."),
)
W9_CLASSIFICATIONS = ("Individual/sole proprietor", "C corporation", "S corporation", "Partnership",
                      "Trust/estate", "LLC. Enter the tax classification (C = C corporation, S = S "
                      "corporation, P = Partnership)")


def _w9(pdf: pymupdf.Document, rng: np.random.Generator) -> None:
    rev, short = _pick(rng, W9_REVISIONS)
    c = _Canvas(pdf, rng)
    x0, x1 = c.mx, c.right
    y = _irs_header(
        c, "W-9", f"(Rev. {rev})\nDepartment of the Treasury\nInternal Revenue Service",
        ("Request for Taxpayer", "Identification Number and Certification",
         "Go to www.irs.gov/FormW9 for instructions and the latest information."),
        ("Give form to the", "requester. Do not", "send to the IRS."), c.top,
    )
    c.text(x0, y,
           "Before you begin. For guidance related to the purpose of Form W-9, see Purpose of Form, below.",
           7.5, "hebo")
    y += 6
    individual = rng.random() < 0.5
    name = _person(rng) if individual else _company(rng)
    business = (_company(rng) if rng.random() < 0.4 else "") if individual else ""
    street, city = _address(rng)
    rows = (
        ("1 Name of entity/individual. An entry is required. (For a sole proprietor or disregarded entity, "
         "enter the owner's name on line 1, and enter the business/disregarded entity's name on line "
         "2.)", name),
        ("2 Business name/disregarded entity name, if different from above.", business),
    )
    for caption, value in rows:
        c.field(x0 + 14, y, x1, y + 22, caption, value)
        y += 22
    c.rect(x0 + 14, y, x1 - 120, y + 62, width=0.5)
    c.text(x0 + 16, y + 8, "3a Check the appropriate box for federal tax classification of the "
           "entity/individual whose name is entered on line 1.", 6.2)
    c.text(x0 + 16, y + 15, "Check only one of the following seven boxes.", 6.2)
    chosen = 0 if individual else int(rng.integers(1, 6))
    bx, by = x0 + 18, y + 26
    for i, label in enumerate(W9_CLASSIFICATIONS):
        col = i % 3
        cx = bx + col * (x1 - 120 - bx) / 3
        cy = by + (i // 3) * 11
        c.checkbox(cx, cy, i == chosen)
        c.text(cx + 10, cy - 1, label if i < 5 else "LLC. Tax classification (C, S, P)", 6.6)
    c.checkbox(bx, by + 24)
    c.text(bx + 10, by + 23, "Other (see instructions)", 6.6)
    c.text(x0 + 16, y + 58, "3b If on line 3a you checked Partnership or Trust/estate, or checked LLC and "
           "entered P, check this box if you have any foreign partners.", 5.8)
    c.field(x1 - 120, y, x1, y + 62, "4 Exemptions (codes apply only to", "")
    c.text(x1 - 118, y + 22, "Exempt payee code (if any)", 6)
    c.text(x1 - 118, y + 34, "Exemption from Foreign Account Tax", 6)
    c.text(x1 - 118, y + 41, "Compliance Act (FATCA) reporting", 6)
    c.text(x1 - 118, y + 48, "code (if any)", 6)
    y += 62
    requester = _company(rng)
    rstreet, rcity = _address(rng)
    c.field(x0 + 14, y, x1 - 190, y + 22,
            "5 Address (number, street, and apt. or suite no.). See instructions.",
            street)
    c.field(x1 - 190, y, x1, y + 44, "Requester's name and address (optional)", "")
    c.text(x1 - 186, y + 20, requester, 8, "cour")
    c.text(x1 - 186, y + 30, rstreet, 8, "cour")
    c.text(x1 - 186, y + 40, rcity, 8, "cour")
    c.field(x0 + 14, y + 22, x1 - 190, y + 44, "6 City, state, and ZIP code", city)
    y += 44
    account = f"{int(rng.integers(10000, 99999))}-{int(rng.integers(100, 999))}" if rng.random() < 0.4 else ""
    c.field(x0 + 14, y, x1, y + 20, "7 List account number(s) here (optional)", account)
    c.shape.insert_text((x0 + 10, y + 4), "Print or type.   See Specific Instructions on page 3.",
                        fontsize=c.size(6.5), fontname="hebo", rotate=90)
    y += 34
    c.rect(x0, y - 10, x0 + 40, y + 2, fill=BLACK)
    c.text(x0 + 4, y, "Part I", 9, "hebo", WHITE)
    c.text(x0 + 48, y, "Taxpayer Identification Number (TIN)", 9, "hebo")
    y += 12
    ty = c.para(x0, y, x1 - x0 - 170, W9_PART1, 7.6)
    c.para(x0, ty + 2, x1 - x0 - 170, W9_NOTE, 7.6)
    c.text(x1 - 160, y, "Social security number", 7, "hebo")
    tin = _ssn(rng) if individual else _ein(rng)
    ssn_digits = tin.replace("-", "") if individual else ""
    ein_digits = "" if individual else tin.replace("-", "")
    groups_ssn, groups_ein = (3, 2, 4), (2, 7)
    boxes = (("", groups_ssn, ssn_digits, y + 4),
             ("Employer identification number", groups_ein, ein_digits, y + 40))
    for label, groups, digits, oy in boxes:
        if label:
            c.text(x1 - 160, oy - 6, "or", 7, "hebo")
            c.text(x1 - 160, oy + 2, label, 7, "hebo")
            oy += 6
        bx = x1 - 160
        k = 0
        for g in groups:
            for _ in range(g):
                c.rect(bx, oy, bx + 11, oy + 14, width=0.5)
                if digits:
                    c.text(bx + 2.5, oy + 11, digits[k], 9, "cour")
                k += 1
                bx += 11
            bx += 8
    y = max(ty + 30, y + 80)
    c.rect(x0, y - 10, x0 + 44, y + 2, fill=BLACK)
    c.text(x0 + 4, y, "Part II", 9, "hebo", WHITE)
    c.text(x0 + 52, y, "Certification", 9, "hebo")
    y += 12
    c.text(x0, y, "Under penalties of perjury, I certify that:", 7.6)
    y += 10
    for item in W9_CERT:
        y = c.para(x0, y, x1 - x0, item, 7.6)
    y = c.para(x0, y + 1, x1 - x0, W9_CERT_INSTR, 7.6)
    y += 6
    c.line(x0, y - 8, x1, y - 8, 1.0)
    c.text(x0, y + 6, "Sign", 11, "hebo")
    c.text(x0, y + 18, "Here", 11, "hebo")
    signed = _date(rng, dt.date(2023, 1, 1), 800)
    c.text(x0 + 48, y + 6, "Signature of", 7)
    c.text(x0 + 48, y + 14, "U.S. person", 7)
    c.text(x0 + 110, y + 12, _person(rng) if individual else name.split()[0] + " " + _pick(rng, LAST), 12,
           "tiit")
    c.text(x1 - 140, y + 12, "Date", 7)
    c.text(x1 - 110, y + 12, signed.strftime(_pick(rng, DATE_FORMATS)), 9, "cour")
    c.line(x0, y + 24, x1, y + 24, 1.0)
    y += 38
    half = (x1 - x0 - 16) / 2
    col_y = [y, y]
    # Left column: General Instructions and Purpose of Form; right column: Future developments, What's New.
    blocks = ((0, *W9_GENERAL[0]), (0, *W9_INSTRUCTIONS[0]), (1, *W9_GENERAL[1]), (1, *W9_GENERAL[2]))
    for col, head, body in blocks:
        cx = x0 + col * (half + 16)
        yy = col_y[col]
        c.text(cx, yy, head, 7.6 if head.endswith(".") else 9, "hebo")
        col_y[col] = c.para(cx, yy + 11, half, body, 7.4) + 4
    c.text(x0, c.h - 26, "Cat. No. 10231X", 7)
    c.rtext(x1, c.h - 26, f"Form W-9 (Rev. {short})", 7, "hebo")
    c.commit()
    if rng.random() < 0.55:
        _w9_instructions(pdf, rng, short)


def _w9_instructions(pdf: pymupdf.Document, rng: np.random.Generator, short: str) -> None:
    c = _Canvas(pdf, rng)
    x0, x1 = c.mx, c.right
    y = c.top
    c.text(x0, y, f"Form W-9 (Rev. {short})", 7)
    c.rtext(x1, y, "Page 2", 7, "hebo")
    c.line(x0, y + 4, x1, y + 4, 1.2)
    half = (x1 - x0 - 18) / 2
    col, yy = 0, y + 20
    for head, body in W9_INSTRUCTIONS[1:]:
        cx = x0 + col * (half + 18)
        if head:
            c.text(cx, yy, head, 9.5 if len(head) < 22 else 8, "hebo")
            yy += 12
        yy = c.para(cx, yy, half, body, 7.8) + 5
        if yy > c.h - 260 and col == 0:
            col, yy = 1, y + 20
    c.rtext(x1, c.h - 26, f"Form W-9 (Rev. {short})", 7, "hebo")
    c.commit()


# --------------------------------------------------------------------------------------------------------
# Form 1040 and schedules

FILING_STATUS = ("Single", "Married filing jointly", "Married filing separately (MFS)",
                 "Head of household (HOH)", "Qualifying surviving spouse (QSS)")


def _f1040_taxpayer(rng: np.random.Generator) -> dict:
    first, last = _pick(rng, FIRST), _pick(rng, LAST)
    street, city = _address(rng)
    wages = float(rng.uniform(18000, 180000))
    return {
        "first": first, "last": last, "ssn": _ssn(rng), "street": street, "city": city,
        "year": int(_pick(rng, (2021, 2022, 2023, 2023, 2024))), "wages": round(wages, 2),
        "spouse": _pick(rng, FIRST) if rng.random() < 0.4 else "", "status": int(rng.integers(5)),
    }


def _f1040_page1(pdf: pymupdf.Document, rng: np.random.Generator, tp: dict) -> None:
    c = _Canvas(pdf, rng)
    x0, x1 = c.mx, c.right
    year = tp["year"]
    y = c.top
    c.text(x0, y + 14, "Form", 7)
    c.text(x0 + 20, y + 16, "1040", 22, "hebo")
    c.text(x0 + 76, y + 6, "Department of the Treasury-Internal Revenue Service", 6.5)
    c.text(x0 + 76, y + 17, "U.S. Individual Income Tax Return", 11, "hebo")
    c.text(x0 + 290, y + 17, str(year), 18, "hebo")
    c.text(x0 + 350, y + 8, "OMB No. 1545-0074", 6.5)
    c.text(x0 + 350, y + 17, "IRS Use Only-Do not write or staple in this space.", 6)
    y += 26
    c.line(x0, y, x1, y, 1.6)
    y += 10
    c.text(x0, y, f"For the year Jan. 1-Dec. 31, {year}, or other tax year beginning , {year}, ending , 20",
           7)
    c.rtext(x1, y, "See separate instructions.", 7)
    y += 4
    c.field(x0, y, x0 + 200, y + 22, "Your first name and middle initial", tp["first"])
    c.field(x0 + 200, y, x1 - 110, y + 22, "Last name", tp["last"])
    c.field(x1 - 110, y, x1, y + 22, "Your social security number", tp["ssn"])
    y += 22
    c.field(x0, y, x0 + 200, y + 22, "If joint return, spouse's first name and middle initial", tp["spouse"])
    c.field(x0 + 200, y, x1 - 110, y + 22, "Last name", tp["last"] if tp["spouse"] else "")
    c.field(x1 - 110, y, x1, y + 22, "Spouse's social security number", _ssn(rng) if tp["spouse"] else "")
    y += 22
    c.field(x0, y, x1 - 170, y + 22, "Home address (number and street). If you have a P.O. box, see "
            "instructions.", tp["street"])
    c.field(x1 - 170, y, x1 - 110, y + 22, "Apt. no.", "")
    c.rect(x1 - 110, y, x1, y + 66, width=0.5)
    c.text(x1 - 106, y + 9, "Presidential Election Campaign", 6, "hebo")
    c.para(x1 - 106, y + 17, 100, "Check here if you, or your spouse if filing jointly, want $3 to go to "
           "this fund. Checking a box below will not change your tax or refund.", 5.6)
    c.checkbox(x1 - 100, y + 60)
    c.text(x1 - 90, y + 60, "You", 6)
    c.checkbox(x1 - 60, y + 60)
    c.text(x1 - 50, y + 60, "Spouse", 6)
    y += 22
    city, rest = tp["city"].split(", ")
    c.field(x0, y, x1 - 250, y + 22, "City, town, or post office. If you have a foreign address, also "
            "complete spaces below.", city)
    c.field(x1 - 250, y, x1 - 180, y + 22, "State", rest.split()[0])
    c.field(x1 - 180, y, x1 - 110, y + 22, "ZIP code", rest.split()[1])
    y += 22
    c.field(x0, y, x0 + 180, y + 22, "Foreign country name", "")
    c.field(x0 + 180, y, x1 - 200, y + 22, "Foreign province/state/county", "")
    c.field(x1 - 200, y, x1 - 110, y + 22, "Foreign postal code", "")
    y += 34
    c.text(x0, y, "Filing Status", 8.5, "hebo")
    c.text(x0, y + 9, "Check only", 6.5)
    c.text(x0, y + 16, "one box.", 6.5)
    for i, status in enumerate(FILING_STATUS):
        cx = x0 + 62 + (i % 3) * 150
        cy = y + (i // 3) * 11
        c.checkbox(cx, cy, i == tp["status"])
        c.text(cx + 10, cy - 1, status, 7)
    y += 26
    c.line(x0, y, x1, y, 0.8)
    y += 10
    c.text(x0, y, "Digital Assets", 8.5, "hebo")
    c.para(x0 + 62, y, x1 - x0 - 150, f"At any time during {year}, did you: (a) receive (as a reward, award, "
           "or payment for property or services); or (b) sell, exchange, or otherwise dispose of a digital "
           "asset (or a financial interest in a digital asset)? (See instructions.)", 6.8)
    c.checkbox(x1 - 70, y + 8, False)
    c.text(x1 - 60, y + 7, "Yes", 7)
    c.checkbox(x1 - 36, y + 8, True)
    c.text(x1 - 26, y + 7, "No", 7)
    y += 22
    c.line(x0, y, x1, y, 0.8)
    y += 10
    c.text(x0, y, "Standard", 8.5, "hebo")
    c.text(x0, y + 9, "Deduction", 8.5, "hebo")
    c.text(x0 + 62, y, "Someone can claim:", 7)
    c.checkbox(x0 + 140, y + 1)
    c.text(x0 + 150, y, "You as a dependent", 7)
    c.checkbox(x0 + 240, y + 1)
    c.text(x0 + 250, y, "Your spouse as a dependent", 7)
    c.checkbox(x0 + 62, y + 12)
    c.text(x0 + 72, y + 11, "Spouse itemizes on a separate return or you were a dual-status alien", 7)
    y += 22
    c.line(x0, y, x1, y, 0.8)
    y += 10
    c.text(x0, y, "Dependents", 8.5, "hebo")
    c.text(x0, y + 9, "(see instructions)", 6.5)
    cols = ("(1) First name     Last name", "(2) Social security number", "(3) Relationship to you",
            "(4) Check if qualifies for: Child tax credit / Credit for other dependents")
    for i, col in enumerate(cols):
        c.text(x0 + 62 + i * 118, y, col if i < 3 else "(4) Child tax credit", 6.5)
    n_dep = int(rng.integers(0, 4))
    for k in range(3):
        ry = y + 12 + k * 11
        c.line(x0 + 62, ry + 2, x1, ry + 2, 0.4)
        if k < n_dep:
            c.text(x0 + 64, ry, f"{_pick(rng, FIRST)} {tp['last']}", 8, "cour")
            c.text(x0 + 182, ry, _ssn(rng), 8, "cour")
            c.text(x0 + 300, ry, _pick(rng, ("Son", "Daughter", "Stepchild", "Parent")), 8, "cour")
            c.checkbox(x0 + 420, ry + 1, True)
    y += 54
    c.line(x0, y - 8, x1, y - 8, 0.8)
    wages = tp["wages"]
    interest = round(float(rng.uniform(0, 2500)), 2) if rng.random() < 0.6 else 0.0
    dividends = round(float(rng.uniform(0, 4000)), 2) if rng.random() < 0.4 else 0.0
    sched1 = round(float(rng.uniform(0, 15000)), 2) if rng.random() < 0.3 else 0.0
    total = wages + interest + dividends + sched1
    adjust = round(float(rng.uniform(0, 3000)), 2) if rng.random() < 0.3 else 0.0
    agi = total - adjust
    std = {2021: 12550, 2022: 12950, 2023: 13850, 2024: 14600}[year] * (2 if tp["status"] == 1 else 1)
    taxable = max(agi - std, 0.0)
    tp.update(agi=agi, taxable=taxable)
    c.text(x0, y + 4, "Income", 8.5, "hebo")
    c.para(x0, y + 14, 52,
           "Attach Form(s) W-2 here. Also attach Forms W-2G and 1099-R if tax was withheld.", 6)
    lines = (
        ("1a", "Total amount from Form(s) W-2, box 1 (see instructions)", wages),
        ("b", "Household employee wages not reported on Form(s) W-2", None),
        ("c", "Tip income not reported on line 1a (see instructions)", None),
        ("z", "Add lines 1a through 1h", wages),
        ("2b", "Taxable interest. Attach Sch. B if required", interest or None),
        ("3b", "Ordinary dividends. Attach Sch. B if required", dividends or None),
        ("4b", "IRA distributions, taxable amount", None),
        ("5b", "Pensions and annuities, taxable amount", None),
        ("6b", "Social security benefits, taxable amount", None),
        ("7", "Capital gain or (loss). Attach Schedule D if required", None),
        ("8", "Additional income from Schedule 1, line 10", sched1 or None),
        ("9", "Add lines 1z, 2b, 3b, 4b, 5b, 6b, 7, and 8. This is your total income", total),
        ("10", "Adjustments to income from Schedule 1, line 26", adjust or None),
        ("11", "Subtract line 10 from line 9. This is your adjusted gross income", agi),
        ("12", "Standard deduction or itemized deductions (from Schedule A)", float(std)),
        ("13", "Qualified business income deduction from Form 8995 or Form 8995-A", None),
        ("14", "Add lines 12 and 13", float(std)),
        ("15", "Subtract line 14 from line 11. If zero or less, enter -0-. This is your taxable income",
         taxable),
    )
    step = min(15.0, (c.h - 44 - y) / len(lines))
    _numbered_lines(c, y + 4, lines, x0=x0 + 56, x1=x1, step=step)
    c.text(x0, c.h - 24, "For Disclosure, Privacy Act, and Paperwork Reduction Act Notice, see separate "
           "instructions.", 6.5, "hebo")
    c.text(x0 + 340, c.h - 24, "Cat. No. 11320B", 6.5)
    c.rtext(x1, c.h - 24, f"Form 1040 ({year})", 7, "hebo")
    c.commit()


def _f1040_page2(pdf: pymupdf.Document, rng: np.random.Generator, tp: dict) -> None:
    c = _Canvas(pdf, rng)
    x0, x1 = c.mx, c.right
    year = tp["year"]
    taxable = tp.get("taxable", tp["wages"] * 0.8)
    tax = round(taxable * float(rng.uniform(0.1, 0.18)), 2)
    credit = float(2000 * int(rng.integers(0, 3)))
    total_tax = max(tax - credit, 0.0)
    withheld = round(total_tax * float(rng.uniform(0.8, 1.3)), 2)
    y = c.top
    c.text(x0, y, f"Form 1040 ({year})", 7)
    c.rtext(x1, y, "Page 2", 7, "hebo")
    c.line(x0, y + 4, x1, y + 4, 1.4)
    y += 18
    sections = (
        ("Tax and", "Credits", (
            ("16", "Tax (see instructions). Check if any from Form(s): 8814, 4972", tax),
            ("17", "Amount from Schedule 2, line 3", None),
            ("18", "Add lines 16 and 17", tax),
            ("19", "Child tax credit or credit for other dependents from Schedule 8812", credit or None),
            ("20", "Amount from Schedule 3, line 8", None),
            ("21", "Add lines 19 and 20", credit or None),
            ("22", "Subtract line 21 from line 18. If zero or less, enter -0-", total_tax),
            ("23", "Other taxes, including self-employment tax, from Schedule 2, line 21", None),
            ("24", "Add lines 22 and 23. This is your total tax", total_tax),
        )),
        ("Payments", "", (
            ("25a", "Federal income tax withheld from Form(s) W-2", withheld),
            ("b", "Form(s) 1099", None),
            ("d", "Add lines 25a through 25c", withheld),
            ("26", f"{year} estimated tax payments and amount applied from {year - 1} return", None),
            ("27", "Earned income credit (EIC)", None),
            ("28", "Additional child tax credit from Schedule 8812", None),
            ("29", "American opportunity credit from Form 8863, line 8", None),
            ("32", "Add lines 27, 28, 29, and 31. These are your total other payments and refundable credits",
             None),
            ("33", "Add lines 25d, 26, and 32. These are your total payments", withheld),
        )),
        ("Refund", "", (
            ("34", "If line 33 is more than line 24, subtract line 24 from line 33. This is the amount you "
             "overpaid", max(withheld - total_tax, 0.0) or None),
            ("35a", "Amount of line 34 you want refunded to you. If Form 8888 is attached, check here",
             max(withheld - total_tax, 0.0) or None),
            ("36", f"Amount of line 34 you want applied to your {year + 1} estimated tax", None),
        )),
        ("Amount", "You Owe", (
            ("37", "Subtract line 33 from line 24. This is the amount you owe. For details on how to pay, "
             "go to www.irs.gov/Payments or see instructions", max(total_tax - withheld, 0.0) or None),
            ("38", "Estimated tax penalty (see instructions)", None),
        )),
    )
    step = float(rng.uniform(12, 13.5))
    for head, head2, lines in sections:
        c.text(x0, y, head, 8.5, "hebo")
        c.text(x0, y + 10, head2, 8.5, "hebo")
        y = _numbered_lines(c, y, lines, x0=x0 + 56, x1=x1, step=step)
        c.line(x0, y - 8, x1, y - 8, 0.8)
        y += 4
    c.text(x0, y, "Third Party", 8.5, "hebo")
    c.text(x0, y + 10, "Designee", 8.5, "hebo")
    c.text(x0 + 62, y, "Do you want to allow another person to discuss this return with the IRS? See "
           "instructions", 7)
    c.checkbox(x1 - 90, y + 1)
    c.text(x1 - 80, y, "Yes. Complete below.", 7)
    c.checkbox(x1 - 90, y + 12, True)
    c.text(x1 - 80, y + 11, "No", 7)
    y += 26
    c.line(x0, y - 8, x1, y - 8, 0.8)
    c.text(x0, y + 4, "Sign", 11, "hebo")
    c.text(x0, y + 16, "Here", 11, "hebo")
    y = c.para(x0 + 62, y, x1 - x0 - 62, "Under penalties of perjury, I declare that I have examined this "
               "return and accompanying schedules and statements, and to the best of my knowledge and "
               "belief, they are true, correct, and complete. Declaration of preparer (other than taxpayer) "
               "is based on all information of which preparer has any knowledge.", 6.8)
    c.field(x0 + 62, y, x0 + 250, y + 22, "Your signature", "")
    c.text(x0 + 70, y + 18, f"{tp['first']} {tp['last']}", 12, "tiit")
    signed = _date(rng, dt.date(year + 1, 1, 15), 90).strftime("%m/%d/%Y")
    c.field(x0 + 250, y, x0 + 320, y + 22, "Date", signed,
            value_size=8)
    c.field(x0 + 320, y, x1, y + 22, "Your occupation", _pick(rng, JOBS), value_size=8)
    y += 22
    c.field(x0 + 62, y, x0 + 250, y + 22, "Spouse's signature. If a joint return, both must sign.", "")
    c.field(x0 + 250, y, x0 + 320, y + 22, "Date", "")
    c.field(x0 + 320, y, x1, y + 22, "Spouse's occupation", "")
    y += 22
    c.field(x0 + 62, y, x0 + 250, y + 20, "Phone no.", _phone(rng), value_size=8)
    c.field(x0 + 250, y, x1, y + 20, "Email address",
            f"{tp['first'].lower()}.{tp['last'].lower()}@example.com",
            value_size=8)
    y += 32
    c.text(x0, y, "Paid", 9, "hebo")
    c.text(x0, y + 10, "Preparer", 9, "hebo")
    c.text(x0, y + 20, "Use Only", 9, "hebo")
    preparer = rng.random() < 0.5
    c.field(x0 + 62, y - 8, x0 + 200, y + 14, "Preparer's name", _person(rng) if preparer else "",
            value_size=8)
    c.field(x0 + 200, y - 8, x0 + 330, y + 14, "Preparer's signature", "")
    c.field(x0 + 330, y - 8, x0 + 400, y + 14, "Date", "")
    c.field(x0 + 400, y - 8, x1, y + 14, "PTIN", f"P{int(rng.integers(10**7, 10**8))}" if preparer else "",
            value_size=8)
    c.field(x0 + 62, y + 14, x1 - 120, y + 32, "Firm's name", _company(rng) if preparer else "", value_size=8)
    c.field(x1 - 120, y + 14, x1, y + 32, "Phone no.", "")
    c.field(x0 + 62, y + 32, x1 - 120, y + 50, "Firm's address", "")
    c.field(x1 - 120, y + 32, x1, y + 50, "Firm's EIN", "")
    c.text(x0, c.h - 24, "Go to www.irs.gov/Form1040 for instructions and the latest information.", 6.5)
    c.rtext(x1, c.h - 24, f"Form 1040 ({year})", 7, "hebo")
    c.commit()


def _schedule_header(c: _Canvas, sched: str, title: Sequence[str], seq: str, year: int, tp: dict) -> float:
    x0, x1 = c.mx, c.right
    y = _irs_header(
        c, "", "", (*title, "Attach to Form 1040, 1040-SR, 1040-NR, or 1041.",
                    "Go to www.irs.gov/Form1040 for instructions and the latest information."),
        ("OMB No. 1545-0074", str(year), f"Attachment Sequence No. {seq}"), c.top,
    )
    c.text(x0, c.top + 12, f"SCHEDULE {sched}", 11, "hebo")
    c.text(x0, c.top + 22, "(Form 1040)", 8, "hebo")
    c.text(x0, c.top + 34, "Department of the Treasury", 6.5)
    c.text(x0, c.top + 42, "Internal Revenue Service", 6.5)
    c.field(x0, y - 10, x1 - 130, y + 12, "Name(s) shown on return", f"{tp['first']} {tp['last']}")
    c.field(x1 - 130, y - 10, x1, y + 12, "Your social security number", tp["ssn"])
    return y + 26


def _part(c: _Canvas, x: float, y: float, part: str, title: str) -> float:
    c.rect(x, y - 10, x + 40, y + 3, fill=BLACK)
    c.text(x + 4, y, part, 9, "hebo", WHITE)
    c.text(x + 48, y, title, 9, "hebo")
    return y + 16


def _schedule1(pdf: pymupdf.Document, rng: np.random.Generator, tp: dict) -> None:
    c = _Canvas(pdf, rng)
    x0, x1 = c.mx, c.right
    year = tp["year"]
    y = _schedule_header(c, "1", ("Additional Income and", "Adjustments to Income"), "01", year, tp)
    biz = round(float(rng.uniform(-2000, 40000)), 2)
    unemp = round(float(rng.uniform(0, 9000)), 2) if rng.random() < 0.3 else 0.0
    y = _part(c, x0, y, "Part I", "Additional Income")
    step = float(rng.uniform(12.5, 13.5))
    y = _numbered_lines(c, y, (
        ("1", "Taxable refunds, credits, or offsets of state and local income taxes", None),
        ("2a", "Alimony received", None),
        ("3", "Business income or (loss). Attach Schedule C", biz),
        ("4", "Other gains or (losses). Attach Form 4797", None),
        ("5", "Rental real estate, royalties, partnerships, S corporations, trusts, etc. Attach Schedule E",
         None),
        ("6", "Farm income or (loss). Attach Schedule F", None),
        ("7", "Unemployment compensation", unemp or None),
        ("8a", "Net operating loss", None),
        ("8b", "Gambling", None),
        ("8z", "Other income. List type and amount:", None),
        ("9", "Total other income. Add lines 8a through 8z", None),
        ("10", "Combine lines 1 through 7 and 9. This is your additional income. Enter here and on Form "
         "1040, 1040-SR, or 1040-NR, line 8", biz + unemp),
    ), x0=x0, x1=x1, step=step)
    y = _part(c, x0, y + 4, "Part II", "Adjustments to Income")
    educator = 300.0 if rng.random() < 0.3 else 0.0
    student = round(float(rng.uniform(0, 2500)), 2) if rng.random() < 0.4 else 0.0
    se = round(max(biz, 0) * 0.0765, 2)
    _numbered_lines(c, y, (
        ("11", "Educator expenses", educator or None),
        ("12", "Certain business expenses of reservists, performing artists, and fee-basis government "
         "officials. Attach Form 2106", None),
        ("13", "Health savings account deduction. Attach Form 8889", None),
        ("14", "Moving expenses for members of the Armed Forces. Attach Form 3903", None),
        ("15", "Deductible part of self-employment tax. Attach Schedule SE", se or None),
        ("16", "Self-employed SEP, SIMPLE, and qualified plans", None),
        ("17", "Self-employed health insurance deduction", None),
        ("18", "Penalty on early withdrawal of savings", None),
        ("19a", "Alimony paid", None),
        ("20", "IRA deduction", None),
        ("21", "Student loan interest deduction", student or None),
        ("23", "Archer MSA deduction", None),
        ("24z", "Other adjustments. List type and amount:", None),
        ("25", "Total other adjustments. Add lines 24a through 24z", None),
        ("26", "Add lines 11 through 23 and 25. These are your adjustments to income. Enter here and on Form "
         "1040, 1040-SR, or 1040-NR, line 10", educator + student + se),
    ), x0=x0, x1=x1, step=step)
    c.text(x0, c.h - 24, "For Paperwork Reduction Act Notice, see your tax return instructions.", 6.5, "hebo")
    c.text(x0 + 300, c.h - 24, "Cat. No. 71479F", 6.5)
    c.rtext(x1, c.h - 24, f"Schedule 1 (Form 1040) {year}", 7, "hebo")
    c.commit()


SCHED_C_EXPENSES = (
    ("8", "Advertising"), ("9", "Car and truck expenses"), ("10", "Commissions and fees"),
    ("11", "Contract labor"),
    ("12", "Depletion"), ("13", "Depreciation and section 179"), ("14", "Employee benefit programs"),
    ("15", "Insurance (other than health)"), ("16a", "Interest: Mortgage"), ("16b", "Interest: Other"),
    ("17", "Legal and professional services"), ("18", "Office expense"),
    ("19", "Pension and profit-sharing plans"),
    ("20a", "Rent or lease: Vehicles, machinery"), ("20b", "Rent or lease: Other business property"),
    ("21", "Repairs and maintenance"), ("22", "Supplies (not included in Part III)"),
    ("23", "Taxes and licenses"), ("24a", "Travel"), ("24b", "Deductible meals"), ("25", "Utilities"),
    ("26", "Wages (less employment credits)"),
    ("27a", "Other expenses (from line 48)"),
)


def _schedule_c(pdf: pymupdf.Document, rng: np.random.Generator, tp: dict) -> None:
    c = _Canvas(pdf, rng)
    x0, x1 = c.mx, c.right
    year = tp["year"]
    y = _schedule_header(c, "C", ("Profit or Loss From Business", "(Sole Proprietorship)"), "09", year, tp)
    activity, _, _ = _pick(rng, SERVICES)
    business = _company(rng)
    street, city = _address(rng)
    c.field(x0, y - 14, x1 - 130, y + 8, "A Principal business or profession, including product or service "
            "(see instructions)", activity)
    code = str(int(rng.integers(110000, 999999)))
    c.field(x1 - 130, y - 14, x1, y + 8, "B Enter code from instructions", code)
    c.field(x0, y + 8, x1 - 130, y + 30, "C Business name. If no separate business name, leave blank.",
            business)
    c.field(x1 - 130, y + 8, x1, y + 30, "D Employer ID number (EIN) (see instr.)", _ein(rng))
    c.field(x0, y + 30, x1, y + 52, "E Business address (including suite or room no.)", f"{street}, {city}")
    y += 64
    method = int(rng.integers(2))
    c.text(x0, y, "F Accounting method:", 7.4)
    for i, m in enumerate(("(1) Cash", "(2) Accrual", "(3) Other (specify)")):
        c.checkbox(x0 + 100 + i * 80, y + 1, i == method)
        c.text(x0 + 110 + i * 80, y, m, 7.4)
    y += 11
    for q in (f'G Did you "materially participate" in the operation of this business during {year}? If "No," '
              "see instructions for limit on losses",
              f"H If you started or acquired this business during {year}, check here",
              f"I Did you make any payments in {year} that would require you to file Form(s) 1099? See "
              "instructions"):
        c.text(x0, y, q[:118], 7.4)
        c.checkbox(x1 - 60, y + 1, True)
        c.text(x1 - 50, y, "Yes", 7)
        c.checkbox(x1 - 30, y + 1)
        c.text(x1 - 20, y, "No", 7)
        y += 11
    y += 8
    gross = round(float(rng.uniform(15000, 240000)), 2)
    returns = round(gross * float(rng.uniform(0, 0.03)), 2)
    cogs = round(gross * float(rng.uniform(0, 0.35)), 2)
    y = _part(c, x0, y, "Part I", "Income")
    step = float(rng.uniform(11.5, 12.5))
    y = _numbered_lines(c, y, (
        ("1", "Gross receipts or sales. See instructions for line 1 and check the box if this income was "
         "reported to you on Form W-2", gross),
        ("2", "Returns and allowances", returns),
        ("3", "Subtract line 2 from line 1", gross - returns),
        ("4", "Cost of goods sold (from line 42)", cogs),
        ("5", "Gross profit. Subtract line 4 from line 3", gross - returns - cogs),
        ("6", "Other income, including federal and state gasoline or fuel tax credit or refund", None),
        ("7", "Gross income. Add lines 5 and 6", gross - returns - cogs),
    ), x0=x0, x1=x1, step=step)
    y = _part(c, x0, y + 2, "Part II",
              "Expenses. Enter expenses for business use of your home only on line 30.")
    half = (x1 - x0) / 2
    total = 0.0
    rows = (len(SCHED_C_EXPENSES) + 1) // 2
    for i, (num, caption) in enumerate(SCHED_C_EXPENSES):
        col, row = divmod(i, rows)
        cx = x0 + col * half
        cy = y + row * step
        value = round(float(rng.uniform(50, 9000)), 2) if rng.random() < 0.45 else None
        total += value or 0.0
        c.text(cx, cy, num, 7.2, "hebo")
        c.text(cx + 16, cy, caption, 7.2)
        c.rect(cx + half - 84, cy - 9, cx + half - 68, cy + 3, fill=LIGHT, color=None)
        c.text(cx + half - 82, cy, num, 6.6, "hebo")
        c.rect(cx + half - 68, cy - 9, cx + half - 4, cy + 3, width=0.5)
        if value is not None:
            c.rtext(cx + half - 7, cy, _money(value), 8.5, "cour")
    y += rows * step + 4
    net = gross - returns - cogs - total
    _numbered_lines(c, y, (
        ("28", "Total expenses before expenses for business use of home. Add lines 8 through 27b", total),
        ("29", "Tentative profit or (loss). Subtract line 28 from line 7", net),
        ("30", "Expenses for business use of your home. Do not report these expenses elsewhere.", None),
        ("31", "Net profit or (loss). Subtract line 30 from line 29. If a profit, enter on both Schedule 1 "
         "(Form 1040), line 3, and on Schedule SE, line 2", net),
    ), x0=x0, x1=x1, step=step)
    c.text(x0, c.h - 24, "For Paperwork Reduction Act Notice, see the separate instructions.", 6.5, "hebo")
    c.text(x0 + 300, c.h - 24, "Cat. No. 11334P", 6.5)
    c.rtext(x1, c.h - 24, f"Schedule C (Form 1040) {year}", 7, "hebo")
    c.commit()


def _f1040(pdf: pymupdf.Document, rng: np.random.Generator) -> None:
    tp = _f1040_taxpayer(rng)
    variant = _pick(rng, ("full", "full", "full", "page1", "page2", "schedule1", "schedule_c"))
    if variant in ("full", "page1"):
        _f1040_page1(pdf, rng, tp)
    if variant in ("full", "page2"):
        _f1040_page2(pdf, rng, tp)
    if variant == "schedule1":
        _schedule1(pdf, rng, tp)
    if variant == "schedule_c":
        _schedule_c(pdf, rng, tp)


# --------------------------------------------------------------------------------------------------------
# invoices

TERMS = ("Net 30", "Net 15", "Due on receipt", "Net 45", "2% 10, Net 30")


def _line_items(rng: np.random.Generator, n: int, services: bool) -> list[tuple[str, float, float]]:
    pool = SERVICES if services else GOODS
    items = []
    for _ in range(n):
        desc, lo, hi = _pick(rng, pool)
        qty = float(rng.integers(1, 40)) if services else float(rng.integers(1, 12))
        if services and rng.random() < 0.5:
            qty = float(rng.integers(2, 80)) / 2
        items.append((desc, qty, round(float(rng.uniform(lo, hi)), 2)))
    return items


def _items_table(c: _Canvas, y: float, items: Sequence[tuple[str, float, float]], *, header: Sequence[str],
                 header_fill: Color | None, font: str = "helv", grid: bool = True, size: float = 8.5,
                 row_h: float = 15.0) -> float:
    """Description | Qty | Unit price | Amount with optional grid; returns y below the table."""
    x0, x1 = c.mx, c.right
    qty_x = x0 + (x1 - x0) * float(c.rng.uniform(0.52, 0.6))
    price_x = x0 + (x1 - x0) * float(c.rng.uniform(0.7, 0.76))
    text_color = WHITE if header_fill and sum(header_fill) < 1.5 else BLACK
    bold = "cobo" if font == "cour" else "hebo"
    if header_fill:
        c.rect(x0, y, x1, y + row_h + 2, fill=header_fill, color=None)
    else:
        c.line(x0, y + row_h + 2, x1, y + row_h + 2, 1.0)
    c.text(x0 + 4, y + row_h - 3, header[0], size, bold, text_color)
    c.rtext(qty_x, y + row_h - 3, header[1], size, bold, text_color)
    c.rtext(price_x, y + row_h - 3, header[2], size, bold, text_color)
    c.rtext(x1 - 4, y + row_h - 3, header[3], size, bold, text_color)
    y += row_h + 2
    for desc, qty, price in items:
        c.text(x0 + 4, y + row_h - 4, desc, size, font)
        c.rtext(qty_x, y + row_h - 4, f"{qty:g}", size, font)
        c.rtext(price_x, y + row_h - 4, _money(price), size, font)
        c.rtext(x1 - 4, y + row_h - 4, _money(qty * price), size, font)
        if grid:
            c.line(x0, y + row_h, x1, y + row_h, 0.3, GREY)
        y += row_h
    if grid:
        c.rect(x0, y - row_h * len(items) - row_h - 2, x1, y, width=0.6)
    return y


def _totals(c: _Canvas, y: float, items: Sequence[tuple[str, float, float]], *, label_total: str,
            font: str = "helv",
            fill: Color | None = None, currency: str = "$") -> tuple[float, float]:
    subtotal = sum(q * p for _, q, p in items)
    rate = float(_pick(c.rng, (0.0, 0.05, 0.0625, 0.07, 0.0825, 0.1)))
    shipping = round(float(c.rng.uniform(8, 60)), 2) if c.rng.random() < 0.3 else 0.0
    total = subtotal * (1 + rate) + shipping
    x1 = c.right
    lx = x1 - 190
    bold = "cobo" if font == "cour" else "hebo"
    rows = [("Subtotal", subtotal), (f"Sales Tax ({rate * 100:g}%)", subtotal * rate)]
    if shipping:
        rows.append(("Shipping & Handling", shipping))
    y += 14
    for label, value in rows:
        c.text(lx, y, label, 8.5, font)
        c.rtext(x1 - 4, y, _money(value, dollar=currency == "$"), 8.5, font)
        y += 13
    if fill:
        c.rect(lx - 6, y - 10, x1, y + 6, fill=fill, color=None)
    else:
        c.line(lx, y - 9, x1, y - 9, 0.8)
    color = WHITE if fill and sum(fill) < 1.5 else BLACK
    c.text(lx, y + 2, label_total, 10, bold, color)
    c.rtext(x1 - 4, y + 2, _money(total, dollar=True), 10, bold, color)
    return y + 18, total


def _party(c: _Canvas, x: float, y: float, title: str, lines: Sequence[str], font: str = "helv") -> float:
    c.text(x, y, title, 8.5, "cobo" if font == "cour" else "hebo")
    for line in lines:
        y += 11
        c.text(x, y, line, 8.5, font)
    return y + 6


def _invoice(pdf: pymupdf.Document, rng: np.random.Generator) -> None:
    style = _pick(rng, ("classic", "band", "freelance", "erp"))
    issuer = _company(rng)
    street, city = _address(rng)
    client = _company(rng) if rng.random() < 0.8 else _person(rng)
    cstreet, ccity = _address(rng)
    issued = _date(rng)
    due = issued + dt.timedelta(days=int(_pick(rng, (15, 30, 30, 45, 60))))
    fmt = _pick(rng, DATE_FORMATS)
    number = _pick(rng, (f"INV-{int(rng.integers(1000, 99999))}",
                         f"{issued.year}-{int(rng.integers(1, 999)):04d}",
                         f"{int(rng.integers(100000, 999999))}", f"A{int(rng.integers(10000, 99999))}"))
    services = style == "freelance" or rng.random() < 0.35
    long_invoice = rng.random() < 0.12
    items = _line_items(rng, int(rng.integers(20, 32)) if long_invoice else int(rng.integers(2, 11)),
                        services)
    terms = _pick(rng, TERMS)
    accent = _pick(rng, ACCENTS)
    c = _Canvas(pdf, rng)
    x0, x1 = c.mx, c.right
    y = c.top
    font = "cour" if style == "erp" else _pick(rng, ("helv", "helv", "tiro"))
    bold = {"helv": "hebo", "tiro": "tibo", "cour": "cobo"}[font]
    if style == "band":
        c.rect(0, 0, c.w, y + 54, fill=accent, color=None)
        c.text(x0, y + 22, issuer, 16, "hebo", WHITE)
        c.text(x0, y + 36, f"{street} | {city} | {_phone(rng)}", 8, "helv", WHITE)
        c.rtext(x1, y + 24, "INVOICE", 24, "hebo", WHITE)
        y += 80
    elif style == "freelance":
        c.ctext(c.w / 2, y + 14, _person(rng), 18, bold)
        c.ctext(c.w / 2, y + 28, f"{street}, {city}", 8.5, font)
        c.ctext(c.w / 2, y + 40, f"{_phone(rng)}  ·  billing@{issuer.split()[0].lower()}.com", 8.5, font)
        c.line(x0, y + 50, x1, y + 50, 1.0, accent)
        c.text(x0, y + 76, f"Invoice {number}", 16, bold, accent)
        y += 96
    elif style == "erp":
        c.text(x0, y + 10, issuer.upper(), 12, "cobo")
        c.text(x0, y + 22, street.upper(), 8.5, "cour")
        c.text(x0, y + 32, city.upper(), 8.5, "cour")
        c.rtext(x1, y + 10, "I N V O I C E", 14, "cobo")
        c.rtext(x1, y + 24, "PAGE 1", 8, "cour")
        c.line(x0, y + 40, x1, y + 40, 0.8)
        y += 56
    else:
        if rng.random() < 0.7:
            c.rect(x0, y, x0 + 54, y + 54, fill=accent, color=None)
            c.ctext(x0 + 27, y + 35, _initials(issuer), 20, "hebo", WHITE)
            tx = x0 + 64
        else:
            tx = x0
        c.text(tx, y + 14, issuer, 14, bold)
        c.text(tx, y + 27, street, 8.5, font)
        c.text(tx, y + 38, city, 8.5, font)
        c.text(tx, y + 49, _phone(rng), 8.5, font)
        c.rtext(x1, y + 24, "INVOICE", 26, bold, accent)
        y += 78
    meta = [("Invoice No.", number), ("Invoice Date", issued.strftime(fmt)), ("Due Date", due.strftime(fmt)),
            ("Terms", terms)]
    if rng.random() < 0.5:
        meta.append(("PO Number", f"PO-{int(rng.integers(1000, 9999))}"))
    if rng.random() < 0.4:
        meta.append(("Customer ID", f"C{int(rng.integers(100, 9999)):05d}"))
    mx = x1 - float(rng.uniform(170, 200))
    my = y
    for label, value in meta:
        c.text(mx, my, f"{label}:", 8.5, bold)
        c.rtext(x1, my, value, 8.5, font)
        my += 12
    by = _party(c, x0, y, _pick(rng, ("Bill To:", "BILL TO", "Billed To", "Customer")),
                (client, cstreet, ccity), font)
    if rng.random() < 0.4:
        _party(c, x0 + 170, y, "Ship To:", (client, *_address(rng)), font)
    y = max(by, my) + 14
    header = (("Description", "Hours", "Rate", "Amount") if services and rng.random() < 0.6
              else _pick(rng, (("Description", "Qty", "Unit Price", "Amount"),
                               ("Item", "Quantity", "Price", "Total"),
                               ("DESCRIPTION", "QTY", "UNIT PRICE", "LINE TOTAL"))))
    fill = {"band": accent, "classic": _pick(rng, (LIGHT, accent, None)), "freelance": None,
            "erp": None}[style]
    limit = c.h - 200
    remaining = list(items)
    while True:
        fit = max(int((limit - y - 20) // 15), 1)
        chunk, remaining = remaining[:fit], remaining[fit:]
        y = _items_table(c, y, chunk, header=header, header_fill=fill, font=font, grid=style != "freelance")
        if not remaining:
            break
        c.rtext(x1, c.h - 30, "Continued on next page", 8, font)
        c.commit()
        c = _Canvas(pdf, rng)
        x0, x1 = c.mx, c.right
        c.text(x0, c.top + 10, f"{issuer}  -  Invoice {number} (continued)", 9, bold)
        c.rtext(x1, c.top + 10, "Page 2", 8, font)
        y = c.top + 30
    label_total = _pick(rng, ("Total Due", "TOTAL", "Balance Due", "Amount Due"))
    y, total = _totals(c, y, items, label_total=label_total,
                       font=font, fill=accent if style == "band" else None)
    y += 10
    notes = [f"Payment terms: {terms}. Please include invoice number {number} with your payment."]
    if rng.random() < 0.6:
        bank = _pick(rng, BANKS)
        notes.append(f"Bank transfer: {bank}, Routing No. {int(rng.integers(10**8, 10**9))}, "
                     f"Account No. {int(rng.integers(10**9, 10**10))}.")
    if rng.random() < 0.5:
        notes.append(f"Make checks payable to {issuer}. A late fee of 1.5% per month applies to overdue "
                     "balances.")
    contact = f"Questions about this invoice? Contact accounts@{issuer.split()[0].lower()}.com"
    notes.append(_pick(rng, ("Thank you for your business!", "We appreciate your prompt payment.", contact)))
    c.text(x0, y, "Notes", 9, bold)
    y += 12
    for note in notes:
        y = c.para(x0, y, x1 - x0, note, 8, font)
    if style != "band":
        c.ctext(c.w / 2, c.h - 28, f"{issuer} · {street}, {city}", 7, font, GREY)
    c.commit()


# --------------------------------------------------------------------------------------------------------
# payslips

EARNINGS = (("Regular", 1.0), ("Overtime", 1.5), ("Holiday", 1.0), ("Vacation", 1.0),
            ("Shift Differential", 0.1))


def _payslip(pdf: pymupdf.Document, rng: np.random.Generator) -> None:
    style = _pick(rng, ("statement", "stub", "mono"))
    employer = _company(rng)
    street, city = _address(rng)
    employee = _person(rng)
    estreet, ecity = _address(rng)
    frequency, days = _pick(rng, (("Biweekly", 14), ("Weekly", 7), ("Semi-monthly", 15), ("Monthly", 30)))
    end = _date(rng)
    start = end - dt.timedelta(days=days - 1)
    paid = end + dt.timedelta(days=int(rng.integers(2, 7)))
    periods = max((end - dt.date(end.year, 1, 1)).days // days + 1, 1)
    fmt = _pick(rng, ("%m/%d/%Y", "%m/%d/%y", "%Y-%m-%d", "%b %d, %Y"))
    rate = round(float(rng.uniform(15, 75)), 2)
    hours = {7: 40.0, 14: 80.0, 15: 86.67, 30: 173.33}[days]
    earnings = [("Regular", rate, hours, rate * hours)]
    for name, factor in EARNINGS[1:]:
        if rng.random() < 0.3:
            h = float(rng.integers(2, 16))
            earnings.append((name, rate * factor, h, rate * factor * h))
    if rng.random() < 0.15:
        earnings.append(("Bonus", 0.0, 0.0, round(float(rng.uniform(200, 2500)), 2)))
    gross = sum(e[3] for e in earnings)
    deductions = [("Federal Income Tax", gross * float(rng.uniform(0.08, 0.16))),
                  ("Social Security", gross * 0.062),
                  ("Medicare", gross * 0.0145)]
    if rng.random() < 0.75:
        state_tax = gross * float(rng.uniform(0.02, 0.06))
        deductions.append((f"{_pick(rng, CITIES)[1]} State Income Tax", state_tax))
    for name, lo, hi in (("401(k)", 0.03, 0.08), ("Medical", 0.02, 0.05), ("Dental", 0.003, 0.01),
                         ("Vision", 0.001, 0.004), ("Life Insurance", 0.001, 0.003)):
        if rng.random() < 0.5:
            deductions.append((name, gross * float(rng.uniform(lo, hi))))
    total_ded = sum(d[1] for d in deductions)
    net = gross - total_ded
    c = _Canvas(pdf, rng)
    x0, x1 = c.mx, c.right
    y = c.top
    font = "cour" if style == "mono" else "helv"
    bold = "cobo" if style == "mono" else "hebo"
    title = _pick(rng, {"statement": ("Earnings Statement", "EARNINGS STATEMENT", "Statement of Earnings"),
                        "stub": ("PAY STUB", "Payslip", "Employee Pay Stub", "Pay Statement"),
                        "mono": ("EMPLOYEE EARNINGS STATEMENT", "PAYROLL EARNINGS STATEMENT")}[style])
    accent = _pick(rng, ACCENTS)
    if style == "stub":
        c.rect(x0, y, x1, y + 40, fill=accent, color=None)
        c.text(x0 + 10, y + 17, employer, 13, "hebo", WHITE)
        c.text(x0 + 10, y + 31, f"{street}, {city}", 8, "helv", WHITE)
        c.rtext(x1 - 10, y + 26, title, 15, "hebo", WHITE)
        y += 58
    else:
        c.text(x0, y + 12, employer, 12, bold)
        c.text(x0, y + 24, street, 8.5, font)
        c.text(x0, y + 35, city, 8.5, font)
        c.rtext(x1, y + 12, title, 14, bold)
        y += 50
    info = [("Employee", employee), ("Employee ID", f"{int(rng.integers(10000, 99999))}"),
            ("SSN", _ssn(rng, masked=True)), ("Pay Period", f"{start.strftime(fmt)} - {end.strftime(fmt)}"),
            ("Pay Date", paid.strftime(fmt)), ("Pay Frequency", frequency)]
    if rng.random() < 0.5:
        department = _pick(rng, ("Operations", "Sales", "Engineering", "Finance", "Warehouse"))
        info.append(("Department", department))
    if rng.random() < 0.5:
        info.append(("Check No.", f"{int(rng.integers(10000, 99999))}"))
    if style == "stub":
        col_w = (x1 - x0) / 3
        for i, (label, value) in enumerate(info):
            cx = x0 + (i % 3) * col_w
            cy = y + (i // 3) * 26
            c.field(cx, cy, cx + col_w, cy + 26, label, value, value_font="helv", value_size=9)
        y += ((len(info) + 2) // 3) * 26 + 18
    else:
        iy = y
        for label, value in info:
            c.text(x1 - 230, iy, f"{label}:", 8.5, bold)
            c.text(x1 - 140, iy, value, 8.5, font)
            iy += 11
        _party(c, x0, y, "Pay to:" if rng.random() < 0.5 else "Employee", (employee, estreet, ecity), font)
        y = max(iy, y + 40) + 14
    ytd = float(periods)
    table_w = x1 - x0
    split = style == "stub" or rng.random() < 0.4
    ex1 = x0 + table_w * (0.56 if split else 1.0) - (6 if split else 0)
    cols = ((ex1 - 205, ex1 - 150, ex1 - 60, ex1 - 2) if split
            else (ex1 - 260, ex1 - 200, ex1 - 100, ex1 - 2))
    c.rect(x0, y, ex1, y + 14, fill=LIGHT, color=None)
    for label, cx in zip(("Earnings", "Rate", "Hours", "This Period", "Year to Date"), (x0, *cols),
                         strict=True):
        if cx == x0:
            c.text(cx + 3, y + 10, label, 8, bold)
        else:
            c.rtext(cx, y + 10, label if split is False or label != "Year to Date" else "YTD", 8, bold)
    ey = y + 26
    for name, r, h, amount in earnings:
        c.text(x0 + 3, ey, name, 8.2, font)
        if h:
            c.rtext(cols[0], ey, f"{r:.2f}", 8.2, font)
            c.rtext(cols[1], ey, f"{h:.2f}", 8.2, font)
        c.rtext(cols[2], ey, _money(amount), 8.2, font)
        c.rtext(cols[3], ey, _money(amount * ytd * float(rng.uniform(0.95, 1.05))), 8.2, font)
        ey += 12
    c.line(x0, ey - 8, ex1, ey - 8, 0.5)
    c.text(x0 + 3, ey + 2, "Gross Pay", 8.5, bold)
    c.rtext(cols[2], ey + 2, _money(gross, True), 8.5, bold)
    c.rtext(cols[3], ey + 2, _money(gross * ytd), 8.5, font)
    ey += 22
    if split:
        dx0, dy = ex1 + 12, y
    else:
        dx0, dy = x0, ey
    dcols = (x1 - 70, x1 - 2)
    c.rect(dx0, dy, x1, dy + 14, fill=LIGHT, color=None)
    c.text(dx0 + 3, dy + 10, "Deductions", 8, bold)
    c.rtext(dcols[0], dy + 10, "Current", 8, bold)
    c.rtext(dcols[1], dy + 10, "YTD", 8, bold)
    dy += 26
    for name, amount in deductions:
        c.text(dx0 + 3, dy, name, 8.2, font)
        c.rtext(dcols[0], dy, _money(amount), 8.2, font)
        c.rtext(dcols[1], dy, _money(amount * ytd), 8.2, font)
        dy += 12
    c.line(dx0, dy - 8, x1, dy - 8, 0.5)
    c.text(dx0 + 3, dy + 2, "Total Deductions", 8.5, bold)
    c.rtext(dcols[0], dy + 2, _money(total_ded), 8.5, bold)
    y = max(ey, dy) + 26
    c.rect(x0, y, x1, y + 34, width=0.8, fill=(0.95, 0.95, 0.95))
    summary = (("Gross Pay", gross), ("Total Deductions", total_ded), ("Net Pay", net))
    for i, (label, value) in enumerate(summary):
        cx = x0 + 10 + i * (x1 - x0) / 3
        c.text(cx, y + 13, label, 8, font)
        c.text(cx, y + 27, _money(value, True), 11, bold)
    y += 56
    if rng.random() < 0.6:
        c.text(x0, y, "Other Benefits and Information", 8.5, bold)
        y += 12
        for label in ("Vacation Hrs Available", "Sick Hrs Available"):
            c.text(x0, y, label, 8, font)
            c.rtext(x0 + 200, y, f"{float(rng.integers(0, 160)):.2f}", 8, font)
            y += 11
        y += 10
    if rng.random() < 0.5:
        c.text(x0, y, "Net Pay Distribution", 8.5, bold)
        y += 12
        c.text(x0, y,
               f"Direct Deposit - {_pick(rng, BANKS)}  Checking  XXXXXX{int(rng.integers(1000, 9999))}",
               8, font)
        c.rtext(x0 + 380, y, _money(net, True), 8, font)
        y += 20
    if rng.random() < 0.5 and y < c.h - 170:
        cy = c.h - 150
        for xx in range(int(x0), int(x1), 8):
            c.line(xx, cy, xx + 4, cy, 0.5, GREY)
        c.text(x0, cy + 24, employer, 10, bold)
        c.rtext(x1, cy + 24, f"Check No. {int(rng.integers(10000, 99999))}", 8.5, font)
        c.rtext(x1, cy + 38, f"Date {paid.strftime(fmt)}", 8.5, font)
        c.text(x0, cy + 62, "Pay to the", 8, font)
        c.text(x0, cy + 71, "order of", 8, font)
        c.text(x0 + 60, cy + 68, employee, 11, font)
        c.rect(x1 - 110, cy + 56, x1, cy + 74, width=0.6)
        c.rtext(x1 - 6, cy + 69, _money(net, True), 10, bold)
        c.text(x0, cy + 92, f"This amount: {_money(net)} dollars", 8.5, font)
        c.ctext(c.w / 2, cy + 118, "NON-NEGOTIABLE  -  THIS IS NOT A CHECK", 11, bold, GREY)
    c.commit()


# --------------------------------------------------------------------------------------------------------
# other: look-alikes and miscellaneous documents


def _w4(pdf: pymupdf.Document, rng: np.random.Generator) -> None:
    c = _Canvas(pdf, rng)
    x0, x1 = c.mx, c.right
    year = int(_pick(rng, (2023, 2024, 2025)))
    y = _irs_header(
        c, "W-4", "Department of the Treasury\nInternal Revenue Service",
        ("Employee's Withholding", "Certificate",
         "Complete Form W-4 so that your employer can withhold the correct federal income tax from your pay.",
         "Give Form W-4 to your employer. Your withholding is subject to review by the IRS."),
        ("OMB No. 1545-0074", str(year)), c.top,
    )
    first, last = _pick(rng, FIRST), _pick(rng, LAST)
    street, city = _address(rng)
    c.text(x0, y + 10, "Step 1:", 9, "hebo")
    c.text(x0, y + 20, "Enter", 9, "hebo")
    c.text(x0, y + 30, "Personal", 9, "hebo")
    c.text(x0, y + 40, "Information", 9, "hebo")
    fx = x0 + 70
    c.field(fx, y, fx + 170, y + 22, "(a) First name and middle initial", first)
    c.field(fx + 170, y, x1 - 120, y + 22, "Last name", last)
    c.field(x1 - 120, y, x1, y + 22, "(b) Social security number", _ssn(rng))
    c.field(fx, y + 22, x1 - 120, y + 44, "Address", street)
    c.field(fx, y + 44, x1 - 120, y + 66, "City or town, state, and ZIP code", city)
    c.para(x1 - 116, y + 32, 112, "Does your name match the name on your social security card? If not, to "
           "ensure you get credit for your earnings, contact SSA.", 6)
    status = int(rng.integers(3))
    for i, label in enumerate(("Single or Married filing separately", "Married filing jointly or Qualifying "
                               "surviving spouse", "Head of household (Check only if you're unmarried and "
                               "pay more than half the costs of keeping up a home.)")):
        c.checkbox(fx + 4, y + 80 + i * 11, i == status)
        c.text(fx + 14, y + 79 + i * 11, label, 7)
    y += 124
    c.para(x0, y, x1 - x0, "Complete Steps 2-4 ONLY if they apply to you; otherwise, skip to Step 5. See "
           "page 2 for more information on each step, who can claim exemption from withholding, and when to "
           "use the estimator at www.irs.gov/W4App.", 7.6, "hebo")
    y += 30
    steps = (
        ("Step 2:", "Multiple Jobs or Spouse Works", "Complete this step if you (1) hold more than one job "
         "at a time, or (2) are married filing jointly and your spouse also works. The correct amount of "
         "withholding depends on income earned from all of these jobs. Do only one of the following: (a) Use "
         "the estimator at www.irs.gov/W4App for the most accurate withholding for this step; (b) Use the "
         "Multiple Jobs Worksheet on page 3; or (c) If there are only two jobs total, you may check this "
         "box."),
        ("Step 3:", "Claim Dependent and Other Credits", "If your total income will be $200,000 or less "
         "($400,000 or less if married filing jointly): Multiply the number of qualifying children under age "
         "17 by $2,000. Multiply the number of other dependents by $500. Add the amounts above for "
         "qualifying children and other dependents."),
        ("Step 4", "(optional): Other Adjustments", "(a) Other income (not from jobs). If you want tax "
         "withheld for other income you expect this year that won't have withholding, enter the amount of "
         "other income here. (b) Deductions. If you expect to claim deductions other than the standard "
         "deduction. (c) Extra withholding. Enter any additional tax you want withheld each pay period."),
    )
    for head, title, body in steps:
        c.text(x0, y, head, 9, "hebo")
        c.para(x0, y + 10, fx - x0 - 4, title, 7.5, "hebo", 1.1)
        end = c.para(fx, y, x1 - fx - 100, body, 7.2)
        for k in range(2):
            c.rect(x1 - 80, y - 6 + k * 20, x1, y + 8 + k * 20, width=0.5)
            c.text(x1 - 92, y + 5 + k * 20, "$", 8)
            if rng.random() < 0.3:
                c.rtext(x1 - 4, y + 5 + k * 20, _money(float(rng.integers(1, 40)) * 500), 9, "cour")
        y = max(end, y + 40) + 8
        c.line(x0, y - 8, x1, y - 8, 0.6)
    c.text(x0, y + 6, "Step 5:", 9, "hebo")
    c.text(x0, y + 16, "Sign Here", 9, "hebo")
    c.para(fx, y + 2, x1 - fx, "Under penalties of perjury, I declare that this certificate, to the best of "
           "my knowledge and belief, is true, correct, and complete.", 7.2)
    c.field(fx, y + 18, x1 - 120, y + 40,
            "Employee's signature (This form is not valid unless you sign it.)", "")
    c.text(fx + 8, y + 37, f"{first} {last}", 12, "tiit")
    c.field(x1 - 120, y + 18, x1, y + 40, "Date", _date(rng, dt.date(year, 1, 1), 300).strftime("%m/%d/%Y"))
    y += 54
    employer = _company(rng)
    c.text(x0, y + 10, "Employers", 9, "hebo")
    c.text(x0, y + 20, "Only", 9, "hebo")
    c.field(fx, y, x1 - 200, y + 24, "Employer's name and address", f"{employer}, {_address(rng)[1]}",
            value_size=8)
    c.field(x1 - 200, y, x1 - 110, y + 24, "First date of employment",
            _date(rng, dt.date(year, 1, 1), 300).strftime("%m/%d/%Y"), value_size=8)
    c.field(x1 - 110, y, x1, y + 24, "Employer identification number (EIN)", _ein(rng), value_size=8)
    c.text(x0, c.h - 24, "For Privacy Act and Paperwork Reduction Act Notice, see page 3.", 6.5, "hebo")
    c.text(x0 + 300, c.h - 24, "Cat. No. 10220Q", 6.5)
    c.rtext(x1, c.h - 24, f"Form W-4 ({year})", 7, "hebo")
    c.commit()


def _f1099nec(pdf: pymupdf.Document, rng: np.random.Generator) -> None:
    c = _Canvas(pdf, rng)
    x0, x1 = c.mx, c.right
    year = int(_pick(rng, (2022, 2023, 2024)))
    payer = _company(rng)
    pstreet, pcity = _address(rng)
    recipient = _person(rng)
    rstreet, rcity = _address(rng)
    comp = round(float(rng.uniform(600, 90000)), 2)
    y = c.top + 20
    c.text(x0, c.top, _pick(rng, ("CORRECTED (if checked)", "VOID  CORRECTED", "")), 8)
    mid = x0 + (x1 - x0) * 0.5
    right = x1 - 120
    c.field(x0, y, mid, y + 70, "PAYER'S name, street address, city or town, state or province, country, ZIP "
            "or foreign postal code, and telephone no.", "")
    for i, line in enumerate((payer, pstreet, pcity, _phone(rng))):
        c.text(x0 + 4, y + 26 + i * 11, line, 9, "cour")
    c.rect(mid, y, right, y + 70, width=0.5)
    c.text(mid + 4, y + 10, "OMB No. 1545-0116", 7)
    c.text(mid + 4, y + 30, "Form 1099-NEC", 11, "hebo")
    c.text(mid + 4, y + 44, "(Rev. January 2024)", 7)
    c.text(mid + 4, y + 60, f"For calendar year {year}", 7)
    c.text(right + 6, y + 20, "Nonemployee", 12, "hebo")
    c.text(right + 6, y + 35, "Compensation", 12, "hebo")
    y += 70
    c.field(x0, y, x0 + (mid - x0) / 2, y + 24, "PAYER'S TIN", _ein(rng))
    c.field(x0 + (mid - x0) / 2, y, mid, y + 24, "RECIPIENT'S TIN", _ssn(rng, masked=True))
    c.field(mid, y, right, y + 24, "1 Nonemployee compensation", f"$ {_money(comp)}")
    c.rect(right, y, x1, y + 96, width=0.5)
    c.text(right + 6, y + 14, "Copy B", 11, "hebo")
    c.text(right + 6, y + 26, "For Recipient", 8, "hebo")
    c.para(right + 6, y + 38, 108, "This is important tax information and is being furnished to the IRS. If "
           "you are required to file a return, a negligence penalty or other sanction may be imposed on you "
           "if this income is taxable and the IRS determines that it has not been reported.", 5.8)
    y += 24
    c.field(x0, y, mid, y + 24, "RECIPIENT'S name", recipient)
    c.field(mid, y, right, y + 24, "2 Payer made direct sales totaling $5,000 or more of consumer products "
            "to recipient for resale", "")
    y += 24
    c.field(x0, y, mid, y + 24, "Street address (including apt. no.)", rstreet)
    c.field(mid, y, right, y + 24, "3", "")
    y += 24
    withheld = round(comp * float(rng.uniform(0, 0.1)), 2) if rng.random() < 0.3 else 0.0
    c.field(x0, y, mid, y + 24, "City or town, state or province, country, and ZIP or foreign postal code",
            rcity)
    c.field(mid, y, right, y + 24, "4 Federal income tax withheld",
            f"$ {_money(withheld)}" if withheld else "$")
    y += 24
    c.field(x0, y, mid, y + 24, "Account number (see instructions)", "")
    third = (x1 - mid) / 3
    c.field(mid, y, mid + third, y + 24, "5 State tax withheld", "$")
    c.field(mid + third, y, mid + 2 * third, y + 24, "6 State/Payer's state no.", "")
    c.field(mid + 2 * third, y, x1, y + 24, "7 State income", "$")
    y += 36
    c.text(x0, y, "Form 1099-NEC (Rev. 1-2024)", 7, "hebo")
    c.text(x0 + 150, y, "(keep for your records)", 7)
    c.text(x0 + 260, y, "www.irs.gov/Form1099NEC", 7)
    c.rtext(x1, y, "Department of the Treasury - Internal Revenue Service", 7)
    y += 30
    c.text(x0, y, "Instructions for Recipient", 9, "hebo")
    y += 12
    for body in (
        "Recipient's taxpayer identification number (TIN). For your protection, this form may show only the "
        "last four digits of your TIN (social security number (SSN), individual taxpayer identification "
        "number (ITIN), adoption taxpayer identification number (ATIN), or employer identification number "
        "(EIN)).",
        "Box 1. Shows nonemployee compensation. If the amount in this box is self-employment (SE) income, "
        "report it on Schedule C or F (Form 1040) if a sole proprietor, or on Form 1065 and Schedule K-1 "
        "(Form 1065) if a partnership, and the recipient/partner completes Schedule SE (Form 1040).",
        "Box 4. Shows backup withholding. A payer must backup withhold on certain payments if you did not "
        "give your TIN to the payer. See Form W-9, Request for Taxpayer Identification Number and "
        "Certification, for information on backup withholding. Include this amount on your income tax "
        "return as tax withheld.",
    ):
        y = c.para(x0, y, x1 - x0, body, 7.6) + 4
    c.commit()


def _receipt(pdf: pymupdf.Document, rng: np.random.Generator) -> None:
    items = [(name, round(float(rng.uniform(lo, hi)), 2), int(rng.integers(1, 4)))
             for name, lo, hi in (_pick(rng, STORE_ITEMS) for _ in range(int(rng.integers(3, 14))))]
    height = 330 + 12 * len(items)
    c = _Canvas(pdf, rng, width=float(rng.uniform(210, 240)), height=height)
    c.mx = float(rng.uniform(10, 16))
    x0, x1 = c.mx, c.right
    kind = _pick(rng, ("MARKET", "GROCERY", "PHARMACY", "HARDWARE", "FOODS"))
    store = f"{_pick(rng, COMPANY_A).upper()} {kind}"
    street, city = _address(rng)
    y = 24.0
    mid = c.w / 2
    c.ctext(mid, y, store, 11, "cobo")
    for line in (street.upper(), city.upper(), _phone(rng)):
        y += 11
        c.ctext(mid, y, line, 7.5, "cour")
    when = _date(rng)
    y += 18
    c.text(x0, y, f"{when.strftime('%m/%d/%Y')} {int(rng.integers(7, 22)):02d}:{int(rng.integers(60)):02d}",
           7.5,
           "cour")
    c.rtext(x1, y, f"STORE {int(rng.integers(100, 999))} REG {int(rng.integers(1, 12))}", 7.5, "cour")
    y += 10
    c.text(x0, y, f"CASHIER: {_pick(rng, FIRST).upper()}", 7.5, "cour")
    c.rtext(x1, y, f"TRANS #{int(rng.integers(1000, 9999))}", 7.5, "cour")
    y += 8
    c.text(x0, y + 4, "-" * int((x1 - x0) / c.width("-", 7.5, "cour")), 7.5, "cour")
    y += 16
    subtotal = 0.0
    for name, price, qty in items:
        label = f"{qty} @ {price:.2f} {name}" if qty > 1 else name
        c.text(x0, y, label[:30], 7.5, "cour")
        c.rtext(x1, y, f"{price * qty:.2f}", 7.5, "cour")
        subtotal += price * qty
        y += 12
    tax = subtotal * float(_pick(rng, (0.0, 0.05, 0.0625, 0.0725, 0.08)))
    y += 6
    for label, value in (("SUBTOTAL", subtotal), ("TAX", tax), ("TOTAL", subtotal + tax)):
        c.text(x0 + 60, y, label, 8 if label != "TOTAL" else 9.5, "cobo" if label == "TOTAL" else "cour")
        c.rtext(x1, y, f"{value:.2f}", 8 if label != "TOTAL" else 9.5, "cobo" if label == "TOTAL" else "cour")
        y += 12
    card = _pick(rng, ("VISA", "MASTERCARD", "AMEX", "DEBIT", "CASH"))
    y += 6
    if card == "CASH":
        paid = float(np.ceil((subtotal + tax) / 5) * 5)
        c.text(x0, y, "CASH", 7.5, "cour")
        c.rtext(x1, y, f"{paid:.2f}", 7.5, "cour")
        y += 11
        c.text(x0, y, "CHANGE DUE", 7.5, "cour")
        c.rtext(x1, y, f"{paid - subtotal - tax:.2f}", 7.5, "cour")
    else:
        c.text(x0, y, f"{card} ************{int(rng.integers(1000, 9999))}", 7.5, "cour")
        y += 11
        c.text(x0, y, f"AUTH CODE {int(rng.integers(100000, 999999))}  APPROVED", 7.5, "cour")
    y += 22
    c.ctext(mid, y, f"ITEMS SOLD {sum(q for _, _, q in items)}", 7.5, "cour")
    y += 14
    c.ctext(mid, y, _pick(rng, ("THANK YOU FOR SHOPPING WITH US!", "THANK YOU! PLEASE COME AGAIN",
                                "SAVE THIS RECEIPT FOR RETURNS")), 7.5, "cobo")
    y += 11
    c.ctext(mid, y, "RETURNS WITHIN 30 DAYS WITH RECEIPT", 6.5, "cour")
    c.commit()


LETTER_TOPICS = (
    ("Vendor onboarding", (
        "Thank you for agreeing to provide services to {company}. As part of our vendor onboarding process, "
        "we need a few documents before we can issue payments.",
        "Please complete, sign and return the enclosed Form W-9 so that we have your correct taxpayer "
        "identification number on file. Without it we may be required to apply backup withholding.",
        "Once we receive the form, your account will be activated in our payables system and invoices can be "
        "submitted through the supplier portal.",
    )),
    ("Payment reminder", (
        "Our records indicate that invoice {number} dated {date} remains unpaid. We understand that "
        "oversights happen and would appreciate your attention to this matter.",
        "If payment has already been sent, please disregard this letter. Otherwise, kindly remit the "
        "outstanding balance of {amount} within ten business days.",
        "Should you have any questions regarding this account, please contact our billing department.",
    )),
    ("Employment verification", (
        "This letter confirms that {person} has been employed by {company} since {date} as a full-time "
        "employee.",
        "{person} currently holds the position of {job} with an annual base salary of {amount}. Pay stubs "
        "are available on request through our human resources office.",
        "This information is provided at the request of the employee and is confidential.",
    )),
    ("Your tax documents", (
        "Enclosed please find the documents we prepared for your {year} federal and state income tax "
        "returns.",
        "Please review the returns carefully, sign where indicated and keep a copy for your records. Your "
        "Form 1040 will be filed electronically once we receive the signed authorization.",
        "We appreciate the opportunity to serve you and look forward to working with you again next year.",
    )),
    ("Office relocation", (
        "We are pleased to announce that {company} will move to a new office on {date}.",
        "Our phone numbers and email addresses will remain the same. Please update your records with our new "
        "mailing address shown above for all future correspondence.",
        "We look forward to welcoming you at our new location.",
    )),
)


def _letter(pdf: pymupdf.Document, rng: np.random.Generator) -> None:
    c = _Canvas(pdf, rng)
    x0, x1 = c.mx + 20, c.right - 20
    font = _pick(rng, ("tiro", "helv"))
    bold = "tibo" if font == "tiro" else "hebo"
    sender = _company(rng)
    street, city = _address(rng)
    y = c.top + 20
    c.text(x0, y, sender, 15, bold, _pick(rng, ACCENTS))
    c.text(x0, y + 14, f"{street}  ·  {city}  ·  {_phone(rng)}", 8, font, GREY)
    c.line(x0, y + 22, x1, y + 22, 0.8, GREY)
    y += 56
    when = _date(rng)
    c.text(x0, y, when.strftime("%B %d, %Y"), 10, font)
    recipient = _person(rng)
    rstreet, rcity = _address(rng)
    y += 28
    for line in (recipient, _company(rng) if rng.random() < 0.5 else "", rstreet, rcity):
        if line:
            c.text(x0, y, line, 10, font)
            y += 13
    topic, paragraphs = _pick(rng, LETTER_TOPICS)
    y += 16
    c.text(x0, y, f"Re: {topic}", 10, bold)
    y += 24
    last = recipient.split()[-1]
    c.text(x0, y, f"Dear {_pick(rng, ('Mr.', 'Ms.', 'Dr.'))} {last},", 10, font)
    y += 22
    values = {"company": sender, "number": f"INV-{int(rng.integers(1000, 99999))}",
              "date": _date(rng).strftime("%B %d, %Y"),
              "amount": _money(float(rng.uniform(300, 90000)), True),
              "person": recipient, "job": _pick(rng, JOBS).lower(), "year": when.year - 1}
    for paragraph in paragraphs:
        y = c.para(x0, y, x1 - x0, paragraph.format(**values), 10, font, 1.35) + 10
    y += 10
    c.text(x0, y, _pick(rng, ("Sincerely,", "Best regards,", "Kind regards,", "Yours truly,")), 10, font)
    signer = _person(rng)
    c.text(x0, y + 28, signer, 14, "tiit")
    c.text(x0, y + 46, signer, 10, font)
    c.text(x0, y + 59, _pick(rng, ("Accounts Payable", "Office Manager", "Human Resources", "Partner",
                                   "Director")),
           10, font)
    if rng.random() < 0.4:
        c.text(x0, y + 86, "Enclosure", 9, font)
    c.commit()


def _bank_statement(pdf: pymupdf.Document, rng: np.random.Generator) -> None:
    bank = _pick(rng, BANKS)
    holder = _person(rng)
    street, city = _address(rng)
    end = _date(rng)
    start = end - dt.timedelta(days=29)
    opening = round(float(rng.uniform(300, 25000)), 2)
    merchants = ("POS PURCHASE GROCERY", "ACH DEBIT UTILITY CO", "CHECK #", "ATM WITHDRAWAL",
                 "ONLINE TRANSFER TO SAV", "DIRECT DEPOSIT PAYROLL", "CARD PURCHASE GAS STATION",
                 "ACH CREDIT REFUND", "MORTGAGE PAYMENT",
                 "CARD PURCHASE RESTAURANT", "MOBILE DEPOSIT", "INSURANCE PREMIUM")
    tx = []
    for k in range(int(rng.integers(24, 46))):
        desc = _pick(rng, merchants)
        credit = desc.startswith(("DIRECT DEPOSIT", "ACH CREDIT", "MOBILE DEPOSIT"))
        amount = round(float(rng.uniform(800, 4200) if desc.startswith("DIRECT") else rng.uniform(4, 450)), 2)
        if desc == "CHECK #":
            desc = f"CHECK #{int(rng.integers(1000, 1999))}"
        when = start + dt.timedelta(days=int(k * 29 / 46 + rng.integers(0, 2)))
        tx.append((when, desc, amount if credit else -amount))
    deposits = sum(a for _, _, a in tx if a > 0)
    withdrawals = -sum(a for _, _, a in tx if a < 0)
    account = f"XXXX-XXXX-{int(rng.integers(1000, 9999))}"
    c = _Canvas(pdf, rng)
    x0, x1 = c.mx, c.right
    y = c.top
    accent = _pick(rng, ACCENTS)
    c.text(x0, y + 14, bank, 15, "hebo", accent)
    c.text(x0, y + 26, "Member FDIC", 7, "helv", GREY)
    c.rtext(x1, y + 14, "Account Statement", 12, "hebo")
    c.rtext(x1, y + 28, f"{start.strftime('%B %d, %Y')} through {end.strftime('%B %d, %Y')}", 8)
    y += 56
    _party(c, x0, y, holder, (street, city))
    c.text(x1 - 200, y, "Account Number:", 8.5, "hebo")
    c.text(x1 - 110, y, account, 8.5)
    c.text(x1 - 200, y + 12, "Account Type:", 8.5, "hebo")
    c.text(x1 - 110, y + 12, _pick(rng, ("Everyday Checking", "Premier Checking", "Business Checking")), 8.5)
    c.text(x1 - 200, y + 24, "Customer Service:", 8.5, "hebo")
    c.text(x1 - 110, y + 24, _phone(rng), 8.5)
    y += 62
    c.rect(x0, y, x1, y + 16, fill=accent, color=None)
    c.text(x0 + 6, y + 11, "Account Summary", 9, "hebo", WHITE)
    y += 30
    for label, value in (("Beginning balance on " + start.strftime("%m/%d"), opening),
                         ("Deposits and other credits", deposits),
                         ("Withdrawals and other debits", -withdrawals),
                         ("Ending balance on " + end.strftime("%m/%d"), opening + deposits - withdrawals)):
        c.text(x0 + 6, y, label, 8.5)
        c.rtext(x0 + 330, y, _money(value, True), 8.5)
        y += 12
    y += 16

    def table_header(cv: _Canvas, yy: float) -> float:
        cv.rect(cv.mx, yy, cv.right, yy + 16, fill=LIGHT, color=None)
        for label, xx, right_aligned in (("Date", cv.mx + 4, False), ("Description", cv.mx + 60, False),
                                         ("Withdrawals", cv.right - 160, True),
                                         ("Deposits", cv.right - 85, True),
                                         ("Balance", cv.right - 4, True)):
            (cv.rtext if right_aligned else cv.text)(xx, yy + 11, label, 8, "hebo")
        return yy + 28

    c.text(x0, y, "Transaction Details", 10, "hebo")
    y = table_header(c, y + 8)
    balance = opening
    page = 1
    for when, desc, amount in tx:
        if y > c.h - 70:
            c.rtext(x1, c.h - 28, f"Page {page}", 7.5)
            c.commit()
            page += 1
            c = _Canvas(pdf, rng)
            x0, x1 = c.mx, c.right
            c.text(x0, c.top + 10, f"{bank}  -  {holder}  -  Account {account}", 8.5, "hebo")
            y = table_header(c, c.top + 24)
        balance += amount
        c.text(x0 + 4, y, when.strftime("%m/%d"), 8)
        c.text(x0 + 60, y, desc, 8)
        c.rtext(x1 - (160 if amount < 0 else 85), y, _money(abs(amount)), 8)
        c.rtext(x1 - 4, y, _money(balance), 8)
        y += 13
    y += 16
    if page == 1 or y > c.h - 160:
        c.rtext(x1, c.h - 28, f"Page {page}", 7.5)
        c.commit()
        page += 1
        c = _Canvas(pdf, rng)
        x0, x1 = c.mx, c.right
        y = c.top + 20
    c.text(x0, y, "Important Information About Your Account", 10, "hebo")
    y += 14
    for body in (
        "In case of errors or questions about your electronic transfers, telephone us at the number shown on "
        "this statement or write to us as soon as you can if you think your statement or receipt is wrong. "
        "We must hear from you no later than 60 days after we sent you the first statement on which the "
        "problem appeared.",
        "Tell us your name and account number, describe the error or the transfer you are unsure about, and "
        "explain as clearly as you can why you believe it is an error. Tell us the dollar amount of the "
        "suspected error.",
        "Balancing your account: compare the deposits and withdrawals shown on this statement with your own "
        "records, add any deposits not shown, subtract any checks or withdrawals outstanding.",
    ):
        y = c.para(x0, y, x1 - x0, body, 7.8) + 6
    c.rtext(x1, c.h - 28, f"Page {page}", 7.5)
    c.commit()


def _purchase_order(pdf: pymupdf.Document, rng: np.random.Generator) -> None:
    c = _Canvas(pdf, rng)
    x0, x1 = c.mx, c.right
    buyer = _company(rng)
    street, city = _address(rng)
    vendor = _company(rng)
    y = c.top
    c.text(x0, y + 14, buyer, 14, "hebo")
    c.text(x0, y + 27, street, 8.5)
    c.text(x0, y + 38, city, 8.5)
    c.rtext(x1, y + 22, "PURCHASE ORDER", 20, "hebo", _pick(rng, ACCENTS))
    y += 64
    ordered = _date(rng)
    fmt = _pick(rng, DATE_FORMATS)
    for i, (label, value) in enumerate((("PO Number", f"PO-{int(rng.integers(10000, 99999))}"),
                                        ("Order Date", ordered.strftime(fmt)),
                                        ("Requested Delivery",
                                         (ordered + dt.timedelta(days=14)).strftime(fmt)),
                                        ("Buyer", _person(rng)))):
        c.text(x1 - 190, y + i * 12, f"{label}:", 8.5, "hebo")
        c.rtext(x1, y + i * 12, value, 8.5)
    _party(c, x0, y, "Vendor:", (vendor, *_address(rng)))
    _party(c, x0 + 170, y, "Ship To:", (buyer, street, city))
    y += 70
    items = _line_items(rng, int(rng.integers(2, 10)), False)
    y = _items_table(c, y, items, header=("Item Description", "Qty", "Unit Cost", "Total"), header_fill=LIGHT)
    y, _ = _totals(c, y, items, label_total="PO Total")
    y += 12
    for note in ("Please reference the PO number on all invoices, packing slips and correspondence.",
                 "Goods are subject to inspection upon delivery. Notify the buyer immediately if you are "
                 "unable to ship as specified.", "Authorized by: " + _person(rng)):
        y = c.para(x0, y, x1 - x0, note, 8) + 3
    c.commit()


def _meeting_notes(pdf: pymupdf.Document, rng: np.random.Generator) -> None:
    c = _Canvas(pdf, rng)
    x0, x1 = c.mx + 10, c.right - 10
    team = _pick(rng, ("Finance", "Operations", "Product", "Sales", "Facilities", "IT"))
    y = c.top + 16
    c.text(x0, y, f"{team} Team Meeting Notes", 16, "hebo")
    y += 22
    when = _date(rng)
    people = sorted({_person(rng) for _ in range(int(rng.integers(3, 7)))})
    for label, value in (("Date", when.strftime("%A, %B %d, %Y")),
                         ("Time", f"{int(rng.integers(8, 16))}:00 - {int(rng.integers(16, 18))}:00"),
                         ("Location", _pick(rng, ("Conference Room B", "Zoom", "Main office", "Teams call"))),
                         ("Attendees", ", ".join(people))):
        c.text(x0, y, f"{label}:", 9.5, "hebo")
        y = c.para(x0 + 70, y, x1 - x0 - 70, value, 9.5)
    topics = ("Review of last quarter's budget and variances", "Vendor contract renewals due next month",
              "Update on the new expense reporting tool", "Hiring plan for the second half of the year",
              "Customer feedback from the spring survey", "Office supply ordering process",
              "Timeline for the year-end close", "Security awareness training completion")
    chosen = [topics[i] for i in rng.permutation(len(topics))[: int(rng.integers(3, 6))]]
    y += 12
    c.text(x0, y, "Agenda", 12, "hebo")
    y += 15
    for i, topic in enumerate(chosen, 1):
        c.text(x0 + 8, y, f"{i}. {topic}", 9.5)
        y += 13
    y += 10
    c.text(x0, y, "Discussion", 12, "hebo")
    y += 15
    remarks = ("The team agreed to revisit this item at the next meeting once more data is available.",
               "Concerns were raised about the timeline; a revised plan will be circulated by email.",
               "No objections were raised and the proposal was approved.",
               "Several options were compared and the group preferred the lower-cost alternative.")
    for topic in chosen:
        y = c.para(x0 + 8, y, x1 - x0 - 8, f"{topic}: {_pick(rng, remarks)}", 9.5) + 4
    y += 8
    c.text(x0, y, "Action Items", 12, "hebo")
    y += 15
    for topic in chosen[:3]:
        owner = _pick(rng, people)
        due = (when + dt.timedelta(days=int(rng.integers(3, 21)))).strftime("%m/%d")
        c.text(x0 + 8, y, f"- {owner}: follow up on {topic.lower()[:48]} (due {due})", 9.5)
        y += 13
    c.text(x0, y + 16, f"Next meeting: {(when + dt.timedelta(days=14)).strftime('%B %d, %Y')}", 9.5, "heit")
    c.commit()


OTHER_BUILDERS: tuple[tuple[Callable[[pymupdf.Document, np.random.Generator], None], float], ...] = (
    (_w4, 0.17), (_f1099nec, 0.17), (_receipt, 0.13), (_letter, 0.16), (_bank_statement, 0.13),
    (_purchase_order, 0.12), (_meeting_notes, 0.12),
)


def _other(pdf: pymupdf.Document, rng: np.random.Generator) -> None:
    weights = np.array([w for _, w in OTHER_BUILDERS])
    builder = OTHER_BUILDERS[int(rng.choice(len(OTHER_BUILDERS), p=weights / weights.sum()))][0]
    builder(pdf, rng)


BUILDERS: dict[str, Callable[[pymupdf.Document, np.random.Generator], None]] = {
    "w9": _w9, "1040": _f1040, "invoice": _invoice, "payslip": _payslip, "other": _other,
}


# --------------------------------------------------------------------------------------------------------
# output


def _pdf_bytes(pdf: pymupdf.Document) -> bytes:
    pdf.set_metadata(_METADATA)
    return pdf.tobytes(garbage=3, deflate=True, no_new_id=True)


def _scan_page(page: pymupdf.Page, rng: np.random.Generator, rotation: int) -> Image.Image:
    """Render one page to grayscale and add skew, blur or contrast change, noise and speckles."""
    pix = page.get_pixmap(dpi=SCAN_DPI, colorspace=pymupdf.csGRAY, alpha=False)
    image = Image.frombytes("L", (pix.width, pix.height), pix.samples)
    paper = int(rng.integers(228, 252))
    angle = float(rng.uniform(-1.5, 1.5))
    image = image.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=255)
    if rng.random() < 0.5:
        image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 0.8))))
    pixels = np.asarray(image, dtype=np.float32)
    ink = float(rng.uniform(0, 40))
    pixels = ink + pixels * ((paper - ink) / 255.0)
    sigma = float(rng.uniform(3, 8))
    pixels += rng.standard_normal(pixels.shape, dtype=np.float32) * sigma
    # Scanners level the paper to near-uniform white; without this the noise makes PNG/TIFF pages
    # incompressible (1.5 MB instead of a few hundred KB). Only the darker noise tail stays on the paper.
    pixels[pixels > paper - 1.5 * sigma] = paper
    h, w = pixels.shape
    for _ in range(int(rng.integers(5, 40))):
        y, x = int(rng.integers(h - 3)), int(rng.integers(w - 3))
        s = int(rng.integers(1, 4))
        pixels[y:y + s, x:x + s] = float(rng.uniform(0, 90))
    if rng.random() < 0.3:
        edge = int(rng.integers(4, 20))
        pixels[:, :edge] *= 0.55
    out = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="L")
    if rotation:
        # PIL rotates counter-clockwise; rotation is clockwise.
        out = out.transpose({90: Image.Transpose.ROTATE_270, 180: Image.Transpose.ROTATE_180,
                             270: Image.Transpose.ROTATE_90}[rotation])
    return out


def _encode(image: Image.Image, fmt: str, quality: int = 85) -> bytes:
    buffer = io.BytesIO()
    if fmt == "png":
        image.save(buffer, format="PNG", dpi=(SCAN_DPI, SCAN_DPI), compress_level=3)
    elif fmt == "jpeg":
        image.save(buffer, format="JPEG", dpi=(SCAN_DPI, SCAN_DPI), quality=quality)
    else:
        raise ValueError(f"cannot encode a single image as {fmt!r}")
    return buffer.getvalue()


def _image_pdf(pages: Sequence[tuple[bytes, int, int, float]]) -> bytes:
    """An image-only PDF from encoded page images given as (bytes, width px, height px, dpi)."""
    pdf = pymupdf.open()
    for data, width, height, dpi in pages:
        page = pdf.new_page(width=width * 72 / dpi, height=height * 72 / dpi)
        page.insert_image(page.rect, stream=data)
    return _pdf_bytes(pdf)


def _check_args(label: str, kind: str, fmt: str, rotation: int) -> None:
    if label not in CLASSES:
        raise ValueError(f"unknown class {label!r}: expected one of {', '.join(CLASSES)}")
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}: expected one of {', '.join(KINDS)}")
    if fmt not in FORMATS:
        raise ValueError(f"unknown fmt {fmt!r}: expected one of {', '.join(FORMATS)}")
    if kind == "born-digital" and fmt != "pdf":
        raise ValueError(f"born-digital documents are PDFs: got fmt {fmt!r}")
    if rotation not in ROTATIONS:
        raise ValueError(f"rotation must be one of 0, 90, 180, 270 (degrees clockwise): got {rotation!r}")


def make_document(label: str, rng: np.random.Generator, *, kind: str = "born-digital", fmt: str = "pdf",
                  rotation: int = 0) -> tuple[bytes, SampleSpec]:
    """Generate one sample document.

    Args:
        label: one of ``CLASSES``.
        rng: source of all randomness; the same generator state gives the same bytes.
        kind: ``"born-digital"`` (PDF with a text layer) or ``"scanned"`` (raster pages, no text layer).
        fmt: ``"pdf"``; scans may also be ``"png"``, ``"jpeg"`` (first page only) or ``"tiff"`` (all pages).
        rotation: clockwise page rotation in degrees; scans are rasterised rotated, born-digital pages get
            a ``/Rotate`` entry.

    Returns:
        The file's bytes and a ``SampleSpec`` describing it.

    Raises:
        ValueError: for an unknown label, kind, fmt or rotation, or a born-digital non-PDF.
    """
    _check_args(label, kind, fmt, rotation)
    pdf = pymupdf.open()
    BUILDERS[label](pdf, rng)
    if kind == "born-digital":
        if rotation:
            for page in pdf:
                page.set_rotation(rotation)
        return _pdf_bytes(pdf), SampleSpec(label, kind, fmt, pdf.page_count, rotation)
    pages = [pdf[0]] if fmt in ("png", "jpeg") else list(pdf)
    images = [_scan_page(page, rng, rotation) for page in pages]
    quality = int(rng.integers(70, 93))
    if fmt == "pdf":
        data = _image_pdf([(_encode(im, "jpeg", quality), im.width, im.height, SCAN_DPI) for im in images])
    elif fmt == "tiff":
        buffer = io.BytesIO()
        images[0].save(buffer, format="TIFF", save_all=True, append_images=images[1:], compression="tiff_lzw",
                       dpi=(SCAN_DPI, SCAN_DPI))
        data = buffer.getvalue()
    else:
        data = _encode(images[0], fmt, quality)
    return data, SampleSpec(label, kind, fmt, len(images), rotation)


def _document_rng(seed: int, class_index: int, doc_index: int) -> np.random.Generator:
    return np.random.default_rng([seed, class_index, doc_index])


def generate_corpus(out_dir: Path, *, per_class: int, seed: int, scanned_share: float = 0.3,
                    classes: Sequence[str] = CLASSES, layout: str = "folders") -> list[dict]:
    """Write a labelled corpus of generated documents.

    Each document's randomness comes from ``(seed, index of its class in CLASSES, document index)``, so
    choosing fewer classes or more documents leaves the other files unchanged. Per class, the first
    ``round(per_class * scanned_share)`` positions of a seeded permutation are scans, cycling through
    image-only PDF, PNG, JPEG and TIFF.

    Args:
        out_dir: directory to write to (created if missing).
        per_class: documents per class.
        seed: corpus seed.
        scanned_share: share of documents per class that are scans, in [0, 1].
        classes: labels to generate, a subset of ``CLASSES``.
        layout: ``"folders"`` (``out_dir/<label>/<label>_<nnn>.<ext>``) or ``"labels_csv"``
            (``out_dir/documents/...`` plus ``out_dir/labels.csv`` with header ``file,label``).

    Returns:
        One dict per file: file (path relative to out_dir), label, kind, fmt, n_pages, rotation, sha256.

    Raises:
        ValueError: for an unknown class or layout, a negative per_class or a share outside [0, 1].
    """
    unknown = [label for label in classes if label not in CLASSES]
    if unknown:
        raise ValueError(f"unknown class {unknown[0]!r}: expected one of {', '.join(CLASSES)}")
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}: expected one of {', '.join(LAYOUTS)}")
    if per_class < 0:
        raise ValueError(f"per_class must be >= 0: got {per_class}")
    if not 0.0 <= scanned_share <= 1.0:
        raise ValueError(f"scanned_share must be between 0 and 1: got {scanned_share}")
    out_dir = Path(out_dir)
    manifest: list[dict] = []
    for label in dict.fromkeys(classes):
        class_index = CLASSES.index(label)
        order = np.random.default_rng([seed, class_index]).permutation(per_class)
        n_scans = round(per_class * scanned_share)
        scan_rank = {int(doc): rank for rank, doc in enumerate(order[:n_scans])}
        folder = out_dir / (label if layout == "folders" else "documents")
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            rng = _document_rng(seed, class_index, index)
            if index in scan_rank:
                # Offsetting by class spreads the formats even when each class has only a few scans.
                kind, fmt = "scanned", FORMATS[(scan_rank[index] + class_index) % len(FORMATS)]
                rotation = int(_pick(rng, ROTATIONS[1:])) if rng.random() < 0.1 else 0
            else:
                kind, fmt, rotation = "born-digital", "pdf", 0
            data, spec = make_document(label, rng, kind=kind, fmt=fmt, rotation=rotation)
            path = folder / f"{label}_{index:03d}.{EXTENSIONS[fmt]}"
            path.write_bytes(data)
            manifest.append({
                "file": path.relative_to(out_dir).as_posix(), "label": label, "kind": kind, "fmt": fmt,
                "n_pages": spec.n_pages, "rotation": rotation, "sha256": hashlib.sha256(data).hexdigest(),
            })
    if layout == "labels_csv":
        with (out_dir / "labels.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(("file", "label"))
            writer.writerows((row["file"], row["label"]) for row in manifest)
    return manifest


def make_bundle(parts: Sequence[bytes]) -> bytes:
    """Concatenate PDFs and PNG/JPEG/TIFF images (as image pages) into one PDF, in order.

    Raises:
        ValueError: when parts is empty or a part is neither a PDF nor a PNG, JPEG or TIFF image.
    """
    if not parts:
        raise ValueError("make_bundle needs at least one part: got none")
    bundle = pymupdf.open()
    for number, part in enumerate(parts):
        if part[:5] == b"%PDF-":
            with pymupdf.open(stream=part, filetype="pdf") as source:
                bundle.insert_pdf(source)
            continue
        try:
            image = Image.open(io.BytesIO(part))
        except UnidentifiedImageError:
            image = None
        if image is None or image.format not in ("PNG", "JPEG", "TIFF"):
            found = image.format if image is not None else repr(part[:8])
            raise ValueError(f"part {number} is not a PDF, PNG, JPEG or TIFF file: found {found}")
        for frame in ImageSequence.Iterator(image):
            dpi = float(frame.info.get("dpi", (SCAN_DPI, SCAN_DPI))[0]) or SCAN_DPI
            if image.format == "JPEG":
                data = part
            else:
                buffer = io.BytesIO()
                mode = "L" if frame.mode in ("L", "1", "I;16") else "RGB"
                frame.convert(mode).save(buffer, format="PNG", compress_level=3)
                data = buffer.getvalue()
            page = bundle.new_page(width=frame.width * 72 / dpi, height=frame.height * 72 / dpi)
            page.insert_image(page.rect, stream=data)
    return _pdf_bytes(bundle)
