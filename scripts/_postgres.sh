# Sourced by scripts/test: PostgreSQL's server binaries for the tests of the PostgreSQL
# backend (tests/support/postgres.py starts a private cluster with them). CI starts on a
# fresh machine with only python3 and git: install Debian's package there, quietly.
have_postgres() {
  command -v initdb >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}
ensure_postgres() {
  have_postgres && return 0
  apt_ensure postgresql "its tests need PostgreSQL's initdb"
}
