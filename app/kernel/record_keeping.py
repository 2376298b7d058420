"""How long records are kept: the bounds a retention period must respect, for the defaults
(settings) and for each tenant's own policy alike, and when a month's rows have expired."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from app.kernel.months import Month

# HIPAA keeps the documentation of security activity, the audit trail included, six years from
# its creation (45 CFR 164.316(b)(2)(i)): no tenant's audit trail is kept for less.
AUDIT_YEARS_MIN = 6
SCREENING_YEARS_MIN = 1
YEARS_MAX = 100

Records = Literal["screenings", "audit"]


def retention_years(records: Records, years: int) -> int:
    """``years`` if it is an acceptable retention for ``records``; ValueError saying why not."""
    floor = AUDIT_YEARS_MIN if records == "audit" else SCREENING_YEARS_MIN
    if years < floor:
        reason = " (HIPAA, 45 CFR 164.316(b)(2)(i))" if records == "audit" else ""
        raise ValueError(f"{records} retention must be at least {in_years(floor)}{reason}")
    if years > YEARS_MAX:
        raise ValueError(f"{records} retention must be at most {in_years(YEARS_MAX)}")
    return years


def in_years(years: int) -> str:
    """``years`` as words say it: 1 year, 10 years."""
    return f"{years} year" if years == 1 else f"{years} years"


def first_kept_month(now: datetime, years: int) -> Month:
    """The oldest month whose rows a retention of ``years`` still keeps at ``now``: a month's
    rows expire once the whole month lies more than ``years`` years in the past, so every row is
    kept at least ``years`` years, and at most a month longer."""
    return Month.of(now).plus(-12 * years)
