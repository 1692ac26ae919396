"""Kept uncommitted work (``refs/gitxact/snapshots/``): list, show, restore, drop, expire.

Empty on purpose, like the other feature packages: import the module you need
(``gitxact.snapshots.manager.Snapshots`` is what ``Workspace.snapshots`` returns).
"""
