#!/usr/bin/env bash
# Installs what the test suite and the demo need: the bus servers integration tests start
# privately (prosody, ejabberd; redis-server and redis-cli for OpenSRF main's Redis bus),
# procps, and the npm dependencies including a real bun binary.
# With --bench, also what the benchmarks need beyond that (tcpdump).
# Idempotent: does nothing that is already done. Debian/Ubuntu; run as root for apt.
set -euo pipefail

cd "$(dirname "$0")/.."

log() { printf 'install-deps: %s\n' "$*" >&2; }

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }

if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi

installed_servers=0
if ! have prosody || ! have prosodyctl || ! have ejabberdctl || ! have redis-server || ! have redis-cli ||
  ! have ps || ! have pgrep; then
  log "installing prosody, ejabberd, redis-server, procps"
  # Tests run their own private servers; the distro services must not start. Without
  # systemd, maintainer scripts go through invoke-rc.d, which obeys policy-rc.d (101 = deny).
  policy=/usr/sbin/policy-rc.d
  added_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    added_policy=1
  fi
  cleanup_policy() { if [ "$added_policy" -eq 1 ]; then $SUDO rm -f "$policy"; fi; }
  trap cleanup_policy EXIT
  $SUDO apt-get update
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    prosody ejabberd redis-server redis-tools procps
  cleanup_policy
  trap - EXIT
  installed_servers=1
fi

if [ "$installed_servers" -eq 1 ]; then
  # With systemd present the packages may still have started their services: stop them so
  # they hold no ports and no Erlang node names. Test servers run as root (prosody) or are
  # named osrftest-* (ejabberd), so these patterns match only the distro services.
  if pgrep -u prosody -x lua5.4 >/dev/null 2>&1 || pgrep -u prosody prosody >/dev/null 2>&1; then
    log "stopping the distro prosody service"
    $SUDO service prosody stop || $SUDO systemctl stop prosody || true
  fi
  if pgrep -u ejabberd -f 'name ejabberd@' >/dev/null 2>&1; then
    log "stopping the distro ejabberd service"
    $SUDO service ejabberd stop || $SUDO systemctl stop ejabberd || true
  fi
  if pgrep -u redis -x redis-server >/dev/null 2>&1; then
    # Tests run their own redis-server as the invoking user on a free port.
    log "stopping the distro redis-server service"
    $SUDO service redis-server stop || $SUDO systemctl stop redis-server || true
  fi
  if pgrep -x epmd >/dev/null 2>&1; then
    # Test nodes use a fixed distribution port and never need epmd.
    log "stopping epmd started by the erlang packages"
    $SUDO systemctl stop epmd.service epmd.socket 2>/dev/null || epmd -kill >/dev/null 2>&1 || true
  fi
fi

# `--bench`: also the capture tool the wire benchmarks read packets with (bench/wire.ts,
# bench/router-stanzas.ts); the test suite does not need it.
if [ "${1:-}" = "--bench" ] && ! have tcpdump; then
  log "installing tcpdump (bench)"
  $SUDO apt-get update
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends tcpdump
fi

# The npm package `bun` downloads the real binary in its postinstall; a placeholder stays
# behind when install scripts were skipped.
bun_ok() {
  local exe=node_modules/bun/bin/bun.exe
  [ -x node_modules/.bin/bun ] && [ -f "$exe" ] && [ "$(wc -c <"$exe")" -gt 1000000 ]
}

if [ ! -x node_modules/.bin/bun ]; then
  log "installing npm dependencies"
  npm ci --no-audit --no-fund || npm install --no-audit --no-fund
fi
if ! bun_ok && [ -f node_modules/bun/install.js ]; then
  log "fetching the bun binary"
  node node_modules/bun/install.js
fi
if ! bun_ok; then
  log "bun binary missing or a placeholder (node_modules/bun/bin/bun.exe)"
  exit 1
fi
log "ok: $(command -v prosody || echo /usr/bin/prosody), $(command -v ejabberdctl || echo /usr/sbin/ejabberdctl), $(command -v redis-server || echo /usr/bin/redis-server), bun $(node_modules/.bin/bun --version)"
