"""Bulk usage import from CSV: all or nothing. A malformed row refuses the whole file."""

import csv
import io
from dataclasses import dataclass

from domain.errors import InvalidInput
from domain.limits import Limits, check_gb
from domain.rules import check_email


class UsageImportError(ValueError):
    pass


@dataclass(frozen=True)
class UsageRow:
    email: str
    storage_gb: float


def parse_usage_csv(text: str) -> list[UsageRow]:
    reader = csv.reader(io.StringIO(text))
    rows: list[UsageRow] = []
    for line_number, row in enumerate(reader, start=1):
        if not row or all(not cell.strip() for cell in row):
            continue
        if line_number == 1 and row[0].strip().lower() == "email":
            continue  # header
        if len(row) != 2:
            raise UsageImportError(f"line {line_number}: expected 2 columns (email,storage_gb), got {len(row)}; "
                                   "nothing was imported")
        try:
            email = check_email(row[0], "email")
            storage = check_gb(float(row[1]), "storage_gb", Limits())
        except ValueError:
            raise UsageImportError(f"line {line_number}: storage_gb {row[1]!r} is not a number; nothing was imported") from None
        except InvalidInput as err:
            raise UsageImportError(f"line {line_number}: {err.message}; nothing was imported") from None
        rows.append(UsageRow(email, storage))
    return rows
