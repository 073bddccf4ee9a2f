"""Errors raised for names that do not belong to a search space."""

from __future__ import annotations


class SpaceError(ValueError):
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
