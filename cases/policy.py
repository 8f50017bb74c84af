"""An agency's case policy, and which deadlines run in which state.

Statutory periods come from the law (`cases.calendar`); the rest (how soon a detection
must be reviewed, how long a rectification order gives) are the agency's own policy and
live in `CasePolicy`, so that every deadline the engine enforces has a stated basis.
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cases.calendar import DECISION, HEARING_REQUEST, PAYMENT, SERVICE, DeadlineRule
from cases.states import CaseState

POLICY_BASIS = "agency policy (CasePolicy)"


class CasePolicy(BaseModel):
    """What the agency decides for itself: its code, merge window and non-statutory periods."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agency: str = Field("CG", pattern=r"^[A-Z]{2,8}$", description="Agency code in case numbers (CG-2026-000123)")
    timezone: str = Field("Asia/Shanghai", description="Local time zone: days and case-number years are local")
    merge_window_hours: float = Field(
        24.0, gt=0, le=24 * 90, description="A finding this soon after an open case's last one joins that case"
    )
    review_working_days: int = Field(2, ge=1, le=30, description="Working days to review a detection")
    disposition_working_days: int = Field(5, ge=1, le=30, description="Working days to warn or file once confirmed")
    rectify_working_days: int = Field(3, ge=1, le=60, description="Default rectification period of a warning")
    recheck_working_days: int = Field(1, ge=1, le=10, description="Working days to re-check after rectification")
    filing_working_days: int = Field(7, ge=1, le=30, description="Working days for the head to file an escalation")
    closing_working_days: int = Field(3, ge=1, le=30, description="Working days to close a finished case")
    due_soon_hours: float = Field(48.0, gt=0, le=24 * 30, description="A deadline this close counts as due soon")
    premises_radius_m: float = Field(
        30.0,
        ge=0,
        le=500,
        description="A finding with a place but no camera (a drone's) belongs to the nearest premises this close",
    )
    fusion_window_minutes: float = Field(
        30.0,
        ge=0,
        le=24 * 60,
        description="A camera plume and a monitor exceedance of one premises this close in time are one fused finding",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {value!r}") from e
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def merge_window(self) -> timedelta:
        return timedelta(hours=self.merge_window_hours)

    @property
    def fusion_window(self) -> timedelta:
        return timedelta(minutes=self.fusion_window_minutes)

    @property
    def due_soon_delta(self) -> timedelta:
        return timedelta(hours=self.due_soon_hours)

    def rule(self, name: str, days: int | None = None) -> DeadlineRule:
        """The policy rule `name` (review, disposition, rectification, recheck, filing, closing)."""
        field = {
            "review": self.review_working_days,
            "disposition": self.disposition_working_days,
            "rectification": self.rectify_working_days,
            "recheck": self.recheck_working_days,
            "filing": self.filing_working_days,
            "closing": self.closing_working_days,
        }
        if name not in field:
            raise KeyError(f"no policy deadline named {name!r}; known: {sorted(field)}")
        if days is not None and days < 1:
            raise ValueError(f"a {name} period is at least 1 working day, but got {days}")
        days = field[name] if days is None else days
        return DeadlineRule(name, days, True, POLICY_BASIS, f"{name} within {days} working days")


STATUTORY = {rule.name: rule for rule in (DECISION, SERVICE, HEARING_REQUEST, PAYMENT)}
# who owes what: a party's period passing unanswered is the agency's cue to go on
PARTY_DEADLINES = frozenset({"rectification", "hearing_request", "payment"})

# deadlines that start when a case enters a state (the statutory decision period starts at filing)
ENTRY_DEADLINES: dict[CaseState, tuple[str, ...]] = {
    CaseState.PENDING_REVIEW: ("review",),
    CaseState.CONFIRMED: ("disposition",),
    CaseState.WARNED: ("rectification",),
    CaseState.ESCALATED: ("filing",),
    CaseState.FILED: ("decision",),
    CaseState.PRE_NOTICE_SENT: ("hearing_request",),
    CaseState.DECIDED: ("service",),
    CaseState.SERVED: ("payment",),
    CaseState.RECTIFIED: ("closing",),
    CaseState.EXECUTED: ("closing",),
}
