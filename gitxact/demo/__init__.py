"""``gitxact demo``: several agents on one repository at once, in a temporary folder.

:mod:`~gitxact.demo.scenario` says what the agents do, :mod:`~gitxact.demo.agent` is one
agent (a process of its own), :mod:`~gitxact.demo.supervisor` starts and follows them,
kills one and checks what landed, :mod:`~gitxact.demo.progress` shows it live and
:mod:`~gitxact.demo.report` renders the summary.
"""
