"""Which Tesseract languages read a page: its script from Tesseract OSD, then the languages for that script.

With ``extract.ocr_lang: auto`` every page is first read with the languages of the Latin script (``eng``): an
English page costs what it always did. The page's script is looked up with Tesseract OSD only when that reading
is not plainly Latin (low confidence, or middling confidence without the common words of any Latin-script
language), and the OSD result the orientation check already computed is reused. A non-Latin page is then read
again with the languages of its script (``extract.ocr_scripts``); a Latin page whose reading has more of
the common words of German, French, ... than of English is read again with that language
(``extract.ocr_latin_languages``). A fixed ``ocr_lang`` (``eng``, ``eng+deu``) skips all of this.

Everything here is pure: the OSD call and the OCR passes are in :mod:`pipelines.ocr`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

AUTO = "auto"
LATIN = "Latin"

Pairs = tuple[tuple[str, str], ...]

# Function words of each Latin-script language, accents removed (an English reading drops them or reads them
# wrongly), two letters or more (single letters are too often OCR noise). They name the language of a page read
# with English and tell a Latin reading from Cyrillic or Greek read as Latin letters.
COMMON_WORDS: dict[str, frozenset[str]] = {
    "eng": frozenset(
        "the and of to for in on with is are be by this that from or your you not at as will an it if all any "
        "our was were has have which been can may must should their there these those its per".split()
    ),
    "deu": frozenset(
        "der die das und den dem des ist nicht mit von zu fur auf ein eine einer eines einem im bei sie wir "
        "oder bis nach zum zur vom uber auch sich werden wird sind ihr ihre ihnen unter durch als noch ohne "
        "fiir iiber".split()  # fiir, iiber: how English reads für and über
    ),
    "fra": frozenset(
        "le la les de des du et un une est pour dans par sur au aux avec ce cette ces qui que pas vous nous "
        "sont en votre vos ou il elle leur ne se sa son ses".split()
    ),
    "spa": frozenset(
        "el la los las de del en que por con para un una es al su sus se no lo como mas este esta estos "
        "usted le les ya pero sin sobre entre".split()
    ),
    "ita": frozenset(
        "il lo la gli le di del della dei delle che per con un una in al alla non sono si da dal nel nella "
        "questo questa ed anche come piu sul sulla degli".split()
    ),
    "por": frozenset(
        "os as de do da dos das em no na nos nas que para com um uma por ao se seu sua pelo pela nao mais "
        "como este esta ou sao foi".split()
    ),
    "nld": frozenset(
        "de het een en van in op te voor met is dat die niet aan bij zijn worden wordt ook om door naar uw "
        "wij of tot deze dit er zal".split()
    ),
}

# A Latin reading needs at least this many common words to count as plainly Latin without OSD.
MIN_COMMON_WORDS = 3
# From this mean word confidence on, a reading is taken as Latin even without common words (forms, receipts):
# Cyrillic and Greek read with English letters stay below it (clean renders of all-capital Greek reach ~82).
SURE_LATIN_CONFIDENCE = 88.0
# A language is recognised from a reading when its weighted common-word count reaches this and beats the
# runner-up by this factor.
MIN_LANGUAGE_SCORE = 3.0
LANGUAGE_MARGIN = 1.5

_LANG = re.compile(r"[A-Za-z0-9_/-]+(\+[A-Za-z0-9_/-]+)*")
_SCRIPT = re.compile(r"[A-Z][A-Za-z_]+")
_WORD = re.compile(r"[a-z]{2,}")


@dataclass(frozen=True)
class ScriptDetection:
    """What Tesseract OSD says about a page: the clockwise rotation that makes it upright, and its script."""

    rotation: int
    orientation_confidence: float
    script: str
    script_confidence: float

    @classmethod
    def from_osd(cls, osd: Mapping[str, Any]) -> ScriptDetection:
        """From ``pytesseract.image_to_osd(..., output_type=Output.DICT)``.

        Raises:
            ValueError: a key is missing or not a number.
        """
        try:
            return cls(
                rotation=int(osd["rotate"]) % 360,
                orientation_confidence=float(osd["orientation_conf"]),
                script=str(osd["script"]),
                script_confidence=float(osd["script_conf"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(
                f"unexpected Tesseract OSD output {dict(osd)!r}: expected rotate, orientation_conf, script "
                f"and script_conf ({error})"
            ) from error


def language_pairs(value: Mapping[str, str] | Iterable[tuple[str, str]], name: str) -> Pairs:
    """A params mapping (``{Cyrillic: rus+eng}``) as sorted pairs, so settings are hashable and ordered.

    Raises:
        ValueError: not a mapping of names to Tesseract language strings.
    """
    items = value.items() if isinstance(value, Mapping) else value
    try:
        pairs = tuple(sorted((str(key), str(langs)) for key, langs in items))
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"params {name}: expected a mapping of names to Tesseract languages, found {value!r}"
        ) from error
    for key, langs in pairs:
        if not _LANG.fullmatch(langs):
            raise ValueError(
                f"params {name}.{key} is {langs!r}: expected Tesseract languages joined by '+', e.g. 'rus+eng'"
            )
    return pairs


def common_word_scores(text: str) -> dict[str, float]:
    """Per language of :data:`COMMON_WORDS`, its function words in ``text``; a word shared by n languages counts 1/n."""
    folded = unicodedata.normalize("NFKD", text.lower())
    folded = "".join(char for char in folded if not unicodedata.combining(char))
    scores = dict.fromkeys(COMMON_WORDS, 0.0)
    for word in _WORD.findall(folded):
        owners = [language for language, words in COMMON_WORDS.items() if word in words]
        for language in owners:
            scores[language] += 1.0 / len(owners)
    return scores


def guess_latin_language(text: str) -> str | None:
    """The Latin-script language whose common words dominate ``text`` (a key of :data:`COMMON_WORDS`), or None."""
    ranked = sorted(common_word_scores(text).items(), key=lambda item: item[1], reverse=True)
    (best, score), (_, runner_up) = ranked[0], ranked[1]
    if score >= MIN_LANGUAGE_SCORE and score >= LANGUAGE_MARGIN * runner_up:
        return best
    return None


def looks_latin(text: str, confidence: float) -> bool:
    """Whether a reading with Latin-script languages plainly is Latin text, so OSD need not check the script."""
    if confidence >= SURE_LATIN_CONFIDENCE:
        return True
    return sum(common_word_scores(text).values()) >= MIN_COMMON_WORDS


@dataclass(frozen=True)
class OcrLanguages:
    """How the Tesseract languages of a page are chosen (params ``extract.ocr_lang``, ``ocr_scripts``,
    ``ocr_latin_languages``).

    Args:
        lang: ``auto`` (per page, by script), or fixed Tesseract languages such as ``eng`` or ``eng+deu``.
        scripts: OSD script name -> languages; must name ``Latin`` when ``lang`` is ``auto``.
        latin: language recognised on a Latin page (a key of :data:`COMMON_WORDS`) -> languages to re-read it.

    Raises:
        ValueError: a setting that is not of the expected form (said which and how).
    """

    # No defaults: the settings are params.yaml's (ExtractConfig.ocr_languages()); fixed languages need no
    # script settings: OcrLanguages("eng+deu", (), ()).
    lang: str
    scripts: Pairs
    latin: Pairs
    _scripts: dict[str, str] = field(init=False, repr=False, compare=False)
    _latin: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.lang != AUTO and not _LANG.fullmatch(self.lang):
            raise ValueError(
                f"params extract.ocr_lang is {self.lang!r}: expected 'auto' or Tesseract languages joined by '+' "
                "(e.g. 'eng' or 'eng+deu')"
            )
        scripts = dict(language_pairs(self.scripts, "extract.ocr_scripts"))
        latin = dict(language_pairs(self.latin, "extract.ocr_latin_languages"))
        for script in scripts:
            if not _SCRIPT.fullmatch(script):
                raise ValueError(
                    f"params extract.ocr_scripts names the script {script!r}: expected a Tesseract OSD script name "
                    "as OSD prints it (Latin, Cyrillic, Greek, Arabic, Hebrew, Han, Devanagari, ...)"
                )
        unknown = sorted(set(latin) - set(COMMON_WORDS))
        if unknown:
            raise ValueError(
                f"params extract.ocr_latin_languages names {unknown}: expected languages it can recognise, "
                f"{sorted(COMMON_WORDS)}"
            )
        if self.lang == AUTO and LATIN not in scripts:
            raise ValueError(
                "params extract.ocr_scripts has no 'Latin' entry: expected one with ocr_lang 'auto', "
                f"whose languages read every page first; found {sorted(scripts)}"
            )
        object.__setattr__(self, "scripts", tuple(sorted(scripts.items())))
        object.__setattr__(self, "latin", tuple(sorted(latin.items())))
        object.__setattr__(self, "_scripts", scripts)
        object.__setattr__(self, "_latin", latin)

    @property
    def auto(self) -> bool:
        """Whether the languages are chosen per page."""
        return self.lang == AUTO

    @property
    def first(self) -> str:
        """Languages of the first reading of every page: the fixed ones, or those of the Latin script."""
        return self._scripts[LATIN] if self.auto else self.lang

    def needs_script(self, text: str, confidence: float, min_confidence: float) -> bool:
        """Whether the first reading leaves the script in doubt, so OSD should tell it (never for fixed languages).

        A reading under ``min_confidence`` (which had OSD run for its orientation anyway) leaves it in doubt; so
        does one that is not plainly Latin. On a page read well in Latin letters OSD's script is not asked for,
        and not trusted when OSD ran for the orientation: on sideways English pages it has named Cyrillic.
        """
        return self.auto and (confidence < min_confidence or not looks_latin(text, confidence))

    def choose(self, detection: ScriptDetection | None, text: str) -> str:
        """Languages for a page, from its OSD result (None: not run or undecidable, taken as Latin) and first reading.

        A script without an ``ocr_scripts`` entry is read with the Latin languages; a Latin page whose reading
        is recognised as one of the ``ocr_latin_languages`` gets that entry. Fixed languages are returned as they are.
        """
        if not self.auto:
            return self.lang
        script = detection.script if detection is not None else LATIN
        if script != LATIN:
            return self._scripts.get(script, self.first)
        language = guess_latin_language(text)
        return self._latin.get(language, self.first) if language is not None else self.first

    def codes(self) -> list[str]:
        """Every Tesseract language these settings may use, sorted."""
        if not self.auto:
            return sorted(set(self.lang.split("+")))
        every = [*self._scripts.values(), *self._latin.values()]
        return sorted({code for langs in every for code in langs.split("+")})
