# Sourced by scripts/test: install one of Debian's packages on a fresh machine (CI runs as
# root on Debian), quietly; elsewhere say what is missing and go on.
# Usage: apt_ensure PACKAGE "what happens without it"
apt_ensure() {
  local package="$1" without="$2"
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "scripts/test: Debian's $package package is not installed; $without" >&2
    return 0
  fi
  echo "== installing $package (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  # The package lists may be missing or stale on a fresh machine: update only if needed.
  apt-get install -y -qq "$package" >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null && apt-get install -y -qq "$package" >/dev/null; } \
    || { echo "scripts/test: apt-get could not install $package" >&2; return 1; }
}
