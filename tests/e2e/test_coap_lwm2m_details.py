"""Issue 26 with real peers: cancel-observe reuses the observation's token (RFC 7641 3.6), and an
unknown Content-Format number reaches MQTT 5 as application/x-coap-cf-N and comes back as N."""

from __future__ import annotations

import json
import warnings

from aiocoap import Message
from aiocoap.numbers.codes import Code
from aiocoap.numbers.types import Type

from tests.conftest import LOOPBACK, RunningGateway, make_config
from tests.e2e.clients import PahoClient
from tests.e2e.coap_clients import RawCoAP, request


def test_cancel_observe_reuses_the_observations_token(tmp_path: Path) -> None:
    """Issue 26, RFC 7641 3.6: a device playing by the book (matching by token) sees the GET with
    Observe 1 on the token of the observation it ends."""
    running = RunningGateway(make_config(coap={"enabled": True, "listen": f"{LOOPBACK}:0"}, lwm2m={}))
    device = RawCoAP(running.gateway.ports["coap"])
    app = PahoClient(running.mqtt_port, "cancel-app", "5").connect()
    try:
        app.subscribe("lwm2m/tok-dev/up/#", qos=1)
        created = device.ask(request(Code.POST, "/rd", query=("ep=tok-dev", "lt=60", "lwm2m=1.1", "b=U"),
                                     payload=b"</3/0>", token=b"\x01"))
        assert created.code == Code.CREATED

        def command(msg_type: str, req_id: int) -> Message:
            body = json.dumps({"reqID": req_id, "msgType": msg_type, "data": {"path": "/3/0/0"}}).encode()
            app.publish("lwm2m/tok-dev/dn", body, qos=1)
            while True:
                incoming = device.receive()
                if incoming.code.is_request():
                    return incoming

        observe = command("observe", 1)
        assert observe.opt.observe == 0
        answer = Message(code=Code.CONTENT, payload=b"Acme", observe=1)
        answer.opt.content_format = 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            answer.token, answer.mtype, answer.mid = observe.token, Type.ACK, observe.mid
        device.sock.sendto(answer.encode(), device.server)
        app.inbox.until(lambda m: m.topic == "lwm2m/tok-dev/up/resp")
        cancel = command("cancel-observe", 2)
        assert cancel.opt.observe == 1 and cancel.token == observe.token
    finally:
        app.close()
        device.close()
        running.stop()



def test_an_experimental_content_format_reaches_mqtt5_as_its_number_and_comes_back() -> None:
    running = RunningGateway(make_config(coap={"enabled": True, "listen": f"{LOOPBACK}:0"}))
    sensor = RawCoAP(running.gateway.ports["coap"])
    mqtt = PahoClient(running.mqtt_port, "cf-app", "5").connect()
    try:
        mqtt.subscribe("cf/t", qos=1)
        published = request(Code.POST, "/ps/cf/t", payload=b"\x01\x02", content_format=65000, query=("r=1",))
        assert sensor.ask(published).code == Code.CHANGED
        got = mqtt.inbox.until_topic("cf/t")[-1]
        assert got.properties["ContentType"] == "application/x-coap-cf-65000"
        read = sensor.ask(request(Code.GET, "/ps/cf/t", token=b"\x09"))
        assert int(read.opt.content_format) == 65000 and read.payload == b"\x01\x02"
    finally:
        mqtt.close()
        sensor.close()
        running.stop()
