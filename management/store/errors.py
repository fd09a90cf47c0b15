"""Errors of the store, in its own terms: what is stored, not how a client asked for it.
The API turns each into its answer in one place (``api/errors.py``).

StoreError                 a stored fact refuses the change
├── AlreadyExists          a name that must be unique is taken
├── NotStored              the row to change is not there (or was deleted)
└── MissingReferences      the row would refer to rows that are not there
"""

from __future__ import annotations


class StoreError(Exception):
    """``details``: (code, message) pairs, one per thing at fault, when there are several."""

    def __init__(self, message: str, details: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = list(details or [])


class AlreadyExists(StoreError):
    pass


class NotStored(StoreError):
    pass


class MissingReferences(StoreError):
    pass
