"""MQTT over WebSocket: the `websockets` Sans-I/O protocol in front of the MQTT connection machine."""
