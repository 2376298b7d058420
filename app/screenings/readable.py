"""A determination as people read it: a summary in plain sentences, and one document rendered
as Markdown, as an HTML page (for the screen, screen readers and print) and as plain text (the
``carelevel evaluate`` report), plus the XHTML narrative of a FHIR resource.

Pure: everything shown follows from a determination in its JSON form (as the engine writes it,
the database stores it and the API returns it; with or without its trace) and from where it
comes from (``About``: the rule-set version, the engine, the screening). Nothing here adds an
answer value the determination does not already show.

``document`` builds the one ``Readable`` every rendering follows: the safety alerts first, then
the recommendation with its summary, the reasons, the domains, the levels ruled out and those
not needed, the barriers with their accommodations, the conditions, the scores, what is missing,
the sources, where the determination comes from, and the disclaimer.
"""

from __future__ import annotations

import base64
import hashlib
import textwrap
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any, Final

from app.engine.determination import LEVEL_INFO, LEVEL_RANK, URGENCY_RANK, LevelOfCare, Urgency

Json = Mapping[str, Any]

TITLE: Final = "Level-of-care screening"

# --- what a determination says, in words ----------------------------------------------------

_VERDICTS: Final = {
    "suitable": "an IOP is suitable",
    "suitable_with_conditions": "an IOP is suitable once its barriers or conditions are met",
    "pending_safety_assessment": "the IOP verdict waits for a safety assessment",
    "higher_level_needed": "an IOP is not intensive enough",
    "lower_level_sufficient": "a less intensive level than an IOP is enough",
    "insufficient_information": "there is too little information to judge an IOP",
}


def humanized(code: str) -> str:
    """A code as words: ``suitable_with_conditions`` is "suitable with conditions"."""
    return code.replace("_", " ")


def level_label(level: str) -> str:
    return LEVEL_INFO[LevelOfCare(level)].label


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else f"{text}."


def _clause(text: str) -> str:
    """A reason or an action, to be continued in a sentence: without its final full stop."""
    return text.strip().removesuffix(".")


def alerts_by_urgency(determination: Json) -> list[Json]:
    """The safety alerts, the most urgent first (in their order otherwise)."""
    return sorted(
        determination["safety_alerts"], key=lambda alert: -URGENCY_RANK[Urgency(alert["urgency"])]
    )


def main_reasons(determination: Json) -> list[str]:
    """What decided: the reasons of the recommended level, else those of the IOP verdict."""
    level = determination.get("recommended_level")
    reasons = level["decided_by"] if level else determination["iop"]["reasons"]
    return list(dict.fromkeys(reason["text"] for reason in reasons))


SUMMARY_READS: Final = (
    "urgency",
    "recommended_level",
    "iop",
    "safety_alerts",
    "missing",
    "barriers",
    "conditions",
    "contradictions",
)
"""The fields of a determination ``summary`` reads: all it needs of a determination (those
an earlier engine did not write, such as ``contradictions``, are read when present)."""


def summary(determination: Json) -> str:
    """Two or three plain sentences: the level and its urgency with the IOP verdict, the main
    reason, and what to do now (the most urgent safety alert's action first). Reads only the
    ``SUMMARY_READS`` fields."""
    sentences = [_verdict_sentence(determination)]
    reasons = main_reasons(determination)
    if reasons:
        more = f", and {len(reasons) - 1} more" if len(reasons) > 1 else ""
        sentences.append(f"Main reason: {_clause(reasons[0])}{more}.")
    sentences.append(_next_step(determination))
    return " ".join(sentences)


def _verdict_sentence(determination: Json) -> str:
    level = determination.get("recommended_level")
    urgency = determination["urgency"]
    verdict = determination["iop"]["verdict"]
    if level is None:
        text = f"No level of care can be recommended from the information given; urgency: {urgency}"
        if verdict != "insufficient_information":
            text += f"; {_VERDICTS[verdict]}"
        return f"{text}."
    return f"Recommended level of care: {level['label']}; urgency: {urgency}; {_VERDICTS[verdict]}."


def _next_step(determination: Json) -> str:
    """What to do now: a safety alert's action, else completing the screening, else lifting
    the barriers, else the referral."""
    alerts = alerts_by_urgency(determination)
    if alerts:
        count = f" (1 of {len(alerts)} safety alerts)" if len(alerts) > 1 else ""
        return f"Do now{count}: {_sentence(alerts[0]['action'])}"
    level = determination.get("recommended_level")
    contradictions = len(determination.get("contradictions", ()))
    if contradictions:  # answers that disagree are confirmed before anything else is asked
        found = "1 contradiction" if contradictions == 1 else f"{contradictions} contradictions"
        return f"Next: confirm the answers that disagree ({found}), then complete the screening."
    missing = len(determination["missing"])
    if missing:
        items = "item" if missing == 1 else "items"
        return f"Next: complete the screening; {missing} missing {items} could change this."
    if determination["iop"]["verdict"] == "pending_safety_assessment":
        return "Next: complete the safety assessment before any placement."
    if level is None:
        return "Next: gather the information a placement needs."
    barriers, conditions = len(determination["barriers"]), len(determination["conditions"])
    if barriers or conditions:
        needs = _count(barriers, "barrier to attending", "barriers to attending")
        needs += " and " if barriers and conditions else ""
        needs += _count(conditions, "condition", "conditions")
        return f"Next: address the {needs}, then refer to {level['label']}."
    return f"Next: a clinician reviews this and refers to {level['label']}."


def _count(number: int, one: str, many: str) -> str:
    if not number:
        return ""
    return f"{one}" if number == 1 else f"{number} {many}"


def score_line(score: Json) -> str:
    """One instrument's result: its total (or range, or C-SSRS tier), band and screen."""
    if score.get("tier") is not None or score.get("tier_at_least") is not None:
        tier = score["tier"] or f"at least {score['tier_at_least']}"
        return f"{score['title']}: tier {tier}"
    if score["total_min"] is None:  # a categorical result without a total (the ASQ)
        result = humanized(score["band"]) if score.get("band") else "open (answers declined)"
        return f"{score['title']}: {result}"
    total = (
        str(score["total"])
        if score["total"] is not None
        else f"{score['total_min']}-{score['total_max']} (items declined)"
    )
    parts = [f"{score['title']}: {total}"]
    if score.get("band"):
        parts.append(humanized(score["band"]))
    if score.get("positive") is not None:
        parts.append("positive" if score["positive"] else "negative")
    if score.get("loinc_total"):
        parts.append(f"LOINC {score['loinc_total']}")
    return ", ".join(parts)


# --- the document ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class About:
    """Where a determination comes from, as its readable forms name it."""

    rule_set: str  # "shared/iop-level-of-care version 1", or a file's "key version-label"
    sha256: str
    engine_version: str
    screening_id: str | None = None
    created_at: str | None = None  # ISO 8601
    external_reference: str | None = None


def about_stored(
    rule_set: Json,
    engine_version: str,
    *,
    screening_id: str | None = None,
    created_at: str | None = None,
    external_reference: str | None = None,
) -> About:
    """``About`` of a determination decided by a stored rule-set version (``rule_set``:
    owner, key, version and sha256, as the API names the version used)."""
    return About(
        f"{rule_set['owner']}/{rule_set['key']} version {rule_set['version']}",
        rule_set["sha256"],
        engine_version,
        screening_id,
        created_at,
        external_reference,
    )


def about_determination(determination: Json) -> About:
    """``About`` from the determination alone (a rule-set file evaluated by the command)."""
    ref = determination["rule_set"]
    return About(f"{ref['key']} {ref['version']}", ref["sha256"], determination["engine_version"])


@dataclass(frozen=True, slots=True)
class Item:
    """One entry of a section: its text, where it comes from (``note``: a rule id, what needs
    it), what it says in more detail, and, for a safety alert, its urgency."""

    text: str
    note: str | None = None
    details: tuple[str, ...] = ()
    urgency: str | None = None


@dataclass(frozen=True, slots=True)
class Section:
    anchor: str  # the HTML id of its heading
    title: str
    items: tuple[Item, ...]


@dataclass(frozen=True, slots=True)
class Fact:
    label: str
    value: str
    urgency: str | None = None  # set on the urgency itself, which renderings may colour


@dataclass(frozen=True, slots=True)
class Readable:
    """A determination as every readable form shows it; empty sections are left out."""

    summary: str
    alerts: Section
    facts: tuple[Fact, ...]
    sections: tuple[Section, ...]
    about: About
    trace: str | None  # how many rules were evaluated and fired (None: no trace shown)
    disclaimer: str

    def section(self, anchor: str) -> Section | None:
        """The section of ``anchor``, None when it has nothing to show."""
        found = [s for s in (self.alerts, *self.sections) if s.anchor == anchor and s.items]
        return found[0] if found else None


def document(determination: Json, about: About) -> Readable:
    """The readable document of ``determination`` (its JSON form)."""
    sections = (
        _reasons(determination),
        _contradictions(determination),
        _domains(determination),
        *_other_levels(determination),
        _barriers(determination),
        _conditions(determination),
        _scores(determination),
        _missing(determination),
        _context(determination),
        _not_used(determination),
        _sources(determination),
    )
    return Readable(
        summary=summary(determination),
        alerts=_alerts(determination),
        facts=_facts(determination),
        sections=tuple(section for section in sections if section.items),
        about=about,
        trace=_trace(determination),
        disclaimer=determination["disclaimer"],
    )


def _facts(determination: Json) -> tuple[Fact, ...]:
    level = determination.get("recommended_level")
    facts = [
        Fact("Recommended level", level["label"] if level else "none (information is insufficient)")
    ]
    if level:
        facts.append(Fact("Aligned with", level["aligned_with"]))
        facts.append(Fact("Hours", level["hours_per_week"]["note"]))
    urgency = determination["urgency"]
    facts.append(Fact("Urgency", urgency, urgency=urgency))
    facts.append(Fact("Status", humanized(determination["status"])))
    facts.append(Fact("IOP", humanized(determination["iop"]["verdict"])))
    return tuple(facts)


def _alerts(determination: Json) -> Section:
    items = tuple(
        Item(
            alert["action"],
            alert["rule_id"],
            (f"Why: {alert['reason']}",),
            alert["urgency"],
        )
        for alert in alerts_by_urgency(determination)
    )
    return Section("safety-alerts", "Safety alerts", items)


def _reasons(determination: Json) -> Section:
    level = determination.get("recommended_level")
    reasons = [*(level["decided_by"] if level else ()), *determination["iop"]["reasons"]]
    unique = {reason["text"]: reason for reason in reasons}  # the first of each text is kept
    items = tuple(Item(reason["text"], reason["rule_id"]) for reason in unique.values())
    return Section("why", "Why", items)


def _domains(determination: Json) -> Section:
    items = tuple(
        Item(
            f"{rating['label']}: {rating['rating']}",
            None,
            tuple(evidence["text"] for evidence in rating["evidence"]),
        )
        for rating in determination["domains"]
    )
    return Section("domains", "Domains", items)


def _contradictions(determination: Json) -> Section:
    """Answers that contradict each other (engine 3.0.0 and later): what to confirm."""
    items = tuple(
        Item(found["description"], found["rule_id"], (f"Confirm: {found['confirm']}",))
        for found in determination.get("contradictions", ())
    )
    return Section("contradictions", "Contradictions to confirm", items)


def _context(determination: Json) -> Section:
    items = tuple(
        Item(f"{given['label']} {_answer_value(given['value'])}", given["item"])
        for given in determination.get("context", ())
    )
    return Section("context", "Context", items)


def _not_used(determination: Json) -> Section:
    items = tuple(
        Item(unused["label"], unused["item"])
        for unused in determination.get("answers_not_used", ())
    )
    return Section("not-used", "Answers given that did not affect this result", items)


def _answer_value(value: Any) -> str:
    """An answer in words: yes or no, choices joined, an instrument as given."""
    if isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, list):
        text = ", ".join(humanized(str(choice)) for choice in value) or "none"
    elif isinstance(value, dict):
        text = "given"
    else:
        text = humanized(str(value))
    return f"(answer: {text})"


# Engine 3.0.0 says how each eliminated level relates to the recommended one.
_RELATIONS: Final = (
    ("exceeded", "exceeded", "Less intensive levels the need exceeds"),
    ("not_indicated", "not-indicated", "More intensive levels not indicated"),
    ("deferred", "deferred", "Other levels, decided after the emergency evaluation"),
)


def _other_levels(determination: Json) -> tuple[Section, ...]:
    """The levels not recommended: by their relation to the recommendation (engine 3.0.0), or
    those ruled out below it and those not needed above it (earlier engines)."""
    eliminated = determination["eliminated"]
    if eliminated and "relation" in eliminated[0]:
        return tuple(
            Section(
                anchor,
                title,
                _level_items([e for e in eliminated if e["relation"] == relation]),
            )
            for relation, anchor, title in _RELATIONS
        )
    level = determination.get("recommended_level")
    rank = LEVEL_RANK[LevelOfCare(level["level"])] if level else None
    lower: list[Item] = []
    higher: list[Item] = []
    for other in eliminated:
        above = rank is not None and LEVEL_RANK[LevelOfCare(other["level"])] > rank
        (higher if above else lower).append(_level_item(other))
    ruled_out = "Less intensive levels ruled out" if level else "Levels ruled out"
    return (
        Section("ruled-out", ruled_out, tuple(lower)),
        Section("not-needed", "More intensive levels not needed", tuple(higher)),
    )


def _level_items(levels: list[Json]) -> tuple[Item, ...]:
    """One item per level, or a single item naming them all when they share their reasons (as
    every level does after an emergency override): the reasons are read once, not five times."""
    if len(levels) > 1 and all(other["reasons"] == levels[0]["reasons"] for other in levels):
        names = ", ".join(level_label(other["level"]) for other in levels)
        return (_level_item({**levels[0], "level": None}, names),)
    return tuple(_level_item(other) for other in levels)


def _level_item(eliminated: Json, label: str | None = None) -> Item:
    return Item(
        label or level_label(eliminated["level"]),
        None,
        tuple(_noted(reason["text"], reason["rule_id"]) for reason in eliminated["reasons"]),
    )


def _barriers(determination: Json) -> Section:
    items = tuple(
        Item(
            barrier["description"],
            barrier["rule_id"],
            tuple(a["description"] for a in barrier["accommodations"])
            or ("No accommodation applies.",),
        )
        for barrier in determination["barriers"]
    )
    return Section("barriers", "Barriers to attending, and how to lift them", items)


def _conditions(determination: Json) -> Section:
    items = tuple(
        Item(condition["description"], condition["rule_id"])
        for condition in determination["conditions"]
    )
    return Section("conditions", "Conditions", items)


def _scores(determination: Json) -> Section:
    items = tuple(
        Item(score_line(score), None, tuple(score.get("notes") or ()))
        for score in determination["scores"]
    )
    return Section("scores", "Scores", items)


def _missing(determination: Json) -> Section:
    items = tuple(Item(missing["label"], _needed(missing)) for missing in determination["missing"])
    return Section("missing", "Missing information that could change this", items)


def _needed(missing: Json) -> str:
    """Which fact is missing (unless the label names it already) and the rules that need it."""
    needed_by = f"needed by {', '.join(missing['needed_by'])}"
    return needed_by if missing["item"] in missing["label"] else f"{missing['item']}; {needed_by}"


def _sources(determination: Json) -> Section:
    level = determination.get("recommended_level")
    cited = [
        *(level["decided_by"] if level else ()),
        *determination["iop"]["reasons"],
        *determination["safety_alerts"],
        *determination.get("contradictions", ()),
        *(reason for other in determination["eliminated"] for reason in other["reasons"]),
    ]
    references = dict.fromkeys(ref for item in cited for ref in item.get("references", ()))
    return Section(
        "sources", "Sources of these reasons and alerts", tuple(Item(r) for r in references)
    )


def _trace(determination: Json) -> str | None:
    steps = determination.get("trace")
    if steps is None:
        return None
    fired = sum(1 for step in steps if step["result"] == "fired")
    undetermined = sum(1 for step in steps if step["result"] == "undetermined")
    return f"Trace: {len(steps)} rules evaluated, {fired} fired, {undetermined} undetermined."


def _noted(text: str, note: str | None) -> str:
    return f"{text} ({note})" if note else text


def _about_facts(about: About) -> list[Fact]:
    return [
        Fact("Rule set", about.rule_set),
        Fact("Rule-set sha256", about.sha256),
        Fact("Engine", about.engine_version),
        *_screening_facts(about),
    ]


def _screening_facts(about: About) -> list[Fact]:
    facts = []
    if about.screening_id:
        facts.append(Fact("Screening", about.screening_id))
    if about.created_at:
        facts.append(Fact("Screened at", about.created_at))
    if about.external_reference:
        facts.append(Fact("Your reference", about.external_reference))
    return facts


# --- Markdown --------------------------------------------------------------------------------

_MARKDOWN_SPECIAL = str.maketrans({c: f"\\{c}" for c in "\\`*_[]<>|#"})


def _md(text: str) -> str:
    """Text that Markdown shows as it is (no emphasis, links, HTML or table cells)."""
    return text.translate(_MARKDOWN_SPECIAL)


def markdown(readable: Readable) -> str:
    """The document as CommonMark: one heading per section."""
    lines = [f"# {TITLE}", ""]
    if readable.alerts.items:
        lines += markdown_section(readable.alerts, heading="##")
    lines += ["## Recommendation", "", _md(readable.summary), ""]
    lines += [*markdown_facts(readable.facts), ""]
    for section in readable.sections:
        lines += markdown_section(section, heading="##")
    lines += ["## About this determination", ""]
    lines += markdown_facts(_about_facts(readable.about))
    if readable.trace:
        lines.append(f"- {_md(readable.trace)}")
    lines += ["", f"_{_md(readable.disclaimer)}_", ""]
    return "\n".join(lines)


def markdown_facts(facts: Iterable[Fact]) -> list[str]:
    return [f"- **{_md(fact.label)}:** {_md(fact.value)}" for fact in facts]


def markdown_section(section: Section, *, heading: str | None) -> list[str]:
    """A section as Markdown lines: under a heading (``"##"``), or a bold title (None)."""
    title = f"{heading} {_md(section.title)}" if heading else f"**{_md(section.title)}**"
    lines = [title, ""]
    for item in section.items:
        marked = f"**{_md(item.urgency.capitalize())}:** " if item.urgency else ""
        note = f" (`{item.note}`)" if item.note else ""
        lines.append(f"- {marked}{_md(item.text)}{note}")
        lines += [f"  - {_md(detail)}" for detail in item.details]
    return [*lines, ""]


# --- HTML ------------------------------------------------------------------------------------

# Colours meet WCAG 2.1 AA contrast on their backgrounds (4.5:1 for text; the darkest pair is
# #5f6368 on white at 6.0:1). Inline, allowed by the page's Content-Security-Policy through its
# hash (STYLE_SOURCE): the page loads nothing.
STYLESHEET: Final = """
:root { color: #1a1a1a; background: #ffffff; font-family: system-ui, sans-serif;
  line-height: 1.5; }
body { margin: 0; }
main { max-width: 52rem; margin: 0 auto; padding: 1.5rem; }
h1 { font-size: 1.6rem; margin: 0 0 1rem; }
h2 { font-size: 1.2rem; margin: 1.75rem 0 0.5rem; border-bottom: 1px solid #c4c7c5;
  padding-bottom: 0.25rem; }
ul { padding-left: 1.25rem; margin: 0.25rem 0; }
li { margin: 0.25rem 0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.25rem 1rem; margin: 0.5rem 0; }
dt { font-weight: 600; }
dd { margin: 0; overflow-wrap: anywhere; }
.summary { font-size: 1.1rem; }
.note { color: #5f6368; font-size: 0.9em; }
.alerts { border: 2px solid #a50e0e; border-radius: 0.5rem; padding: 0 1rem 0.75rem; }
.alerts h2 { color: #a50e0e; border-bottom-color: #a50e0e; }
.urgency-emergent { background: #fce8e6; color: #a50e0e; font-weight: 700; padding: 0 0.25rem; }
.urgency-urgent { background: #fef7e0; color: #7a4b00; font-weight: 700; padding: 0 0.25rem; }
.urgency-routine { font-weight: 700; }
.disclaimer { margin-top: 2rem; border-top: 1px solid #c4c7c5; padding-top: 0.75rem; }
@media print {
  :root { font-size: 11pt; }
  main { max-width: none; padding: 0; }
  section { break-inside: avoid; }
}
"""
STYLE_SOURCE: Final = (
    "'sha256-"
    + base64.b64encode(hashlib.sha256(STYLESHEET.encode()).digest()).decode("ascii")
    + "'"
)
"""The stylesheet's CSP source expression (``style-src``), for the pages' policy."""


def _page(title: str, body: Iterable[str]) -> str:
    return "".join(
        (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n',
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
            f"<title>{escape(title)}</title>\n<style>{STYLESHEET}</style>\n</head>\n",
            "<body>\n<main>\n",
            *body,
            "</main>\n</body>\n</html>\n",
        )
    )


def html_page(readable: Readable) -> str:
    """The document as a page: accessible, printable, self-contained (no script, no asset)."""
    return _page(f"{TITLE} · carelevel", _html_body(readable))


def _html_body(readable: Readable) -> Iterator[str]:
    yield f"<h1>{escape(TITLE)}</h1>\n"
    if readable.alerts.items:
        yield from _html_section(readable.alerts, css_class="alerts")
    yield '<section aria-labelledby="recommendation">\n'
    yield '<h2 id="recommendation">Recommendation</h2>\n'
    yield f'<p class="summary">{escape(readable.summary)}</p>\n'
    yield from _html_facts(readable.facts)
    yield "</section>\n"
    for section in readable.sections:
        yield from _html_section(section)
    yield '<section aria-labelledby="about">\n<h2 id="about">About this determination</h2>\n'
    yield from _html_facts(_about_facts(readable.about))
    if readable.trace:
        yield f"<p>{escape(readable.trace)}</p>\n"
    yield "</section>\n"
    yield f'<p class="disclaimer"><strong>{escape(readable.disclaimer)}</strong></p>\n'


def _html_facts(facts: Iterable[Fact]) -> Iterator[str]:
    yield "<dl>\n"
    for fact in facts:
        value = escape(fact.value)
        if fact.urgency:
            value = f'<span class="urgency-{escape(fact.urgency)}">{value}</span>'
        yield f"<dt>{escape(fact.label)}</dt><dd>{value}</dd>\n"
    yield "</dl>\n"


def _html_section(section: Section, css_class: str | None = None) -> Iterator[str]:
    attribute = f' class="{css_class}"' if css_class else ""
    yield f'<section{attribute} aria-labelledby="{section.anchor}">\n'
    yield f'<h2 id="{section.anchor}">{escape(section.title)}</h2>\n<ul>\n'
    for item in section.items:
        yield f"<li>{_html_item(item)}</li>\n"
    yield "</ul>\n</section>\n"


def _html_item(item: Item) -> str:
    text = escape(item.text)
    if item.urgency:
        word = escape(item.urgency.capitalize())
        text = f'<span class="urgency-{escape(item.urgency)}">{word}:</span> {text}'
    if item.note:
        text += f' <span class="note">({escape(item.note)})</span>'
    if item.details:
        text += "<ul>" + "".join(f"<li>{escape(d)}</li>" for d in item.details) + "</ul>"
    return text


def error_page(title: str, detail: str) -> str:
    """A page saying why something cannot be shown (an expired link, for instance)."""
    return _page(
        f"{title} · carelevel",
        (f"<h1>{escape(title)}</h1>\n", f"<p>{escape(detail)}</p>\n"),
    )


# --- plain text ------------------------------------------------------------------------------

_COLOURS: Final = {"emergent": "\x1b[1;31m", "urgent": "\x1b[1;33m"}  # bold red, bold yellow
_RESET: Final = "\x1b[0m"


def _coloured(text: str, urgency: str | None, colour: bool) -> str:
    code = _COLOURS.get(urgency or "") if colour else None
    return f"{code}{text}{_RESET}" if code else text


def plain_text(readable: Readable, *, colour: bool = False, width: int = 96) -> str:
    """The document for a terminal: ``colour`` marks emergent urgency red and urgent yellow
    (ANSI escapes; the caller decides whether the terminal wants them)."""
    lines: list[str] = []
    if readable.alerts.items:
        lines += _plain_section(readable.alerts, colour, width)
    label_width = max(len(fact.label) for fact in readable.facts) + 1
    lines += [
        f"{fact.label:<{label_width}}: {_coloured(fact.value, fact.urgency, colour)}"
        for fact in readable.facts
    ]
    lines += ["", *_wrapped(f"Summary: {readable.summary}", width), ""]
    for section in readable.sections:
        lines += _plain_section(section, colour, width)
    about = readable.about
    lines += [
        "About this determination",
        f"  Rule set {about.rule_set} (sha256 {about.sha256[:12]}…), engine {about.engine_version}",
    ]
    lines += [f"  {fact.label}: {fact.value}" for fact in _screening_facts(about)]
    if readable.trace:
        lines.append(f"  {readable.trace}")
    return "\n".join([*lines, "", *_wrapped(readable.disclaimer, width)])


def _wrapped(text: str, width: int, first: str = "", then: str = "") -> list[str]:
    """Lines of ``text``, broken at spaces only: rule ids and hyphenated words stay whole."""
    wrapper = textwrap.TextWrapper(
        width=width, initial_indent=first, subsequent_indent=then, break_on_hyphens=False
    )
    return wrapper.wrap(text)


def _plain_section(section: Section, colour: bool, width: int) -> list[str]:
    lines = [section.title]
    for item in section.items:
        tag = f"[{item.urgency}] " if item.urgency else ""
        wrapped = _wrapped(f"{tag}{_noted(item.text, item.note)}", width, "  - ", "    ")
        if tag:  # coloured once wrapped, so that escapes never count towards the width
            wrapped[0] = wrapped[0].replace(tag, _coloured(tag.strip(), item.urgency, colour) + " ")
        lines += wrapped
        for detail in item.details:
            lines += _wrapped(detail, width, "      ", "      ")
    return [*lines, ""]


# --- FHIR narrative --------------------------------------------------------------------------

XHTML: Final = "http://www.w3.org/1999/xhtml"


def narrative(paragraphs: Sequence[tuple[str | None, str]]) -> str:
    """A FHIR narrative ``div`` (XHTML, no style, no script) of (label, text) paragraphs."""
    body = "".join(
        f"<p><b>{escape(label)}</b>: {escape(text)}</p>" if label else f"<p>{escape(text)}</p>"
        for label, text in paragraphs
    )
    return f'<div xmlns="{XHTML}">{body}</div>'


def determination_narrative(determination: Json) -> str:
    """The narrative of a recommendation: level, urgency, IOP verdict and the summary."""
    level = determination.get("recommended_level")
    return narrative(
        [
            ("Recommended level of care", level["label"] if level else "none"),
            ("Urgency", determination["urgency"]),
            ("IOP", humanized(determination["iop"]["verdict"])),
            (None, summary(determination)),
        ]
    )
