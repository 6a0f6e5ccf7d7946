"""Invoices (class ``invoice``): four layouts (classic, coloured band, freelancer, ERP printout), goods or
services, sometimes long enough to continue on a second page."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pymupdf

from pipelines.samples.blocks import items_table, party, totals
from pipelines.samples.canvas import ACCENTS, GREY, LIGHT, WHITE, Canvas
from pipelines.samples.fake import (
    BANKS,
    DATE_FORMATS,
    address,
    company,
    initials,
    line_items,
    person,
    phone,
    pick,
    random_date,
)

TERMS = ("Net 30", "Net 15", "Due on receipt", "Net 45", "2% 10, Net 30")


def build(pdf: pymupdf.Document, rng: np.random.Generator) -> None:
    """Draw one invoice into pdf in one of four layouts; long ones continue on a second page."""
    style = pick(rng, ("classic", "band", "freelance", "erp"))
    issuer = company(rng)
    street, city = address(rng)
    client = company(rng) if rng.random() < 0.8 else person(rng)
    cstreet, ccity = address(rng)
    issued = random_date(rng)
    due = issued + dt.timedelta(days=int(pick(rng, (15, 30, 30, 45, 60))))
    fmt = pick(rng, DATE_FORMATS)
    number = pick(
        rng,
        (
            f"INV-{int(rng.integers(1000, 99999))}",
            f"{issued.year}-{int(rng.integers(1, 999)):04d}",
            f"{int(rng.integers(100000, 999999))}",
            f"A{int(rng.integers(10000, 99999))}",
        ),
    )
    services = style == "freelance" or rng.random() < 0.35
    long_invoice = rng.random() < 0.12
    items = line_items(rng, int(rng.integers(20, 32)) if long_invoice else int(rng.integers(2, 11)), services)
    terms = pick(rng, TERMS)
    accent = pick(rng, ACCENTS)
    c = Canvas(pdf, rng)
    x0, x1 = c.mx, c.right
    y = c.top
    font = "cour" if style == "erp" else pick(rng, ("helv", "helv", "tiro"))
    bold = {"helv": "hebo", "tiro": "tibo", "cour": "cobo"}[font]
    if style == "band":
        c.rect(0, 0, c.w, y + 54, fill=accent, color=None)
        c.text(x0, y + 22, issuer, 16, "hebo", WHITE)
        c.text(x0, y + 36, f"{street} | {city} | {phone(rng)}", 8, "helv", WHITE)
        c.rtext(x1, y + 24, "INVOICE", 24, "hebo", WHITE)
        y += 80
    elif style == "freelance":
        c.ctext(c.w / 2, y + 14, person(rng), 18, bold)
        c.ctext(c.w / 2, y + 28, f"{street}, {city}", 8.5, font)
        c.ctext(c.w / 2, y + 40, f"{phone(rng)}  ·  billing@{issuer.split()[0].lower()}.com", 8.5, font)
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
            c.ctext(x0 + 27, y + 35, initials(issuer), 20, "hebo", WHITE)
            tx = x0 + 64
        else:
            tx = x0
        c.text(tx, y + 14, issuer, 14, bold)
        c.text(tx, y + 27, street, 8.5, font)
        c.text(tx, y + 38, city, 8.5, font)
        c.text(tx, y + 49, phone(rng), 8.5, font)
        c.rtext(x1, y + 24, "INVOICE", 26, bold, accent)
        y += 78
    meta = [
        ("Invoice No.", number),
        ("Invoice Date", issued.strftime(fmt)),
        ("Due Date", due.strftime(fmt)),
        ("Terms", terms),
    ]
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
    by = party(
        c, x0, y, pick(rng, ("Bill To:", "BILL TO", "Billed To", "Customer")), (client, cstreet, ccity), font
    )
    if rng.random() < 0.4:
        party(c, x0 + 170, y, "Ship To:", (client, *address(rng)), font)
    y = max(by, my) + 14
    header = (
        ("Description", "Hours", "Rate", "Amount")
        if services and rng.random() < 0.6
        else pick(
            rng,
            (
                ("Description", "Qty", "Unit Price", "Amount"),
                ("Item", "Quantity", "Price", "Total"),
                ("DESCRIPTION", "QTY", "UNIT PRICE", "LINE TOTAL"),
            ),
        )
    )
    fill = {"band": accent, "classic": pick(rng, (LIGHT, accent, None)), "freelance": None, "erp": None}[
        style
    ]
    limit = c.h - 200
    remaining = list(items)
    while True:
        fit = max(int((limit - y - 20) // 15), 1)
        chunk, remaining = remaining[:fit], remaining[fit:]
        y = items_table(c, y, chunk, header=header, header_fill=fill, font=font, grid=style != "freelance")
        if not remaining:
            break
        c.rtext(x1, c.h - 30, "Continued on next page", 8, font)
        c.commit()
        c = Canvas(pdf, rng)
        x0, x1 = c.mx, c.right
        c.text(x0, c.top + 10, f"{issuer}  -  Invoice {number} (continued)", 9, bold)
        c.rtext(x1, c.top + 10, "Page 2", 8, font)
        y = c.top + 30
    label_total = pick(rng, ("Total Due", "TOTAL", "Balance Due", "Amount Due"))
    y, total = totals(
        c, y, items, label_total=label_total, font=font, fill=accent if style == "band" else None
    )
    y += 10
    notes = [f"Payment terms: {terms}. Please include invoice number {number} with your payment."]
    if rng.random() < 0.6:
        bank = pick(rng, BANKS)
        notes.append(
            f"Bank transfer: {bank}, Routing No. {int(rng.integers(10**8, 10**9))}, "
            f"Account No. {int(rng.integers(10**9, 10**10))}."
        )
    if rng.random() < 0.5:
        notes.append(
            f"Make checks payable to {issuer}. A late fee of 1.5% per month applies to overdue balances."
        )
    contact = f"Questions about this invoice? Contact accounts@{issuer.split()[0].lower()}.com"
    notes.append(pick(rng, ("Thank you for your business!", "We appreciate your prompt payment.", contact)))
    c.text(x0, y, "Notes", 9, bold)
    y += 12
    for note in notes:
        y = c.para(x0, y, x1 - x0, note, 8, font)
    if style != "band":
        c.ctext(c.w / 2, c.h - 28, f"{issuer} · {street}, {city}", 7, font, GREY)
    c.commit()
