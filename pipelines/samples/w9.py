"""IRS Form W-9 (class ``w9``): the filled-in first page, sometimes followed by an instructions page."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pymupdf

from pipelines.samples.blocks import irs_header
from pipelines.samples.canvas import BLACK, WHITE, Canvas
from pipelines.samples.fake import DATE_FORMATS, LAST, address, company, ein, person, pick, random_date, ssn

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
    (
        "Future developments.",
        "For the latest information about developments related to Form W-9 and its "
        "instructions, such as legislation enacted after they were published, go to www.irs.gov/FormW9.",
    ),
    (
        "What's New",
        "Line 3a has been modified to clarify how a disregarded entity completes this line. An "
        "LLC that is a disregarded entity should check the appropriate box for the tax classification of its "
        "owner. Otherwise, it should check the LLC box and enter its appropriate tax classification.",
    ),
)
W9_INSTRUCTIONS = (
    (
        "Purpose of Form",
        "An individual or entity (Form W-9 requester) who is required to file an information "
        "return with the IRS is giving you this form because they must obtain your correct taxpayer "
        "identification number (TIN), which may be your social security number (SSN), individual taxpayer "
        "identification number (ITIN), adoption taxpayer identification number (ATIN), or employer "
        "identification number (EIN), to report on an information return the amount paid to you, or other "
        "amount reportable on an information return. Examples of information returns include, but are not "
        "limited to, Form 1099-INT (interest earned or paid), Form 1099-DIV (dividends, including those from "
        "stocks or mutual funds), Form 1099-MISC (various types of income, prizes, awards, or gross proceeds), "
        "Form 1099-NEC (nonemployee compensation), Form 1099-B (stock or mutual fund sales), Form 1099-S "
        "(proceeds from real estate transactions) and Form 1099-K (merchant card and third-party network "
        "transactions).",
    ),
    (
        "",
        "Use Form W-9 only if you are a U.S. person (including a resident alien), to provide your correct "
        "TIN. If you do not return Form W-9 to the requester with a TIN, you might be subject to backup "
        "withholding.",
    ),
    (
        "By signing the filled-out form, you:",
        "1. Certify that the TIN you are giving is correct (or you are "
        "waiting for a number to be issued); 2. Certify that you are not subject to backup withholding; or 3. "
        "Claim exemption from backup withholding if you are a U.S. exempt payee; and 4. Certify to your "
        "non-foreign status for purposes of withholding under chapter 3 or 4 of the Code (if applicable); and "
        "5. Certify that FATCA code(s) entered on this form (if any) indicating that you are exempt from the "
        "FATCA reporting is correct.",
    ),
    (
        "Definition of a U.S. person.",
        "For federal tax purposes, you are considered a U.S. person if you are "
        "an individual who is a U.S. citizen or U.S. resident alien; a partnership, corporation, company, or "
        "association created or organized in the United States or under the laws of the United States; an "
        "estate (other than a foreign estate); or a domestic trust (as defined in Regulations section "
        "301.7701-7).",
    ),
    (
        "Backup Withholding",
        "What is backup withholding? Persons making certain payments to you must under "
        "certain conditions withhold and pay to the IRS 24% of such payments. This is called backup "
        "withholding. Payments that may be subject to backup withholding include interest, tax-exempt interest, "
        "dividends, broker and barter exchange transactions, rents, royalties, nonemployee pay, payments made "
        "in settlement of payment card and third-party network transactions, and certain payments from fishing "
        "boat operators. Real estate transactions are not subject to backup withholding.",
    ),
    (
        "Penalties",
        "Failure to furnish TIN. If you fail to furnish your correct TIN to a requester, you are "
        "subject to a penalty of $50 for each such failure unless your failure is due to reasonable cause and "
        "not to willful neglect. Civil penalty for false information with respect to withholding. If you make a "
        "false statement with no reasonable basis that results in no backup withholding, you are subject to a "
        "$500 penalty. Misuse of TINs. If the requester discloses or uses TINs in violation of federal law, the "
        "requester may be subject to civil and criminal penalties.",
    ),
)
W9_CLASSIFICATIONS = (
    "Individual/sole proprietor",
    "C corporation",
    "S corporation",
    "Partnership",
    "Trust/estate",
    "LLC. Enter the tax classification (C = C corporation, S = S corporation, P = Partnership)",
)


def build(pdf: pymupdf.Document, rng: np.random.Generator) -> None:
    """Draw a filled-in Form W-9 into pdf: page 1, and in about half the cases the instructions page."""
    rev, short = pick(rng, W9_REVISIONS)
    c = Canvas(pdf, rng)
    x0, x1 = c.mx, c.right
    y = irs_header(
        c,
        "W-9",
        f"(Rev. {rev})\nDepartment of the Treasury\nInternal Revenue Service",
        (
            "Request for Taxpayer",
            "Identification Number and Certification",
            "Go to www.irs.gov/FormW9 for instructions and the latest information.",
        ),
        ("Give form to the", "requester. Do not", "send to the IRS."),
        c.top,
    )
    c.text(
        x0,
        y,
        "Before you begin. For guidance related to the purpose of Form W-9, see Purpose of Form, below.",
        7.5,
        "hebo",
    )
    y += 6
    individual = rng.random() < 0.5
    name = person(rng) if individual else company(rng)
    business = (company(rng) if rng.random() < 0.4 else "") if individual else ""
    street, city = address(rng)
    rows = (
        (
            "1 Name of entity/individual. An entry is required. (For a sole proprietor or disregarded entity, "
            "enter the owner's name on line 1, and enter the business/disregarded entity's name on line "
            "2.)",
            name,
        ),
        ("2 Business name/disregarded entity name, if different from above.", business),
    )
    for caption, value in rows:
        c.field(x0 + 14, y, x1, y + 22, caption, value)
        y += 22
    c.rect(x0 + 14, y, x1 - 120, y + 62, width=0.5)
    c.text(
        x0 + 16,
        y + 8,
        "3a Check the appropriate box for federal tax classification of the "
        "entity/individual whose name is entered on line 1.",
        6.2,
    )
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
    c.text(
        x0 + 16,
        y + 58,
        "3b If on line 3a you checked Partnership or Trust/estate, or checked LLC and "
        "entered P, check this box if you have any foreign partners.",
        5.8,
    )
    c.field(x1 - 120, y, x1, y + 62, "4 Exemptions (codes apply only to", "")
    c.text(x1 - 118, y + 22, "Exempt payee code (if any)", 6)
    c.text(x1 - 118, y + 34, "Exemption from Foreign Account Tax", 6)
    c.text(x1 - 118, y + 41, "Compliance Act (FATCA) reporting", 6)
    c.text(x1 - 118, y + 48, "code (if any)", 6)
    y += 62
    requester = company(rng)
    rstreet, rcity = address(rng)
    c.field(
        x0 + 14,
        y,
        x1 - 190,
        y + 22,
        "5 Address (number, street, and apt. or suite no.). See instructions.",
        street,
    )
    c.field(x1 - 190, y, x1, y + 44, "Requester's name and address (optional)", "")
    c.text(x1 - 186, y + 20, requester, 8, "cour")
    c.text(x1 - 186, y + 30, rstreet, 8, "cour")
    c.text(x1 - 186, y + 40, rcity, 8, "cour")
    c.field(x0 + 14, y + 22, x1 - 190, y + 44, "6 City, state, and ZIP code", city)
    y += 44
    account = f"{int(rng.integers(10000, 99999))}-{int(rng.integers(100, 999))}" if rng.random() < 0.4 else ""
    c.field(x0 + 14, y, x1, y + 20, "7 List account number(s) here (optional)", account)
    c.shape.insert_text(
        (x0 + 10, y + 4),
        "Print or type.   See Specific Instructions on page 3.",
        fontsize=c.size(6.5),
        fontname="hebo",
        rotate=90,
    )
    y += 34
    c.rect(x0, y - 10, x0 + 40, y + 2, fill=BLACK)
    c.text(x0 + 4, y, "Part I", 9, "hebo", WHITE)
    c.text(x0 + 48, y, "Taxpayer Identification Number (TIN)", 9, "hebo")
    y += 12
    ty = c.para(x0, y, x1 - x0 - 170, W9_PART1, 7.6)
    c.para(x0, ty + 2, x1 - x0 - 170, W9_NOTE, 7.6)
    c.text(x1 - 160, y, "Social security number", 7, "hebo")
    tin = ssn(rng) if individual else ein(rng)
    ssn_digits = tin.replace("-", "") if individual else ""
    ein_digits = "" if individual else tin.replace("-", "")
    groups_ssn, groups_ein = (3, 2, 4), (2, 7)
    boxes = (
        ("", groups_ssn, ssn_digits, y + 4),
        ("Employer identification number", groups_ein, ein_digits, y + 40),
    )
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
    signed = random_date(rng, dt.date(2023, 1, 1), 800)
    c.text(x0 + 48, y + 6, "Signature of", 7)
    c.text(x0 + 48, y + 14, "U.S. person", 7)
    c.text(
        x0 + 110, y + 12, person(rng) if individual else name.split()[0] + " " + pick(rng, LAST), 12, "tiit"
    )
    c.text(x1 - 140, y + 12, "Date", 7)
    c.text(x1 - 110, y + 12, signed.strftime(pick(rng, DATE_FORMATS)), 9, "cour")
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
    c = Canvas(pdf, rng)
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
