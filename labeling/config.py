"""The labeling interface: a single-choice classification over a document's page images (pure functions)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from xml.sax.saxutils import quoteattr

CHOICES_NAME = "label"
IMAGE_NAME = "page"
SAMPLING = "Uncertainty sampling"


class LabelConfigError(ValueError):
    """A label config that is not the one docclass builds, or classes that cannot make one."""


def build_label_config(classes: list[str]) -> str:
    """Label Studio XML for ``classes``: page images with a page navigator and one required single choice.

    Raises:
        LabelConfigError: no classes, empty or duplicate class names.
    """
    names = [str(name) for name in classes]
    if not names:
        raise LabelConfigError("no classes: expected at least one class in params.yaml `classes`")
    if any(not name.strip() for name in names):
        raise LabelConfigError(f"empty class name in {names}: expected non-empty names")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise LabelConfigError(f"duplicate classes {duplicates}: expected each class once")
    choices = "\n".join(f"    <Choice value={quoteattr(name)}/>" for name in names)
    return (
        "<View>\n"
        '  <Header value="$name"/>\n'
        f'  <Choices name="{CHOICES_NAME}" toName="{IMAGE_NAME}" choice="single" showInline="true" '
        'required="true">\n'
        f"{choices}\n"
        "  </Choices>\n"
        f'  <Image name="{IMAGE_NAME}" valueList="$pages" zoom="true" zoomControl="true"/>\n'
        "</View>\n"
    )


def config_classes(label_config: str) -> list[str]:
    """The classes of a label config built by :func:`build_label_config`, in config order.

    Raises:
        LabelConfigError: not XML, or no ``Choices`` named ``label``.
    """
    try:
        root = ET.fromstring(label_config)
    except ET.ParseError as error:
        raise LabelConfigError(f"label config is not valid XML: {error}") from error
    for element in root.iter("Choices"):
        if element.get("name") == CHOICES_NAME:
            return [choice.get("value", "") for choice in element.iter("Choice")]
    raise LabelConfigError(
        f'label config has no <Choices name="{CHOICES_NAME}">: expected a config made by `labeling init`'
    )
