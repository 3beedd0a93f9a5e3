# The Debian packages of the real peers the tests talk to, each with the commands that show it
# is installed ("package:command1,command2"). scripts/test.sh installs a package only when one
# of its commands is missing, so a node/npm installed from elsewhere is never replaced.
DEBIAN_PEERS="mosquitto:mosquitto mosquitto-clients:mosquitto_pub,mosquitto_sub chromium:chromium"
DEBIAN_PEERS="$DEBIAN_PEERS openssl:openssl libcoap3-bin:coap-client-notls nodejs:node npm:npm"
# systemd-analyze verifies examples/rosettamq.service (tests/test_systemd_unit.py).
DEBIAN_PEERS="$DEBIAN_PEERS systemd:systemd-analyze"
# The cluster tests run a real NATS cluster (JetStream on): Debian's nats-server (2.9).
DEBIAN_PEERS="$DEBIAN_PEERS nats-server:nats-server"
# The bridge tests run RabbitMQ as the upstream AMQP broker (started by the tests on private ports,
# not as the system service); its package puts rabbitmq-server in /usr/sbin.
DEBIAN_PEERS="$DEBIAN_PEERS rabbitmq-server:rabbitmq-server"
# The test extra builds DTLSSocket (tinydtls, for the [coaps] tests) from source: it needs a C
# toolchain, autotools and the Python headers.
DEBIAN_PEERS="$DEBIAN_PEERS build-essential:gcc,make autoconf:autoconf automake:automake libtool:libtoolize python3-dev:python3-config"
