"""Form 1040 (class ``1040``): the full return or one of its pages, Schedule 1 or Schedule C."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pymupdf

from pipelines.samples.blocks import irs_header
from pipelines.samples.canvas import BLACK, LIGHT, WHITE, Canvas
from pipelines.samples.fake import (
    FIRST,
    JOBS,
    LAST,
    SERVICES,
    address,
    company,
    ein,
    money,
    person,
    phone,
    pick,
    random_date,
    ssn,
)

FILING_STATUS = (
    "Single",
    "Married filing jointly",
    "Married filing separately (MFS)",
    "Head of household (HOH)",
    "Qualifying surviving spouse (QSS)",
)


def _numbered_lines(
    c: Canvas,
    y: float,
    lines: Sequence[tuple[str, str, float | None]],
    *,
    x0: float,
    x1: float,
    step: float = 13.0,
    size: float = 7.6,
) -> float:
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
            c.rtext(x1 - 4, y, money(value), 9, "cour")
        y += step
    return y


def _f1040_taxpayer(rng: np.random.Generator) -> dict:
    first, last = pick(rng, FIRST), pick(rng, LAST)
    street, city = address(rng)
    wages = float(rng.uniform(18000, 180000))
    return {
        "first": first,
        "last": last,
        "ssn": ssn(rng),
        "street": street,
        "city": city,
        "year": int(pick(rng, (2021, 2022, 2023, 2023, 2024))),
        "wages": round(wages, 2),
        "spouse": pick(rng, FIRST) if rng.random() < 0.4 else "",
        "status": int(rng.integers(5)),
    }


def _f1040_page1(pdf: pymupdf.Document, rng: np.random.Generator, tp: dict) -> None:
    c = Canvas(pdf, rng)
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
    c.text(
        x0, y, f"For the year Jan. 1-Dec. 31, {year}, or other tax year beginning , {year}, ending , 20", 7
    )
    c.rtext(x1, y, "See separate instructions.", 7)
    y += 4
    c.field(x0, y, x0 + 200, y + 22, "Your first name and middle initial", tp["first"])
    c.field(x0 + 200, y, x1 - 110, y + 22, "Last name", tp["last"])
    c.field(x1 - 110, y, x1, y + 22, "Your social security number", tp["ssn"])
    y += 22
    c.field(x0, y, x0 + 200, y + 22, "If joint return, spouse's first name and middle initial", tp["spouse"])
    c.field(x0 + 200, y, x1 - 110, y + 22, "Last name", tp["last"] if tp["spouse"] else "")
    c.field(x1 - 110, y, x1, y + 22, "Spouse's social security number", ssn(rng) if tp["spouse"] else "")
    y += 22
    c.field(
        x0,
        y,
        x1 - 170,
        y + 22,
        "Home address (number and street). If you have a P.O. box, see instructions.",
        tp["street"],
    )
    c.field(x1 - 170, y, x1 - 110, y + 22, "Apt. no.", "")
    c.rect(x1 - 110, y, x1, y + 66, width=0.5)
    c.text(x1 - 106, y + 9, "Presidential Election Campaign", 6, "hebo")
    c.para(
        x1 - 106,
        y + 17,
        100,
        "Check here if you, or your spouse if filing jointly, want $3 to go to "
        "this fund. Checking a box below will not change your tax or refund.",
        5.6,
    )
    c.checkbox(x1 - 100, y + 60)
    c.text(x1 - 90, y + 60, "You", 6)
    c.checkbox(x1 - 60, y + 60)
    c.text(x1 - 50, y + 60, "Spouse", 6)
    y += 22
    city, rest = tp["city"].split(", ")
    c.field(
        x0,
        y,
        x1 - 250,
        y + 22,
        "City, town, or post office. If you have a foreign address, also complete spaces below.",
        city,
    )
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
    c.para(
        x0 + 62,
        y,
        x1 - x0 - 150,
        f"At any time during {year}, did you: (a) receive (as a reward, award, "
        "or payment for property or services); or (b) sell, exchange, or otherwise dispose of a digital "
        "asset (or a financial interest in a digital asset)? (See instructions.)",
        6.8,
    )
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
    cols = (
        "(1) First name     Last name",
        "(2) Social security number",
        "(3) Relationship to you",
        "(4) Check if qualifies for: Child tax credit / Credit for other dependents",
    )
    for i, col in enumerate(cols):
        c.text(x0 + 62 + i * 118, y, col if i < 3 else "(4) Child tax credit", 6.5)
    n_dep = int(rng.integers(0, 4))
    for k in range(3):
        ry = y + 12 + k * 11
        c.line(x0 + 62, ry + 2, x1, ry + 2, 0.4)
        if k < n_dep:
            c.text(x0 + 64, ry, f"{pick(rng, FIRST)} {tp['last']}", 8, "cour")
            c.text(x0 + 182, ry, ssn(rng), 8, "cour")
            c.text(x0 + 300, ry, pick(rng, ("Son", "Daughter", "Stepchild", "Parent")), 8, "cour")
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
    c.para(
        x0, y + 14, 52, "Attach Form(s) W-2 here. Also attach Forms W-2G and 1099-R if tax was withheld.", 6
    )
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
        (
            "15",
            "Subtract line 14 from line 11. If zero or less, enter -0-. This is your taxable income",
            taxable,
        ),
    )
    step = min(15.0, (c.h - 44 - y) / len(lines))
    _numbered_lines(c, y + 4, lines, x0=x0 + 56, x1=x1, step=step)
    c.text(
        x0,
        c.h - 24,
        "For Disclosure, Privacy Act, and Paperwork Reduction Act Notice, see separate instructions.",
        6.5,
        "hebo",
    )
    c.text(x0 + 340, c.h - 24, "Cat. No. 11320B", 6.5)
    c.rtext(x1, c.h - 24, f"Form 1040 ({year})", 7, "hebo")
    c.commit()


def _f1040_page2(pdf: pymupdf.Document, rng: np.random.Generator, tp: dict) -> None:
    c = Canvas(pdf, rng)
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
        (
            "Tax and",
            "Credits",
            (
                ("16", "Tax (see instructions). Check if any from Form(s): 8814, 4972", tax),
                ("17", "Amount from Schedule 2, line 3", None),
                ("18", "Add lines 16 and 17", tax),
                ("19", "Child tax credit or credit for other dependents from Schedule 8812", credit or None),
                ("20", "Amount from Schedule 3, line 8", None),
                ("21", "Add lines 19 and 20", credit or None),
                ("22", "Subtract line 21 from line 18. If zero or less, enter -0-", total_tax),
                ("23", "Other taxes, including self-employment tax, from Schedule 2, line 21", None),
                ("24", "Add lines 22 and 23. This is your total tax", total_tax),
            ),
        ),
        (
            "Payments",
            "",
            (
                ("25a", "Federal income tax withheld from Form(s) W-2", withheld),
                ("b", "Form(s) 1099", None),
                ("d", "Add lines 25a through 25c", withheld),
                ("26", f"{year} estimated tax payments and amount applied from {year - 1} return", None),
                ("27", "Earned income credit (EIC)", None),
                ("28", "Additional child tax credit from Schedule 8812", None),
                ("29", "American opportunity credit from Form 8863, line 8", None),
                (
                    "32",
                    "Add lines 27, 28, 29, and 31. These are your total other payments and refundable credits",
                    None,
                ),
                ("33", "Add lines 25d, 26, and 32. These are your total payments", withheld),
            ),
        ),
        (
            "Refund",
            "",
            (
                (
                    "34",
                    "If line 33 is more than line 24, subtract line 24 from line 33. This is the amount you "
                    "overpaid",
                    max(withheld - total_tax, 0.0) or None,
                ),
                (
                    "35a",
                    "Amount of line 34 you want refunded to you. If Form 8888 is attached, check here",
                    max(withheld - total_tax, 0.0) or None,
                ),
                ("36", f"Amount of line 34 you want applied to your {year + 1} estimated tax", None),
            ),
        ),
        (
            "Amount",
            "You Owe",
            (
                (
                    "37",
                    "Subtract line 33 from line 24. This is the amount you owe. For details on how to pay, "
                    "go to www.irs.gov/Payments or see instructions",
                    max(total_tax - withheld, 0.0) or None,
                ),
                ("38", "Estimated tax penalty (see instructions)", None),
            ),
        ),
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
    c.text(
        x0 + 62,
        y,
        "Do you want to allow another person to discuss this return with the IRS? See instructions",
        7,
    )
    c.checkbox(x1 - 90, y + 1)
    c.text(x1 - 80, y, "Yes. Complete below.", 7)
    c.checkbox(x1 - 90, y + 12, True)
    c.text(x1 - 80, y + 11, "No", 7)
    y += 26
    c.line(x0, y - 8, x1, y - 8, 0.8)
    c.text(x0, y + 4, "Sign", 11, "hebo")
    c.text(x0, y + 16, "Here", 11, "hebo")
    y = c.para(
        x0 + 62,
        y,
        x1 - x0 - 62,
        "Under penalties of perjury, I declare that I have examined this "
        "return and accompanying schedules and statements, and to the best of my knowledge and "
        "belief, they are true, correct, and complete. Declaration of preparer (other than taxpayer) "
        "is based on all information of which preparer has any knowledge.",
        6.8,
    )
    c.field(x0 + 62, y, x0 + 250, y + 22, "Your signature", "")
    c.text(x0 + 70, y + 18, f"{tp['first']} {tp['last']}", 12, "tiit")
    signed = random_date(rng, dt.date(year + 1, 1, 15), 90).strftime("%m/%d/%Y")
    c.field(x0 + 250, y, x0 + 320, y + 22, "Date", signed, value_size=8)
    c.field(x0 + 320, y, x1, y + 22, "Your occupation", pick(rng, JOBS), value_size=8)
    y += 22
    c.field(x0 + 62, y, x0 + 250, y + 22, "Spouse's signature. If a joint return, both must sign.", "")
    c.field(x0 + 250, y, x0 + 320, y + 22, "Date", "")
    c.field(x0 + 320, y, x1, y + 22, "Spouse's occupation", "")
    y += 22
    c.field(x0 + 62, y, x0 + 250, y + 20, "Phone no.", phone(rng), value_size=8)
    c.field(
        x0 + 250,
        y,
        x1,
        y + 20,
        "Email address",
        f"{tp['first'].lower()}.{tp['last'].lower()}@example.com",
        value_size=8,
    )
    y += 32
    c.text(x0, y, "Paid", 9, "hebo")
    c.text(x0, y + 10, "Preparer", 9, "hebo")
    c.text(x0, y + 20, "Use Only", 9, "hebo")
    preparer = rng.random() < 0.5
    c.field(
        x0 + 62, y - 8, x0 + 200, y + 14, "Preparer's name", person(rng) if preparer else "", value_size=8
    )
    c.field(x0 + 200, y - 8, x0 + 330, y + 14, "Preparer's signature", "")
    c.field(x0 + 330, y - 8, x0 + 400, y + 14, "Date", "")
    c.field(
        x0 + 400,
        y - 8,
        x1,
        y + 14,
        "PTIN",
        f"P{int(rng.integers(10**7, 10**8))}" if preparer else "",
        value_size=8,
    )
    c.field(x0 + 62, y + 14, x1 - 120, y + 32, "Firm's name", company(rng) if preparer else "", value_size=8)
    c.field(x1 - 120, y + 14, x1, y + 32, "Phone no.", "")
    c.field(x0 + 62, y + 32, x1 - 120, y + 50, "Firm's address", "")
    c.field(x1 - 120, y + 32, x1, y + 50, "Firm's EIN", "")
    c.text(x0, c.h - 24, "Go to www.irs.gov/Form1040 for instructions and the latest information.", 6.5)
    c.rtext(x1, c.h - 24, f"Form 1040 ({year})", 7, "hebo")
    c.commit()


def _schedule_header(c: Canvas, sched: str, title: Sequence[str], seq: str, year: int, tp: dict) -> float:
    x0, x1 = c.mx, c.right
    y = irs_header(
        c,
        "",
        "",
        (
            *title,
            "Attach to Form 1040, 1040-SR, 1040-NR, or 1041.",
            "Go to www.irs.gov/Form1040 for instructions and the latest information.",
        ),
        ("OMB No. 1545-0074", str(year), f"Attachment Sequence No. {seq}"),
        c.top,
    )
    c.text(x0, c.top + 12, f"SCHEDULE {sched}", 11, "hebo")
    c.text(x0, c.top + 22, "(Form 1040)", 8, "hebo")
    c.text(x0, c.top + 34, "Department of the Treasury", 6.5)
    c.text(x0, c.top + 42, "Internal Revenue Service", 6.5)
    c.field(x0, y - 10, x1 - 130, y + 12, "Name(s) shown on return", f"{tp['first']} {tp['last']}")
    c.field(x1 - 130, y - 10, x1, y + 12, "Your social security number", tp["ssn"])
    return y + 26


def _part(c: Canvas, x: float, y: float, part: str, title: str) -> float:
    c.rect(x, y - 10, x + 40, y + 3, fill=BLACK)
    c.text(x + 4, y, part, 9, "hebo", WHITE)
    c.text(x + 48, y, title, 9, "hebo")
    return y + 16


def _schedule1(pdf: pymupdf.Document, rng: np.random.Generator, tp: dict) -> None:
    c = Canvas(pdf, rng)
    x0, x1 = c.mx, c.right
    year = tp["year"]
    y = _schedule_header(c, "1", ("Additional Income and", "Adjustments to Income"), "01", year, tp)
    biz = round(float(rng.uniform(-2000, 40000)), 2)
    unemp = round(float(rng.uniform(0, 9000)), 2) if rng.random() < 0.3 else 0.0
    y = _part(c, x0, y, "Part I", "Additional Income")
    step = float(rng.uniform(12.5, 13.5))
    y = _numbered_lines(
        c,
        y,
        (
            ("1", "Taxable refunds, credits, or offsets of state and local income taxes", None),
            ("2a", "Alimony received", None),
            ("3", "Business income or (loss). Attach Schedule C", biz),
            ("4", "Other gains or (losses). Attach Form 4797", None),
            (
                "5",
                "Rental real estate, royalties, partnerships, S corporations, trusts, etc. Attach Schedule E",
                None,
            ),
            ("6", "Farm income or (loss). Attach Schedule F", None),
            ("7", "Unemployment compensation", unemp or None),
            ("8a", "Net operating loss", None),
            ("8b", "Gambling", None),
            ("8z", "Other income. List type and amount:", None),
            ("9", "Total other income. Add lines 8a through 8z", None),
            (
                "10",
                "Combine lines 1 through 7 and 9. This is your additional income. Enter here and on Form "
                "1040, 1040-SR, or 1040-NR, line 8",
                biz + unemp,
            ),
        ),
        x0=x0,
        x1=x1,
        step=step,
    )
    y = _part(c, x0, y + 4, "Part II", "Adjustments to Income")
    educator = 300.0 if rng.random() < 0.3 else 0.0
    student = round(float(rng.uniform(0, 2500)), 2) if rng.random() < 0.4 else 0.0
    se = round(max(biz, 0) * 0.0765, 2)
    _numbered_lines(
        c,
        y,
        (
            ("11", "Educator expenses", educator or None),
            (
                "12",
                "Certain business expenses of reservists, performing artists, and fee-basis government "
                "officials. Attach Form 2106",
                None,
            ),
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
            (
                "26",
                "Add lines 11 through 23 and 25. These are your adjustments to income. Enter here and on Form "
                "1040, 1040-SR, or 1040-NR, line 10",
                educator + student + se,
            ),
        ),
        x0=x0,
        x1=x1,
        step=step,
    )
    c.text(x0, c.h - 24, "For Paperwork Reduction Act Notice, see your tax return instructions.", 6.5, "hebo")
    c.text(x0 + 300, c.h - 24, "Cat. No. 71479F", 6.5)
    c.rtext(x1, c.h - 24, f"Schedule 1 (Form 1040) {year}", 7, "hebo")
    c.commit()


SCHED_C_EXPENSES = (
    ("8", "Advertising"),
    ("9", "Car and truck expenses"),
    ("10", "Commissions and fees"),
    ("11", "Contract labor"),
    ("12", "Depletion"),
    ("13", "Depreciation and section 179"),
    ("14", "Employee benefit programs"),
    ("15", "Insurance (other than health)"),
    ("16a", "Interest: Mortgage"),
    ("16b", "Interest: Other"),
    ("17", "Legal and professional services"),
    ("18", "Office expense"),
    ("19", "Pension and profit-sharing plans"),
    ("20a", "Rent or lease: Vehicles, machinery"),
    ("20b", "Rent or lease: Other business property"),
    ("21", "Repairs and maintenance"),
    ("22", "Supplies (not included in Part III)"),
    ("23", "Taxes and licenses"),
    ("24a", "Travel"),
    ("24b", "Deductible meals"),
    ("25", "Utilities"),
    ("26", "Wages (less employment credits)"),
    ("27a", "Other expenses (from line 48)"),
)


def _schedule_c(pdf: pymupdf.Document, rng: np.random.Generator, tp: dict) -> None:
    c = Canvas(pdf, rng)
    x0, x1 = c.mx, c.right
    year = tp["year"]
    y = _schedule_header(c, "C", ("Profit or Loss From Business", "(Sole Proprietorship)"), "09", year, tp)
    activity, _, _ = pick(rng, SERVICES)
    business = company(rng)
    street, city = address(rng)
    c.field(
        x0,
        y - 14,
        x1 - 130,
        y + 8,
        "A Principal business or profession, including product or service (see instructions)",
        activity,
    )
    code = str(int(rng.integers(110000, 999999)))
    c.field(x1 - 130, y - 14, x1, y + 8, "B Enter code from instructions", code)
    c.field(
        x0, y + 8, x1 - 130, y + 30, "C Business name. If no separate business name, leave blank.", business
    )
    c.field(x1 - 130, y + 8, x1, y + 30, "D Employer ID number (EIN) (see instr.)", ein(rng))
    c.field(x0, y + 30, x1, y + 52, "E Business address (including suite or room no.)", f"{street}, {city}")
    y += 64
    method = int(rng.integers(2))
    c.text(x0, y, "F Accounting method:", 7.4)
    for i, m in enumerate(("(1) Cash", "(2) Accrual", "(3) Other (specify)")):
        c.checkbox(x0 + 100 + i * 80, y + 1, i == method)
        c.text(x0 + 110 + i * 80, y, m, 7.4)
    y += 11
    for q in (
        f'G Did you "materially participate" in the operation of this business during {year}? If "No," '
        "see instructions for limit on losses",
        f"H If you started or acquired this business during {year}, check here",
        f"I Did you make any payments in {year} that would require you to file Form(s) 1099? See "
        "instructions",
    ):
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
    y = _numbered_lines(
        c,
        y,
        (
            (
                "1",
                "Gross receipts or sales. See instructions for line 1 and check the box if this income was "
                "reported to you on Form W-2",
                gross,
            ),
            ("2", "Returns and allowances", returns),
            ("3", "Subtract line 2 from line 1", gross - returns),
            ("4", "Cost of goods sold (from line 42)", cogs),
            ("5", "Gross profit. Subtract line 4 from line 3", gross - returns - cogs),
            ("6", "Other income, including federal and state gasoline or fuel tax credit or refund", None),
            ("7", "Gross income. Add lines 5 and 6", gross - returns - cogs),
        ),
        x0=x0,
        x1=x1,
        step=step,
    )
    y = _part(
        c, x0, y + 2, "Part II", "Expenses. Enter expenses for business use of your home only on line 30."
    )
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
            c.rtext(cx + half - 7, cy, money(value), 8.5, "cour")
    y += rows * step + 4
    net = gross - returns - cogs - total
    _numbered_lines(
        c,
        y,
        (
            ("28", "Total expenses before expenses for business use of home. Add lines 8 through 27b", total),
            ("29", "Tentative profit or (loss). Subtract line 28 from line 7", net),
            ("30", "Expenses for business use of your home. Do not report these expenses elsewhere.", None),
            (
                "31",
                "Net profit or (loss). Subtract line 30 from line 29. If a profit, enter on both Schedule 1 "
                "(Form 1040), line 3, and on Schedule SE, line 2",
                net,
            ),
        ),
        x0=x0,
        x1=x1,
        step=step,
    )
    c.text(x0, c.h - 24, "For Paperwork Reduction Act Notice, see the separate instructions.", 6.5, "hebo")
    c.text(x0 + 300, c.h - 24, "Cat. No. 11334P", 6.5)
    c.rtext(x1, c.h - 24, f"Schedule C (Form 1040) {year}", 7, "hebo")
    c.commit()


def build(pdf: pymupdf.Document, rng: np.random.Generator) -> None:
    """Draw one taxpayer's Form 1040 into pdf: both pages (3 in 7), page 1 or 2 alone, Schedule 1 or Schedule C."""
    tp = _f1040_taxpayer(rng)
    variant = pick(rng, ("full", "full", "full", "page1", "page2", "schedule1", "schedule_c"))
    if variant in ("full", "page1"):
        _f1040_page1(pdf, rng, tp)
    if variant in ("full", "page2"):
        _f1040_page2(pdf, rng, tp)
    if variant == "schedule1":
        _schedule1(pdf, rng, tp)
    if variant == "schedule_c":
        _schedule_c(pdf, rng, tp)
