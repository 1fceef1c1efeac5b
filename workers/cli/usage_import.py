"""A usage file (CSV: email,storage_gb) read whole and checked before anything is sent: a bad
row refuses the file, naming its line. The rows then go to the org in Updates of up to 10,000
rows (one for most orgs), each applied all or nothing; before a file takes more than one, every
user it names is checked in the database."""

import csv
import io
import json
from dataclasses import dataclass

from domain.errors import InvalidInput
from domain.limits import ROWS_PER_UPDATE, Limits, check_usage_rows, shown, utf8_text

# Temporal refuses a payload over 2 MiB (2,097,152 bytes): a batch stays under it, with room for the
# Update's envelope.
BATCH_BYTES = 1_900_000


HEADERS = ("email", "user")  # a first line naming the columns: email,storage_gb or user,storage_gb
SIZE_COLUMN = "storage_gb"


class UsageImportError(ValueError):
    pass


@dataclass(frozen=True)
class UsageFile:
    rows: list[tuple[str, float]]
    lines: list[int]            # the file's line of each row, for messages

    def batches(self, limit: int = BATCH_BYTES, rows: int = ROWS_PER_UPDATE) -> list[tuple[int, list[tuple[str, float]]]]:
        """(index of the first row, rows) pairs, each small enough for one Update."""
        batches, first, size = [], 0, 0
        for index, row in enumerate(self.rows):
            row_size = len(json.dumps(row)) + 2
            if index > first and (size + row_size > limit or index - first >= rows):
                batches.append((first, self.rows[first:index]))
                first, size = index, 0
            size += row_size
        batches.append((first, self.rows[first:]))
        return batches


def decode(data: bytes) -> str:
    """UTF-8 text (domain.limits.utf8_text); anything else is refused naming the line."""
    try:
        return utf8_text(data)
    except InvalidInput as err:
        raise UsageImportError(f"{err.message}; save the file as UTF-8; nothing was imported") from None


def parse_usage_csv(text: str, limits: Limits = Limits()) -> UsageFile:
    raw: list[tuple[str, str]] = []
    lines: list[int] = []
    reader = csv.reader(io.StringIO(text))
    try:
        for row in reader:
            line = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            if not raw and row[0].strip().lower() in HEADERS:
                # A header naming another size column (storage_mb, gb...) says its numbers are not
                # what they would be taken for: mailbox sizes in GB.
                if [cell.strip().lower() for cell in row[1:]] != [SIZE_COLUMN]:
                    raise UsageImportError(f"line {line}: the header names the columns {shown(','.join(row), 60)}; "
                                           f"expected email,{SIZE_COLUMN} (mailbox sizes in GB); nothing was imported")
                continue
            if len(row) != 2:
                raise UsageImportError(f"line {line}: expected 2 columns (email,storage_gb), got {len(row)}; "
                                       "nothing was imported")
            raw.append((row[0], row[1]))
            lines.append(line)
    except csv.Error as err:
        raise UsageImportError(f"line {reader.line_num}: {err}; nothing was imported") from None
    if not raw:
        raise UsageImportError("the file has no usage rows (expected lines of email,storage_gb); nothing was imported")
    rows = []
    for (email, gb), line in zip(raw, lines):
        try:
            rows.append((email, float(gb)))
        except ValueError:
            raise UsageImportError(f"line {line}: storage_gb {gb.strip()[:40]!r} is not a number; "
                                   "nothing was imported") from None
    try:
        checked = check_usage_rows(rows, limits, where=lambda index: f"line {lines[index]}", whole_file=True)
    except InvalidInput as err:
        raise UsageImportError(f"{err.message}; nothing was imported") from None
    return UsageFile(checked, lines)
