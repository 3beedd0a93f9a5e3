"""LwM2M server without I/O, to be mounted on the CoAP listener (issue 6).

Everything here is pure: bytes, JSON and a caller-supplied clock in;
descriptions of what to send or publish out. The wiring on the CoAP listener
(``adapters.coap.server`` mounts) converts aiocoap messages to and from
`coap.CoapRequest` / `coap.CoapResponse` and moves them.

Registration (``/rd``):
    `rd.handle_rd` runs Register / Update / De-register against a
    `registrations.RegistrationTable` (lifetime + grace deadlines:
    ``next_deadline()``, ``expire(now)``; `rd.expire_events`), parsed by
    `registration`; `answers.lifecycle_message` and `topics` say what to publish.
Device management:
    `commands.parse_command` + `commands.translate_command` turn EMQX command
    JSON into a `CoapRequest`; `answers.response_answer`, `notify_answer`,
    `ack_answer`, `failure_answer`, `invalid_command_answer` turn what came back
    into answer JSON; `observations` keeps observe tokens and builds
    auto-observe commands; `queue_mode.DownlinkQueue` holds commands for
    sleeping (Q binding) devices.
Content formats:
    `formats.decode_content` / `encode_content` over `tlv`, `lwm2m_json`,
    `senml` (JSON and CBOR), text/plain and opaque, all mapping to the
    `content.Content` representation (``{"/3/0/0": "ACME", "/3/0/7/0": 3800}``)
    typed by an `objects.ObjectRegistry` (`builtin_objects`, `ddf` XML files).
Errors: `errors` (each carries the CoAP code it maps to).
"""
