"""Object registry: built-in definitions, the DDF XML parser and the folder loader."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.lwm2m.ddf import DdfError, load_object_dir, parse_ddf
from adapters.lwm2m.objects import ObjectDef, ObjectRegistry, Operations, ResourceDef
from adapters.lwm2m.values import ResourceType

from .strategies import OBJECT_DIR

BUILTIN = ObjectRegistry.builtin()

# The OMA registry's 3303.xml (IPSO Temperature, object version 1.0), trimmed of
# its licence header and descriptions: the shape a user drops into the folder.
TEMPERATURE_DDF = """<?xml version="1.0" encoding="UTF-8"?>
<LWM2M  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
        xsi:noNamespaceSchemaLocation="http://openmobilealliance.org/tech/profiles/LWM2M.xsd">
  <Object ObjectType="MODefinition">
    <Name>Temperature</Name>
    <Description1>...</Description1>
    <ObjectID>3303</ObjectID>
    <ObjectURN>urn:oma:lwm2m:ext:3303</ObjectURN>
    <LWM2MVersion>1.0</LWM2MVersion>
    <ObjectVersion>1.0</ObjectVersion>
    <MultipleInstances>Multiple</MultipleInstances>
    <Mandatory>Optional</Mandatory>
    <Resources>
      <Item ID="5700"><Name>Sensor Value</Name><Operations>R</Operations>
        <MultipleInstances>Single</MultipleInstances><Mandatory>Mandatory</Mandatory>
        <Type>Float</Type><RangeEnumeration></RangeEnumeration><Units></Units>
        <Description>...</Description></Item>
      <Item ID="5601"><Name>Min Measured Value</Name><Operations>R</Operations>
        <MultipleInstances>Single</MultipleInstances><Mandatory>Optional</Mandatory>
        <Type>Float</Type><RangeEnumeration></RangeEnumeration><Units></Units>
        <Description>...</Description></Item>
      <Item ID="5602"><Name>Max Measured Value</Name><Operations>R</Operations>
        <MultipleInstances>Single</MultipleInstances><Mandatory>Optional</Mandatory>
        <Type>Float</Type><RangeEnumeration></RangeEnumeration><Units></Units>
        <Description>...</Description></Item>
      <Item ID="5603"><Name>Min Range Value</Name><Operations>R</Operations>
        <MultipleInstances>Single</MultipleInstances><Mandatory>Optional</Mandatory>
        <Type>Float</Type><RangeEnumeration></RangeEnumeration><Units></Units>
        <Description>...</Description></Item>
      <Item ID="5604"><Name>Max Range Value</Name><Operations>R</Operations>
        <MultipleInstances>Single</MultipleInstances><Mandatory>Optional</Mandatory>
        <Type>Float</Type><RangeEnumeration></RangeEnumeration><Units></Units>
        <Description>...</Description></Item>
      <Item ID="5701"><Name>Sensor Units</Name><Operations>R</Operations>
        <MultipleInstances>Single</MultipleInstances><Mandatory>Optional</Mandatory>
        <Type>String</Type><RangeEnumeration></RangeEnumeration><Units></Units>
        <Description>...</Description></Item>
      <Item ID="5605"><Name>Reset Min and Max Measured Values</Name><Operations>E</Operations>
        <MultipleInstances>Single</MultipleInstances><Mandatory>Optional</Mandatory>
        <Type></Type><RangeEnumeration></RangeEnumeration><Units></Units>
        <Description>...</Description></Item>
    </Resources>
    <Description2></Description2>
  </Object>
</LWM2M>
"""


def test_builtin_registry_holds_oma_objects_0_to_7_and_the_ipso_sensors() -> None:
    ids = {obj.id for obj in BUILTIN}
    assert set(range(8)) <= ids
    assert {3303, 3304, 3311, 3316, 3323} <= ids
    assert [BUILTIN.get(i).name for i in (3303, 3304, 3311, 3316, 3323)] == [
        "Temperature", "Humidity", "Light Control", "Voltage", "Pressure"]


def test_builtin_device_object_describes_its_resources() -> None:
    device = BUILTIN.get(3)
    assert (device.name, device.multiple, device.mandatory) == ("Device", False, True)
    assert device.resource(0) == ResourceDef(0, "Manufacturer", Operations("R"), False, False,
                                             ResourceType.STRING, "")
    assert device.resource(4).operations.executable and device.resource(4).mandatory
    assert device.resource(7).multiple and device.resource(7).units == "mV"
    assert device.resource(13).type is ResourceType.TIME
    assert device.resource(13).operations.writable


def test_builtin_types_cover_every_value_type_but_corelnk() -> None:
    # Corelnk only appears in later objects; the fixture object 66 covers it.
    types = {res.type for obj in BUILTIN for res in obj.resources.values()}
    assert types == set(ResourceType) - {ResourceType.CORELNK}


def test_light_control_on_off_is_a_writable_mandatory_boolean() -> None:
    on_off = BUILTIN.resource(3311, 5850)
    assert on_off.type is ResourceType.BOOLEAN and on_off.mandatory
    assert on_off.operations == "RW" and BUILTIN.resource(3311, 5851).units == "%"


def test_the_registry_3303_ddf_parses_to_the_builtin_temperature_object() -> None:
    (parsed,) = parse_ddf(TEMPERATURE_DDF)
    builtin = BUILTIN.get(3303)
    assert parsed.resources == builtin.resources
    assert (parsed.id, parsed.name, parsed.multiple, parsed.mandatory, parsed.urn) == (
        builtin.id, builtin.name, builtin.multiple, builtin.mandatory, builtin.urn)
    assert parsed.resource(5605).type is ResourceType.NONE


def test_the_folder_loader_reads_the_custom_object_fixture() -> None:
    (custom,) = load_object_dir(OBJECT_DIR)
    assert (custom.id, custom.name, custom.urn) == (66, "RosettaMQ Test Object",
                                                    "urn:oma:lwm2m:x:66")
    assert (custom.version, custom.lwm2m_version, custom.multiple) == ("1.2", "1.1", True)
    assert {rid: res.type for rid, res in custom.resources.items()} == {
        0: ResourceType.OBJLNK, 1: ResourceType.STRING, 2: ResourceType.INTEGER,
        3: ResourceType.NONE, 4: ResourceType.UNSIGNED_INTEGER, 5: ResourceType.FLOAT,
        6: ResourceType.BOOLEAN, 7: ResourceType.OPAQUE, 8: ResourceType.TIME,
        9: ResourceType.CORELNK}
    ratios = custom.resource(5)
    assert ratios.multiple and ratios.units == "%" and ratios.range == "0..100"
    assert custom.resource(7).operations == "W" and not custom.resource(7).operations.readable


def test_loaded_definitions_add_to_and_override_the_builtin_ones() -> None:
    custom_device = ObjectDef(3, "My Device", False, True,
                              {0: ResourceDef(0, "Vendor", Operations("R"), False, True,
                                              ResourceType.STRING)})
    registry = BUILTIN.with_objects(load_object_dir(OBJECT_DIR)).with_objects([custom_device])
    assert registry.get(66).name == "RosettaMQ Test Object"
    assert registry.get(3).name == "My Device" and registry.resource(3, 9) is None
    assert 3303 in registry and 66 not in BUILTIN
    assert registry.resource_type(66, 5) is ResourceType.FLOAT
    assert registry.resource_type(12345, 0) is None


def test_a_later_file_in_the_folder_wins(tmp_path: Path) -> None:
    (tmp_path / "a.xml").write_text(TEMPERATURE_DDF)
    (tmp_path / "b.xml").write_text(TEMPERATURE_DDF.replace("<Name>Temperature</Name>",
                                                            "<Name>Temp</Name>"))
    (tmp_path / "notes.txt").write_text("not a definition")
    registry = ObjectRegistry(load_object_dir(tmp_path))
    assert registry.get(3303).name == "Temp" and len(registry) == 1


def test_a_document_may_hold_several_objects_and_tolerates_loose_spelling() -> None:
    text = """<LWM2M><Object><Name>A</Name><ObjectID>1000</ObjectID>
      <MultipleInstances>single</MultipleInstances><Mandatory>MANDATORY</Mandatory>
      <Resources><Item ID="1"><Name>x</Name><Operations>rw</Operations>
      <Type>unsigned integer</Type></Item></Resources></Object>
      <Object><Name>B</Name><ObjectID>1001</ObjectID></Object></LWM2M>"""
    first, second = parse_ddf(text)
    assert (first.multiple, first.mandatory) == (False, True)
    assert first.resource(1).type is ResourceType.UNSIGNED_INTEGER
    assert first.resource(1).operations == "RW" and not first.resource(1).multiple
    assert second.resources == {} and second.multiple


@pytest.mark.parametrize("text, message", [
    ("<LWM2M><Object>", "not well-formed"),
    ("<Objects/>", "not <LWM2M>"),
    ("<LWM2M/>", "no <Object>"),
    ("<LWM2M><Object><Name>A</Name></Object></LWM2M>", "no <ObjectID>"),
    ("<LWM2M><Object><Name>A</Name><ObjectID>x</ObjectID></Object></LWM2M>", "not an integer"),
    ("<LWM2M><Object><Name>A</Name><ObjectID>9</ObjectID><Resources><Item ID='1'>"
     "<Name>r</Name><Type>Decimal</Type></Item></Resources></Object></LWM2M>",
     "object 9 resource 1"),
    ("<LWM2M><Object><Name>A</Name><ObjectID>9</ObjectID><Resources><Item ID='1'>"
     "<Name>r</Name><Operations>X</Operations></Item></Resources></Object></LWM2M>",
     "unknown operations"),
    ("<LWM2M><Object><Name>A</Name><ObjectID>9</ObjectID><Resources>"
     "<Item ID='1'><Name>r</Name></Item><Item ID='1'><Name>s</Name></Item>"
     "</Resources></Object></LWM2M>", "defined twice"),
    ("<LWM2M><Object><Name>A</Name><ObjectID>70000</ObjectID></Object></LWM2M>",
     "outside 0..65535"),
])
def test_invalid_definitions_are_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(DdfError, match=message):
        parse_ddf(text)


def test_a_bad_file_in_the_folder_is_named_in_the_error(tmp_path: Path) -> None:
    (tmp_path / "broken.xml").write_text("<LWM2M>")
    with pytest.raises(DdfError, match="broken.xml"):
        load_object_dir(tmp_path)


def test_a_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DdfError, match="no such folder"):
        load_object_dir(tmp_path / "absent")
