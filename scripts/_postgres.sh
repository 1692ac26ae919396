# Sourced by scripts/test: PostgreSQL's server binaries for the tests of the PostgreSQL
# backend (tests/support/postgres.py starts a private cluster with them). CI starts on a
# fresh machine with only python3 and git: install Debian's package there, quietly.
have_postgres() {
  command -v initdb >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}
ensure_postgres() {
  have_postgres && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "scripts/test: PostgreSQL's initdb not found; install Debian's postgresql package (its tests need it)" >&2
    return 0
  fi
  echo "== installing postgresql (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  # The package lists may be missing or stale on a fresh machine: update only if needed.
  apt-get install -y -qq postgresql >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null && apt-get install -y -qq postgresql >/dev/null; } \
    || { echo "scripts/test: apt-get could not install postgresql" >&2; return 1; }
}
