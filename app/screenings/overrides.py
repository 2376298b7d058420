"""The clinician decisions an override report reads: each screening a rule-set version decided,
with its latest decision, the rules that fired in it and the person it counts as (its person
id, or, without one, the screening itself), in one bounded query.

The fired rules are read inside the database from the stored determination's trace (a JSON
path on PostgreSQL, ``json_each`` on SQLite), so only their ids cross the wire, not the
determination (about 13 KB a screening, most of it the trace)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import JSON

from app.rulesets.overrides import DecidedScreening
from app.screenings.models import Decision, Screening


class fired_rules(FunctionElement[Any]):  # noqa: N801 - a SQL function, named like one
    """The ids of the rules a stored determination's trace shows as fired, as a JSON array."""

    type = JSON()
    inherit_cache = True
    name = "fired_rules"


@compiles(fired_rules, "postgresql")
def _fired_rules_postgresql(element: fired_rules, compiler: SQLCompiler, **kw: Any) -> str:
    document = compiler.process(element.clauses, **kw)
    return (
        f"jsonb_path_query_array({document}, '$.trace[*] ? (@.result == \"fired\").rule_id')::text"
    )


@compiles(fired_rules, "sqlite")
def _fired_rules_sqlite(element: fired_rules, compiler: SQLCompiler, **kw: Any) -> str:
    document = compiler.process(element.clauses, **kw)
    return (
        "(SELECT json_group_array(json_extract(step.value, '$.rule_id')) "
        f"FROM json_each({document}, '$.trace') AS step "
        "WHERE json_extract(step.value, '$.result') = 'fired')"
    )


def _ids(value: Any) -> tuple[str, ...]:
    """A JSON array of rule ids as the driver hands it over (text, or already parsed)."""
    parsed = orjson.loads(value) if isinstance(value, str | bytes) else value
    return tuple(parsed or ())


async def decided_screenings(
    session: AsyncSession, tenant: str, owner: str, key: str, version: int, limit: int
) -> Sequence[DecidedScreening]:
    """``tenant``'s screenings decided by version ``owner/key/version`` that have a clinician
    decision, each with its latest decision (a later one supersedes), those decided most
    recently first, at most ``limit``."""
    latest = (
        select(
            Decision.screening_id,
            Decision.screening_created_at,
            Decision.created_at,
            Decision.outcome,
            Decision.recommended_level,
            Decision.final_level,
            Decision.variance_reasons,
            func.row_number()
            .over(
                partition_by=Decision.screening_id,
                order_by=(Decision.created_at.desc(), Decision.id.desc()),
            )
            .label("newest"),
        )
        .join(
            Screening,
            and_(
                Screening.id == Decision.screening_id,
                Screening.created_at == Decision.screening_created_at,
                Screening.tenant_id == tenant,
            ),
        )
        .where(
            Decision.tenant_id == tenant,
            Screening.rule_set_owner == owner,
            Screening.rule_set_key == key,
            Screening.rule_set_version == version,
        )
        .subquery()
    )
    query = (
        select(
            latest.c.outcome,
            latest.c.recommended_level,
            latest.c.final_level,
            latest.c.variance_reasons,
            fired_rules(Screening.determination),
            Screening.id,
            Screening.person_id,
        )
        .join(
            Screening,
            and_(
                Screening.id == latest.c.screening_id,
                Screening.created_at == latest.c.screening_created_at,
                Screening.tenant_id == tenant,
            ),
        )
        .where(latest.c.newest == 1)
        .order_by(latest.c.created_at.desc(), latest.c.screening_id.desc())
        .limit(limit)
    )
    rows = (await session.execute(query)).all()
    return [
        DecidedScreening(
            outcome=outcome,
            recommended_level=recommended,
            final_level=final,
            variance_reasons=tuple(reasons or ()),
            fired_rules=_ids(fired),
            person=f"person:{person_id}" if person_id else f"screening:{screening_id}",
        )
        for outcome, recommended, final, reasons, fired, screening_id, person_id in rows
    ]
