"""Errors raised by `cases`; each says what was wrong in terms a user can act on."""

from __future__ import annotations


class CaseError(Exception):
    """Base of every error raised by `cases`."""


class DatabaseError(CaseError):
    """The case database cannot be reached, or its schema is not what this version needs."""


class UnknownRecordError(CaseError):
    """A case, user, camera or zone that the database does not have."""


class IllegalTransitionError(CaseError):
    """A step the lifecycle does not allow from the case's state, or without what it needs."""


class PermissionDeniedError(CaseError):
    """The actor's role may not take this step."""


class ConcurrentUpdateError(CaseError):
    """Someone else changed the case first; reload it and try again."""


class FilingError(CaseError):
    """A sealed finding cannot be filed: it names an unknown camera or lacks what filing needs."""
