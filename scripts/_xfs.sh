# Sourced by scripts/test: mkfs.xfs, for the test that measures reflinked caches on a
# loop-mounted XFS image (tests/test_include_caches.py; skipped with its reason where the
# machine cannot mount).
ensure_xfsprogs() {
  command -v mkfs.xfs >/dev/null 2>&1 && return 0
  apt_ensure xfsprogs "the reflink test will be skipped"
}
