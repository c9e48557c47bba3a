"""The shipping list a carrier or fulfilment house imports, and the tracking numbers the maker uploads: CSV both ways.

Plain code, no database. The list is streamed: rows are written in chunks as the packages come, so a list of 100,000
packages never sits in memory whole.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from campaigns.errors import FieldError
from campaigns.phones import is_phone_number
from campaigns.spreadsheet import FORMULA_FIRST_CHARS, escape_cell

# The address fields of a package, in the list's order: each a key of a pledge's address.
ADDRESS_FIELDS = ("name", "line1", "line2", "city", "region", "postal_code", "country", "phone")
COLUMNS = ("pledge_id", *ADDRESS_FIELDS, "items", "weight_grams")
SHIPMENT_COLUMNS = ("pledge_id", "carrier", "tracking_number")
MAX_CARRIER_CHARS = 64
MAX_TRACKING_NUMBER_CHARS = 64
CHUNK_CHARS = 64 * 1024


@dataclass(frozen=True, slots=True)
class ShipmentRow:
    line: int
    pledge_id: uuid.UUID
    carrier: str
    tracking_number: str


def phone_cell(value: str) -> str:
    """A phone number goes out as typed (`+81 3 1234 5678`), for the carrier's import to keep: made only of digits,
    spaces and `+ - ( )` (`campaigns.phones`), it can hold no formula. Anything else kept in the field (typed before
    that rule) is escaped like every other free-text cell."""
    return value if is_phone_number(value) else escape_cell(value)


# How each address field becomes a cell: the phone number as typed when it is one, every free-text field escaped.
_ADDRESS_CELLS = tuple(phone_cell if name == "phone" else escape_cell for name in ADDRESS_FIELDS)


def format_items(items: Mapping[str, int]) -> str:
    """`{"SKU-B": 1, "SKU-A": 2}` → `"SKU-A x2; SKU-B x1"`: SKUs sorted, items without units left out."""
    return "; ".join(f"{sku} x{quantity}" for sku, quantity in sorted(items.items()) if quantity)


def contents_cells(items: Mapping[str, int], weight_grams: int) -> tuple[str, str]:
    """The last two cells of a package's row: what is in it and what it weighs (the same for every package of a
    tier, so a long list makes them once a tier)."""
    return escape_cell(format_items(items)), str(weight_grams)


def package_row(pledge_id: str, address: Sequence[str | None], contents: tuple[str, str]) -> tuple[str, ...]:
    """One package's row: its pledge, its address (ADDRESS_FIELDS in order, each made safe to open) and the cells
    `contents_cells` made.

    Each field's cell function (`escape_cell`, `phone_cell`) gives back a value whose first character cannot start a
    formula as it is, so only the fields that start with one are given to it: one comparison a field for most rows of
    a list of 100,000 packages, not a call."""
    cells = [
        cell(value) if value and value[0] in FORMULA_FIRST_CHARS else value or ""
        for cell, value in zip(_ADDRESS_CELLS, address, strict=True)
    ]
    return (pledge_id, *cells, *contents)


def csv_chunks(rows: Iterable[Sequence[str]], *, chunk_chars: int = CHUNK_CHARS, header: bool = True) -> Iterator[str]:
    """Rows of the shipping list (`package_row`) as CSV text in chunks of about `chunk_chars`, after the header row
    unless `header` is False."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    if header:
        writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(row)
        if buffer.tell() >= chunk_chars:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()


def parse_shipments_csv(text: str) -> tuple[list[ShipmentRow], list[FieldError]]:
    """The maker's tracking upload, `pledge_id, carrier, tracking_number` with a header row, checked line by line.

    Returns the good rows and one error per bad line, each error's field naming the line (`"line 3"`, the header being
    line 1), so that the maker can fix them all at once. The caller applies nothing unless the errors are empty.
    Columns may come in any order; blank lines are skipped; cells are trimmed. Whether each pledge exists and belongs
    to the campaign is the caller's question, not this parser's.
    """
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    rows: list[ShipmentRow] = []
    errors: list[FieldError] = []
    first_line_of: dict[uuid.UUID, int] = {}
    positions: dict[str, int] | None = None
    line = 1
    try:
        for record in reader:
            cells = [cell.strip() for cell in record]
            if not any(cells):
                line = reader.line_num + 1
                continue
            if positions is None:
                positions, header_errors = _header_positions(cells)
                errors.extend(FieldError(f"line {line}", message) for message in header_errors)
                if header_errors:
                    return [], errors
            else:
                row = _shipment_row(line, cells, positions, first_line_of)
                if isinstance(row, str):
                    errors.append(FieldError(f"line {line}", row))
                else:
                    rows.append(row)
                    first_line_of[row.pledge_id] = line
            line = reader.line_num + 1
    except csv.Error as error:
        errors.append(FieldError(f"line {reader.line_num or 1}", f"not readable as CSV: {error}"))
        return rows, errors
    if positions is None:
        errors.append(FieldError("line 1", "the header row is missing: pledge_id, carrier, tracking_number"))
    elif not rows and not errors:
        errors.append(FieldError(f"line {line}", "there are no shipments after the header row"))
    return rows, errors


def _header_positions(cells: list[str]) -> tuple[dict[str, int], list[str]]:
    names = [cell.lower() for cell in cells]
    messages = [f"missing column {column}" for column in SHIPMENT_COLUMNS if column not in names]
    messages += [f"unknown column {name or '(empty)'}" for name in names if name not in SHIPMENT_COLUMNS]
    messages += [f"column {column} appears twice" for column in SHIPMENT_COLUMNS if names.count(column) > 1]
    return {name: names.index(name) for name in SHIPMENT_COLUMNS if name in names}, messages


def _shipment_row(
    line: int, cells: list[str], positions: Mapping[str, int], first_line_of: Mapping[uuid.UUID, int]
) -> ShipmentRow | str:
    """The row on `line`, or what is wrong with it."""
    if len(cells) != len(positions):
        return f"expected {len(positions)} cells ({', '.join(positions)}), found {len(cells)}"
    raw_id, carrier, tracking_number = (cells[positions[column]] for column in SHIPMENT_COLUMNS)
    try:
        pledge_id = uuid.UUID(raw_id)
    except ValueError:
        return f"pledge_id {raw_id!r} is not a pledge id" if raw_id else "pledge_id is empty"
    if pledge_id in first_line_of:
        return f"pledge {pledge_id} is already on line {first_line_of[pledge_id]}: one package per pledge"
    problems = tracking_problems(carrier, tracking_number)
    if problems:
        return problems[0][1]
    return ShipmentRow(line, pledge_id, carrier, tracking_number)


def tracking_problems(carrier: str, tracking_number: str) -> list[tuple[str, str]]:
    """(column, what is wrong) for a package's carrier and tracking number, as a line of the upload or a form has them:
    neither empty, nor too long, nor holding a line break."""
    problems = []
    for column, value, longest in (
        ("carrier", carrier, MAX_CARRIER_CHARS),
        ("tracking_number", tracking_number, MAX_TRACKING_NUMBER_CHARS),
    ):
        if not value:
            problems.append((column, f"{column} is empty"))
        elif len(value) > longest:
            problems.append((column, f"{column} is longer than {longest} characters"))
        elif not value.isprintable():
            problems.append((column, f"{column} contains a line break or another control character"))
    return problems
