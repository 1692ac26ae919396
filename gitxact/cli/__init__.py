"""The click command line: the only package that imports click (STYLE.md 1)."""
