"""The site builder: contributed resource trees sit next to each other and all show in /.well-known/core."""

from __future__ import annotations

from aiocoap.resource import Resource

from adapters.coap.server import build_site


class Echo(Resource):
    rt = "test.echo"


def test_contributed_resources_are_listed_in_well_known_core() -> None:
    site = build_site([(("rd",), Echo()), (("a", "b"), Echo())])
    links = str(site.get_resources_as_linkheader())
    assert '</rd>;rt="test.echo"' in links and '</a/b>;rt="test.echo"' in links
    assert "</.well-known/core>" in links
