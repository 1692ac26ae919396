"""The click command line: the only package that imports click; each command parses, calls the library, renders."""
