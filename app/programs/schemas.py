"""API shapes for the program directory: the request body is the program document itself
(``ProgramDocument``); a response is that document with what the service adds."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from app.engine.programs import ProgramDocument


class ProgramRecord(BaseModel):
    """What the service adds to a program's document."""

    id: str = Field(description="The program's id (a UUID).")
    version: int = Field(
        ge=1,
        description="Counts the program's changes (1 when added; each edit and the retirement "
        "add one). The `ETag` is this number in quotes; send it as `If-Match` to change it.",
    )
    status: Literal["active", "retired"] = Field(
        description="`retired`: matched to no one, no longer editable; referrals naming it "
        "still read it."
    )
    hours_per_week: float | None = Field(
        description="Scheduled hours a week, the sum of the timetable's sessions (null: no "
        "timetable recorded)."
    )
    created_at: datetime
    created_by: str = Field(description="The client (or token subject) that added it.")
    updated_at: datetime = Field(description="When its document was last replaced.")
    updated_by: str
    retired_at: datetime | None
    retired_by: str | None


def _fields(model: type[BaseModel]) -> dict[str, Any]:
    return {name: (field.annotation, field) for name, field in model.model_fields.items()}


# The document's fields and the record's, flat: what a GET answers, less the record's fields,
# is what a PUT sends back.
ProgramOut = create_model(
    "ProgramOut",
    __config__=ConfigDict(extra="forbid"),
    __doc__="A program of your tenant's directory.",
    **_fields(ProgramDocument),
    **_fields(ProgramRecord),
)


class ProgramPage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[ProgramOut]
    next_cursor: str | None = Field(description="The next page's cursor; null on the last page.")
