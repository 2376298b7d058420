"""What a person reads of each instrument: item wording, answer labels, codes and the licence.

Wording ships only where the holder's own terms allow a service like carelevel to show it
(``Licence.shows_wording``). For the others every item still has a ``topic``: a short label in
carelevel's own words that says what the item is about, marked as such, so a form can be laid
out and a clinician knows which item is which; the licensed wording comes from the tenant's own
copy of the instrument. Codes are LOINC codes, each either confirmed in an HL7 or NLM artifact
or found in third-party material only (docs/instruments.md marks which).

Languages are BCP 47 tags. English is always there; where the holder publishes an official
translation on the same terms (PHQ-9, PHQ-2 and GAD-7 in Spanish for the USA), it is here too.
Pure data: nothing here reads or writes anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from app.engine.choice import Choice
from app.engine.instruments import SPECS, AnswerKind, InstrumentId

ENGLISH: Final = "en"
SPANISH: Final = "es"
LANGUAGES: Final = (ENGLISH, SPANISH)

Text = Mapping[str, str]
"""A text by language tag; always has English."""


class Verdict(Choice):
    """What the holder's terms allow a commercial service to show."""

    FREE = "free"  # reproduce as published
    FREE_WITH_ATTRIBUTION = "free_with_attribution"  # reproduce and print the attribution
    PERMISSION_REQUIRED = "permission_required"  # written permission before the wording ships
    UNCLEAR = "unclear"  # no grant found: treated as permission required


@dataclass(frozen=True, slots=True)
class Licence:
    """Who holds an instrument and on what terms its wording may be shown."""

    holder: str
    verdict: Verdict
    terms: str  # the holder's terms, summarised in carelevel's words
    terms_url: str
    attribution: str | None  # the line to print wherever the wording is shown
    citation: str  # the publication that validated the instrument

    @property
    def shows_wording(self) -> bool:
        return self.verdict in (Verdict.FREE, Verdict.FREE_WITH_ATTRIBUTION)


@dataclass(frozen=True, slots=True)
class AnswerOption:
    """One answer of an item: the value the API takes, its label and its LOINC answer code
    (``also``: other LOINC codes that mean the same answer and are read as it)."""

    value: int | bool
    label: Text
    loinc: str | None = None
    also: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ItemContent:
    """One item of an instrument (1-based ``number``) or one named question of it (``name``)."""

    number: int
    topic: str  # carelevel's words: what the item is about (never the instrument's wording)
    wording: Text | None  # the published wording, None where the licence withholds it
    loinc: str | None
    options: tuple[AnswerOption, ...]
    name: str | None = None  # C-SSRS and PC-PTSD-5: the answers' field name

    def code_of(self, value: int | bool) -> str | None:
        """The LOINC answer code of ``value``."""
        return next(
            (o.loinc for o in self.options if type(o.value) is type(value) and o.value == value),
            None,
        )

    def value_of(self, code: str) -> int | bool | None:
        """The value a LOINC answer code stands for; None when it is not one of the item's."""
        return next((o.value for o in self.options if code in (o.loinc, *o.also)), None)


@dataclass(frozen=True, slots=True)
class InstrumentContent:
    instrument: InstrumentId
    licence: Licence
    stem: Text | None  # the instruction before the items (None where withheld or absent)
    items: tuple[ItemContent, ...]
    answer_list: str | None = None  # the LOINC answer list (LL…) shared by the items

    def item(self, number: int) -> ItemContent:
        return self.items[number - 1]

    def named(self, name: str) -> ItemContent | None:
        return next((item for item in self.items if item.name == name), None)

    @property
    def languages(self) -> tuple[str, ...]:
        """The languages every shown text of the instrument is available in."""
        texts = [self.stem] if self.stem else []
        texts += [item.wording for item in self.items if item.wording]
        if not texts:  # topics only: carelevel's English
            return (ENGLISH,)
        return tuple(tag for tag in LANGUAGES if all(tag in text for text in texts))


def in_language(text: Text, language: str) -> str:
    """``text`` in ``language``, or in English when there is no translation."""
    return text.get(language) or text[ENGLISH]


# --- licences ------------------------------------------------------------------------------------

_PFIZER: Final = Licence(
    holder="Pfizer Inc.",
    verdict=Verdict.FREE_WITH_ATTRIBUTION,
    terms="The holder states that no permission is required to reproduce, translate, display "
    "or distribute the screeners; print the attribution with them.",
    terms_url="https://www.phqscreeners.com/select-screener",
    attribution="Developed by Drs. Robert L. Spitzer, Janet B.W. Williams, Kurt Kroenke and "
    "colleagues, with an educational grant from Pfizer Inc. No permission required to "
    "reproduce, translate, display or distribute.",
    citation="",
)


def _pfizer(citation: str) -> Licence:
    return Licence(
        _PFIZER.holder,
        _PFIZER.verdict,
        _PFIZER.terms,
        _PFIZER.terms_url,
        _PFIZER.attribution,
        citation,
    )


LICENCES: Final[Mapping[InstrumentId, Licence]] = {
    InstrumentId.PHQ9: _pfizer(
        "Kroenke K, Spitzer RL, Williams JBW. The PHQ-9: validity of a brief depression severity "
        "measure. J Gen Intern Med 2001;16:606-613."
    ),
    InstrumentId.PHQ2: _pfizer(
        "Kroenke K, Spitzer RL, Williams JBW. The Patient Health Questionnaire-2: validity of a "
        "two-item depression screener. Med Care 2003;41:1284-1292."
    ),
    InstrumentId.GAD7: _pfizer(
        "Spitzer RL, Kroenke K, Williams JBW, Löwe B. A brief measure for assessing generalized "
        "anxiety disorder: the GAD-7. Arch Intern Med 2006;166:1092-1097."
    ),
    InstrumentId.AUDIT_C: Licence(
        holder="US Department of Veterans Affairs (items 1-3 of the WHO AUDIT)",
        verdict=Verdict.FREE,
        terms="SAMHSA's AUDIT-C sheet states that the AUDIT-C is available for use in the public "
        "domain. Its items are AUDIT items 1-3 (© WHO): cover them in any request to WHO for "
        "the AUDIT.",
        terms_url="https://www.samhsa.gov/resource/dbhis/alcohol-use-disorders-identification-"
        "test-c-audit-c",
        attribution="AUDIT-C: Bush K et al., Arch Intern Med 1998; items 1-3 of the AUDIT, "
        "© World Health Organization 2001.",
        citation="Bush K, Kivlahan DR, McDonell MB, Fihn SD, Bradley KA. The AUDIT alcohol "
        "consumption questions (AUDIT-C). Arch Intern Med 1998;158:1789-1795.",
    ),
    InstrumentId.AUDIT: Licence(
        holder="World Health Organization",
        verdict=Verdict.PERMISSION_REQUIRED,
        terms="WHO's manual may be reviewed, reproduced and translated freely, but not for sale "
        "or in conjunction with commercial purposes: a commercial service needs WHO's written "
        "permission to show items 4-10 (items 1-3 are the public-domain AUDIT-C).",
        terms_url="https://www.who.int/publications/i/item/WHO-MSD-MSB-01.6a",
        attribution="AUDIT © World Health Organization 2001.",
        citation="Babor TF, Higgins-Biddle JC, Saunders JB, Monteiro MG. AUDIT: The Alcohol Use "
        "Disorders Identification Test. Guidelines for Use in Primary Care, 2nd ed. WHO 2001.",
    ),
    InstrumentId.DAST10: Licence(
        holder="Harvey A. Skinner and the Centre for Addiction and Mental Health, Toronto",
        verdict=Verdict.PERMISSION_REQUIRED,
        terms="May be reproduced for non-commercial clinical, research and training use with "
        "credit to the author; commercial display needs the holder's permission.",
        terms_url="http://adai.washington.edu/instruments/pdf/Drug_Abuse_Screening_Test_105.pdf",
        attribution="DAST-10 © 1982 Harvey A. Skinner, PhD, and CAMH.",
        citation="Skinner HA. The Drug Abuse Screening Test. Addict Behav 1982;7:363-371.",
    ),
    InstrumentId.CSSRS: Licence(
        holder="The Research Foundation for Mental Hygiene, Inc. (Columbia Lighthouse Project)",
        verdict=Verdict.PERMISSION_REQUIRED,
        terms="Free for clinical, community and non-profit research use; terms for a for-profit "
        "service must be agreed in writing with the holder, and the wording may not be changed.",
        terms_url="https://cssrs.columbia.edu",
        attribution="C-SSRS © The Research Foundation for Mental Hygiene, Inc.",
        citation="Posner K et al. The Columbia-Suicide Severity Rating Scale. Am J Psychiatry "
        "2011;168:1266-1277.",
    ),
    InstrumentId.PC_PTSD5: Licence(
        holder="US Department of Veterans Affairs, National Center for PTSD",
        verdict=Verdict.FREE_WITH_ATTRIBUTION,
        terms="A work of the US government, published by the National Center for PTSD; no "
        "restrictive statement was found. Cite it wherever it is shown.",
        terms_url="https://www.ptsd.va.gov/professional/assessment/screens/pc-ptsd.asp",
        attribution="Prins A, Bovin MJ, Kimerling R, et al. Primary Care PTSD Screen for DSM-5 "
        "(PC-PTSD-5). National Center for PTSD.",
        citation="Prins A et al. The Primary Care PTSD Screen for DSM-5 (PC-PTSD-5). J Gen "
        "Intern Med 2016;31:1206-1211.",
    ),
    InstrumentId.SCOFF: Licence(
        holder="Morgan JF, Reid F, Lacey JH / BMJ",
        verdict=Verdict.UNCLEAR,
        terms="No grant from the authors was found and the published text is © BMJ: treated as "
        "needing permission before the wording is shown.",
        terms_url="https://www.bmj.com/content/319/7223/1467",
        attribution=None,
        citation="Morgan JF, Reid F, Lacey JH. The SCOFF questionnaire. BMJ 1999;319:1467-1468.",
    ),
    InstrumentId.CIWA_AR: Licence(
        holder="Sullivan JT et al. (not copyrighted)",
        verdict=Verdict.FREE,
        terms="The authors state that the scale is not copyrighted and may be used freely.",
        terms_url="https://doi.org/10.1111/j.1360-0443.1989.tb00737.x",
        attribution=None,
        citation="Sullivan JT et al. Assessment of alcohol withdrawal: the revised Clinical "
        "Institute Withdrawal Assessment for Alcohol scale (CIWA-Ar). Br J Addict "
        "1989;84:1353-1357.",
    ),
    InstrumentId.COWS: Licence(
        holder="Wesson DR, Ling W / Journal of Psychoactive Drugs",
        verdict=Verdict.UNCLEAR,
        terms="No grant was found; reprints in public guidance transfer no rights: treated as "
        "needing permission before the items are shown (carelevel takes the clinician's total "
        "only).",
        terms_url="https://doi.org/10.1080/02791072.2003.10400007",
        attribution=None,
        citation="Wesson DR, Ling W. The Clinical Opiate Withdrawal Scale (COWS). J "
        "Psychoactive Drugs 2003;35:253-259.",
    ),
    InstrumentId.CRAFFT: Licence(
        holder="John R. Knight, Boston Children's Hospital (distributed by CABHRe)",
        verdict=Verdict.PERMISSION_REQUIRED,
        terms="Clinicians may use the questions exactly as published, without fee; showing them "
        "in another print or electronic format (an API or app) needs the holder's approval, "
        "requested from crafft@childrens.harvard.edu. Part A stays numeric (days of use).",
        terms_url="https://crafft.org",
        attribution="CRAFFT 2.1 © John R. Knight, Boston Children's Hospital. Used with "
        "permission. For more information, contact crafft@childrens.harvard.edu.",
        citation="Knight JR, Sherritt L, Shrier LA, Harris SK, Chang G. Validity of the CRAFFT "
        "substance abuse screening test among adolescent clinic patients. Arch Pediatr Adolesc "
        "Med 2002;156:607-614.",
    ),
    InstrumentId.ASQ: Licence(
        holder="National Institute of Mental Health (US government)",
        verdict=Verdict.FREE_WITH_ATTRIBUTION,
        terms="A work of the US government, offered by NIMH as a free resource in its ASQ "
        "toolkit; cite NIMH wherever it is shown and imply no endorsement.",
        terms_url="https://www.nimh.nih.gov/labs-at-nimh/asq-toolkit-materials/",
        attribution="Ask Suicide-Screening Questions (ASQ), National Institute of Mental Health "
        "(NIMH). Shown without NIMH endorsement.",
        citation="Horowitz LM et al. Ask Suicide-Screening Questions (ASQ): a brief instrument "
        "for the pediatric emergency department. Arch Pediatr Adolesc Med 2012;166:1170-1176.",
    ),
}


# --- answer options ------------------------------------------------------------------------------


def _option(value: int | bool, loinc: str | None, english: str, spanish: str = "") -> AnswerOption:
    label = {ENGLISH: english} | ({SPANISH: spanish} if spanish else {})
    return AnswerOption(value, label, loinc)


# LOINC answer list LL358-3, with the Pfizer forms' wording (GAD-7 says "Nunca" for "not at all").
_FREQUENCY: Final = (
    _option(0, "LA6568-5", "Not at all", "Ningún día"),
    _option(1, "LA6569-3", "Several days", "Varios días"),
    _option(2, "LA6570-1", "More than half the days", "Más de la mitad de los días"),
    _option(3, "LA6571-9", "Nearly every day", "Casi todos los días"),
)
_GAD_FREQUENCY: Final = (
    _option(0, "LA6568-5", "Not at all", "Nunca"),
    *_FREQUENCY[1:],
)
# LOINC's own GAD-7 form offers "More days than not" (LA18938-3) at item 2; Pfizer's form, which
# is shown, says "More than half the days". Both are read as the same answer.
_GAD_ITEM_2: Final = (
    *_GAD_FREQUENCY[:2],
    AnswerOption(2, _GAD_FREQUENCY[2].label, _GAD_FREQUENCY[2].loinc, ("LA18938-3",)),
    _GAD_FREQUENCY[3],
)
_YES_NO: Final = (_option(True, "LA33-6", "Yes", "Sí"), _option(False, "LA32-8", "No", "No"))
_AUDIT_HOW_OFTEN: Final = (
    _option(0, "LA6270-8", "Never"),
    _option(1, "LA18926-8", "Monthly or less"),
    _option(2, "LA18927-6", "2 to 4 times a month"),
    _option(3, "LA18928-4", "2 to 3 times a week"),
    _option(4, "LA18929-2", "4 or more times a week"),
)
_AUDIT_HOW_MANY: Final = (
    _option(0, "LA15694-5", "1 or 2"),
    _option(1, "LA15695-2", "3 or 4"),
    _option(2, "LA18930-0", "5 or 6"),
    _option(3, "LA18931-8", "7 to 9"),
    _option(4, "LA18932-6", "10 or more"),
)
_AUDIT_FREQUENCY: Final = (
    _option(0, "LA6270-8", "Never"),
    _option(1, "LA18933-4", "Less than monthly"),
    _option(2, "LA18876-5", "Monthly"),
    _option(3, "LA18891-4", "Weekly"),
    _option(4, "LA18934-2", "Daily or almost daily"),
)
_AUDIT_EVER: Final = (
    _option(0, "LA32-8", "No"),
    _option(2, "LA32279-4", "Yes, but not in the last year"),
    _option(4, "LA32280-2", "Yes, during the last year"),
)


def _item(
    number: int,
    topic: str,
    loinc: str | None,
    options: tuple[AnswerOption, ...],
    english: str | None = None,
    spanish: str | None = None,
    name: str | None = None,
) -> ItemContent:
    wording = None
    if english is not None:
        wording = {ENGLISH: english} | ({SPANISH: spanish} if spanish else {})
    return ItemContent(number, topic, wording, loinc, options, name)


# --- PHQ-9, PHQ-2, GAD-7 (Pfizer forms; Spanish: the publisher's translation for the USA) --------

_PHQ_STEM: Final = {
    ENGLISH: "Over the last 2 weeks, how often have you been bothered by any of the following "
    "problems?",
    SPANISH: "Durante las últimas 2 semanas, ¿qué tan seguido ha tenido molestias debido a los "
    "siguientes problemas?",
}
_PHQ9_ITEMS: Final = (
    _item(
        1,
        "Little interest or pleasure",
        "44250-9",
        _FREQUENCY,
        "Little interest or pleasure in doing things",
        "Poco interés o placer en hacer cosas",
    ),
    _item(
        2,
        "Feeling down or hopeless",
        "44255-8",
        _FREQUENCY,
        "Feeling down, depressed, or hopeless",
        "Se ha sentido decaído(a), deprimido(a) o sin esperanzas",
    ),
    _item(
        3,
        "Sleep",
        "44259-0",
        _FREQUENCY,
        "Trouble falling or staying asleep, or sleeping too much",
        "Ha tenido dificultad para quedarse o permanecer dormido(a), o ha dormido demasiado",
    ),
    _item(
        4,
        "Tiredness or little energy",
        "44254-1",
        _FREQUENCY,
        "Feeling tired or having little energy",
        "Se ha sentido cansado(a) o con poca energía",
    ),
    _item(
        5,
        "Appetite",
        "44251-7",
        _FREQUENCY,
        "Poor appetite or overeating",
        "Sin apetito o ha comido en exceso",
    ),
    _item(
        6,
        "Feeling bad about oneself",
        "44258-2",
        _FREQUENCY,
        "Feeling bad about yourself — or that you are a failure or have let yourself or your "
        "family down",
        "Se ha sentido mal con usted mismo(a) – o que es un fracaso o que ha quedado mal con "
        "usted mismo(a) o con su familia",
    ),
    _item(
        7,
        "Concentration",
        "44252-5",
        _FREQUENCY,
        "Trouble concentrating on things, such as reading the newspaper or watching television",
        "Ha tenido dificultad para concentrarse en ciertas actividades, tales como leer el "
        "periódico o ver la televisión",
    ),
    _item(
        8,
        "Slowed down or restless",
        "44253-3",
        _FREQUENCY,
        "Moving or speaking so slowly that other people could have noticed? Or the opposite — "
        "being so fidgety or restless that you have been moving around a lot more than usual",
        "¿Se ha movido o hablado tan lento que otras personas podrían haberlo notado? o lo "
        "contrario – muy inquieto(a) o agitado(a) que ha estado moviéndose mucho más de lo "
        "normal",
    ),
    _item(
        9,
        "Thoughts of death or self-harm",
        "44260-8",
        _FREQUENCY,
        "Thoughts that you would be better off dead or of hurting yourself in some way",
        "Pensamientos de que estaría mejor muerto(a) o de lastimarse de alguna manera",
    ),
)
_GAD_STEM: Final = {
    ENGLISH: "Over the last 2 weeks, how often have you been bothered by the following problems?",
    SPANISH: "Durante las últimas 2 semanas, ¿con qué frecuencia le han molestado los siguientes "
    "problemas?",
}
_GAD7_ITEMS: Final = tuple(
    _item(number, topic, code, _GAD_ITEM_2 if number == 2 else _GAD_FREQUENCY, english, spanish)
    for number, (topic, code, english, spanish) in enumerate(
        (
            (
                "Nervous or on edge",
                "69725-0",
                "Feeling nervous, anxious or on edge",
                "Se ha sentido nervioso(a), ansioso(a) o con los nervios de punta",
            ),
            (
                "Uncontrollable worry",
                "68509-9",
                "Not being able to stop or control worrying",
                "No ha sido capaz de parar o controlar su preocupación",
            ),
            (
                "Worrying too much",
                "69733-4",
                "Worrying too much about different things",
                "Se ha preocupado demasiado por motivos diferentes",
            ),
            (
                "Trouble relaxing",
                "69734-2",
                "Trouble relaxing",
                "Ha tenido dificultad para relajarse",
            ),
            (
                "Restlessness",
                "69735-9",
                "Being so restless that it is hard to sit still",
                "Se ha sentido tan inquieto(a) que no ha podido quedarse quieto(a)",
            ),
            (
                "Irritability",
                "69689-8",
                "Becoming easily annoyed or irritable",
                "Se ha molestado o irritado fácilmente",
            ),
            (
                "Fear that something awful might happen",
                "69736-7",
                "Feeling afraid as if something awful might happen",
                "Ha tenido miedo de que algo terrible fuera a pasar",
            ),
        ),
        start=1,
    )
)

# --- AUDIT-C and AUDIT ---------------------------------------------------------------------------

_AUDIT_C_ITEMS: Final = (
    _item(
        1,
        "How often alcohol is drunk",
        "68518-0",
        _AUDIT_HOW_OFTEN,
        "How often do you have a drink containing alcohol?",
    ),
    _item(
        2,
        "Drinks on a typical drinking day",
        "68519-8",
        _AUDIT_HOW_MANY,
        "How many drinks containing alcohol do you have on a typical day when you are drinking?",
    ),
    _item(
        3,
        "How often six or more drinks on one occasion",
        "68520-6",
        _AUDIT_FREQUENCY,
        "How often do you have six or more drinks on one occasion?",
    ),
)
_AUDIT_TOPICS: Final = (
    "Could not stop drinking once started",
    "Failed to do what was expected because of drinking",
    "Needed a first drink in the morning",
    "Guilt or remorse after drinking",
    "Could not remember the night before because of drinking",
)
_AUDIT_ITEMS: Final = (
    *_AUDIT_C_ITEMS,
    *(
        _item(number, topic, None, _AUDIT_FREQUENCY)
        for number, topic in enumerate(_AUDIT_TOPICS, start=4)
    ),
    _item(9, "Someone injured because of the person's drinking", None, _AUDIT_EVER),
    _item(10, "Someone concerned about the person's drinking", None, _AUDIT_EVER),
)

# --- yes/no screens whose wording needs permission: topics only ----------------------------------

_DAST10_TOPICS: Final = (
    "Drug use other than for medical reasons",
    "More than one drug at a time",
    "Able to stop using drugs when wanted (reverse-scored)",
    "Blackouts or flashbacks from drug use",
    "Feeling bad or guilty about drug use",
    "Spouse or parents complain about drug use",
    "Family neglected because of drug use",
    "Illegal activities to obtain drugs",
    "Withdrawal symptoms after stopping",
    "Medical problems from drug use",
)
_SCOFF_TOPICS: Final = (
    "Making oneself sick when uncomfortably full",
    "Worry about losing control over eating",
    "Recent large weight loss",
    "Believing oneself fat when others say too thin",
    "Food dominating life",
)
_CSSRS_QUESTIONS: Final = (  # (answers' field, topic, LOINC item of the Screen Version - Recent)
    ("wish_to_be_dead", "Wish to be dead (past month)", "93246-7"),
    ("non_specific_active_thoughts", "Thoughts of killing oneself (past month)", "93247-5"),
    ("method", "Thought about a method (past month)", "93248-3"),
    ("intent", "Intention to act on the thoughts (past month)", "93249-1"),
    ("plan_with_intent", "A worked-out plan with intent (past month)", "93250-9"),
    ("behavior_lifetime", "Suicidal behaviour (lifetime)", "93267-3"),
    ("behavior_past_3_months", "Suicidal behaviour in the past 3 months", "93269-9"),
)

# --- PC-PTSD-5 (US VA, free with citation) -------------------------------------------------------

_PC_PTSD5_EXPOSURE: Final = _item(
    0,
    "Lifetime exposure to a traumatic event",
    None,
    _YES_NO,
    "Sometimes things happen to people that are unusually or especially frightening, horrible, "
    "or traumatic. For example: a serious accident or fire; a physical or sexual assault or "
    "abuse; an earthquake or flood; a war; seeing someone be killed or seriously injured; "
    "having a loved one die through homicide or suicide. Have you ever experienced this kind "
    "of event?",
    name="trauma_exposure",
)
_PC_PTSD5_ITEMS: Final = tuple(
    _item(number, topic, None, _YES_NO, f"In the past month, have you… {wording}")
    for number, (topic, wording) in enumerate(
        (
            (
                "Nightmares or unwanted thoughts of the event",
                "had nightmares about the event(s) or thought about the event(s) when you did "
                "not want to?",
            ),
            (
                "Avoidance of reminders",
                "tried hard not to think about the event(s) or went out of your way to avoid "
                "situations that reminded you of the event(s)?",
            ),
            ("Constantly on guard", "been constantly on guard, watchful, or easily startled?"),
            (
                "Numb or detached",
                "felt numb or detached from people, activities, or your surroundings?",
            ),
            (
                "Guilt or blame",
                "felt guilty or unable to stop blaming yourself or others for the event(s) or "
                "any problems the event(s) may have caused?",
            ),
        ),
        start=1,
    )
)


# --- CRAFFT 2.1 (permission required: topics only) and ASQ (NIMH, free with citation) ----------

_CRAFFT_PART_A: Final = tuple(
    _item(0, topic, None, (), name=name)
    for name, topic in (
        ("days_alcohol", "Days of alcohol use in the past 12 months (Part A)"),
        ("days_cannabis", "Days of cannabis use in the past 12 months (Part A)"),
        ("days_other", "Days of other use to get high in the past 12 months (Part A)"),
    )
)
_CRAFFT_TOPICS: Final = (
    "CAR: riding with a driver who had been using, or driving after use",
    "RELAX: using to relax, feel better or fit in",
    "ALONE: using while alone",
    "FORGET: forgetting things done while using",
    "FRIENDS: family or friends saying to cut down",
    "TROUBLE: getting into trouble while using",
)
_ASQ_ITEMS: Final = tuple(
    _item(number, topic, None, _YES_NO, wording, name=name)
    for number, (name, topic, wording) in enumerate(
        (
            (
                None,
                "Wished to be dead (past few weeks)",
                "In the past few weeks, have you wished you were dead?",
            ),
            (
                None,
                "Felt others would be better off (past few weeks)",
                "In the past few weeks, have you felt that you or your family would be better "
                "off if you were dead?",
            ),
            (
                None,
                "Thoughts of killing oneself (past week)",
                "In the past week, have you been having thoughts about killing yourself?",
            ),
            (None, "Ever tried to kill oneself", "Have you ever tried to kill yourself?"),
            (
                "acute",
                "Thoughts of killing oneself right now (acuity)",
                "Are you having thoughts of killing yourself right now?",
            ),
        ),
        start=1,
    )
)


def _content(
    instrument: InstrumentId,
    items: tuple[ItemContent, ...],
    stem: Text | None = None,
    answer_list: str | None = None,
) -> InstrumentContent:
    return InstrumentContent(instrument, LICENCES[instrument], stem, items, answer_list)


CONTENT: Final[Mapping[InstrumentId, InstrumentContent]] = {
    content.instrument: content
    for content in (
        _content(InstrumentId.PHQ9, _PHQ9_ITEMS, _PHQ_STEM, "LL358-3"),
        _content(InstrumentId.PHQ2, _PHQ9_ITEMS[:2], _PHQ_STEM, "LL358-3"),
        _content(InstrumentId.GAD7, _GAD7_ITEMS, _GAD_STEM, "LL358-3"),
        _content(InstrumentId.AUDIT_C, _AUDIT_C_ITEMS),
        _content(InstrumentId.AUDIT, _AUDIT_ITEMS),
        _content(
            InstrumentId.DAST10,
            tuple(_item(n, topic, None, _YES_NO) for n, topic in enumerate(_DAST10_TOPICS, 1)),
        ),
        _content(
            InstrumentId.CSSRS,
            tuple(
                _item(n, topic, code, _YES_NO, name=name)
                for n, (name, topic, code) in enumerate(_CSSRS_QUESTIONS, 1)
            ),
        ),
        _content(InstrumentId.PC_PTSD5, (_PC_PTSD5_EXPOSURE, *_PC_PTSD5_ITEMS)),
        _content(
            InstrumentId.SCOFF,
            tuple(_item(n, topic, None, _YES_NO) for n, topic in enumerate(_SCOFF_TOPICS, 1)),
        ),
        _content(InstrumentId.CIWA_AR, ()),
        _content(InstrumentId.COWS, ()),
        _content(
            InstrumentId.CRAFFT,
            (
                *_CRAFFT_PART_A,
                *(_item(n, topic, None, _YES_NO) for n, topic in enumerate(_CRAFFT_TOPICS, 1)),
            ),
        ),
        _content(InstrumentId.ASQ, _ASQ_ITEMS),
    )
}


def item_content(instrument: InstrumentId, number: int) -> ItemContent:
    """The content of item ``number`` (1-based) of an instrument's item list; for PC-PTSD-5
    the symptom items (the exposure question is ``CONTENT[...].named("trauma_exposure")``),
    for CRAFFT 2.1 Part B (Part A: named ``days_*``), for the ASQ items 1-4 (item 5 is named
    ``acute``)."""
    items = [item for item in CONTENT[instrument].items if item.number > 0 and item.name is None]
    return items[number - 1]


def _check() -> None:
    """Item counts and answer values agree with the scoring specs (run at import)."""
    for instrument, content in CONTENT.items():
        spec = SPECS[instrument]
        numbered = [item for item in content.items if item.number > 0 and item.name is None]
        if spec.kind is AnswerKind.ORDINAL:
            assert len(numbered) == spec.item_count, instrument
            for item, allowed in zip(numbered, spec.item_values, strict=True):
                assert tuple(option.value for option in item.options) == allowed, instrument
        elif spec.kind is AnswerKind.YES_NO:
            assert len(numbered) == spec.item_count, instrument
        # Wording is recorded only where it may be shown (AUDIT: items 1-3, the AUDIT-C).
        if not content.licence.shows_wording:
            shown = [item for item in content.items if item.wording is not None]
            assert all(item in CONTENT[InstrumentId.AUDIT_C].items for item in shown), instrument


_check()
