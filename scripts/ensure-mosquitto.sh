#!/usr/bin/env bash
# Make sure Debian's mosquitto and mosquitto-clients are installed (tests start their own
# broker from the binary; the OTA walk-through speaks MQTT 5 with mosquitto_pub/_sub)
# and, with --start, that a broker listens on localhost:1883 for the demo.
set -euo pipefail

if { ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; } \
    || ! command -v mosquitto_pub >/dev/null 2>&1; then
    echo "ensure-mosquitto: installing Debian's mosquitto" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mosquitto mosquitto-clients >/dev/null
fi

if [ "${1:-}" = "--start" ]; then
    if ! (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then
        echo "ensure-mosquitto: starting a local broker on 127.0.0.1:1883" >&2
        MOSQ=$(command -v mosquitto || echo /usr/sbin/mosquitto)
        "$MOSQ" -d -p 1883 >/dev/null 2>&1 || "$MOSQ" -d -c /etc/mosquitto/mosquitto.conf
        sleep 0.5
    fi
fi
