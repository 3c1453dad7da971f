# Shared helpers of the cluster scripts; sourced, never run.
log() { printf '[cluster %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Host packages the scripts need (idempotent: apt runs only when one is missing).
HOST_PACKAGES="kubectl debootstrap libgpgme-dev libseccomp-dev libsqlite3-dev pkg-config iproute2 iptables util-linux openssl psmisc"
ensure_host_packages() {
  local missing=()
  for p in $HOST_PACKAGES; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing host packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
