"""Page blocks several document kinds share.

- :func:`irs_header`: the three-cell header of IRS forms (W-9, Form 1040 schedules, W-4);
- :func:`party`: a titled name-and-address block (invoice, payslip, bank statement, purchase order);
- :func:`items_table` and :func:`totals`: the line-item table and its totals (invoice, purchase order).
"""

from __future__ import annotations

from collections.abc import Sequence

from pipelines.samples.canvas import BLACK, GREY, WHITE, Canvas, Color
from pipelines.samples.fake import money, pick


def irs_header(c: Canvas, form: str, sub: str, title: Sequence[str], right: Sequence[str], y: float) -> float:
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


def items_table(
    c: Canvas,
    y: float,
    items: Sequence[tuple[str, float, float]],
    *,
    header: Sequence[str],
    header_fill: Color | None,
    font: str = "helv",
    grid: bool = True,
    size: float = 8.5,
    row_h: float = 15.0,
) -> float:
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
        c.rtext(price_x, y + row_h - 4, money(price), size, font)
        c.rtext(x1 - 4, y + row_h - 4, money(qty * price), size, font)
        if grid:
            c.line(x0, y + row_h, x1, y + row_h, 0.3, GREY)
        y += row_h
    if grid:
        c.rect(x0, y - row_h * len(items) - row_h - 2, x1, y, width=0.6)
    return y


def totals(
    c: Canvas,
    y: float,
    items: Sequence[tuple[str, float, float]],
    *,
    label_total: str,
    font: str = "helv",
    fill: Color | None = None,
    currency: str = "$",
) -> tuple[float, float]:
    """Draw subtotal, sales tax, shipping and the total below an item table; return (y below, total)."""
    subtotal = sum(q * p for _, q, p in items)
    rate = float(pick(c.rng, (0.0, 0.05, 0.0625, 0.07, 0.0825, 0.1)))
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
        c.rtext(x1 - 4, y, money(value, dollar=currency == "$"), 8.5, font)
        y += 13
    if fill:
        c.rect(lx - 6, y - 10, x1, y + 6, fill=fill, color=None)
    else:
        c.line(lx, y - 9, x1, y - 9, 0.8)
    color = WHITE if fill and sum(fill) < 1.5 else BLACK
    c.text(lx, y + 2, label_total, 10, bold, color)
    c.rtext(x1 - 4, y + 2, money(total, dollar=True), 10, bold, color)
    return y + 18, total


def party(c: Canvas, x: float, y: float, title: str, lines: Sequence[str], font: str = "helv") -> float:
    """Draw a bold title over name and address lines; return y below the block."""
    c.text(x, y, title, 8.5, "cobo" if font == "cour" else "hebo")
    for line in lines:
        y += 11
        c.text(x, y, line, 8.5, font)
    return y + 6
