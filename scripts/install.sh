#!/usr/bin/env bash
# Install spectra-edge on Raspberry Pi OS (64-bit, Bookworm or later), or into a scratch root.
#
#   sudo scripts/install.sh --wheels DIR [--trusted-root ROOT.json] [--root DIR]
#   sudo scripts/install.sh --uninstall [--purge] [--root DIR]
#
# --wheels DIR   the release's wheelhouse: spectra_edge-<version>-*.whl and the wheels of its
#                dependencies for this machine (scripts/build-release.sh makes one); the venv
#                is built offline from it.
# --root DIR     do every step inside DIR instead of / (tests; image building). Nothing is
#                started, no package is installed; users go into DIR/etc/passwd.
# --trusted-root the OTA repository's root metadata (1.root.json), the device's root of trust.
#
# Steps, each idempotent: service user and groups; SPI on in config.txt; Debian's
# python3-spidev (spidev is source-only on PyPI and Pi OS Lite has no compiler; the release
# venv sees the system package through --system-site-packages); the release in
# /opt/spectra-edge/releases/<version>/ with its own venv; `current` switched with one rename;
# the first data release (shipped library + model); the boot counter; the default
# /etc/spectra-edge/config.toml if none exists; the units, installed and enabled.
# --uninstall removes the units, the releases and the command; it keeps /etc/spectra-edge and
# /var/lib/spectra-edge (results, device key) unless --purge is given.
set -euo pipefail

ROOT=/
WHEELS=""
TRUSTED_ROOT=""
UNINSTALL=0
PURGE=0
PYTHON=${PYTHON:-/usr/bin/python3}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
UNITS=(spectra-edge.service spectra-edge-ota-recover.service spectra-edge-ota-request.path)
# installed beside them, started only by the .path unit
HELPER_UNITS=(spectra-edge-ota-request.service)
cd /    # never import from the directory install.sh was started in

while [[ $# -gt 0 ]]; do
    case "$1" in
        --root) ROOT=$2; shift 2 ;;
        --wheels) WHEELS=$2; shift 2 ;;
        --trusted-root) TRUSTED_ROOT=$2; shift 2 ;;
        --uninstall) UNINSTALL=1; shift ;;
        --purge) PURGE=1; shift ;;
        --python) PYTHON=$2; shift 2 ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

ROOT=$(realpath -m "$ROOT")
R=${ROOT%/}                      # prefix for every path ("" on a real device)
OPT=$R/opt/spectra-edge
ETC=$R/etc/spectra-edge
STATE=$R/var/lib/spectra-edge
UNITDIR=$R/etc/systemd/system
SCRATCH=0; [[ -n "$R" ]] && SCRATCH=1

say() { echo "install.sh: $*"; }

# A config for the CLI steps run here: the install root and data_dir inside ROOT.
cli_config() {
    local cfg
    cfg=$(mktemp)
    printf '[device]\ndata_dir = "%s"\n[ota]\nroot = "%s"\nservice = "none"\n' "$STATE" "$OPT" >"$cfg"
    echo "$cfg"
}

enable_units() {
    if command -v systemctl >/dev/null; then
        if [[ $SCRATCH == 1 ]]; then
            systemctl --root="$ROOT" enable "${UNITS[@]}" >/dev/null 2>&1 || manual_enable
        else
            systemctl daemon-reload
            systemctl enable "${UNITS[@]}"
        fi
    else
        manual_enable
    fi
}

wanted_by() {  # the target whose .wants/ enables unit $1 (its [Install] WantedBy=)
    case "$1" in *.path) echo paths.target ;; *) echo multi-user.target ;; esac
}

manual_enable() {
    for u in "${UNITS[@]}"; do
        mkdir -p "$UNITDIR/$(wanted_by "$u").wants"
        ln -sfn "/etc/systemd/system/$u" "$UNITDIR/$(wanted_by "$u").wants/$u"
    done
}

uninstall() {
    if [[ $SCRATCH == 0 ]] && command -v systemctl >/dev/null; then
        systemctl disable --now "${UNITS[@]}" 2>/dev/null || true
    fi
    for u in "${UNITS[@]}" "${HELPER_UNITS[@]}"; do
        rm -f "$UNITDIR/$u" "$UNITDIR/$(wanted_by "$u").wants/$u"
    done
    [[ $SCRATCH == 0 ]] && command -v systemctl >/dev/null && systemctl daemon-reload || true
    rm -rf "$OPT" "$R/usr/local/bin/spectra-edge"
    if [[ $PURGE == 1 ]]; then
        rm -rf "$ETC" "$STATE"
        userdel --prefix "$ROOT" spectra-edge 2>/dev/null || true
        say "purged config, data and the service user"
    else
        say "kept $ETC and $STATE (results, device key); --purge removes them"
    fi
    say "uninstalled"
}

if [[ $UNINSTALL == 1 ]]; then
    uninstall
    exit 0
fi

[[ -n "$WHEELS" ]] || { echo "install.sh: --wheels DIR is required (see --help)" >&2; exit 2; }
WHEELS=$(realpath "$WHEELS")
shopt -s nullglob
APP=("$WHEELS"/spectra_edge-*.whl)
[[ ${#APP[@]} == 1 ]] || { echo "install.sh: need exactly one spectra_edge wheel in $WHEELS" >&2; exit 1; }
VERSION=$(basename "${APP[0]}" | cut -d- -f2)

# 1. the service user and its groups --------------------------------------------------------
if [[ $SCRATCH == 1 ]]; then
    mkdir -p "$R/etc"
    for f in passwd group shadow gshadow; do [[ -e "$R/etc/$f" ]] || : >"$R/etc/$f"; done
fi
for g in gpio spi; do
    grep -q "^$g:" "$R/etc/group" || groupadd --prefix "$ROOT" --system "$g"
done
if ! grep -q '^spectra-edge:' "$R/etc/passwd"; then
    useradd --prefix "$ROOT" --system --user-group --no-create-home \
        --home-dir /var/lib/spectra-edge --shell /usr/sbin/nologin --groups gpio,spi spectra-edge
    say "created the service user spectra-edge (groups gpio, spi)"
fi

# 2. SPI on ---------------------------------------------------------------------------------
BOOTCFG=""
for c in "$R/boot/firmware/config.txt" "$R/boot/config.txt"; do
    [[ -f "$c" ]] && { BOOTCFG=$c; break; }
done
if [[ -n "$BOOTCFG" ]]; then
    if ! grep -qE '^dtparam=spi=on' "$BOOTCFG"; then
        if grep -qE '^#\s*dtparam=spi=on' "$BOOTCFG"; then
            sed -i -E 's/^#\s*dtparam=spi=on/dtparam=spi=on/' "$BOOTCFG"
        else
            echo "dtparam=spi=on" >>"$BOOTCFG"
        fi
        say "enabled SPI in $BOOTCFG (takes effect after a reboot)"
    fi
else
    say "no config.txt (not a Raspberry Pi?): SPI left as it is"
fi

# 3. spidev from Debian ------------------------------------------------------------------
if [[ $SCRATCH == 0 ]] && ! dpkg-query -W -f='${Status}' python3-spidev 2>/dev/null | grep -q "ok installed"; then
    DEBS=("$WHEELS"/../debs/python3-spidev_*.deb)
    if [[ ${#DEBS[@]} -gt 0 ]]; then apt-get install -y "${DEBS[0]}"; else apt-get install -y python3-spidev; fi
fi

# 4. the release, with its own venv built offline ------------------------------------------
REL=$OPT/releases/$VERSION
mkdir -p "$OPT/releases" "$OPT/bin" "$OPT/ota"
if [[ ! -f "$REL/release.json" ]]; then
    rm -rf "$REL.partial" "$REL"
    "$PYTHON" -m venv --system-site-packages "$REL.partial/venv"
    "$REL.partial/venv/bin/python" -m pip install -q --no-index --ignore-installed --no-compile \
        --find-links "$WHEELS" "${APP[0]}"
    mkdir -p "$REL.partial/wheels"
    cp "$WHEELS"/*.whl "$REL.partial/wheels/"
    printf '{"kind": "app", "version": "%s", "wheel": "%s", "installed": "%s"}\n' \
        "$VERSION" "$(basename "${APP[0]}")" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$REL.partial/release.json"
    sync -f "$REL.partial/release.json" 2>/dev/null || sync
    mv -T "$REL.partial" "$REL"
    say "installed release $VERSION in ${REL#$R}"
fi
if [[ "$(readlink "$OPT/current" 2>/dev/null)" != "releases/$VERSION" ]]; then
    ln -sfn "releases/$VERSION" "$OPT/.current.new"
    mv -T "$OPT/.current.new" "$OPT/current"    # one rename: never a moment without a link
    say "current -> releases/$VERSION"
fi
PY=$OPT/current/venv/bin/python

# 5. the first data release, the boot counter, the trusted root ----------------------------
CFG=$(cli_config)
trap 'rm -f "$CFG"' EXIT
"$PY" -m edge.cli --config "$CFG" ota provision >/dev/null
"$PY" - "$OPT/bin/spectra-edge-bootcount" <<'PYEOF'
import shutil, sys
import edge.ota.trial as t
shutil.copyfile(t.__file__, sys.argv[1])
PYEOF
chmod 0755 "$OPT/bin/spectra-edge-bootcount"
if [[ -n "$TRUSTED_ROOT" ]]; then
    "$PY" -m edge.cli --config "$CFG" ota trust "$TRUSTED_ROOT" >/dev/null
    say "trusting the OTA repository root in $TRUSTED_ROOT"
fi
mkdir -p "$R/usr/local/bin"
cat >"$R/usr/local/bin/spectra-edge" <<'SH'
#!/bin/sh
# spectra-edge, from the release in use (installed by scripts/install.sh)
exec /opt/spectra-edge/current/venv/bin/python -m edge.cli "$@"
SH
chmod 0755 "$R/usr/local/bin/spectra-edge"

# 6. the default config, if there is none --------------------------------------------------
mkdir -p "$ETC"
if [[ ! -f "$ETC/config.toml" ]]; then
    HOST=$(cat "$R/etc/hostname" 2>/dev/null || hostname)
    cat >"$ETC/config.toml" <<TOML
# spectra-edge on this device; every key: \`spectra-edge config show\`, edge/config/schema.py
[device]
id = "$HOST"
post = "post"
data_dir = "/var/lib/spectra-edge"

[instrument]
driver = "spi"

[panel]
pin_factory = "auto"

[mqtt]
host = "localhost"
port = 1883

[ota]
root = "/opt/spectra-edge"
service = "systemd"
TOML
    chmod 0640 "$ETC/config.toml"
    [[ $SCRATCH == 1 ]] || chgrp spectra-edge "$ETC/config.toml"
    say "wrote the default ${ETC#$R}/config.toml (edit device.id, device.post and mqtt)"
fi
mkdir -p "$STATE"

# 7. the units, installed and enabled ------------------------------------------------------
mkdir -p "$UNITDIR"
for u in "${UNITS[@]}" "${HELPER_UNITS[@]}"; do
    install -m 0644 "$HERE/../systemd/$u" "$UNITDIR/$u"
done
enable_units
if [[ $SCRATCH == 0 ]]; then
    systemctl restart spectra-edge.service || say "the service did not start: journalctl -u spectra-edge"
fi
say "done: release $VERSION"
