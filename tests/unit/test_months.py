"""Calendar months in UTC, and where in time a row with a time-ordered id was stored."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.kernel.ids import random_uuid, time_ordered_uuid
from app.kernel.months import ID_CLOCK_MARGIN, Month, id_instant, months_from, stored_near_id
from app.screenings.models import Screening

instants = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(9000, 1, 1), timezones=st.just(UTC)
)
months = st.builds(Month, st.integers(1971, 8999), st.integers(1, 12))


@given(instants)
def test_an_instant_lies_in_its_month(instant: datetime) -> None:
    month = Month.of(instant)
    assert month.start <= instant < month.end
    assert month.plus(1).start == month.end
    assert str(month) == instant.strftime("%Y-%m")


def test_the_month_of_an_instant_is_its_month_in_utc() -> None:
    new_year_in_new_york = datetime(2026, 12, 31, 20, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert Month.of(new_year_in_new_york) == Month(2027, 1)


@given(months, st.integers(-1200, 1200), st.integers(-1200, 1200))
def test_months_add_up(month: Month, first: int, second: int) -> None:
    assert month.plus(first).plus(second) == month.plus(first + second)
    assert (month.plus(first) < month.plus(second)) == (first < second)


@given(months, st.integers(0, 40))
def test_months_from_one_to_another_are_every_month_between(first: Month, count: int) -> None:
    listed = months_from(first, first.plus(count))
    assert listed == [first.plus(offset) for offset in range(count + 1)]
    assert months_from(first, first.plus(-1)) == []


def test_there_is_no_thirteenth_month() -> None:
    with pytest.raises(ValueError, match="no such month"):
        Month(2026, 13)


# --- time-ordered ids ----------------------------------------------------------------------------


def _made_at(instant: datetime) -> str:
    """A version 7 id made at ``instant`` (its millisecond), with time_ordered_uuid's form."""
    milliseconds = (instant - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    stamp = f"{milliseconds:012x}"
    return f"{stamp[:8]}-{stamp[8:]}{time_ordered_uuid()[13:]}"


def test_a_new_id_tells_when_it_was_made() -> None:
    before = datetime.now(UTC)
    made = id_instant(time_ordered_uuid())
    after = datetime.now(UTC)
    assert made is not None
    assert before - timedelta(milliseconds=1) <= made <= after


@given(instants)
def test_a_time_ordered_id_tells_its_instant_to_the_millisecond(instant: datetime) -> None:
    made = _made_at(instant)
    assert uuid.UUID(made).version == 7
    told = id_instant(made)
    assert told is not None
    assert timedelta(0) <= instant - told < timedelta(milliseconds=1)


@pytest.mark.parametrize(
    "text",
    [
        random_uuid(),  # an older row's id
        "plans-tenant-17",
        time_ordered_uuid().upper(),
        time_ordered_uuid()[:-1],
        "ffffffff-ffff-7fff-bfff-ffffffffffff",  # the year 10889
    ],
)
def test_other_ids_tell_no_time(text: str) -> None:
    assert id_instant(text) is None
    assert stored_near_id(Screening.created_at, text) == ()


def test_a_look_up_by_a_time_ordered_id_names_the_days_around_it() -> None:
    instant = datetime(2026, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
    conditions = stored_near_id(Screening.created_at, _made_at(instant))
    bounds = [condition.compile().params["created_at_1"] for condition in conditions]
    assert bounds == [instant - ID_CLOCK_MARGIN, instant + ID_CLOCK_MARGIN]
