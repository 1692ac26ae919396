"""Where agents coordinate: files on this host (the default) or a PostgreSQL server.

Empty on purpose (see docs/architecture.md): importing a module here must not pull in
psycopg, which only :mod:`gitxact.backends.postgres` imports.
"""
