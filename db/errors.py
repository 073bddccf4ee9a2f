"""The storage layer's typed errors: each carries a one-line message that a CLI can print as it is."""

from __future__ import annotations

from spaces.errors import UserError


class DatabaseURLError(UserError, ValueError):
    """A database URL that cannot be used: not a URL, an unsupported backend, a missing driver or directory."""


class UnstorableValueError(ValueError):
    """A value that a column cannot hold on every supported backend (too long, out of range, NUL, not finite)."""


class RunConflictError(ValueError):
    """A profiling run uid that already belongs to another device."""


class PredictorVersionConflictError(RuntimeError):
    """A new predictor version that could not be assigned because concurrent fits kept taking it."""
