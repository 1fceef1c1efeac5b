"""Files given to a command (a scenario, a usage CSV) are read up to a bound, never whole
whatever their size: a wrong path (a disk image, /dev/zero) is refused in one line instead of
filling the memory."""

from pathlib import Path

# The default of BILLING_MAX_INPUT_FILE_MB: a usage CSV for 200,000 users (the most an org may
# have) is about 10 MB.
MAX_INPUT_FILE_MB = 32


class FileTooLarge(ValueError):
    pass


def read_bounded(path: Path, limit_mb: int = MAX_INPUT_FILE_MB) -> bytes:
    """The file's bytes; FileTooLarge past `limit_mb` (read no further); OSError as open() gives it."""
    limit = limit_mb * 1024 * 1024
    with open(path, "rb") as file:
        data = file.read(limit + 1)
    if len(data) > limit:
        raise FileTooLarge(f"{path} is larger than {limit_mb:,} MB, the most a file given to billing may be "
                           "(BILLING_MAX_INPUT_FILE_MB); nothing was read")
    return data
