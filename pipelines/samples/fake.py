"""Seeded fake content for the sample documents: word lists, people, companies, addresses, dates, IDs, amounts.

Every function draws from the ``numpy.random.Generator`` it is given, in a fixed order, so the same generator
state gives the same content.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TypeVar

import numpy as np

T = TypeVar("T")


FIRST = (
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Carlos",
    "Maria",
    "Wei",
    "Priya",
    "Ahmed",
    "Fatima",
    "Olga",
    "Kenji",
    "Aisha",
    "Luca",
    "Sofia",
    "Daniel",
    "Grace",
    "Omar",
)
LAST = (
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Nguyen",
    "Patel",
    "Kim",
    "Chen",
    "Okafor",
    "Schmidt",
    "Rossi",
    "Novak",
    "Kowalski",
    "O'Brien",
)
COMPANY_A = (
    "Blue Ridge",
    "Summit",
    "Northwind",
    "Cedar",
    "Harbor",
    "Pioneer",
    "Redwood",
    "Silverline",
    "Granite",
    "Lakeside",
    "Evergreen",
    "Atlas",
    "Beacon",
    "Keystone",
    "Prairie",
    "Copperfield",
    "Riverbend",
    "Oakmont",
)
COMPANY_B = (
    "Consulting",
    "Logistics",
    "Design Studio",
    "Supply Co.",
    "Analytics",
    "Builders",
    "Software",
    "Marketing Group",
    "Electric",
    "Landscaping",
    "Medical Group",
    "Legal Services",
    "Printing",
    "Catering",
    "Freight",
    "Solutions",
    "Manufacturing",
    "Health Partners",
)
SUFFIX = ("LLC", "Inc.", "Corp.", "LLP", "Co.", "")
STREETS = (
    "Main St",
    "Oak Ave",
    "Maple Dr",
    "Cedar Ln",
    "Park Blvd",
    "Washington St",
    "Lake Rd",
    "Hillcrest Ave",
    "Elm St",
    "Sunset Blvd",
    "Market St",
    "River Rd",
    "Pine St",
    "Broadway",
    "Industrial Pkwy",
    "Commerce Dr",
)
CITIES = (
    ("Springfield", "IL", "627"),
    ("Austin", "TX", "787"),
    ("Denver", "CO", "802"),
    ("Portland", "OR", "972"),
    ("Columbus", "OH", "432"),
    ("Raleigh", "NC", "276"),
    ("Madison", "WI", "537"),
    ("Phoenix", "AZ", "850"),
    ("Albany", "NY", "122"),
    ("Sacramento", "CA", "958"),
    ("Boise", "ID", "837"),
    ("Nashville", "TN", "372"),
    ("Tampa", "FL", "336"),
    ("Richmond", "VA", "232"),
    ("Omaha", "NE", "681"),
    ("Trenton", "NJ", "086"),
)
GOODS = (
    ("Copy paper, letter, 10 reams", 38, 65),
    ("Toner cartridge, black", 55, 140),
    ("Office chair, ergonomic", 180, 420),
    ("Standing desk frame", 260, 540),
    ("USB-C docking station", 120, 260),
    ('Monitor 27" IPS', 190, 380),
    ("Wireless keyboard and mouse", 35, 90),
    ("Network switch, 24-port", 150, 480),
    ("Safety gloves (box of 100)", 12, 30),
    ("Shipping boxes, medium (25)", 28, 55),
    ("Label printer rolls", 15, 40),
    ("LED panel light 2x4", 45, 110),
    ("Copper pipe 3/4in x 10ft", 22, 48),
    ("Pallet wrap film", 18, 45),
    ("Coffee beans, 5 lb bag", 40, 75),
)
SERVICES = (
    ("Consulting services", 95, 220),
    ("Website maintenance", 60, 150),
    ("Graphic design", 55, 125),
    ("Bookkeeping", 45, 95),
    ("On-site installation", 70, 140),
    ("Software development", 90, 190),
    ("Project management", 80, 160),
    ("Equipment repair labor", 65, 130),
    ("Cleaning service", 30, 60),
    ("Legal review", 180, 420),
    ("Photography session", 120, 300),
    ("Data migration", 85, 170),
    ("Training workshop", 150, 400),
    ("Lawn care visit", 40, 90),
    ("IT support", 75, 150),
)
STORE_ITEMS = (
    ("MILK 2% GAL", 3.2, 4.9),
    ("BREAD WHEAT", 2.5, 4.5),
    ("EGGS LARGE DZ", 2.9, 5.5),
    ("BANANAS", 0.9, 2.4),
    ("COFFEE GROUND", 6.5, 12.9),
    ("PAPER TOWELS 6PK", 7.9, 13.5),
    ("AA BATTERIES 8", 6.9, 11.9),
    ("CHICKEN BREAST", 7.5, 14.0),
    ("APPLES GALA", 3.0, 6.5),
    ("DISH SOAP", 2.5, 4.9),
    ("RICE 5LB", 4.9, 8.9),
    ("PRINTER INK", 19.9, 39.9),
    ("NOTEBOOK 3PK", 4.5, 8.5),
    ("WATER 24PK", 3.9, 6.9),
    ("CHEESE CHEDDAR", 3.5, 7.5),
)
JOBS = (
    "Software engineer",
    "Teacher",
    "Nurse",
    "Accountant",
    "Electrician",
    "Sales manager",
    "Pharmacist",
    "Graphic designer",
    "Retail associate",
    "Mechanic",
    "Consultant",
    "Office manager",
)
BANKS = (
    "First Federal Bank",
    "Riverbend Savings Bank",
    "Summit Credit Union",
    "Lakeside National Bank",
    "Pioneer Trust Bank",
    "Granite State Bank",
)
DATE_FORMATS = ("%m/%d/%Y", "%B %d, %Y", "%b %d, %Y", "%Y-%m-%d", "%m-%d-%Y")


def pick(rng: np.random.Generator, seq: Sequence[T]) -> T:
    """One element of seq, uniformly."""
    return seq[int(rng.integers(len(seq)))]


def person(rng: np.random.Generator) -> str:
    """A full name, sometimes with a middle initial."""
    middle = f" {chr(65 + int(rng.integers(26)))}." if rng.random() < 0.3 else ""
    return f"{pick(rng, FIRST)}{middle} {pick(rng, LAST)}"


def company(rng: np.random.Generator) -> str:
    """A company name such as 'Summit Logistics LLC'."""
    return f"{pick(rng, COMPANY_A)} {pick(rng, COMPANY_B)} {pick(rng, SUFFIX)}".strip()


def address(rng: np.random.Generator) -> tuple[str, str]:
    """A street line and a 'City, ST 12345' line."""
    city, state, zip3 = pick(rng, CITIES)
    street = f"{int(rng.integers(10, 9900))} {pick(rng, STREETS)}"
    if rng.random() < 0.25:
        street += f", Suite {int(rng.integers(100, 900))}"
    return street, f"{city}, {state} {zip3}{int(rng.integers(10, 99)):02d}"


def random_date(rng: np.random.Generator, start: dt.date = dt.date(2022, 1, 1), days: int = 1000) -> dt.date:
    """A day in [start, start + days)."""
    return start + dt.timedelta(days=int(rng.integers(days)))


def ssn(rng: np.random.Generator, masked: bool = False) -> str:
    """A social security number, or its masked form XXX-XX-1234."""
    last = f"{int(rng.integers(1000, 9999))}"
    return f"XXX-XX-{last}" if masked else f"{int(rng.integers(100, 899))}-{int(rng.integers(10, 99))}-{last}"


def ein(rng: np.random.Generator) -> str:
    """An employer identification number, 12-3456789."""
    return f"{int(rng.integers(10, 99))}-{int(rng.integers(1000000, 9999999))}"


def phone(rng: np.random.Generator) -> str:
    """A US phone number, (555) 123-4567."""
    return f"({int(rng.integers(201, 989))}) {int(rng.integers(200, 999))}-{int(rng.integers(1000, 9999))}"


def money(value: float, dollar: bool = False) -> str:
    """An amount as printed on documents: 1,234.50, optionally with $, a negative in parentheses."""
    text = f"{abs(value):,.2f}"
    text = f"${text}" if dollar else text
    return f"({text})" if value < 0 else text


def initials(name: str) -> str:
    """Up to two initials of a company name for a logo, or 'CO' when it has none."""
    return "".join(word[0] for word in name.split()[:2] if word[0].isalpha()).upper() or "CO"


def line_items(rng: np.random.Generator, n: int, services: bool) -> list[tuple[str, float, float]]:
    """n (description, quantity, unit price) rows of goods or services."""
    pool = SERVICES if services else GOODS
    items = []
    for _ in range(n):
        desc, lo, hi = pick(rng, pool)
        qty = float(rng.integers(1, 40)) if services else float(rng.integers(1, 12))
        if services and rng.random() < 0.5:
            qty = float(rng.integers(2, 80)) / 2
        items.append((desc, qty, round(float(rng.uniform(lo, hi)), 2)))
    return items
