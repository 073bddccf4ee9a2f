"""Errors raised for names that do not belong to a search space, and the base of every user-facing error."""

from __future__ import annotations


class UserError(Exception):
    """A mistake of the user's (a name, a path, a URL, a file) whose message, one line, says what is allowed.

    The console scripts print it as ``error: <message>`` and exit with status 2 (db.command_line).
    """


class SpaceError(UserError, ValueError):
    """A space, op kind, layer, block or architecture name that the search space does not know."""


class UnknownSpaceError(SpaceError):
    """The search space name is not registered."""


class UnknownOpKindError(SpaceError):
    """The op kind is not registered (``spaces.kinds``)."""


class InvalidLayerError(SpaceError):
    """The layer index is outside the space's layers."""


class InvalidBlockError(SpaceError):
    """The block name is malformed or not a candidate where it was used."""


class InvalidArchitectureError(SpaceError):
    """The architecture string is malformed or does not fit the space."""
