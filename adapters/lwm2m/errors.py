"""LwM2M error types: the one place where errors meet CoAP response codes.

As in h11 and the MQTT adapter, two families: `RemoteError` means a peer sent
something invalid (a device's payload or registration, or an MQTT user's
command JSON) and maps to a 4.xx code; `LocalError` means our own code asked
for something impossible (a bug) and maps to 5.00.
"""

from __future__ import annotations

__all__ = [
    "LwM2MError", "RemoteError", "LocalError", "ContentError",
    "UnsupportedContentFormat", "CommandError", "RegistrationError",
    "RegistrationNotFound", "UnsupportedVersion",
]


class LwM2MError(Exception):
    """Base class; `code` is the CoAP response code ("4.00") the error maps to."""

    code = "5.00"


class LocalError(LwM2MError):
    """Our own bug: we were asked to encode something the format cannot carry."""

    code = "5.00"


class RemoteError(LwM2MError):
    """A peer sent something invalid."""

    code = "4.00"


class ContentError(RemoteError):
    """A payload does not decode in its content format (bad TLV, bad JSON...)."""


class UnsupportedContentFormat(RemoteError):
    """A payload came in a content format this server cannot decode."""

    code = "4.15"


class CommandError(RemoteError):
    """An MQTT command JSON is malformed or asks for something impossible."""


class RegistrationError(RemoteError):
    """A registration, update or de-registration request is malformed."""


class UnsupportedVersion(RegistrationError):
    """The client's LwM2M version is not one this server speaks (1.0 to 1.2)."""

    code = "4.12"


class RegistrationNotFound(RegistrationError):
    """An update or de-registration names a location this server does not know."""

    code = "4.04"
