"""Cards from a stored screening: a summary naming the level and urgency, the reasons, barriers
and safety alerts in markdown, a suggestion to create the referral, and a link to the
screening's readable view that opens without an API key (a short-lived signed link). Pure: what
to show follows from the determination and the links handed in.

The tenant's program directory adds to the proposal: a suggestion to refer to each of the
(at most three) best programs that fit, the same draft ServiceRequest with the program's
HealthcareService as performer; when programs at the level exist but none fits, the detail
says why the closest does not."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from app.cds_hooks.schemas import (
    MAX_SUMMARY_CHARACTERS,
    Action,
    Card,
    Coding,
    Indicator,
    Link,
    Source,
    Suggestion,
)
from app.engine.determination import LEVEL_INFO, LevelOfCare
from app.engine.matching import Candidate, Needs, match
from app.engine.programs import DirectoryEntry
from app.fhir.results import Result, referral
from app.fhir.terminology import Vocabulary, humanize
from app.screenings.readable import (
    about_stored,
    document,
    markdown_facts,
    markdown_section,
)
from app.screenings.schemas import VarianceReason
from app.screenings.view import view_url

SOURCE_LABEL = "carelevel level-of-care screening"
# Programs a card suggests at most: a short list to choose from, the full ranking is a match
# away (POST /v1/program-matches).
MAX_PROGRAM_SUGGESTIONS = 3
# CDS Hooks sets no limit on a suggestion's label; EHRs show it as one line.
MAX_LABEL_CHARACTERS = 140
# The closest program's reasons the card names when none fits.
MAX_REASONS = 3


@dataclass(frozen=True, slots=True)
class Links:
    """Where a card points: this service's public address, and the signed query that opens a
    screening's view for the client the cards are made for (``LinkSigner.sign``)."""

    base_url: str
    view_query: Callable[[str], dict[str, str]]

    def screening(self, screening_id: str) -> str:
        """The screening's readable view, opened by a clinician's browser as it is."""
        return view_url(self.base_url, screening_id, self.view_query(screening_id))

    @property
    def fhir_base(self) -> str:
        """carelevel's FHIR R4 endpoint, where programs are read as HealthcareServices."""
        return f"{self.base_url}/fhir/r4"

    @property
    def smart_launch(self) -> str:
        """carelevel's SMART app: the EHR launches it with ``iss`` and ``launch`` (a CDS Hooks
        link of type ``smart``), and it signs in with the EHR's own authorization."""
        return f"{self.base_url}/smart/launch"


@dataclass(frozen=True, slots=True)
class ProgramOffer:
    """What the directory offers the screened person: the programs at the recommended level
    that fit, best first, or (none fitting) the closest one at that level."""

    fitting: tuple[Candidate, ...] = ()
    closest: Candidate | None = None


def program_offer(needs: Needs, entries: Sequence[DirectoryEntry]) -> ProgramOffer:
    """The directory's programs at the recommended level ranked for ``needs`` (none without a
    level, or when emergency evaluation comes first: the matcher ranks nothing then)."""
    at_level = [entry for entry in entries if entry.program.level.value == needs.level]
    candidates = match(needs, at_level).candidates
    fitting = tuple(c for c in candidates if c.fits)[:MAX_PROGRAM_SUGGESTIONS]
    closest = candidates[0] if candidates and not fitting else None
    return ProgramOffer(fitting, closest)


def _source(vocabulary: Vocabulary, url: str | None) -> Source:
    return Source(
        label=SOURCE_LABEL,
        url=url,
        topic=Coding(
            system=vocabulary.observations,
            code="level-of-care-recommendation",
            display="Recommended level of care (screening)",
        ),
    )


def indicator(determination: dict[str, Any]) -> Indicator:
    """critical for an emergent safety alert, warning when more than IOP is needed, a safety
    assessment is pending or urgent action is needed, info otherwise."""
    if determination["urgency"] == "emergent":
        return "critical"
    if determination["urgency"] == "urgent" or determination["iop"]["verdict"] in (
        "higher_level_needed",
        "pending_safety_assessment",
    ):
        return "warning"
    return "info"


def summary(determination: dict[str, Any]) -> str:
    level = determination.get("recommended_level")
    urgency = determination["urgency"]
    if level is None:
        text = "IOP screening: too little information to recommend a level of care"
    elif urgency == "emergent":
        text = f"Safety: {level['label']} ({urgency}); see the alerts"
    elif determination["iop"]["verdict"] == "pending_safety_assessment":
        text = f"IOP screening: safety assessment needed before placement ({urgency})"
    else:
        text = f"IOP screening recommends {level['label']} ({urgency})"
    if determination["status"] == "partial":
        text += ", provisional"
    return text[:MAX_SUMMARY_CHARACTERS]


# The sections of the readable document a card shows, in its order (the view shows them all).
CARD_SECTIONS = ("safety-alerts", "contradictions", "why", "barriers", "missing")


def detail(result: Result, *, unfit: Candidate | None = None) -> str:
    """The summary, the level's facts, the safety alerts, reasons, barriers and what is
    missing, as GitHub-flavoured markdown: the readable document's pieces (app/screenings/
    readable.py), with bold titles rather than headings; ``unfit``: the closest program when
    none of the directory fits, and why."""
    readable = document(result.determination, about_stored(result.rule_set, result.engine_version))
    lines = [readable.summary, "", *markdown_facts(readable.facts), ""]
    for anchor in CARD_SECTIONS:
        section = readable.section(anchor)
        if section is not None:
            lines += markdown_section(section, heading=None)
    if unfit is not None:
        lines += [none_fits(unfit), ""]
    rule_set = result.rule_set
    lines.append(
        f"Rule set `{rule_set['owner']}/{rule_set['key']}` version {rule_set['version']}. "
        f"{readable.disclaimer}"
    )
    return "\n".join(lines)


def override_reasons(vocabulary: Vocabulary) -> list[Coding]:
    system = vocabulary.code_system("variance-reason")
    return [Coding(system=system, code=r.value, display=humanize(r.value)) for r in VarianceReason]


_MARKDOWN_SPECIAL = str.maketrans({c: f"\\{c}" for c in "\\`*_[]<>|#"})


def _md(text: str) -> str:
    """Text a tenant wrote (a program's name) shown as it is: no emphasis, links or HTML."""
    return text.translate(_MARKDOWN_SPECIAL)


def none_fits(closest: Candidate) -> str:
    """The detail's line when programs at the level exist but none fits: the closest one's
    first reasons, in the matcher's words."""
    reasons = [c.explanation for c in closest.criteria if c.outcome == "does_not_fit"]
    because = " ".join(reasons[:MAX_REASONS])
    return f"No program in the directory fits: the closest, {_md(closest.name)}: {_md(because)}"


def _label(text: str) -> str:
    if len(text) <= MAX_LABEL_CHARACTERS:
        return text
    return text[: MAX_LABEL_CHARACTERS - 1].rstrip() + "…"


def program_suggestion(
    links: Links, proposed: dict[str, Any], level: str, candidate: Candidate
) -> Suggestion:
    """Refer to one program: the proposed draft ServiceRequest to ``level`` (its label),
    performed by the program's HealthcareService at carelevel's FHIR endpoint."""
    request = copy.deepcopy(proposed)
    request["code"]["text"] = f"Referral to {candidate.name} ({level})"
    request["performer"] = [
        {
            "reference": f"{links.fhir_base}/HealthcareService/{candidate.program_id}",
            "display": candidate.name,
        }
    ]
    return Suggestion(
        label=_label(f"Refer to {candidate.name}. {candidate.summary}"),
        uuid=str(uuid.uuid4()),
        actions=[
            Action(
                type="create",
                description=f"Create a draft referral (ServiceRequest) to {candidate.name}",
                resource=request,
            )
        ],
    )


def suggestions(
    vocabulary: Vocabulary, links: Links, result: Result, programs: ProgramOffer
) -> list[Suggestion] | None:
    """The referral to the recommended level, then one to each program that fits (none
    without a level, or without a subject: a ServiceRequest needs one)."""
    determination = result.determination
    proposed = referral(vocabulary, result)
    level = determination.get("recommended_level")
    if proposed is None or level is None:
        return None
    # Created in the EHR: the EHR names it, and our Observation is not there to point at.
    proposed.pop("id")
    proposed.pop("reasonReference")
    proposed["reasonCode"] = [
        {"text": f"{summary(determination)} (carelevel screening {result.screening_id})"}
    ]
    label = LEVEL_INFO[LevelOfCare(level["level"])].label
    proposal = Suggestion(
        label=f"Propose a referral to {label}",
        uuid=str(uuid.uuid4()),
        isRecommended=True,
        actions=[
            Action(
                type="create",
                description=f"Create a draft referral (ServiceRequest) to {label}",
                resource=proposed,
            )
        ],
    )
    programs_fitting = [program_suggestion(links, proposed, label, c) for c in programs.fitting]
    return [proposal, *programs_fitting]


def screening_card(
    vocabulary: Vocabulary,
    links: Links,
    result: Result,
    *,
    note: str | None = None,
    programs: ProgramOffer | None = None,
) -> Card:
    """The card of a stored screening (``note``: a sentence put first, e.g. how it compares
    with a drafted order; ``programs``: what the tenant's directory offers)."""
    determination = result.determination
    programs = programs or ProgramOffer()
    suggested = suggestions(vocabulary, links, result, programs)
    text = detail(result, unfit=programs.closest)
    view = links.screening(result.screening_id)
    return Card(
        uuid=str(uuid.uuid4()),
        summary=summary(determination),
        detail=f"{note}\n\n{text}" if note else text,
        indicator=indicator(determination),
        # What decided, and by which rule-set version: the view's section about it.
        source=_source(vocabulary, f"{view}#about"),
        suggestions=suggested,
        # One referral at a time: the level, or one program at it.
        selectionBehavior="at-most-one" if suggested else None,
        overrideReasons=override_reasons(vocabulary),
        links=[Link(label="Open the screening in carelevel", url=view, type="absolute")],
    )


def _question(link_id: str) -> str:
    """A question's name from its linkId (``medical.heart_rate`` → "Heart rate")."""
    return humanize(link_id.rsplit(".", 1)[-1])


# Whether a screening is on file is said only when carelevel could look: a failed lookup
# never reads as "none" (the clinician would screen again, or choose a level without it).
NO_SCREENING = "No IOP level-of-care screening on file: screen before choosing a level"
UNCHECKED = "IOP screening on file could not be checked: look in the chart before choosing a level"


def invitation_detail(
    vocabulary: Vocabulary,
    key: str,
    prefilled: Sequence[str],
    *,
    chart_unread: bool,
    screening_unchecked: bool = False,
) -> str:
    """What the invitation says: whether a screening is on file (or that it could not be
    checked, and what to do), what the chart already answers (never the answers) or that it
    could not be read, and how to screen."""
    if screening_unchecked:
        first = (
            "carelevel could not read this patient's screenings (QuestionnaireResponses) from "
            "the EHR's FHIR server, so a completed screening may be on file. Look for one in "
            "the chart, or open the chart again to retry, before choosing a level; screen only "
            "if there is none."
        )
    else:
        first = (
            "No completed QuestionnaireResponse to carelevel's questionnaire was found for "
            "this patient."
        )
    lines = [first]
    if prefilled:
        names = ", ".join(_question(link_id) for link_id in prefilled)
        lines.append(
            f"The chart already answers {len(prefilled)} "
            f"question{'s' if len(prefilled) != 1 else ''} ({names}); the person confirms or "
            "changes them, and answers the rest."
        )
    if chart_unread:
        lines.append(
            "carelevel could not read the chart from the EHR's FHIR server: ask the person "
            "every question."
        )
    lines.append(
        "Screen with carelevel's app (the link), or with the Questionnaire "
        f"`{vocabulary.questionnaire(key)}`, sending the response to "
        "`POST /fhir/r4/QuestionnaireResponse/$evaluate`. Decision support, not a diagnosis."
    )
    return "\n\n".join(lines)


def invitation_card(
    vocabulary: Vocabulary,
    links: Links,
    key: str,
    *,
    draft: dict[str, Any] | None = None,
    prefilled: Sequence[str] = (),
    chart_unread: bool = False,
    screening_unchecked: bool = False,
) -> Card:
    """No completed screening for the patient, or none could be looked for
    (``screening_unchecked``, a warning): invite one. ``draft``: the in-progress
    QuestionnaireResponse pre-filled from the chart (``prefilled``: its linkIds from the
    chart), offered for the EHR to keep when the chart answered anything."""
    suggestions = None
    if draft is not None and prefilled:
        suggestions = [
            Suggestion(
                label="Keep the chart's answers as a draft screening",
                uuid=str(uuid.uuid4()),
                actions=[
                    Action(
                        type="create",
                        description="Create an in-progress QuestionnaireResponse with the "
                        "answers the chart gives, each marked with its source",
                        resource=draft,
                    )
                ],
            )
        ]
    return Card(
        uuid=str(uuid.uuid4()),
        summary=UNCHECKED if screening_unchecked else NO_SCREENING,
        detail=invitation_detail(
            vocabulary,
            key,
            prefilled,
            chart_unread=chart_unread,
            screening_unchecked=screening_unchecked,
        ),
        indicator="warning" if screening_unchecked else "info",
        source=_source(vocabulary, None),
        suggestions=suggestions,
        selectionBehavior="at-most-one" if suggestions else None,
        # A SMART link: the EHR launches carelevel's app with its own sign-in, so no API key
        # is needed (the Questionnaire's FHIR address would need one); the app pre-fills the
        # same answers from the chart through $populate.
        links=[Link(label="Screen in carelevel", url=links.smart_launch, type="smart")],
    )
