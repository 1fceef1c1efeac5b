"""Versions of the org workflow's code, as the replay test records them (tests/replay/histories/
<version>/, docs/reliability.md, "Replay").

CURRENT is this code's version: a deployment that changes the workflow's commands (behind
`workflow.patched`) records its histories under a new version and raises it. OLDEST_REPLAYED is
the oldest version whose runs this code still replays; it rises when a patch is retired."""

CURRENT = "1.2"
OLDEST_REPLAYED = "1.0"


def parse(version: str) -> tuple[int, ...]:
    """"1.10" -> (1, 10), for comparing; ValueError when it is not numbers joined by dots."""
    parts = version.strip().split(".")
    if not all(part.isdigit() for part in parts):
        raise ValueError(f"not a version: {version!r}")
    return tuple(int(part) for part in parts)
