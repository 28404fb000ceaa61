#!/usr/bin/env bash
# The README's "Updating a device", run end to end on this machine: a technician's signed
# repository served over HTTP -> a running device (`spectra-edge run`, simulated instrument)
# told over MQTT to update (cmd/update) -> the root updater (`ota run-request`, what
# spectra-edge-ota-request.path starts on a Pi) -> the service reloads the new library,
# the trial passes, the update commits -> the control room sees the signed, retained
# ota/state `committed` and the device identifies with the new library.
#
#   bash scripts/ota-walkthrough.sh [WORKDIR]        (default: a new temp dir, removed after)
#
# Uses the project's venv (.venv) and Debian's mosquitto + mosquitto-clients (installed by
# scripts/ensure-mosquitto.sh). Exit 0 only if the update committed and the device runs it.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${SPECTRA_EDGE_BIN:-$HERE/.venv/bin}
SE=("$BIN/python" -m edge.cli)
W=${1:-$(mktemp -d /tmp/ota-walkthrough.XXXXXX)}
KEEP=${1:+1}
mkdir -p "$W"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    [[ -n "${KEEP:-}" ]] || rm -rf "$W"
}
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }
free_port() { "$BIN/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...: poll until COMMAND succeeds
    local until=$((SECONDS + $1)) what=$2; shift 2
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= until)); then echo "timed out waiting for $what" >&2; exit 1; fi
        sleep 0.2
    done
}

bash "$HERE/scripts/ensure-mosquitto.sh"
MQTT_PORT=$(free_port)
HTTP_PORT=$(free_port)
MOSQ=$(command -v mosquitto || echo /usr/sbin/mosquitto)
"$MOSQ" -p "$MQTT_PORT" >"$W/mosquitto.log" 2>&1 &
PIDS+=($!)
wait_for 10 "mosquitto" bash -c "exec 3<>/dev/tcp/127.0.0.1/$MQTT_PORT"

step "technician's laptop: a signed repository with library 2026.12.1, served over HTTP"
"${SE[@]}" ota repo init "$W/ota-repo"
cp -r "$HERE/models/library" "$W/lib"
# the laboratory's new version: the manifest is sealed (its own sha256), so change it with a tool
"$BIN/python" - "$W/lib/manifest.json" 2026.12.1 <<'EOF'
import json, sys
from spectra_io.sealed import seal
path, version = sys.argv[1], sys.argv[2]
doc = json.load(open(path))
doc["version"] = version
open(path, "w").write(json.dumps(seal(doc), indent=2) + "\n")
EOF
"${SE[@]}" ota repo add "$W/ota-repo" "$W/lib" --kind library --requires-app '>=0.1'
"${SE[@]}" ota repo list "$W/ota-repo"
"${SE[@]}" ota repo serve "$W/ota-repo" --host 127.0.0.1 --port "$HTTP_PORT" >"$W/serve.log" 2>&1 &
PIDS+=($!)
wait_for 10 "the repository server" bash -c "exec 3<>/dev/tcp/127.0.0.1/$HTTP_PORT"

step "the device: provisioned, trusting the repository's root, service running"
cat >"$W/device.toml" <<EOF
[device]
id = "dev-1"
post = "post-1"
data_dir = "$W/state"
[panel]
pin_factory = "mock"
[mqtt]
host = "127.0.0.1"
port = $MQTT_PORT
[ota]
root = "$W/opt"
service = "signal"
min_free_mb = 1
trial_timeout_s = 120
EOF
export SPECTRA_EDGE_CONFIG=$W/device.toml
"${SE[@]}" ota provision
"${SE[@]}" ota trust "$W/ota-repo/public/metadata/1.root.json"
# as on the device, the service finds the library and model through data/current
SPECTRA_EDGE_MODELS=$W/opt/data/current "${SE[@]}" run >"$W/service.log" 2>&1 &
SERVICE=$!
PIDS+=("$SERVICE")
wait_for 120 "the service to report ready" test -s "$W/state/ready.json"
"${SE[@]}" ota status

TOPIC=customs/post-1/dev-1
step "control room: cmd/update {\"repository\": \"http://127.0.0.1:$HTTP_PORT\"}"
mosquitto_sub -V mqttv5 -p "$MQTT_PORT" -t "$TOPIC/cmd/update/response" -C 1 -W 20 >"$W/response.json" &
SUB=$!
sleep 0.5
mosquitto_pub -V mqttv5 -p "$MQTT_PORT" -q 1 -t "$TOPIC/cmd/update" \
    -D publish response-topic "$TOPIC/cmd/update/response" \
    -D publish correlation-data walkthrough \
    -m "{\"repository\": \"http://127.0.0.1:$HTTP_PORT\"}"
wait "$SUB"
cat "$W/response.json"
grep -q '"accepted":true' "$W/response.json"
test -f "$W/state/ota-request.json"

step "the device's root updater (on a Pi: spectra-edge-ota-request.path starts it)"
"${SE[@]}" ota run-request

step "control room: the retained, signed ota/state"
mosquitto_sub -V mqttv5 -p "$MQTT_PORT" -t "$TOPIC/ota/state" -C 1 -W 10 | tee "$W/ota-state.json"
grep -q '"state":"committed"' "$W/ota-state.json" || {
    sleep 2  # the service publishes the file's change within a second
    mosquitto_sub -V mqttv5 -p "$MQTT_PORT" -t "$TOPIC/ota/state" -C 1 -W 10 | tee "$W/ota-state.json"
    grep -q '"state":"committed"' "$W/ota-state.json"
}

step "the running device identifies with library 2026.12.1"
kill -0 "$SERVICE"
grep -q "reloading the identifier" "$W/service.log"
"${SE[@]}" ota status
"$BIN/python" - "$W/state/ready.json" <<'EOF'
import json, sys
ready = json.load(open(sys.argv[1]))
manifest = json.load(open(ready["data_release"] + "/library/manifest.json"))
print(f"service pid {ready['pid']} ready with {ready['data_release']} (library {manifest['version']})")
sys.exit(0 if manifest["version"] == "2026.12.1" else 1)
EOF
echo
echo "walk-through done: an update went from the repository to the running device"
