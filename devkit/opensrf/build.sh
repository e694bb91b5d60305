#!/usr/bin/env bash
# Builds the real OpenSRF C/Perl stack (router, srfsh, opensrf-c, osrf_control, the C example
# services and the Perl modules) from its unmodified source tarball, as a test peer: the 3.3
# release (XMPP) by default, or with `--release main` OpenSRF's main branch (Redis).
#
# The install lives in a cache dir outside the repo, keyed by the tarball's sha256, so a second
# run only verifies and prints it. The build is staged next to its final place and renamed in,
# so a killed build never leaves a cache that looks complete.
#
# Usage: devkit/opensrf/build.sh [--release 3.3|main]
#                                         progress on stderr, the install prefix alone on stdout
# Env:   OPENSRF_SRC     the 3.3 tarball (default: ../shared/opensrf/opensrf-3.3.0.tar.gz next to the
#                        repo, or next to the main checkout when this is a linked git worktree)
#        OPENSRF_MAIN_SRC the main tarball (default: ../shared/opensrf/opensrf-main-81831b2.tar.gz, found the same way)
#        OSRF_PEER_CACHE cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/osrf-prefork)
set -euo pipefail

RELEASE=3.3
while [ $# -gt 0 ]; do
  case $1 in
  --release) RELEASE=${2:-}; shift 2 || shift ;;
  --release=*) RELEASE=${1#--release=}; shift ;;
  *) printf 'opensrf-build: unknown argument %s (usage: build.sh [--release 3.3|main])\n' "$1" >&2; exit 2 ;;
  esac
done
# What differs between the releases: where the tarball is, which env var names it, and the
# transport module that proves the Perl side loads (3.3: XMPP; main: Redis).
case $RELEASE in
3.3)
  SRC_VAR=OPENSRF_SRC
  DEFAULT_REL=../shared/opensrf/opensrf-3.3.0.tar.gz
  PERL_TRANSPORT=OpenSRF::Transport::SlimJabber::Client
  ;;
main)
  SRC_VAR=OPENSRF_MAIN_SRC
  DEFAULT_REL=../shared/opensrf/opensrf-main-81831b2.tar.gz
  PERL_TRANSPORT=OpenSRF::Transport::Redis::Client
  ;;
*) printf 'opensrf-build: unknown release "%s" (expected 3.3 or main)\n' "$RELEASE" >&2; exit 2 ;;
esac

# Bump when the recipe below changes what ends up in the prefix: old caches are then rebuilt.
RECIPE=1

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SRC_GIVEN=${!SRC_VAR:-}
SRC=${SRC_GIVEN:-$REPO/$DEFAULT_REL}
# In a linked git worktree, "next to the repo" means next to the main checkout.
if [ -z "$SRC_GIVEN" ] && [ ! -f "$SRC" ]; then
  COMMON=$(git -C "$REPO" rev-parse --path-format=absolute --git-common-dir 2>/dev/null || true)
  if [ -n "$COMMON" ] && [ -f "$(dirname "$COMMON")/$DEFAULT_REL" ]; then SRC=$(dirname "$COMMON")/$DEFAULT_REL; fi
fi
CACHE_ROOT=${OSRF_PEER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/osrf-prefork}
T0=${EPOCHREALTIME/./}

# Elapsed seconds since a ${EPOCHREALTIME/./} stamp, with one decimal (a warm run takes well under 1 s).
since() { local us=$((${EPOCHREALTIME/./} - $1)); printf '%d.%d' $((us / 1000000)) $((us % 1000000 / 100000)); }

log() { printf 'opensrf-build: %s\n' "$*" >&2; }

STEP="start"
FIX="see the messages above"
BUILD_LOG=""
# One line naming the step and the fix, after the build log's tail (when there is one).
on_error() {
  local rc=$?
  trap - ERR
  if [ -n "$BUILD_LOG" ] && [ -s "$BUILD_LOG" ]; then
    printf -- '--- last lines of %s\n' "$BUILD_LOG" >&2
    tail -n 25 "$BUILD_LOG" >&2
  fi
  log "FAILED at step '$STEP' (exit $rc): $FIX${BUILD_LOG:+ (full log: $BUILD_LOG)}"
  exit 1
}
trap on_error ERR
step() { STEP=$1; FIX=$2; }

# ---------------------------------------------------------------------------------------------
step "find tarball" "put the OpenSRF $RELEASE source tarball there or set $SRC_VAR=path/to/$(basename "$DEFAULT_REL")"
[ -f "$SRC" ] || { log "no tarball at $SRC"; false; }
SRC=$(cd "$(dirname "$SRC")" && pwd)/$(basename "$SRC")
SHA=$(sha256sum "$SRC" | cut -d' ' -f1)
KEY="opensrf-${SHA:0:16}-r$RECIPE"
DEST="$CACHE_ROOT/$KEY"

# ---------------------------------------------------------------------------------------------
# The Debian packages are the tarball's own `debian-bookworm` list (src/extras/Makefile.install),
# plus libxml-parser-perl: only a Recommends there, but the Perl XMPP reader needs it. main's
# list brings redis-server, redis-tools, libhiredis-dev and libredis-perl itself.
step "read package list" "$SRC is not an OpenSRF source .tar.gz (*/src/extras/Makefile.install with a DEBS list)"
MAKEFILE_INSTALL=$(tar -xzOf "$SRC" --wildcards '*/src/extras/Makefile.install')
read -r -a PKGS <<<"$(printf '%s\n' "$MAKEFILE_INSTALL" | sed -n '/^DEBS *=/,/^[[:space:]]*$/p' |
  sed -e 's/^DEBS *=//' -e 's/\\/ /g' | tr -s '[:space:]' ' ')"
[ "${#PKGS[@]}" -gt 10 ] || { log "could not parse the DEBS list"; false; }
PKGS+=(libxml-parser-perl)

missing_packages() {
  local installed
  # dpkg-query exits 1 when some package is unknown to it: that is an answer, not a failure.
  installed=$({ dpkg-query -W -f='${Package} ${Status}\n' "${PKGS[@]}" 2>/dev/null || true; } |
    awk '/ install ok installed$/ {print $1}')
  for p in "${PKGS[@]}"; do grep -qx -- "$p" <<<"$installed" || printf '%s\n' "$p"; done
}

# Pids of the daemons these packages ship, so the ones our apt run started can be stopped.
daemon_pids() {
  {
    pgrep -x apache2 || true
    pgrep -u memcache -x memcached || true
    pgrep -u ejabberd -f 'name ejabberd@' || true # distro node; test servers are osrftest-*
    pgrep -x epmd || true
    pgrep -u redis -x redis-server || true # distro instance; test servers run as us
  } 2>/dev/null | sort -n
}

step "apt packages" "install them by hand: apt-get install --no-install-recommends <the packages above>, as root"
read -r -a MISSING <<<"$(missing_packages | tr '\n' ' ')"
if [ "${#MISSING[@]}" -gt 0 ]; then
  T_APT=${EPOCHREALTIME/./}
  log "installing ${#MISSING[@]} Debian packages: ${MISSING[*]}"
  if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
  elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    FIX="run as root, or install sudo, or install the packages above yourself"
    false
  fi
  # No system ejabberd/memcached/apache2/redis-server may start: maintainer scripts use invoke-rc.d,
  # which obeys policy-rc.d (exit 101 = deny). An existing policy that already denies is kept.
  POLICY=/usr/sbin/policy-rc.d
  POLICY_BACKUP=""
  POLICY_ADDED=0
  policy_denies() {
    local rc=0
    [ -x "$POLICY" ] || return 1
    "$POLICY" osrf-devkit start >/dev/null 2>&1 || rc=$?
    [ "$rc" -eq 101 ]
  }
  if ! policy_denies; then
    if [ -e "$POLICY" ]; then
      POLICY_BACKUP=$(mktemp)
      "${SUDO[@]}" cp -p "$POLICY" "$POLICY_BACKUP"
    fi
    printf '#!/bin/sh\n# osrf-prefork devkit: no services start during apt\nexit 101\n' |
      "${SUDO[@]}" tee "$POLICY" >/dev/null
    "${SUDO[@]}" chmod 755 "$POLICY"
    POLICY_ADDED=1
  fi
  restore_policy() {
    if [ "$POLICY_ADDED" -eq 1 ]; then
      if [ -n "$POLICY_BACKUP" ]; then "${SUDO[@]}" cp -p "$POLICY_BACKUP" "$POLICY"; rm -f "$POLICY_BACKUP"
      else "${SUDO[@]}" rm -f "$POLICY"; fi
      POLICY_ADDED=0
    fi
  }
  trap 'restore_policy' EXIT
  BEFORE=$(daemon_pids)
  APT=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -q)
  "${APT[@]}" update >&2
  "${APT[@]}" install -y --no-install-recommends "${MISSING[@]}" >&2
  restore_policy
  trap - EXIT
  # With systemd (or a policy that let something through) daemons may still have started.
  for pid in $(comm -13 <(printf '%s\n' "$BEFORE") <(daemon_pids)); do
    log "stopping $(cat "/proc/$pid/comm" 2>/dev/null || echo process) $pid started by the packages"
    "${SUDO[@]}" kill "$pid" 2>/dev/null || true
  done
  read -r -a STILL <<<"$(missing_packages | tr '\n' ' ')"
  [ "${#STILL[@]}" -eq 0 ] || { log "still missing after apt: ${STILL[*]}"; false; }
  log "apt done in $(since "$T_APT") s"
fi

# ---------------------------------------------------------------------------------------------
step "cache dir" "make $CACHE_ROOT writable or set OSRF_PEER_CACHE to a writable dir outside the repo"
CACHE_ROOT=$(realpath -m "$CACHE_ROOT")
# The build must never land in the repo (it is OpenSRF's code, not ours).
case "$CACHE_ROOT/" in
"$(realpath "$REPO")/"*)
  FIX="set OSRF_PEER_CACHE to a dir outside the repo"
  log "cache dir $CACHE_ROOT is inside the repo"
  false
  ;;
esac
mkdir -p "$CACHE_ROOT"
# Concurrent test files may build at once: one builds, the others wait and reuse.
exec 9>"$CACHE_ROOT/$KEY.lock"
if ! flock -n 9; then
  log "another build of $KEY is running; waiting for it"
  flock 9
fi

complete() {
  [ -f "$DEST/.osrf-peer-complete" ] && [ -x "$DEST/bin/opensrf_router" ] && [ -x "$DEST/bin/srfsh" ] &&
    [ -x "$DEST/bin/opensrf-c" ] && [ -e "$DEST/lib/libosrf_math.so" ] &&
    [ -f "$DEST/perl5/lib/perl5/OpenSRF/System.pm" ]
}

if complete; then
  log "reused cache $DEST ($(since "$T0") s)"
  printf '%s\n' "$DEST"
  exit 0
fi

# Leftovers of killed builds of this key (we hold its lock, so none is running).
rm -rf "$CACHE_ROOT/.build-$KEY."*
if [ -e "$DEST" ]; then
  log "removing incomplete $DEST"
  rm -rf "$DEST"
fi

WORK=$(mktemp -d "$CACHE_ROOT/.build-$KEY.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
BUILD_LOG="$CACHE_ROOT/$KEY.build.log"
: >"$BUILD_LOG"
T_BUILD=${EPOCHREALTIME/./}
log "building $KEY from $SRC (log: $BUILD_LOG)"

step "extract" "the tarball looks damaged; fetch it again"
tar -xzf "$SRC" -C "$WORK"
TOP=$(find "$WORK" -mindepth 1 -maxdepth 1 -type d | head -n1)
[ -f "$TOP/configure.ac" ] || { log "no configure.ac at the top of the tarball"; false; }

step "autoreconf" "autoconf, automake and libtool must be installed (they are in the package list)"
(cd "$TOP" && autoreconf -i) >>"$BUILD_LOG" 2>&1

# --prefix is the final cache path (it is compiled into osrf_control and the libtool rpaths);
# `make install DESTDIR=` stages it so the rename below is the only step that makes it visible.
step "configure" "a -dev package is missing; see config.log in the log above"
(cd "$TOP" && ./configure --prefix="$DEST" --sysconfdir="$DEST/etc" --localstatedir="$DEST/var" \
  --with-perlbase="$DEST/perl5") >>"$BUILD_LOG" 2>&1

# The Apache gateway's install target runs `apxs -i -a`, which edits the system's Apache config;
# nothing of the peer needs the gateway, so its install does nothing.
step "neutralise gateway install" "src/gateway/Makefile has no install-exec-local rule any more; update build.sh"
GW="$TOP/src/gateway/Makefile"
grep -q '^install-exec-local:' "$GW"
sed -i -e 's/^install-exec-local:.*/install-exec-local:\n\t@echo "gateway: Apache module not installed (test peer)"\nunused-gateway-install:/' "$GW"

step "make" "a compile error; see the log above"
make -C "$TOP" -j"$(nproc)" >>"$BUILD_LOG" 2>&1

step "make install" "see the log above"
STAGE="$WORK/stage"
make -C "$TOP" install DESTDIR="$STAGE" >>"$BUILD_LOG" 2>&1

step "check install" "the staged install lacks a program or module; see the log above"
S="$STAGE$DEST"
for f in bin/opensrf_router bin/srfsh bin/opensrf-c bin/osrf_control lib/libopensrf.so lib/libosrf_math.so \
  lib/libosrf_dbmath.so perl5/lib/perl5/OpenSRF/System.pm; do
  [ -e "$S/$f" ] || { log "missing $f"; false; }
done
# The Perl client must load from the cache prefix alone (no system site install).
PERL5LIB="$S/perl5/lib/perl5" perl -e "use OpenSRF::System; use OpenSRF::AppSession; use $PERL_TRANSPORT;" \
  >>"$BUILD_LOG" 2>&1
mkdir -p "$S/var/run/opensrf" "$S/var/log/opensrf" "$S/var/lock/opensrf"
printf 'tarball=%s\nrelease=%s\nsha256=%s\nrecipe=%s\nbuilt=%s\n' "$(basename "$SRC")" "$RELEASE" "$SHA" "$RECIPE" \
  "$(date -u +%FT%TZ)" \
  >"$S/.osrf-peer-complete"

step "move into place" "could not rename $S to $DEST (same filesystem?)"
mv -T "$S" "$DEST"
log "built $DEST in $(since "$T_BUILD") s (total $(since "$T0") s)"
printf '%s\n' "$DEST"
