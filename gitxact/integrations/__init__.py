"""gitxact inside other tools: Claude Code's worktree hooks, ``.worktreeinclude``.

Empty on purpose, like the other feature packages: import the module you need.
"""
