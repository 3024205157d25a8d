#!/usr/bin/env bash
# The container image, built and run as a department would build and run it.
#
#   .ci/image.sh build    build it; print `export` lines for the calling shell to eval
#                         (LC2_TEST_IMAGE for tests/test_image.py) and keep what
#                         `clean` needs; .ci/run does this before the suite
#   .ci/image.sh clean    remove the images, containers, networks and volumes `build`
#                         and the tests made, and stop dockerd if `build` started it
#   .ci/image.sh [CMD...] build, run CMD (default: the image tests alone), clean
#
# The base is made from Debian's own packages (debootstrap; Docker Hub is not
# needed) and the Dockerfile is built on it with BuildKit, pip's CA bundle given
# as a secret. Progress goes to stderr: stdout is for `eval` only.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

log() { printf '[ci:image] %s\n' "$*" >&2; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

SUITE=bookworm
# Debian's own client: BuildKit is built in (DOCKER_BUILDKIT=1); a newer client
# earlier on PATH may want the buildx plug-in, which Debian does not ship.
DOCKER=/usr/bin/docker
CACHE="${LC2_CI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lc2-gateway-ci}"
BASE_TARBALL="$CACHE/debian-$SUITE-minbase.tar"
BASE_MAX_AGE_DAYS=7 # then made again: a stale base misses Debian's security updates
mode="${1:-}"
if [ "$mode" = clean ]; then
  # what `build` left for us: IMAGE, BASE_IMAGE, WORK, dockerd_pid
  [ -n "${LC2_CI_IMAGE_STATE:-}" ] && [ -f "$LC2_CI_IMAGE_STATE" ] || exit 0
  # shellcheck disable=SC1090
  . "$LC2_CI_IMAGE_STATE"
else
  RUN_ID="$$-$(date +%s)"
  BASE_IMAGE="lc2-gateway-ci-base:$SUITE-$RUN_ID"
  IMAGE="lc2-gateway-ci:$RUN_ID"
  WORK="$(mktemp -d)"
  dockerd_pid=""
fi

docker() { $SUDO "$DOCKER" "$@"; }

# --- cleaning up ---------------------------------------------------------------------
cleanup() {
  local rc=$?
  set +e
  if docker info >/dev/null 2>&1; then
    local label="lc2-gateway.ci-image=$IMAGE"
    local containers
    containers="$(docker ps -aq --filter "label=$label")"
    [ -z "$containers" ] || docker rm -f $containers >/dev/null
    docker network ls -q --filter "label=$label" | xargs -r $SUDO "$DOCKER" network rm >/dev/null
    docker volume ls -q --filter "label=$label" | xargs -r $SUDO "$DOCKER" volume rm -f >/dev/null
    docker image rm -f "$IMAGE" "$BASE_IMAGE" >/dev/null 2>&1
    # the build cache, only on a daemon of our own: another's cache is not ours to drop
    [ -z "$dockerd_pid" ] || docker builder prune -f >/dev/null 2>&1
  fi
  if [ -n "$dockerd_pid" ]; then
    log "stopping the dockerd started here"
    $SUDO kill -TERM "$dockerd_pid" 2>/dev/null
    for _ in $(seq 60); do $SUDO kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.5; done
  fi
  $SUDO rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT

if [ "$mode" = clean ]; then exit 0; fi # the trap does it

# --- tools --------------------------------------------------------------------
need=()
[ -x "$DOCKER" ] && { command -v dockerd >/dev/null || [ -x /usr/sbin/dockerd ]; } || need+=(docker.io)
command -v debootstrap >/dev/null || [ -x /usr/sbin/debootstrap ] || need+=(debootstrap)
if [ "${#need[@]}" -gt 0 ]; then
  log "installing: ${need[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# --- dockerd, started here only if none runs ------------------------------------
if ! docker info >/dev/null 2>&1; then
  log "starting dockerd (log: $WORK/dockerd.log)"
  # its own session: it outlives `build` and is stopped by `clean`
  $SUDO setsid dockerd >"$WORK/dockerd.log" 2>&1 </dev/null &
  dockerd_pid=$!
  for _ in $(seq 120); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || {
    tail -n 30 "$WORK/dockerd.log" >&2
    log "dockerd did not start"
    exit 1
  }
fi

# --- the base: Debian's packages, through the mirror apt already uses -----------
mirror_url() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    # one-line form: deb [options] URI SUITE COMPONENTS...
    awk -v s="$SUITE" '$1 == "deb" { sub(/\[[^]]*\] */, ""); if ($3 == s) { print $2; exit } }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    # deb822 form: a stanza whose Suites name SUITE
    awk -v s="$SUITE" 'BEGIN { RS = "" } {
      uri = ""; ok = 0; n = split($0, line, "\n")
      for (i = 1; i <= n; i++) {
        m = split(line[i], w, /[ \t]+/)
        if (w[1] == "URIs:") uri = w[2]
        if (w[1] == "Suites:") for (j = 2; j <= m; j++) if (w[j] == s) ok = 1
      }
      if (ok && uri != "") { print uri; exit }
    }' "$f"
  done
}

SECONDS=0
if [ -s "$BASE_TARBALL" ] && [ -z "$(find "$BASE_TARBALL" -mtime +"$BASE_MAX_AGE_DAYS")" ]; then
  log "base: $BASE_TARBALL (cached)"
else
  mirror="$(mirror_url | head -n1)"
  mirror="${mirror:-http://deb.debian.org/debian}"
  log "base: debootstrap $SUITE from $mirror"
  root="$WORK/root"
  $SUDO debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$SUITE" "$root" "$mirror" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -n 30 "$WORK/debootstrap.log" >&2; exit 1; }
  # what a container never reads: downloaded packages, package lists, docs, translations
  $SUDO rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
    "$root"/usr/share/locale/*
  mkdir -p "$CACHE"
  $SUDO tar -C "$root" -c . >"$BASE_TARBALL.part"
  mv "$BASE_TARBALL.part" "$BASE_TARBALL"
fi
docker import - "$BASE_IMAGE" <"$BASE_TARBALL" >/dev/null
t_base=$SECONDS

# --- the build ----------------------------------------------------------------------
# The CA bundle pip trusts on this machine, for pip inside the build (a BuildKit secret).
ca="${PIP_CERT:-$(python3 -m pip config get global.cert 2>/dev/null || true)}"
[ -s "$ca" ] || ca=/etc/ssl/certs/ca-certificates.crt
SECONDS=0
log "build: $IMAGE on $BASE_IMAGE (pip trusts $ca)"
DOCKER_BUILDKIT=1 $SUDO "$DOCKER" build --progress=plain \
  --build-arg BASE_IMAGE="$BASE_IMAGE" --secret id=ca,src="$ca" \
  --label "lc2-gateway.ci-image=$IMAGE" -t "$IMAGE" . >"$WORK/build.log" 2>&1 \
  || { tail -n 60 "$WORK/build.log" >&2; exit 1; }
t_build=$SECONDS
size="$(docker image inspect -f '{{.Size}}' "$IMAGE")"
base_size="$(docker image inspect -f '{{.Size}}' "$BASE_IMAGE")"

log "image size $((size / 1000000)) MB (base $((base_size / 1000000)) MB);" \
  "seconds: base ${t_base}, build ${t_build}"

if [ "$mode" = build ]; then
  declare -p IMAGE BASE_IMAGE WORK dockerd_pid >"$WORK/state"
  trap - EXIT # kept for `clean`
  printf 'export LC2_TEST_IMAGE=%q LC2_TEST_DOCKER=%q LC2_CI_IMAGE_STATE=%q\n' \
    "$IMAGE" "$DOCKER" "$WORK/state"
  exit 0
fi

# --- run it ------------------------------------------------------------------------
[ "$#" -gt 0 ] || set -- .venv/bin/pytest -q tests/test_image.py
SECONDS=0
log "running: $*"
LC2_TEST_IMAGE="$IMAGE" LC2_TEST_DOCKER="$DOCKER" "$@"
log "ran in ${SECONDS} s"
