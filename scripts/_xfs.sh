# Sourced by scripts/test: mkfs.xfs, for the test that measures reflinked caches on a
# loop-mounted XFS image (tests/test_include_caches.py; skipped with its reason where the
# machine cannot mount). CI runs as root on a fresh Debian machine: install xfsprogs there,
# the way _postgres.sh installs postgresql.
ensure_xfsprogs() {
  command -v mkfs.xfs >/dev/null 2>&1 && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "scripts/test: mkfs.xfs not found; the reflink test will be skipped (Debian: xfsprogs)" >&2
    return 0
  fi
  echo "== installing xfsprogs (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq xfsprogs >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null && apt-get install -y -qq xfsprogs >/dev/null; } \
    || { echo "scripts/test: apt-get could not install xfsprogs" >&2; return 1; }
}
