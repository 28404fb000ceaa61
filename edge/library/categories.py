"""Substance categories, narcotic families and the severity each one raises.

Severity is what the appliance does with an identification:

``alarm``
    Red LED, buzzer, and an alarm message to the control room. The officer stops and
    holds the goods: controlled drugs (every ``narcotic`` family), ``explosive`` and
    ``cwa`` (chemical-warfare agents and their simulants: a simulant on the crystal means
    the library cannot rule out the real agent's close relatives, so it is treated alike).
``warn``
    Amber: the goods may be legal but need documents or care. ``precursor`` (drug
    precursors scheduled under EU Regulations 273/2004 and 111/2005, legal with a licence),
    ``oxidiser`` (explosive precursors under EU Regulation 2019/1148) and
    ``toxic_industrial_chemical`` (a hazard to the officer, not contraband by itself).
``info``
    Green: nothing to act on. ``pharmaceutical`` (uncontrolled medicines), ``cutting_agent``
    (adulterants and diluents; a *mixture* of a cutting agent with a narcotic still raises
    the narcotic's alarm) and ``benign`` goods.

A mixture takes the highest severity of its components.
"""

from __future__ import annotations

from enum import StrEnum

from edge.identify.result import Severity

#: Severities ordered from least to most serious.
SEVERITY_ORDER: tuple[Severity, ...] = ("info", "warn", "alarm")


class Category(StrEnum):
    """What kind of substance a library entry is."""

    NARCOTIC = "narcotic"
    PRECURSOR = "precursor"
    EXPLOSIVE = "explosive"
    OXIDISER = "oxidiser"
    TOXIC_INDUSTRIAL_CHEMICAL = "toxic_industrial_chemical"
    CWA = "cwa"
    PHARMACEUTICAL = "pharmaceutical"
    CUTTING_AGENT = "cutting_agent"
    BENIGN = "benign"


class NarcoticFamily(StrEnum):
    """Pharmacological family of a narcotic (what the classifier names for unknowns)."""

    OPIOID = "opioid"
    STIMULANT = "stimulant"
    CATHINONE = "cathinone"
    CANNABINOID = "cannabinoid"
    HALLUCINOGEN = "hallucinogen"
    SEDATIVE = "sedative"
    DISSOCIATIVE = "dissociative"


CATEGORY_SEVERITY: dict[Category, Severity] = {
    Category.NARCOTIC: "alarm",
    Category.EXPLOSIVE: "alarm",
    Category.CWA: "alarm",
    Category.PRECURSOR: "warn",
    Category.OXIDISER: "warn",
    Category.TOXIC_INDUSTRIAL_CHEMICAL: "warn",
    Category.PHARMACEUTICAL: "info",
    Category.CUTTING_AGENT: "info",
    Category.BENIGN: "info",
}

_ALIASES = {
    "tic": Category.TOXIC_INDUSTRIAL_CHEMICAL,
    "toxic industrial chemical": Category.TOXIC_INDUSTRIAL_CHEMICAL,
    "chemical warfare agent": Category.CWA,
    "cwa simulant": Category.CWA,
    "oxidizer": Category.OXIDISER,
    "cutting agent": Category.CUTTING_AGENT,
    "cutting-agent": Category.CUTTING_AGENT,
    "drug": Category.NARCOTIC,
}


def parse_category(value: str) -> Category:
    """The :class:`Category` named by *value* (case-insensitive; a few spellings accepted).

    Raises ``ValueError`` listing the valid names when *value* is unknown.
    """
    key = value.strip().lower()
    try:
        return Category(key.replace(" ", "_").replace("-", "_"))
    except ValueError:
        pass
    if key in _ALIASES:
        return _ALIASES[key]
    valid = ", ".join(c.value for c in Category)
    raise ValueError(f"unknown category {value!r}; valid: {valid}")


def severity_of(category: Category | str) -> Severity:
    """The severity (alarm / warn / info) a substance of *category* raises."""
    return CATEGORY_SEVERITY[parse_category(str(category))]


def max_severity(severities: list[Severity]) -> Severity:
    """The most serious of *severities* (``info`` for an empty list)."""
    return max(severities, key=SEVERITY_ORDER.index, default="info")


def check_family(category: Category, family: str | None) -> str | None:
    """Validate *family* for *category*: narcotics need one of :class:`NarcoticFamily`.

    Other categories may carry a free-form family (e.g. ``nitramine`` for an explosive).
    Returns the normalised family; raises ``ValueError`` when it is not allowed.
    """
    fam = family.strip().lower() if family else None
    if category is Category.NARCOTIC:
        if fam is None:
            raise ValueError("a narcotic needs a family: " + ", ".join(NarcoticFamily))
        try:
            return NarcoticFamily(fam).value
        except ValueError as err:
            raise ValueError(
                f"unknown narcotic family {family!r}; valid: " + ", ".join(NarcoticFamily)
            ) from err
    return fam


# ENFSI DWG library category strings -> (category, family).
_ENFSI: dict[str, tuple[Category, str | None]] = {
    "stimulants": (Category.NARCOTIC, NarcoticFamily.STIMULANT.value),
    "opioids": (Category.NARCOTIC, NarcoticFamily.OPIOID.value),
    "psychedelics": (Category.NARCOTIC, NarcoticFamily.HALLUCINOGEN.value),
    "tryptamines": (Category.NARCOTIC, NarcoticFamily.HALLUCINOGEN.value),
    "dissociatives": (Category.NARCOTIC, NarcoticFamily.DISSOCIATIVE.value),
    "benzodiazepines": (Category.NARCOTIC, NarcoticFamily.SEDATIVE.value),
    "cannabinoids": (Category.NARCOTIC, NarcoticFamily.CANNABINOID.value),
    "precursors": (Category.PRECURSOR, None),
    "cutting-agents": (Category.CUTTING_AGENT, None),
    "other": (Category.BENIGN, None),
}

# Known compounds the ENFSI category string files differently from this product's scheme
# (lower-case name or alias -> (category, family)).
_ENFSI_NAME_OVERRIDES: dict[str, tuple[Category, str | None]] = {
    "caffeine": (Category.CUTTING_AGENT, None),
    "ghb": (Category.NARCOTIC, NarcoticFamily.SEDATIVE.value),
    "gbl": (Category.PRECURSOR, None),
    "saccharose": (Category.CUTTING_AGENT, None),
    "sucrose": (Category.CUTTING_AGENT, None),
    "hydrocarbonate": (Category.BENIGN, None),
    "4-anilinopiperidine": (Category.PRECURSOR, None),
    "4-anpp": (Category.PRECURSOR, None),
    "noscapine": (Category.PHARMACEUTICAL, None),
    "papaverine": (Category.PHARMACEUTICAL, None),
    "isosafrol": (Category.PRECURSOR, None),
    "isosafrole": (Category.PRECURSOR, None),
    "fenylacetonitril": (Category.PRECURSOR, None),
    "benzyl cyanide": (Category.PRECURSOR, None),
}

#: Synthetic cathinones ("bath salts"); ENFSI files them under stimulants.
CATHINONE_NAMES = frozenset(
    {
        "mephedrone",
        "4-mmc",
        "3-mmc",
        "methylone",
        "mdpv",
        "alpha-pvp",
        "α-pvp",
        "a-pvp",
        "pentedrone",
        "ethylone",
        "butylone",
        "cathinone",
        "methcathinone",
        "flephedrone",
        "4-cmc",
        "3-cmc",
        "n-ethylpentylone",
        "eutylone",
        "pentylone",
        "alpha-php",
    }
)


def map_enfsi_category(category: str, name: str = "") -> tuple[Category, str | None]:
    """(category, family) for an ENFSI-style ``category`` string and compound *name*.

    The ENFSI strings are pharmacological (stimulants, opioids, ...); this product's
    categories say what an officer must do. Cathinones, filed as stimulants, get family
    ``cathinone``; a few compounds filed under a misleading string (caffeine under
    stimulants, GHB under other) are corrected by name. Unknown strings raise ``ValueError``.
    """
    key = name.strip().lower()
    words = {key, key.split(" ")[0], key.split("(")[0].strip()}
    for word in words:
        if word in _ENFSI_NAME_OVERRIDES:
            return _ENFSI_NAME_OVERRIDES[word]
    cat = category.strip().lower()
    if cat not in _ENFSI:
        raise ValueError(f"unknown ENFSI category {category!r}; known: " + ", ".join(_ENFSI))
    mapped = _ENFSI[cat]
    if mapped[1] == NarcoticFamily.STIMULANT.value and words & CATHINONE_NAMES:
        return (Category.NARCOTIC, NarcoticFamily.CATHINONE.value)
    return mapped
