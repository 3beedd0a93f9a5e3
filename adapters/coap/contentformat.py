"""CoAP Content-Format numbers <-> content types (MQTT 5 Content Type, AMQP content_type), in one table.

The numbers are the IANA "CoAP Content-Formats" registry. Both directions use
`CONTENT_FORMATS`: a publish's Content-Format becomes the message's
`content_type`, and a message's `content_type` becomes the Content-Format of a
notification or read. Rules:

- content types are compared without case and without blanks around ``;``
  and ``=`` (``text/plain; charset=utf-8`` == ``text/plain;charset=utf-8``);
- ``text/plain`` without a charset is format 0 too (CoAP has no other text/plain);
- a Content-Format the table does not know becomes the content type
  ``application/x-coap-cf-N``, which maps back to N, so CoAP to CoAP keeps it;
- a content type the table does not know gets no Content-Format option.
"""

from __future__ import annotations

import re

__all__ = ["CONTENT_FORMATS", "content_format_for", "content_type_for"]

CONTENT_FORMATS: dict[int, str] = {
    0: "text/plain;charset=utf-8",
    16: "application/cose;cose-type=cose-encrypt0",
    17: "application/cose;cose-type=cose-mac0",
    18: "application/cose;cose-type=cose-sign1",
    40: "application/link-format",
    41: "application/xml",
    42: "application/octet-stream",
    47: "application/exi",
    50: "application/json",
    51: "application/json-patch+json",
    52: "application/merge-patch+json",
    60: "application/cbor",
    61: "application/cwt",
    62: "application/multipart-core",
    63: "application/cbor-seq",
    96: "application/cose;cose-type=cose-encrypt",
    97: "application/cose;cose-type=cose-mac",
    98: "application/cose;cose-type=cose-sign",
    101: "application/cose-key",
    102: "application/cose-key-set",
    110: "application/senml+json",
    111: "application/sensml+json",
    112: "application/senml+cbor",
    113: "application/sensml+cbor",
    114: "application/senml-exi",
    115: "application/sensml-exi",
    256: "application/coap-group+json",
    310: "application/senml+xml",
    311: "application/sensml+xml",
    320: "application/senml-etch+json",
    322: "application/senml-etch+cbor",
    432: "application/td+json",
    10000: "application/vnd.ocf+cbor",
    10001: "application/oscore",
    11050: "application/json;content-coding=deflate",
    11060: "application/cbor;content-coding=deflate",
    11542: "application/vnd.oma.lwm2m+tlv",
    11543: "application/vnd.oma.lwm2m+json",
    11544: "application/vnd.oma.lwm2m+cbor",
}

_UNKNOWN_PREFIX = "application/x-coap-cf-"
_BLANKS = re.compile(r"\s*([;=])\s*")


def _normalise(content_type: str) -> str:
    return _BLANKS.sub(r"\1", content_type.strip().lower())


_BY_TYPE: dict[str, int] = {_normalise(name): number for number, name in CONTENT_FORMATS.items()}
_BY_TYPE["text/plain"] = 0


def content_type_for(content_format: int | None) -> str | None:
    """The content type a Content-Format number stands for (None when the option is absent)."""
    if content_format is None:
        return None
    number = int(content_format)  # aiocoap hands a ContentFormat enum whose str() is "<ContentFormat N>"
    known = CONTENT_FORMATS.get(number)
    return known if known is not None else f"{_UNKNOWN_PREFIX}{number}"


def content_format_for(content_type: str | None) -> int | None:
    """The Content-Format number of a content type, or None if CoAP has none for it."""
    if not content_type:
        return None
    key = _normalise(content_type)
    number = _BY_TYPE.get(key)
    if number is not None:
        return number
    if key.startswith(_UNKNOWN_PREFIX):
        digits = key[len(_UNKNOWN_PREFIX):]
        if digits.isdigit() and int(digits) <= 0xFFFF:
            return int(digits)
    return None
