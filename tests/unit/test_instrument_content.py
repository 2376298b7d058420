"""Instrument content: wording only where the licence allows it, codes well formed, the answers
of every item those the scoring accepts, translations complete."""

from __future__ import annotations

import re

import pytest

from app.engine.instrument_content import (
    CONTENT,
    ENGLISH,
    SPANISH,
    Verdict,
    in_language,
    item_content,
)
from app.engine.instruments import SPECS, AnswerKind, InstrumentId

LOINC_CODE = re.compile(r"[0-9]{1,7}-[0-9]")
LOINC_ANSWER = re.compile(r"LA[0-9]{1,6}-[0-9]")


def test_every_instrument_has_a_licence_and_a_source() -> None:
    assert set(CONTENT) == set(InstrumentId)
    for instrument, content in CONTENT.items():
        assert content.licence.holder, instrument
        assert content.licence.terms_url.startswith(("https://", "http://")), instrument
        assert content.licence.citation, instrument


@pytest.mark.parametrize("instrument", list(InstrumentId))
def test_wording_ships_only_where_the_licence_allows(instrument: InstrumentId) -> None:
    content = CONTENT[instrument]
    worded = [item for item in content.items if item.wording is not None]
    if content.licence.shows_wording:
        assert len(worded) == len(content.items), instrument
    elif instrument is InstrumentId.AUDIT:  # items 1-3: the public-domain AUDIT-C
        assert [item.number for item in worded] == [1, 2, 3]
    else:
        assert worded == [], instrument
        assert content.stem is None
    for item in content.items:
        assert item.topic, (instrument, item.number)


def test_the_licence_verdicts_follow_the_holders_terms() -> None:
    verdicts = {instrument: CONTENT[instrument].licence.verdict for instrument in InstrumentId}
    assert verdicts[InstrumentId.PHQ9] is Verdict.FREE_WITH_ATTRIBUTION
    assert verdicts[InstrumentId.AUDIT] is Verdict.PERMISSION_REQUIRED
    assert verdicts[InstrumentId.CSSRS] is Verdict.PERMISSION_REQUIRED
    assert verdicts[InstrumentId.DAST10] is Verdict.PERMISSION_REQUIRED
    assert verdicts[InstrumentId.SCOFF] is Verdict.UNCLEAR
    assert verdicts[InstrumentId.COWS] is Verdict.UNCLEAR
    assert verdicts[InstrumentId.PC_PTSD5] is Verdict.FREE_WITH_ATTRIBUTION


@pytest.mark.parametrize("instrument", [i for i in InstrumentId if SPECS[i].item_count])
def test_item_answers_are_the_scored_values_with_well_formed_codes(
    instrument: InstrumentId,
) -> None:
    spec = SPECS[instrument]
    if spec.kind is AnswerKind.CATEGORICAL:
        items = list(CONTENT[instrument].items)
    else:
        items = [item_content(instrument, number) for number in range(1, spec.item_count + 1)]
    for number, item in enumerate(items, start=1):
        if spec.kind is AnswerKind.ORDINAL:
            assert tuple(o.value for o in item.options) == spec.item_values[number - 1]
        else:
            assert tuple(o.value for o in item.options) == (True, False)
        assert item.loinc is None or LOINC_CODE.fullmatch(item.loinc), item
        for option in item.options:
            assert option.loinc is None or LOINC_ANSWER.fullmatch(option.loinc), option
            assert item.value_of(option.loinc or "") in (option.value, None)
            assert option.label[ENGLISH]


@pytest.mark.parametrize("instrument", [InstrumentId.PHQ9, InstrumentId.PHQ2, InstrumentId.GAD7])
def test_the_publishers_spanish_translation_is_complete(instrument: InstrumentId) -> None:
    content = CONTENT[instrument]
    assert content.languages == (ENGLISH, SPANISH)
    assert content.stem is not None
    assert SPANISH in content.stem
    for item in content.items:
        assert item.wording is not None
        assert SPANISH in item.wording
        assert all(SPANISH in option.label for option in item.options)


def test_text_falls_back_to_english() -> None:
    assert in_language({ENGLISH: "Yes"}, SPANISH) == "Yes"
    assert in_language({ENGLISH: "Yes", SPANISH: "Sí"}, SPANISH) == "Sí"


def test_loincs_own_gad7_item_2_answer_reads_as_the_pfizer_one() -> None:
    assert item_content(InstrumentId.GAD7, 2).value_of("LA18938-3") == 2
    assert item_content(InstrumentId.GAD7, 2).value_of("LA6570-1") == 2
    assert item_content(InstrumentId.GAD7, 1).value_of("LA18938-3") is None
