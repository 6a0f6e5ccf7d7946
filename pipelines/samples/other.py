"""The class ``other``: hard negatives that look like the four classes, and everyday business documents.

IRS look-alikes (W-4, 1099-NEC) share the W-9's and 1040's form vocabulary; a purchase order shares the
invoice's table; a bank statement and a receipt share amounts and dates; letters and meeting notes mention W-9s,
invoices and tax returns in running text. :func:`build` picks one of them with fixed weights.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pymupdf

from pipelines.samples.blocks import irs_header, items_table, party, totals
from pipelines.samples.canvas import ACCENTS, GREY, LIGHT, WHITE, Builder, Canvas
from pipelines.samples.fake import (
    BANKS,
    COMPANY_A,
    DATE_FORMATS,
    FIRST,
    JOBS,
    LAST,
    STORE_ITEMS,
    address,
    company,
    ein,
    line_items,
    money,
    person,
    phone,
    pick,
    random_date,
    ssn,
)


def _w4(pdf: pymupdf.Document, rng: np.random.Generator) -> None:
    c = Canvas(pdf, rng)
    x0, x1 = c.mx, c.right
    year = int(pick(rng, (2023, 2024, 2025)))
    y = irs_header(
        c,
        "W-4",
        "Department of the Treasury\nInternal Revenue Service",
        (
            "Employee's Withholding",
            "Certificate",
            "Complete Form W-4 so that your employer can withhold the correct federal income tax from your pay.",
            "Give Form W-4 to your employer. Your withholding is subject to review by the IRS.",
        ),
        ("OMB No. 1545-0074", str(year)),
        c.top,
    )
    first, last = pick(rng, FIRST), pick(rng, LAST)
    street, city = address(rng)
    c.text(x0, y + 10, "Step 1:", 9, "hebo")
    c.text(x0, y + 20, "Enter", 9, "hebo")
    c.text(x0, y + 30, "Personal", 9, "hebo")
    c.text(x0, y + 40, "Information", 9, "hebo")
    fx = x0 + 70
    c.field(fx, y, fx + 170, y + 22, "(a) First name and middle initial", first)
    c.field(fx + 170, y, x1 - 120, y + 22, "Last name", last)
    c.field(x1 - 120, y, x1, y + 22, "(b) Social security number", ssn(rng))
    c.field(fx, y + 22, x1 - 120, y + 44, "Address", street)
    c.field(fx, y + 44, x1 - 120, y + 66, "City or town, state, and ZIP code", city)
    c.para(
        x1 - 116,
        y + 32,
        112,
        "Does your name match the name on your social security card? If not, to "
        "ensure you get credit for your earnings, contact SSA.",
        6,
    )
    status = int(rng.integers(3))
    for i, label in enumerate(
        (
            "Single or Married filing separately",
            "Married filing jointly or Qualifying surviving spouse",
            "Head of household (Check only if you're unmarried and "
            "pay more than half the costs of keeping up a home.)",
        )
    ):
        c.checkbox(fx + 4, y + 80 + i * 11, i == status)
        c.text(fx + 14, y + 79 + i * 11, label, 7)
    y += 124
    c.para(
        x0,
        y,
        x1 - x0,
        "Complete Steps 2-4 ONLY if they apply to you; otherwise, skip to Step 5. See "
        "page 2 for more information on each step, who can claim exemption from withholding, and when to "
        "use the estimator at www.irs.gov/W4App.",
        7.6,
        "hebo",
    )
    y += 30
    steps = (
        (
            "Step 2:",
            "Multiple Jobs or Spouse Works",
            "Complete this step if you (1) hold more than one job "
            "at a time, or (2) are married filing jointly and your spouse also works. The correct amount of "
            "withholding depends on income earned from all of these jobs. Do only one of the following: (a) Use "
            "the estimator at www.irs.gov/W4App for the most accurate withholding for this step; (b) Use the "
            "Multiple Jobs Worksheet on page 3; or (c) If there are only two jobs total, you may check this "
            "box.",
        ),
        (
            "Step 3:",
            "Claim Dependent and Other Credits",
            "If your total income will be $200,000 or less "
            "($400,000 or less if married filing jointly): Multiply the number of qualifying children under age "
            "17 by $2,000. Multiply the number of other dependents by $500. Add the amounts above for "
            "qualifying children and other dependents.",
        ),
        (
            "Step 4",
            "(optional): Other Adjustments",
            "(a) Other income (not from jobs). If you want tax "
            "withheld for other income you expect this year that won't have withholding, enter the amount of "
            "other income here. (b) Deductions. If you expect to claim deductions other than the standard "
            "deduction. (c) Extra withholding. Enter any additional tax you want withheld each pay period.",
        ),
    )
    for head, title, body in steps:
        c.text(x0, y, head, 9, "hebo")
        c.para(x0, y + 10, fx - x0 - 4, title, 7.5, "hebo", 1.1)
        end = c.para(fx, y, x1 - fx - 100, body, 7.2)
        for k in range(2):
            c.rect(x1 - 80, y - 6 + k * 20, x1, y + 8 + k * 20, width=0.5)
            c.text(x1 - 92, y + 5 + k * 20, "$", 8)
            if rng.random() < 0.3:
                c.rtext(x1 - 4, y + 5 + k * 20, money(float(rng.integers(1, 40)) * 500), 9, "cour")
        y = max(end, y + 40) + 8
        c.line(x0, y - 8, x1, y - 8, 0.6)
    c.text(x0, y + 6, "Step 5:", 9, "hebo")
    c.text(x0, y + 16, "Sign Here", 9, "hebo")
    c.para(
        fx,
        y + 2,
        x1 - fx,
        "Under penalties of perjury, I declare that this certificate, to the best of "
        "my knowledge and belief, is true, correct, and complete.",
        7.2,
    )
    c.field(
        fx, y + 18, x1 - 120, y + 40, "Employee's signature (This form is not valid unless you sign it.)", ""
    )
    c.text(fx + 8, y + 37, f"{first} {last}", 12, "tiit")
    c.field(
        x1 - 120, y + 18, x1, y + 40, "Date", random_date(rng, dt.date(year, 1, 1), 300).strftime("%m/%d/%Y")
    )
    y += 54
    employer = company(rng)
    c.text(x0, y + 10, "Employers", 9, "hebo")
    c.text(x0, y + 20, "Only", 9, "hebo")
    c.field(
        fx, y, x1 - 200, y + 24, "Employer's name and address", f"{employer}, {address(rng)[1]}", value_size=8
    )
    c.field(
        x1 - 200,
        y,
        x1 - 110,
        y + 24,
        "First date of employment",
        random_date(rng, dt.date(year, 1, 1), 300).strftime("%m/%d/%Y"),
        value_size=8,
    )
    c.field(x1 - 110, y, x1, y + 24, "Employer identification number (EIN)", ein(rng), value_size=8)
    c.text(x0, c.h - 24, "For Privacy Act and Paperwork Reduction Act Notice, see page 3.", 6.5, "hebo")
    c.text(x0 + 300, c.h - 24, "Cat. No. 10220Q", 6.5)
    c.rtext(x1, c.h - 24, f"Form W-4 ({year})", 7, "hebo")
    c.commit()


def _f1099nec(pdf: pymupdf.Document, rng: np.random.Generator) -> None:
    c = Canvas(pdf, rng)
    x0, x1 = c.mx, c.right
    year = int(pick(rng, (2022, 2023, 2024)))
    payer = company(rng)
    pstreet, pcity = address(rng)
    recipient = person(rng)
    rstreet, rcity = address(rng)
    comp = round(float(rng.uniform(600, 90000)), 2)
    y = c.top + 20
    c.text(x0, c.top, pick(rng, ("CORRECTED (if checked)", "VOID  CORRECTED", "")), 8)
    mid = x0 + (x1 - x0) * 0.5
    right = x1 - 120
    c.field(
        x0,
        y,
        mid,
        y + 70,
        "PAYER'S name, street address, city or town, state or province, country, ZIP "
        "or foreign postal code, and telephone no.",
        "",
    )
    for i, line in enumerate((payer, pstreet, pcity, phone(rng))):
        c.text(x0 + 4, y + 26 + i * 11, line, 9, "cour")
    c.rect(mid, y, right, y + 70, width=0.5)
    c.text(mid + 4, y + 10, "OMB No. 1545-0116", 7)
    c.text(mid + 4, y + 30, "Form 1099-NEC", 11, "hebo")
    c.text(mid + 4, y + 44, "(Rev. January 2024)", 7)
    c.text(mid + 4, y + 60, f"For calendar year {year}", 7)
    c.text(right + 6, y + 20, "Nonemployee", 12, "hebo")
    c.text(right + 6, y + 35, "Compensation", 12, "hebo")
    y += 70
    c.field(x0, y, x0 + (mid - x0) / 2, y + 24, "PAYER'S TIN", ein(rng))
    c.field(x0 + (mid - x0) / 2, y, mid, y + 24, "RECIPIENT'S TIN", ssn(rng, masked=True))
    c.field(mid, y, right, y + 24, "1 Nonemployee compensation", f"$ {money(comp)}")
    c.rect(right, y, x1, y + 96, width=0.5)
    c.text(right + 6, y + 14, "Copy B", 11, "hebo")
    c.text(right + 6, y + 26, "For Recipient", 8, "hebo")
    c.para(
        right + 6,
        y + 38,
        108,
        "This is important tax information and is being furnished to the IRS. If "
        "you are required to file a return, a negligence penalty or other sanction may be imposed on you "
        "if this income is taxable and the IRS determines that it has not been reported.",
        5.8,
    )
    y += 24
    c.field(x0, y, mid, y + 24, "RECIPIENT'S name", recipient)
    c.field(
        mid,
        y,
        right,
        y + 24,
        "2 Payer made direct sales totaling $5,000 or more of consumer products to recipient for resale",
        "",
    )
    y += 24
    c.field(x0, y, mid, y + 24, "Street address (including apt. no.)", rstreet)
    c.field(mid, y, right, y + 24, "3", "")
    y += 24
    withheld = round(comp * float(rng.uniform(0, 0.1)), 2) if rng.random() < 0.3 else 0.0
    c.field(
        x0, y, mid, y + 24, "City or town, state or province, country, and ZIP or foreign postal code", rcity
    )
    c.field(
        mid, y, right, y + 24, "4 Federal income tax withheld", f"$ {money(withheld)}" if withheld else "$"
    )
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
    items = [
        (name, round(float(rng.uniform(lo, hi)), 2), int(rng.integers(1, 4)))
        for name, lo, hi in (pick(rng, STORE_ITEMS) for _ in range(int(rng.integers(3, 14))))
    ]
    height = 330 + 12 * len(items)
    c = Canvas(pdf, rng, width=float(rng.uniform(210, 240)), height=height)
    c.mx = float(rng.uniform(10, 16))
    x0, x1 = c.mx, c.right
    kind = pick(rng, ("MARKET", "GROCERY", "PHARMACY", "HARDWARE", "FOODS"))
    store = f"{pick(rng, COMPANY_A).upper()} {kind}"
    street, city = address(rng)
    y = 24.0
    mid = c.w / 2
    c.ctext(mid, y, store, 11, "cobo")
    for line in (street.upper(), city.upper(), phone(rng)):
        y += 11
        c.ctext(mid, y, line, 7.5, "cour")
    when = random_date(rng)
    y += 18
    c.text(
        x0,
        y,
        f"{when.strftime('%m/%d/%Y')} {int(rng.integers(7, 22)):02d}:{int(rng.integers(60)):02d}",
        7.5,
        "cour",
    )
    c.rtext(x1, y, f"STORE {int(rng.integers(100, 999))} REG {int(rng.integers(1, 12))}", 7.5, "cour")
    y += 10
    c.text(x0, y, f"CASHIER: {pick(rng, FIRST).upper()}", 7.5, "cour")
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
    tax = subtotal * float(pick(rng, (0.0, 0.05, 0.0625, 0.0725, 0.08)))
    y += 6
    for label, value in (("SUBTOTAL", subtotal), ("TAX", tax), ("TOTAL", subtotal + tax)):
        c.text(x0 + 60, y, label, 8 if label != "TOTAL" else 9.5, "cobo" if label == "TOTAL" else "cour")
        c.rtext(x1, y, f"{value:.2f}", 8 if label != "TOTAL" else 9.5, "cobo" if label == "TOTAL" else "cour")
        y += 12
    card = pick(rng, ("VISA", "MASTERCARD", "AMEX", "DEBIT", "CASH"))
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
    c.ctext(
        mid,
        y,
        pick(
            rng,
            (
                "THANK YOU FOR SHOPPING WITH US!",
                "THANK YOU! PLEASE COME AGAIN",
                "SAVE THIS RECEIPT FOR RETURNS",
            ),
        ),
        7.5,
        "cobo",
    )
    y += 11
    c.ctext(mid, y, "RETURNS WITHIN 30 DAYS WITH RECEIPT", 6.5, "cour")
    c.commit()


LETTER_TOPICS = (
    (
        "Vendor onboarding",
        (
            "Thank you for agreeing to provide services to {company}. As part of our vendor onboarding process, "
            "we need a few documents before we can issue payments.",
            "Please complete, sign and return the enclosed Form W-9 so that we have your correct taxpayer "
            "identification number on file. Without it we may be required to apply backup withholding.",
            "Once we receive the form, your account will be activated in our payables system and invoices can be "
            "submitted through the supplier portal.",
        ),
    ),
    (
        "Payment reminder",
        (
            "Our records indicate that invoice {number} dated {date} remains unpaid. We understand that "
            "oversights happen and would appreciate your attention to this matter.",
            "If payment has already been sent, please disregard this letter. Otherwise, kindly remit the "
            "outstanding balance of {amount} within ten business days.",
            "Should you have any questions regarding this account, please contact our billing department.",
        ),
    ),
    (
        "Employment verification",
        (
            "This letter confirms that {person} has been employed by {company} since {date} as a full-time "
            "employee.",
            "{person} currently holds the position of {job} with an annual base salary of {amount}. Pay stubs "
            "are available on request through our human resources office.",
            "This information is provided at the request of the employee and is confidential.",
        ),
    ),
    (
        "Your tax documents",
        (
            "Enclosed please find the documents we prepared for your {year} federal and state income tax "
            "returns.",
            "Please review the returns carefully, sign where indicated and keep a copy for your records. Your "
            "Form 1040 will be filed electronically once we receive the signed authorization.",
            "We appreciate the opportunity to serve you and look forward to working with you again next year.",
        ),
    ),
    (
        "Office relocation",
        (
            "We are pleased to announce that {company} will move to a new office on {date}.",
            "Our phone numbers and email addresses will remain the same. Please update your records with our new "
            "mailing address shown above for all future correspondence.",
            "We look forward to welcoming you at our new location.",
        ),
    ),
)


def _letter(pdf: pymupdf.Document, rng: np.random.Generator) -> None:
    c = Canvas(pdf, rng)
    x0, x1 = c.mx + 20, c.right - 20
    font = pick(rng, ("tiro", "helv"))
    bold = "tibo" if font == "tiro" else "hebo"
    sender = company(rng)
    street, city = address(rng)
    y = c.top + 20
    c.text(x0, y, sender, 15, bold, pick(rng, ACCENTS))
    c.text(x0, y + 14, f"{street}  ·  {city}  ·  {phone(rng)}", 8, font, GREY)
    c.line(x0, y + 22, x1, y + 22, 0.8, GREY)
    y += 56
    when = random_date(rng)
    c.text(x0, y, when.strftime("%B %d, %Y"), 10, font)
    recipient = person(rng)
    rstreet, rcity = address(rng)
    y += 28
    for line in (recipient, company(rng) if rng.random() < 0.5 else "", rstreet, rcity):
        if line:
            c.text(x0, y, line, 10, font)
            y += 13
    topic, paragraphs = pick(rng, LETTER_TOPICS)
    y += 16
    c.text(x0, y, f"Re: {topic}", 10, bold)
    y += 24
    last = recipient.split()[-1]
    c.text(x0, y, f"Dear {pick(rng, ('Mr.', 'Ms.', 'Dr.'))} {last},", 10, font)
    y += 22
    values = {
        "company": sender,
        "number": f"INV-{int(rng.integers(1000, 99999))}",
        "date": random_date(rng).strftime("%B %d, %Y"),
        "amount": money(float(rng.uniform(300, 90000)), True),
        "person": recipient,
        "job": pick(rng, JOBS).lower(),
        "year": when.year - 1,
    }
    for paragraph in paragraphs:
        y = c.para(x0, y, x1 - x0, paragraph.format(**values), 10, font, 1.35) + 10
    y += 10
    c.text(x0, y, pick(rng, ("Sincerely,", "Best regards,", "Kind regards,", "Yours truly,")), 10, font)
    signer = person(rng)
    c.text(x0, y + 28, signer, 14, "tiit")
    c.text(x0, y + 46, signer, 10, font)
    c.text(
        x0,
        y + 59,
        pick(rng, ("Accounts Payable", "Office Manager", "Human Resources", "Partner", "Director")),
        10,
        font,
    )
    if rng.random() < 0.4:
        c.text(x0, y + 86, "Enclosure", 9, font)
    c.commit()


def _bank_statement(pdf: pymupdf.Document, rng: np.random.Generator) -> None:
    bank = pick(rng, BANKS)
    holder = person(rng)
    street, city = address(rng)
    end = random_date(rng)
    start = end - dt.timedelta(days=29)
    opening = round(float(rng.uniform(300, 25000)), 2)
    merchants = (
        "POS PURCHASE GROCERY",
        "ACH DEBIT UTILITY CO",
        "CHECK #",
        "ATM WITHDRAWAL",
        "ONLINE TRANSFER TO SAV",
        "DIRECT DEPOSIT PAYROLL",
        "CARD PURCHASE GAS STATION",
        "ACH CREDIT REFUND",
        "MORTGAGE PAYMENT",
        "CARD PURCHASE RESTAURANT",
        "MOBILE DEPOSIT",
        "INSURANCE PREMIUM",
    )
    tx = []
    for k in range(int(rng.integers(24, 46))):
        desc = pick(rng, merchants)
        credit = desc.startswith(("DIRECT DEPOSIT", "ACH CREDIT", "MOBILE DEPOSIT"))
        amount = round(float(rng.uniform(800, 4200) if desc.startswith("DIRECT") else rng.uniform(4, 450)), 2)
        if desc == "CHECK #":
            desc = f"CHECK #{int(rng.integers(1000, 1999))}"
        when = start + dt.timedelta(days=int(k * 29 / 46 + rng.integers(0, 2)))
        tx.append((when, desc, amount if credit else -amount))
    deposits = sum(a for _, _, a in tx if a > 0)
    withdrawals = -sum(a for _, _, a in tx if a < 0)
    account = f"XXXX-XXXX-{int(rng.integers(1000, 9999))}"
    c = Canvas(pdf, rng)
    x0, x1 = c.mx, c.right
    y = c.top
    accent = pick(rng, ACCENTS)
    c.text(x0, y + 14, bank, 15, "hebo", accent)
    c.text(x0, y + 26, "Member FDIC", 7, "helv", GREY)
    c.rtext(x1, y + 14, "Account Statement", 12, "hebo")
    c.rtext(x1, y + 28, f"{start.strftime('%B %d, %Y')} through {end.strftime('%B %d, %Y')}", 8)
    y += 56
    party(c, x0, y, holder, (street, city))
    c.text(x1 - 200, y, "Account Number:", 8.5, "hebo")
    c.text(x1 - 110, y, account, 8.5)
    c.text(x1 - 200, y + 12, "Account Type:", 8.5, "hebo")
    c.text(x1 - 110, y + 12, pick(rng, ("Everyday Checking", "Premier Checking", "Business Checking")), 8.5)
    c.text(x1 - 200, y + 24, "Customer Service:", 8.5, "hebo")
    c.text(x1 - 110, y + 24, phone(rng), 8.5)
    y += 62
    c.rect(x0, y, x1, y + 16, fill=accent, color=None)
    c.text(x0 + 6, y + 11, "Account Summary", 9, "hebo", WHITE)
    y += 30
    for label, value in (
        ("Beginning balance on " + start.strftime("%m/%d"), opening),
        ("Deposits and other credits", deposits),
        ("Withdrawals and other debits", -withdrawals),
        ("Ending balance on " + end.strftime("%m/%d"), opening + deposits - withdrawals),
    ):
        c.text(x0 + 6, y, label, 8.5)
        c.rtext(x0 + 330, y, money(value, True), 8.5)
        y += 12
    y += 16

    def table_header(cv: Canvas, yy: float) -> float:
        cv.rect(cv.mx, yy, cv.right, yy + 16, fill=LIGHT, color=None)
        for label, xx, right_aligned in (
            ("Date", cv.mx + 4, False),
            ("Description", cv.mx + 60, False),
            ("Withdrawals", cv.right - 160, True),
            ("Deposits", cv.right - 85, True),
            ("Balance", cv.right - 4, True),
        ):
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
            c = Canvas(pdf, rng)
            x0, x1 = c.mx, c.right
            c.text(x0, c.top + 10, f"{bank}  -  {holder}  -  Account {account}", 8.5, "hebo")
            y = table_header(c, c.top + 24)
        balance += amount
        c.text(x0 + 4, y, when.strftime("%m/%d"), 8)
        c.text(x0 + 60, y, desc, 8)
        c.rtext(x1 - (160 if amount < 0 else 85), y, money(abs(amount)), 8)
        c.rtext(x1 - 4, y, money(balance), 8)
        y += 13
    y += 16
    if page == 1 or y > c.h - 160:
        c.rtext(x1, c.h - 28, f"Page {page}", 7.5)
        c.commit()
        page += 1
        c = Canvas(pdf, rng)
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
    c = Canvas(pdf, rng)
    x0, x1 = c.mx, c.right
    buyer = company(rng)
    street, city = address(rng)
    vendor = company(rng)
    y = c.top
    c.text(x0, y + 14, buyer, 14, "hebo")
    c.text(x0, y + 27, street, 8.5)
    c.text(x0, y + 38, city, 8.5)
    c.rtext(x1, y + 22, "PURCHASE ORDER", 20, "hebo", pick(rng, ACCENTS))
    y += 64
    ordered = random_date(rng)
    fmt = pick(rng, DATE_FORMATS)
    for i, (label, value) in enumerate(
        (
            ("PO Number", f"PO-{int(rng.integers(10000, 99999))}"),
            ("Order Date", ordered.strftime(fmt)),
            ("Requested Delivery", (ordered + dt.timedelta(days=14)).strftime(fmt)),
            ("Buyer", person(rng)),
        )
    ):
        c.text(x1 - 190, y + i * 12, f"{label}:", 8.5, "hebo")
        c.rtext(x1, y + i * 12, value, 8.5)
    party(c, x0, y, "Vendor:", (vendor, *address(rng)))
    party(c, x0 + 170, y, "Ship To:", (buyer, street, city))
    y += 70
    items = line_items(rng, int(rng.integers(2, 10)), False)
    y = items_table(c, y, items, header=("Item Description", "Qty", "Unit Cost", "Total"), header_fill=LIGHT)
    y, _ = totals(c, y, items, label_total="PO Total")
    y += 12
    for note in (
        "Please reference the PO number on all invoices, packing slips and correspondence.",
        "Goods are subject to inspection upon delivery. Notify the buyer immediately if you are "
        "unable to ship as specified.",
        "Authorized by: " + person(rng),
    ):
        y = c.para(x0, y, x1 - x0, note, 8) + 3
    c.commit()


def _meeting_notes(pdf: pymupdf.Document, rng: np.random.Generator) -> None:
    c = Canvas(pdf, rng)
    x0, x1 = c.mx + 10, c.right - 10
    team = pick(rng, ("Finance", "Operations", "Product", "Sales", "Facilities", "IT"))
    y = c.top + 16
    c.text(x0, y, f"{team} Team Meeting Notes", 16, "hebo")
    y += 22
    when = random_date(rng)
    people = sorted({person(rng) for _ in range(int(rng.integers(3, 7)))})
    for label, value in (
        ("Date", when.strftime("%A, %B %d, %Y")),
        ("Time", f"{int(rng.integers(8, 16))}:00 - {int(rng.integers(16, 18))}:00"),
        ("Location", pick(rng, ("Conference Room B", "Zoom", "Main office", "Teams call"))),
        ("Attendees", ", ".join(people)),
    ):
        c.text(x0, y, f"{label}:", 9.5, "hebo")
        y = c.para(x0 + 70, y, x1 - x0 - 70, value, 9.5)
    topics = (
        "Review of last quarter's budget and variances",
        "Vendor contract renewals due next month",
        "Update on the new expense reporting tool",
        "Hiring plan for the second half of the year",
        "Customer feedback from the spring survey",
        "Office supply ordering process",
        "Timeline for the year-end close",
        "Security awareness training completion",
    )
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
    remarks = (
        "The team agreed to revisit this item at the next meeting once more data is available.",
        "Concerns were raised about the timeline; a revised plan will be circulated by email.",
        "No objections were raised and the proposal was approved.",
        "Several options were compared and the group preferred the lower-cost alternative.",
    )
    for topic in chosen:
        y = c.para(x0 + 8, y, x1 - x0 - 8, f"{topic}: {pick(rng, remarks)}", 9.5) + 4
    y += 8
    c.text(x0, y, "Action Items", 12, "hebo")
    y += 15
    for topic in chosen[:3]:
        owner = pick(rng, people)
        due = (when + dt.timedelta(days=int(rng.integers(3, 21)))).strftime("%m/%d")
        c.text(x0 + 8, y, f"- {owner}: follow up on {topic.lower()[:48]} (due {due})", 9.5)
        y += 13
    c.text(x0, y + 16, f"Next meeting: {(when + dt.timedelta(days=14)).strftime('%B %d, %Y')}", 9.5, "heit")
    c.commit()


OTHER_BUILDERS: tuple[tuple[Builder, float], ...] = (
    (_w4, 0.17),
    (_f1099nec, 0.17),
    (_receipt, 0.13),
    (_letter, 0.16),
    (_bank_statement, 0.13),
    (_purchase_order, 0.12),
    (_meeting_notes, 0.12),
)


def build(pdf: pymupdf.Document, rng: np.random.Generator) -> None:
    """Draw one document of the class "other" into pdf, its kind drawn with the weights of OTHER_BUILDERS."""
    weights = np.array([w for _, w in OTHER_BUILDERS])
    builder = OTHER_BUILDERS[int(rng.choice(len(OTHER_BUILDERS), p=weights / weights.sum()))][0]
    builder(pdf, rng)
