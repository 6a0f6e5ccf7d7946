"""Payslips (class ``payslip``): earnings statement, pay stub or monospaced printout, sometimes with a
non-negotiable check at the bottom."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pymupdf

from pipelines.samples.blocks import party
from pipelines.samples.canvas import ACCENTS, GREY, LIGHT, WHITE, Canvas
from pipelines.samples.fake import BANKS, CITIES, address, company, money, person, pick, random_date, ssn

EARNINGS = (
    ("Regular", 1.0),
    ("Overtime", 1.5),
    ("Holiday", 1.0),
    ("Vacation", 1.0),
    ("Shift Differential", 0.1),
)


def build(pdf: pymupdf.Document, rng: np.random.Generator) -> None:
    """Draw one payslip into pdf: earnings, deductions, net pay, sometimes a non-negotiable check."""
    style = pick(rng, ("statement", "stub", "mono"))
    employer = company(rng)
    street, city = address(rng)
    employee = person(rng)
    estreet, ecity = address(rng)
    frequency, days = pick(rng, (("Biweekly", 14), ("Weekly", 7), ("Semi-monthly", 15), ("Monthly", 30)))
    end = random_date(rng)
    start = end - dt.timedelta(days=days - 1)
    paid = end + dt.timedelta(days=int(rng.integers(2, 7)))
    periods = max((end - dt.date(end.year, 1, 1)).days // days + 1, 1)
    fmt = pick(rng, ("%m/%d/%Y", "%m/%d/%y", "%Y-%m-%d", "%b %d, %Y"))
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
    deductions = [
        ("Federal Income Tax", gross * float(rng.uniform(0.08, 0.16))),
        ("Social Security", gross * 0.062),
        ("Medicare", gross * 0.0145),
    ]
    if rng.random() < 0.75:
        state_tax = gross * float(rng.uniform(0.02, 0.06))
        deductions.append((f"{pick(rng, CITIES)[1]} State Income Tax", state_tax))
    for name, lo, hi in (
        ("401(k)", 0.03, 0.08),
        ("Medical", 0.02, 0.05),
        ("Dental", 0.003, 0.01),
        ("Vision", 0.001, 0.004),
        ("Life Insurance", 0.001, 0.003),
    ):
        if rng.random() < 0.5:
            deductions.append((name, gross * float(rng.uniform(lo, hi))))
    total_ded = sum(d[1] for d in deductions)
    net = gross - total_ded
    c = Canvas(pdf, rng)
    x0, x1 = c.mx, c.right
    y = c.top
    font = "cour" if style == "mono" else "helv"
    bold = "cobo" if style == "mono" else "hebo"
    title = pick(
        rng,
        {
            "statement": ("Earnings Statement", "EARNINGS STATEMENT", "Statement of Earnings"),
            "stub": ("PAY STUB", "Payslip", "Employee Pay Stub", "Pay Statement"),
            "mono": ("EMPLOYEE EARNINGS STATEMENT", "PAYROLL EARNINGS STATEMENT"),
        }[style],
    )
    accent = pick(rng, ACCENTS)
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
    info = [
        ("Employee", employee),
        ("Employee ID", f"{int(rng.integers(10000, 99999))}"),
        ("SSN", ssn(rng, masked=True)),
        ("Pay Period", f"{start.strftime(fmt)} - {end.strftime(fmt)}"),
        ("Pay Date", paid.strftime(fmt)),
        ("Pay Frequency", frequency),
    ]
    if rng.random() < 0.5:
        department = pick(rng, ("Operations", "Sales", "Engineering", "Finance", "Warehouse"))
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
        party(c, x0, y, "Pay to:" if rng.random() < 0.5 else "Employee", (employee, estreet, ecity), font)
        y = max(iy, y + 40) + 14
    ytd = float(periods)
    table_w = x1 - x0
    split = style == "stub" or rng.random() < 0.4
    ex1 = x0 + table_w * (0.56 if split else 1.0) - (6 if split else 0)
    cols = (ex1 - 205, ex1 - 150, ex1 - 60, ex1 - 2) if split else (ex1 - 260, ex1 - 200, ex1 - 100, ex1 - 2)
    c.rect(x0, y, ex1, y + 14, fill=LIGHT, color=None)
    for label, cx in zip(
        ("Earnings", "Rate", "Hours", "This Period", "Year to Date"), (x0, *cols), strict=True
    ):
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
        c.rtext(cols[2], ey, money(amount), 8.2, font)
        c.rtext(cols[3], ey, money(amount * ytd * float(rng.uniform(0.95, 1.05))), 8.2, font)
        ey += 12
    c.line(x0, ey - 8, ex1, ey - 8, 0.5)
    c.text(x0 + 3, ey + 2, "Gross Pay", 8.5, bold)
    c.rtext(cols[2], ey + 2, money(gross, True), 8.5, bold)
    c.rtext(cols[3], ey + 2, money(gross * ytd), 8.5, font)
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
        c.rtext(dcols[0], dy, money(amount), 8.2, font)
        c.rtext(dcols[1], dy, money(amount * ytd), 8.2, font)
        dy += 12
    c.line(dx0, dy - 8, x1, dy - 8, 0.5)
    c.text(dx0 + 3, dy + 2, "Total Deductions", 8.5, bold)
    c.rtext(dcols[0], dy + 2, money(total_ded), 8.5, bold)
    y = max(ey, dy) + 26
    c.rect(x0, y, x1, y + 34, width=0.8, fill=(0.95, 0.95, 0.95))
    summary = (("Gross Pay", gross), ("Total Deductions", total_ded), ("Net Pay", net))
    for i, (label, amount_value) in enumerate(summary):
        cx = x0 + 10 + i * (x1 - x0) / 3
        c.text(cx, y + 13, label, 8, font)
        c.text(cx, y + 27, money(amount_value, True), 11, bold)
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
        c.text(
            x0,
            y,
            f"Direct Deposit - {pick(rng, BANKS)}  Checking  XXXXXX{int(rng.integers(1000, 9999))}",
            8,
            font,
        )
        c.rtext(x0 + 380, y, money(net, True), 8, font)
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
        c.rtext(x1 - 6, cy + 69, money(net, True), 10, bold)
        c.text(x0, cy + 92, f"This amount: {money(net)} dollars", 8.5, font)
        c.ctext(c.w / 2, cy + 118, "NON-NEGOTIABLE  -  THIS IS NOT A CHECK", 11, bold, GREY)
    c.commit()
