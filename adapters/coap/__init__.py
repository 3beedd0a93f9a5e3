"""CoAP adapter (RFC 7252 over UDP) on aiocoap: CoAP devices publish, read and observe topics.

Pure modules (no I/O, unit tested without sockets):

- `topics`: ``/ps/{topic...}`` paths <-> topics and filters (``+``, ``%23``);
- `query`: EMQX's query parameters (clientid, username, password, token, qos, retain, expiry);
- `contentformat`: Content-Format numbers <-> content types, one IANA table;
- `pubsub`: what a request asks of the core; messages as notifications (Location-Path = topic);
- `observers`: observers as core subscribers, keyed by identity and token, bounded queues;
- `connections`: connection mode (POST/PUT/DELETE /mqtt/connection) with deadlines;
- `access`: authentication of a request; `errors`: errors and their response codes.

aiocoap glue: `resources` (the /ps and /mqtt/connection resources, observe
exchanges) and `server` (the listener, the site and its mount hook for other
trees such as LwM2M's /rd).
"""
