"""Which locks each git command needs, and which ones the guard may refuse: one table.

Five kinds of git work (docs/architecture.md, "The lock hierarchy"):

* **read-only**: no gitxact lock; git is exec'ed with ``GIT_OPTIONAL_LOCKS=0`` so not
  even ``status`` takes ``index.lock`` to refresh stat data under a writer.
* **refs**: commands that only change refs (``update-ref``): no gitxact lock, since
  git's own per-ref lock files and compare-and-swap already make each update atomic,
  and one left waiting on its stdin must not hold up the worktree's writers. The guard
  still checks them (deleting refs is repository-wide and guarded).
* **worktree**: this worktree's lock exclusive. Everything that writes one worktree's
  index, files or HEAD (add, commit, checkout, merge, stash...). Agents in different
  worktrees run these in parallel, and none waits for another worktree's work.
* **repository**: the whole repository (its lock exclusive and every worktree's, taken
  all at once): work that affects every worktree (gc, prune, repack, pack-refs,
  worktree add/remove/prune, deleting branches).
* **guarded**: a repository-wide command the guard refuses (exit 3) while leases are
  active (``gc``, ``prune``, ``worktree prune``, ``repack -d``...), or while *the* lease
  it would hurt is active (``worktree remove`` of a leased worktree, ``branch -D`` of a
  leased branch, ``update-ref -d`` of a leased branch or a ``refs/gitxact/*`` ref).

Some worktree-local commands also write a file or ref that *all* worktrees share and
that git guards with a fail-at-once lock file (``.git/config.lock``, the lock of
``refs/stash``, of ``refs/notes/*``, of ``refs/remotes/*``). For those a rule names a
resource lock too (``git.config``, ``git.stash``, ``git.notes``, ``git.remote-refs``),
taken after the worktree lock, so two worktrees never collide there while everything
else still runs in parallel. That is why ``fetch``/``push``/``pull`` are worktree-level
with the ``git.remote-refs`` resource rather than repository-wide: they can wait on
the network for a long time and must not stop every agent's commits meanwhile; their
own writes are objects (safe in parallel) and remote-tracking refs (serialized here).

Unknown commands (external ``git-foo`` programs, ``!shell`` aliases, typos, git
commands newer than this table) are worktree-level mutations: the safe default.
"""

from __future__ import annotations

from gitxact.gx.cmdline import has_option, positionals

TYPE_CHECKING = False  # see gitxact/__init__.py
if TYPE_CHECKING:
    from collections.abc import Sequence

    from gitxact.gx.cmdline import Invocation

READ_ONLY = "read-only"
REFS = "refs"
WORKTREE = "worktree"
REPOSITORY = "repository"

#: Guard kinds: refuse while any lease is active / while the lease the command would hurt is.
ANY_LEASE = "any-lease"
LEASED_WORKTREE = "leased-worktree"
LEASED_BRANCH = "leased-branch"
PROTECTED_REF = "protected-ref"


class Rule:
    """What one command shape needs: a lock level, an optional guard, resource locks."""

    __slots__ = ("guard", "lock", "refresh", "resources")

    def __init__(
        self, lock: str, guard: str | None = None, resources: tuple[str, ...] = (), *, refresh: bool = False
    ) -> None:
        self.lock = lock
        self.guard = guard
        self.resources = resources
        #: A read-only command that git lets refresh the index when ``index.lock`` is free
        #: (``status``): gx lets it, under the worktree lock, when that lock is free too.
        self.refresh = refresh

    @property
    def kind(self) -> str:
        """The class of the four in the module docstring."""
        return "guarded" if self.guard else self.lock

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Rule) and (self.lock, self.guard, self.resources, self.refresh) == (
            other.lock,
            other.guard,
            other.resources,
            other.refresh,
        )

    def __hash__(self) -> int:
        return hash((self.lock, self.guard, self.resources, self.refresh))

    def __repr__(self) -> str:
        extra = f", guard={self.guard!r}" if self.guard else ""
        extra += f", resources={self.resources!r}" if self.resources else ""
        extra += ", refresh=True" if self.refresh else ""
        return f"Rule({self.lock!r}{extra})"


class Sub:
    """A command whose first positional word is a sub-subcommand (``worktree list``)."""

    __slots__ = ("bare", "default", "rules", "value_options")

    def __init__(
        self,
        rules: dict[str, Rule],
        *,
        bare: Rule,
        default: Rule | None = None,
        value_options: frozenset[str] = frozenset(),
    ) -> None:
        self.rules = rules
        self.bare = bare  # no sub-subcommand at all (`git stash` = push, `git remote` = list)
        self.default = default  # an unknown sub-subcommand (None: git's error, read-only)
        self.value_options = value_options

    def pick(self, args: Sequence[str]) -> Rule:
        words = positionals(args, self.value_options)
        if not words:
            return self.bare
        return self.rules.get(words[0], self.default or R)


class Flags:
    """A command whose options decide: the first case whose flags appear wins."""

    __slots__ = ("bare", "cases", "default", "read_words", "value_options")

    def __init__(
        self,
        cases: list[tuple[frozenset[str], Rule]],
        *,
        default: Rule,
        bare: Rule | None = None,
        read_words: int = 0,
        value_options: frozenset[str] = frozenset(),
    ) -> None:
        self.cases = cases
        self.default = default
        #: The rule when no case matched and there are at most *read_words* positional
        #: words (`git branch` lists, `git config KEY` reads, `git symbolic-ref HEAD` reads).
        self.bare = bare
        self.read_words = read_words
        self.value_options = value_options

    def pick(self, args: Sequence[str]) -> Rule:
        for flags, rule in self.cases:
            if has_option(args, flags, self.value_options):
                return rule
        if self.bare is not None and len(positionals(args, self.value_options)) <= self.read_words:
            return self.bare
        return self.default


def _f(*names: str) -> frozenset[str]:
    return frozenset(names)


def _each(names: str, rule: Rule) -> dict[str, Rule]:
    """Rows for many commands that share one rule (names separated by spaces)."""
    return dict.fromkeys(names.split(), rule)


R = Rule(READ_ONLY)
R_REFRESH = Rule(READ_ONLY, refresh=True)
REFS_ONLY = Rule(REFS)
W = Rule(WORKTREE)
REPO = Rule(REPOSITORY)
GUARD_GC = Rule(REPOSITORY, ANY_LEASE)
W_CONFIG = Rule(WORKTREE, resources=("git.config",))
W_REMOTE = Rule(WORKTREE, resources=("git.remote-refs",))
W_STASH = Rule(WORKTREE, resources=("git.stash",))
W_NOTES = Rule(WORKTREE, resources=("git.notes",))
W_CONFIG_REMOTE = Rule(WORKTREE, resources=("git.config", "git.remote-refs"))

_CONFIG_VALUES = _f("-f", "--file", "--blob", "--type", "--default", "--comment")
BRANCH_VALUES = _f("-u", "--set-upstream-to", "--sort", "--format", "--points-at", "--contains", "--no-contains")
_TAG_VALUES = _f("-m", "--message", "-F", "--file", "-u", "--local-user", "--sort", "--format", "--points-at")

Entry = Rule | Sub | Flags

#: The table: one row per git command. Read the module docstring for the four kinds.
TABLE: dict[str, Entry] = {
    # -- inspection: never writes anything of the repository -----------------------------
    **_each(
        (
            "annotate blame bugreport cat-file check-attr check-ignore check-mailmap check-ref-format cherry"
            " column count-objects credential credential-cache credential-store diagnose"
            " diff-files diff-index diff-tree fast-export fmt-merge-msg for-each-ref format-patch fsck"
            " fsck-objects get-tar-commit-id grep help log ls-files ls-remote ls-tree mailinfo mailsplit"
            " merge-base merge-tree name-rev pack-objects pack-redundant patch-id pickaxe range-diff"
            " rev-list rev-parse shortlog show show-branch show-index show-ref stripspace"
            " upload-archive upload-pack var verify-commit verify-pack verify-tag version whatchanged archive"
            " env--helper"
        ),
        R,
    ),
    "clone": R,  # makes a new repository; the one gx runs in is not touched
    "status": R_REFRESH,
    # git 2.39 refreshes the index in these when it finds stat-dirty entries, taking
    # index.lock if it is free and ignoring GIT_OPTIONAL_LOCKS: a concurrent `git add` in
    # that worktree then fails. So they lock like writers (a pager keeps the lock).
    "diff": Flags([(_f("--cached", "--staged", "--no-index"), R)], default=W),
    "describe": Flags([(_f("--dirty", "--broken"), W)], default=R),
    # -- one worktree's index, files, HEAD or branch --------------------------------------
    **_each(
        (
            "add stage am apply checkout-index cherry-pick clean commit commit-tree merge merge-file mktag"
            " mktree mv read-tree rebase reset restore revert rm unpack-file update-index write-tree"
            " index-pack unpack-objects receive-pack send-pack fetch-pack difftool mergetool hook for-each-repo"
            " merge-index merge-ours merge-recursive merge-recursive-ours merge-recursive-theirs merge-subtree"
            " bisect--helper checkout--worker submodule--helper credential-cache--daemon fsmonitor--daemon"
            " remote-ext remote-fd upload-archive--writer"
        ),
        W,
    ),
    "checkout": W_CONFIG,  # `checkout -b x origin/x` (and DWIM) writes branch.x.* to .git/config
    "switch": W_CONFIG,
    # Makes (or, with --separate-git-dir, moves) a repository: gx holds no lock file
    # inside one while git may move it away; git runs as itself, like clone.
    "init": R,
    "init-db": R,
    "fetch": W_REMOTE,
    "pull": W_REMOTE,
    "push": W_CONFIG_REMOTE,  # `push -u` writes branch.x.* config
    "hash-object": Flags([(_f("-w"), W)], default=R),
    "interpret-trailers": Flags([(_f("--in-place"), W)], default=R),
    "branch": Flags(
        [
            (_f("-d", "-D", "--delete"), Rule(REPOSITORY, LEASED_BRANCH)),
            (_f("-m", "-M", "--move"), Rule(REPOSITORY, LEASED_BRANCH)),  # a rename deletes the old name
            (_f("-c", "-C", "--copy", "-f", "--force"), REPO),
            (_f("-l", "--list", "--show-current", "--contains", "--no-contains", "--merged", "--no-merged"), R),
            (_f("--points-at"), R),
            (_f("-u", "--set-upstream-to", "--unset-upstream", "--edit-description"), W_CONFIG),
        ],
        default=W_CONFIG,  # create a branch (with branch.autoSetupMerge it writes config)
        bare=R,  # `git branch`, `-a`, `-r`, `-v`: list
        value_options=BRANCH_VALUES,
    ),
    "tag": Flags(
        [
            (_f("-d", "--delete"), REPO),
            (_f("-l", "--list", "-v", "--verify", "-n", "--contains", "--no-contains", "--merged"), R),
            (_f("--no-merged", "--points-at"), R),
        ],
        default=W,  # create a tag
        bare=R,
        value_options=_TAG_VALUES,
    ),
    "config": Flags(
        [
            (_f("-l", "--list", "--get", "--get-all", "--get-regexp", "--get-urlmatch", "--get-color"), R),
            (_f("--get-colorbool"), R),
            (_f("--worktree"), W),  # config.worktree belongs to this worktree alone
            (_f("--unset", "--unset-all", "--add", "--replace-all", "--rename-section", "--remove-section"), W_CONFIG),
            (_f("-e", "--edit"), W_CONFIG),
        ],
        default=W_CONFIG,  # `git config key value`
        bare=R,  # `git config key`
        read_words=1,
        value_options=_CONFIG_VALUES,
    ),
    "worktree": Sub(
        {
            "list": R,
            "add": REPO,
            "prune": GUARD_GC,
            "remove": Rule(REPOSITORY, LEASED_WORKTREE),
            "move": Rule(REPOSITORY, LEASED_WORKTREE),
            "unlock": Rule(REPOSITORY, LEASED_WORKTREE),  # would expose a leased worktree to prune
            "lock": REPO,
            "repair": REPO,
        },
        bare=R,  # usage error
        default=REPO,
    ),
    "stash": Sub(
        {"list": R, "show": R},
        bare=W_STASH,  # `git stash` = push
        default=W_STASH,  # push save pop apply drop clear branch create store
        value_options=_f("-m", "--message", "--pathspec-from-file"),
    ),
    "remote": Sub(
        {"show": R, "get-url": R, "prune": W_REMOTE, "update": W_REMOTE},
        bare=R,  # `git remote`, `git remote -v`: list
        default=W_CONFIG_REMOTE,  # add rename remove rm set-head set-branches set-url
    ),
    "notes": Sub(
        {"list": R, "show": R, "get-ref": R},
        bare=R,  # list
        default=W_NOTES,  # add append copy edit merge remove prune
        value_options=_f("--ref"),
    ),
    "submodule": Sub(
        {"status": R, "summary": R},
        bare=R,  # status
        default=W_CONFIG,  # add init update deinit sync absorbgitdirs set-branch set-url foreach
    ),
    "sparse-checkout": Sub({"list": R}, bare=R, default=W_CONFIG),
    "bisect": Sub({"log": R, "visualize": R, "view": R, "terms": R, "help": R}, bare=R, default=W),
    "rerere": Sub({"status": R, "diff": R, "remaining": R}, bare=W, default=W),
    "bundle": Sub({"create": R, "verify": R, "list-heads": R}, bare=R, default=W),
    "reflog": Sub(
        {"show": R, "exists": R, "expire": GUARD_GC, "delete": REPO},
        bare=R,  # show
        default=R,  # `git reflog <ref>` = show
    ),
    "maintenance": Sub({"run": GUARD_GC}, bare=R, default=W_CONFIG),  # register/start/stop write config
    "commit-graph": Sub({"verify": R}, bare=R, default=REPO),
    "multi-pack-index": Sub({"verify": R}, bare=R, default=REPO),
    # -- the whole repository -------------------------------------------------------------
    "gc": GUARD_GC,
    "prune": GUARD_GC,
    "repack": Flags([(_f("-d"), GUARD_GC)], default=REPO),  # -d deletes packs (with -a: unreachable objects)
    "pack-refs": REPO,
    "prune-packed": REPO,
    "update-server-info": REPO,
    "filter-branch": REPO,
    "fast-import": REPO,  # updates whatever refs the stream names
    "replace": Flags([(_f("-d", "--delete"), REPO), (_f("-l", "--list"), R)], default=W, bare=R),
    "symbolic-ref": Flags([(_f("-d", "--delete"), REPO)], default=W, bare=R, read_words=1, value_options=_f("-m")),
    "update-ref": Flags(
        [(_f("-d"), Rule(REPOSITORY, PROTECTED_REF)), (_f("--stdin"), REFS_ONLY)],
        default=REFS_ONLY,
        value_options=_f("-m"),
    ),
}


def classify(command: str | None, args: Sequence[str]) -> Rule:
    """The rule for ``git COMMAND ARGS`` (aliases already expanded by the caller)."""
    if command is None:
        return R  # `git` alone, `git --exec-path`...: prints something, runs nothing
    if args and args[0] == "--help":
        return R  # git turns `git X --help` into `git help X` for every X
    if list(args) == ["-h"]:
        return R  # a builtin's usage text
    entry = TABLE.get(command)
    if entry is None:
        return W  # unknown: the safe default
    return entry if isinstance(entry, Rule) else entry.pick(args)


def rule_for(invocation: Invocation) -> Rule:
    """The rule for a parsed command line (an unknown global option counts as unknown)."""
    if invocation.problem is not None and invocation.problem.startswith("unknown option"):
        return W  # git refuses it today; a newer git may run something
    return classify(invocation.command, invocation.args)


def is_known(command: str) -> bool:
    """Whether *command* is a git builtin in the table (git never expands an alias of those)."""
    return command in TABLE
