"""Errors of the predictor package; each message says what to do next."""

from __future__ import annotations

from spaces.errors import UserError


class PredictorError(UserError):
    """Base class of every predictor error."""


class PredictorNotFoundError(PredictorError, LookupError):
    """No predictor (or no data to fit one) for a device, space and kind."""


class UnmeasuredOpError(PredictorError, KeyError):
    """The lookup predictor was asked for an op that was never measured on the device."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class PredictorLoadError(PredictorError):
    """A stored predictor cannot be loaded here (other library versions, unknown kind, corrupt artifact)."""


class NotFittedError(PredictorError, AttributeError):
    """``predict`` was called on a predictor that was not fitted."""


class UnknownRuntimeError(PredictorNotFoundError):
    """A runtime was asked for that the device has neither measurements nor predictors of."""


class AmbiguousRuntimeError(PredictorError):
    """No runtime was given and the device was measured under several: the caller has to choose."""
