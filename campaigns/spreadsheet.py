"""CSV that a maker opens in a spreadsheet: cells that are never run as formulas, written in chunks as rows come."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterable, AsyncIterator, Sequence

CHUNK_CHARS = 64 * 1024

# A spreadsheet runs a cell starting with any of these as a formula (OWASP "CSV injection"), tab and CR included.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# The same, as a set of first characters (each start is one character): a cell whose first character is not in it is
# its own escape, so a long export may skip `escape_cell` for it.
FORMULA_FIRST_CHARS = frozenset(_FORMULA_STARTS)


def escape_cell(value: str) -> str:
    """The cell as text a spreadsheet shows and never evaluates: a leading = + - @ (or tab, CR) gets a ' before it."""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


async def csv_parts(
    columns: Sequence[str], rows: AsyncIterable[Sequence[str]], *, chunk_chars: int = CHUNK_CHARS
) -> AsyncIterator[str]:
    """The header row then `rows` as CSV text, in parts of about `chunk_chars` (cells are written as given: escape
    free text with `escape_cell` first)."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(columns)
    async for row in rows:
        writer.writerow(row)
        if buffer.tell() >= chunk_chars:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()
