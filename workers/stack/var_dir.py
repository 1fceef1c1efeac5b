"""The `var/` folder of `make run` knows which versions of the workflow code have run on it.

Its Temporal database holds the histories of the org workflows those versions started; a worker
replays them on its own code, which understands the runs of OLDEST_REPLAYED to CURRENT
(workflows.versions) and no others. A `var/` from outside that range would meet nondeterminism
errors (and an older billing.db), so the embedded stack refuses it at start, in one line that
says how to start afresh. The versions are in var/VERSION, one a line, written at creation."""

from pathlib import Path

from workflows import versions

MARK = "VERSION"
MARKED_SINCE = "1.0"   # a var/ without the mark is older than this
# What an embedded stack leaves in its folder: one of these without the mark is an older var/.
STACK_FILES = ("temporal.db", "billing.db")


class VarFromAnotherVersion(Exception):
    pass


def claim(var: Path, current: str = versions.CURRENT, oldest: str = versions.OLDEST_REPLAYED) -> None:
    """Make `var` the folder of this code's stack: created and marked when new, the version added
    to its mark when in range; VarFromAnotherVersion (its one-line message) when it is not."""
    mark = var / MARK
    if not mark.exists():
        if any((var / name).exists() for name in STACK_FILES):
            raise _refusal(var, f"an older version (before {MARKED_SINCE})")
        var.mkdir(parents=True, exist_ok=True)
        mark.write_text(f"{current}\n")
        return
    try:
        ran = [line.strip() for line in mark.read_text().splitlines() if line.strip()]
        found = sorted(ran, key=versions.parse)
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise _refusal(var, f"a version this code cannot tell ({mark} is unreadable: {err})") from None
    if not found or versions.parse(found[0]) < versions.parse(oldest):
        raise _refusal(var, f"an older version ({found[0] if found else 'none named'}; this code replays "
                            f"{oldest} to {current})")
    if versions.parse(found[-1]) > versions.parse(current):
        raise _refusal(var, f"a newer version ({found[-1]}; this code is {current})")
    if current not in ran:
        mark.write_text("".join(f"{version}\n" for version in [*ran, current]))


def _refusal(var: Path, made_by: str) -> VarFromAnotherVersion:
    how = "`make clean-var`" if var == Path("var") else f"`rm -r {var}`"
    return VarFromAnotherVersion(f"{var}/ was made by {made_by}: its workflows would not replay on this code; "
                                 f"move it away or run {how} to start afresh")
