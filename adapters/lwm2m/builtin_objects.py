"""Built-in object definitions, stored compactly as tuples.

OMA core objects 0 to 7 (LwM2M 1.0 resources, plus the 1.1 additions of the
Security and Server objects) and common IPSO Smart Objects, transcribed from
the OMA LwM2M registry DDF files (github.com/OpenMobileAlliance/lwm2m-registry).
Units are those the DDF ``<Units>`` element gives (often empty for IPSO
sensors, whose unit is resource 5701 "Sensor Units").

Object row:   (id, name, multiple instances, mandatory, urn, resources)
Resource row: (id, name, operations, multiple, mandatory, type, units)
"""

from __future__ import annotations

from .objects import ObjectDef, Operations, ResourceDef
from .values import parse_type

__all__ = ["OBJECTS", "builtin_definitions"]

M, S = True, False        # multiple / single instances
MAN, OPT = True, False    # mandatory / optional

_IPSO_SENSOR = (
    (5700, "Sensor Value", "R", S, MAN, "Float", ""),
    (5601, "Min Measured Value", "R", S, OPT, "Float", ""),
    (5602, "Max Measured Value", "R", S, OPT, "Float", ""),
    (5603, "Min Range Value", "R", S, OPT, "Float", ""),
    (5604, "Max Range Value", "R", S, OPT, "Float", ""),
    (5701, "Sensor Units", "R", S, OPT, "String", ""),
    (5605, "Reset Min and Max Measured Values", "E", S, OPT, "", ""),
)
_IPSO_CALIBRATED = _IPSO_SENSOR + (
    (5821, "Current Calibration", "RW", S, OPT, "Float", ""),
    (5750, "Application Type", "RW", S, OPT, "String", ""),
)

OBJECTS = (
    (0, "LWM2M Security", M, MAN, "urn:oma:lwm2m:oma:0", (
        (0, "LWM2M Server URI", "", S, MAN, "String", ""),
        (1, "Bootstrap-Server", "", S, MAN, "Boolean", ""),
        (2, "Security Mode", "", S, MAN, "Integer", ""),
        (3, "Public Key or Identity", "", S, MAN, "Opaque", ""),
        (4, "Server Public Key", "", S, MAN, "Opaque", ""),
        (5, "Secret Key", "", S, MAN, "Opaque", ""),
        (6, "SMS Security Mode", "", S, OPT, "Integer", ""),
        (7, "SMS Binding Key Parameters", "", S, OPT, "Opaque", ""),
        (8, "SMS Binding Secret Key(s)", "", S, OPT, "Opaque", ""),
        (9, "LwM2M Server SMS Number", "", S, OPT, "String", ""),
        (10, "Short Server ID", "", S, OPT, "Integer", ""),
        (11, "Client Hold Off Time", "", S, OPT, "Integer", "s"),
        (12, "Bootstrap-Server Account Timeout", "", S, OPT, "Integer", "s"),
        (13, "Matching Type", "", S, OPT, "Unsigned Integer", ""),
        (14, "SNI", "", S, OPT, "String", ""),
        (15, "Certificate Usage", "", S, OPT, "Unsigned Integer", ""),
        (16, "DTLS/TLS Ciphersuite", "", M, OPT, "Unsigned Integer", ""),
    )),
    (1, "LwM2M Server", M, MAN, "urn:oma:lwm2m:oma:1", (
        (0, "Short Server ID", "R", S, MAN, "Integer", ""),
        (1, "Lifetime", "RW", S, MAN, "Integer", "s"),
        (2, "Default Minimum Period", "RW", S, OPT, "Integer", "s"),
        (3, "Default Maximum Period", "RW", S, OPT, "Integer", "s"),
        (4, "Disable", "E", S, OPT, "", ""),
        (5, "Disable Timeout", "RW", S, OPT, "Integer", "s"),
        (6, "Notification Storing When Disabled or Offline", "RW", S, MAN, "Boolean", ""),
        (7, "Binding", "RW", S, MAN, "String", ""),
        (8, "Registration Update Trigger", "E", S, MAN, "", ""),
        (9, "Bootstrap-Request Trigger", "E", S, OPT, "", ""),
        (10, "APN Link", "RW", S, OPT, "Objlnk", ""),
        (11, "TLS-DTLS Alert Code", "R", S, OPT, "Unsigned Integer", ""),
        (12, "Last Bootstrapped", "R", S, OPT, "Time", ""),
        (13, "Registration Priority Order", "RW", S, OPT, "Unsigned Integer", ""),
        (14, "Initial Registration Delay Timer", "RW", S, OPT, "Unsigned Integer", "s"),
        (15, "Registration Failure Block", "RW", S, OPT, "Boolean", ""),
        (16, "Bootstrap on Registration Failure", "RW", S, OPT, "Boolean", ""),
        (17, "Communication Retry Count", "RW", S, OPT, "Unsigned Integer", ""),
        (18, "Communication Retry Timer", "RW", S, OPT, "Unsigned Integer", "s"),
        (19, "Communication Sequence Delay Timer", "RW", S, OPT, "Unsigned Integer", "s"),
        (20, "Communication Sequence Retry Count", "RW", S, OPT, "Unsigned Integer", ""),
        (21, "Trigger", "RW", S, OPT, "Boolean", ""),
        (22, "Preferred Transport", "RW", S, OPT, "String", ""),
        (23, "Mute Send", "RW", S, OPT, "Boolean", ""),
    )),
    (2, "LwM2M Access Control", M, OPT, "urn:oma:lwm2m:oma:2", (
        (0, "Object ID", "R", S, MAN, "Integer", ""),
        (1, "Object Instance ID", "R", S, MAN, "Integer", ""),
        (2, "ACL", "RW", M, OPT, "Integer", ""),
        (3, "Access Control Owner", "RW", S, MAN, "Integer", ""),
    )),
    (3, "Device", S, MAN, "urn:oma:lwm2m:oma:3", (
        (0, "Manufacturer", "R", S, OPT, "String", ""),
        (1, "Model Number", "R", S, OPT, "String", ""),
        (2, "Serial Number", "R", S, OPT, "String", ""),
        (3, "Firmware Version", "R", S, OPT, "String", ""),
        (4, "Reboot", "E", S, MAN, "", ""),
        (5, "Factory Reset", "E", S, OPT, "", ""),
        (6, "Available Power Sources", "R", M, OPT, "Integer", ""),
        (7, "Power Source Voltage", "R", M, OPT, "Integer", "mV"),
        (8, "Power Source Current", "R", M, OPT, "Integer", "mA"),
        (9, "Battery Level", "R", S, OPT, "Integer", "%"),
        (10, "Memory Free", "R", S, OPT, "Integer", "KB"),
        (11, "Error Code", "R", M, MAN, "Integer", ""),
        (12, "Reset Error Code", "E", S, OPT, "", ""),
        (13, "Current Time", "RW", S, OPT, "Time", ""),
        (14, "UTC Offset", "RW", S, OPT, "String", ""),
        (15, "Timezone", "RW", S, OPT, "String", ""),
        (16, "Supported Binding and Modes", "R", S, MAN, "String", ""),
        (17, "Device Type", "R", S, OPT, "String", ""),
        (18, "Hardware Version", "R", S, OPT, "String", ""),
        (19, "Software Version", "R", S, OPT, "String", ""),
        (20, "Battery Status", "R", S, OPT, "Integer", ""),
        (21, "Memory Total", "R", S, OPT, "Integer", "KB"),
        (22, "ExtDevInfo", "R", M, OPT, "Objlnk", ""),
    )),
    (4, "Connectivity Monitoring", S, OPT, "urn:oma:lwm2m:oma:4", (
        (0, "Network Bearer", "R", S, MAN, "Integer", ""),
        (1, "Available Network Bearer", "R", M, MAN, "Integer", ""),
        (2, "Radio Signal Strength", "R", S, MAN, "Integer", "dBm"),
        (3, "Link Quality", "R", S, OPT, "Integer", ""),
        (4, "IP Addresses", "R", M, MAN, "String", ""),
        (5, "Router IP Addresses", "R", M, OPT, "String", ""),
        (6, "Link Utilization", "R", S, OPT, "Integer", "%"),
        (7, "APN", "R", M, OPT, "String", ""),
        (8, "Cell ID", "R", S, OPT, "Integer", ""),
        (9, "SMNC", "R", S, OPT, "Integer", ""),
        (10, "SMCC", "R", S, OPT, "Integer", ""),
        (11, "SignalSNR", "R", S, OPT, "Integer", "dB"),
        (12, "LAC", "R", S, OPT, "Integer", ""),
    )),
    (5, "Firmware Update", S, OPT, "urn:oma:lwm2m:oma:5", (
        (0, "Package", "W", S, MAN, "Opaque", ""),
        (1, "Package URI", "RW", S, MAN, "String", ""),
        (2, "Update", "E", S, MAN, "", ""),
        (3, "State", "R", S, MAN, "Integer", ""),
        (4, "Update Supported Objects", "RW", S, OPT, "Boolean", ""),
        (5, "Update Result", "R", S, MAN, "Integer", ""),
        (6, "PkgName", "R", S, OPT, "String", ""),
        (7, "PkgVersion", "R", S, OPT, "String", ""),
        (8, "Firmware Update Protocol Support", "R", M, OPT, "Integer", ""),
        (9, "Firmware Update Delivery Method", "R", S, MAN, "Integer", ""),
    )),
    (6, "Location", S, OPT, "urn:oma:lwm2m:oma:6", (
        (0, "Latitude", "R", S, MAN, "Float", "Deg"),
        (1, "Longitude", "R", S, MAN, "Float", "Deg"),
        (2, "Altitude", "R", S, OPT, "Float", "m"),
        (3, "Radius", "R", S, OPT, "Float", "m"),
        (4, "Velocity", "R", S, OPT, "Opaque", ""),
        (5, "Timestamp", "R", S, MAN, "Time", ""),
        (6, "Speed", "R", S, OPT, "Float", "m/s"),
    )),
    (7, "Connectivity Statistics", S, OPT, "urn:oma:lwm2m:oma:7", (
        (0, "SMS Tx Counter", "R", S, OPT, "Integer", ""),
        (1, "SMS Rx Counter", "R", S, OPT, "Integer", ""),
        (2, "Tx Data", "R", S, OPT, "Integer", ""),
        (3, "Rx Data", "R", S, OPT, "Integer", ""),
        (4, "Max Message Size", "R", S, OPT, "Integer", "B"),
        (5, "Average Message Size", "R", S, OPT, "Integer", "B"),
        (6, "Start", "E", S, MAN, "", ""),
        (7, "Stop", "E", S, MAN, "", ""),
        (8, "Collection Period", "RW", S, OPT, "Integer", "s"),
    )),
    (3301, "Illuminance", M, OPT, "urn:oma:lwm2m:ext:3301", _IPSO_SENSOR),
    (3303, "Temperature", M, OPT, "urn:oma:lwm2m:ext:3303", _IPSO_SENSOR),
    (3304, "Humidity", M, OPT, "urn:oma:lwm2m:ext:3304", _IPSO_SENSOR),
    (3311, "Light Control", M, OPT, "urn:oma:lwm2m:ext:3311", (
        (5850, "On/Off", "RW", S, MAN, "Boolean", ""),
        (5851, "Dimmer", "RW", S, OPT, "Integer", "%"),
        (5852, "On time", "RW", S, OPT, "Integer", "s"),
        (5805, "Cumulative active power", "R", S, OPT, "Float", "Wh"),
        (5820, "Power factor", "R", S, OPT, "Float", ""),
        (5706, "Colour", "RW", S, OPT, "String", ""),
        (5701, "Sensor Units", "R", S, OPT, "String", ""),
        (5750, "Application Type", "RW", S, OPT, "String", ""),
    )),
    (3316, "Voltage", M, OPT, "urn:oma:lwm2m:ext:3316", _IPSO_CALIBRATED),
    (3323, "Pressure", M, OPT, "urn:oma:lwm2m:ext:3323", _IPSO_CALIBRATED),
    (3342, "On/Off switch", M, OPT, "urn:oma:lwm2m:ext:3342", (
        (5500, "Digital Input State", "R", S, MAN, "Boolean", ""),
        (5501, "Digital Input Counter", "R", S, OPT, "Integer", ""),
        (5852, "On time", "RW", S, OPT, "Integer", "s"),
        (5854, "Off Time", "RW", S, OPT, "Integer", "s"),
        (5750, "Application Type", "RW", S, OPT, "String", ""),
    )),
)


def builtin_definitions() -> list[ObjectDef]:
    """The rows above as `ObjectDef` values."""
    return [
        ObjectDef(
            id=oid, name=name, multiple=multiple, mandatory=mandatory, urn=urn,
            resources={
                rid: ResourceDef(rid, rname, Operations(ops), rmulti, rmand,
                                 parse_type(rtype), units)
                for rid, rname, ops, rmulti, rmand, rtype, units in rows
            },
        )
        for oid, name, multiple, mandatory, urn, rows in OBJECTS
    ]
