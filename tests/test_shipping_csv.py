from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator

from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns.errors import FieldError
from fulfillment.shipping_csv import (
    ADDRESS_FIELDS,
    COLUMNS,
    ShipmentRow,
    contents_cells,
    csv_chunks,
    escape_cell,
    format_items,
    package_row,
    parse_shipments_csv,
)

HEADER = "pledge_id,carrier,tracking_number"
Row = tuple[str, ...]


def package(n: int = 1, *, items: dict[str, int] | None = None, weight_grams: int = 270, **fields: str | None) -> Row:
    """One package's row as the batch's export writes it (fulfillment.shipments.shipping_list_csv): pledge `n`, an
    address in London unless `fields` say otherwise, one BOARD of 270 g."""
    address: dict[str, str | None] = {
        "name": "Ada Lovelace",
        "line1": "12 St James's Square",
        "line2": None,
        "city": "London",
        "region": None,
        "postal_code": "SW1Y 4JH",
        "country": "GB",
        "phone": None,
    }
    address.update(fields)
    cells = contents_cells({"BOARD": 1} if items is None else items, weight_grams)
    return package_row(str(uuid.UUID(int=n)), [address[name] for name in ADDRESS_FIELDS], cells)


def read_back(chunks: Iterator[str]) -> list[list[str]]:
    # What a carrier gets: the chunks sent as UTF-8 bytes, decoded and read by a CSV reader.
    body = b"".join(chunk.encode("utf-8") for chunk in chunks)
    return list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))


def pid(n: int) -> str:
    return str(uuid.UUID(int=n))


# The shipping list


def test_the_list_has_exactly_the_contract_columns_in_order() -> None:
    rows = read_back(csv_chunks([package(7, line2="Flat 2", region="Westminster", phone="020 7946 0000")]))

    assert COLUMNS == (
        "pledge_id",
        "name",
        "line1",
        "line2",
        "city",
        "region",
        "postal_code",
        "country",
        "phone",
        "items",
        "weight_grams",
    )
    assert rows == [
        list(COLUMNS),
        [
            pid(7),
            "Ada Lovelace",
            "12 St James's Square",
            "Flat 2",
            "London",
            "Westminster",
            "SW1Y 4JH",
            "GB",
            "020 7946 0000",
            "BOARD x1",
            "270",
        ],
    ]


def test_an_empty_batch_is_just_the_header_row() -> None:
    assert read_back(csv_chunks([])) == [list(COLUMNS)]


def test_chinese_names_and_addresses_survive_the_round_trip() -> None:
    chinese = package(
        3,
        name="张伟",
        line1="南山区西丽街道留仙大道1001号",
        line2="柴火创客空间 3 楼, “前台”代收",
        city="深圳市",
        region="广东省",
        postal_code="518055",
        country="CN",
        phone="138 0013 8000",
        items={"灯板-R": 2, "BOARD": 1},
    )
    japanese = package(4, name="山田 太郎", line1='東京都千代田区 "丸の内" 1-1\n2F', city="東京", country="JP")

    rows = read_back(csv_chunks([chinese, japanese]))

    assert rows[1] == [
        pid(3),
        "张伟",
        "南山区西丽街道留仙大道1001号",
        "柴火创客空间 3 楼, “前台”代收",
        "深圳市",
        "广东省",
        "518055",
        "CN",
        "138 0013 8000",
        "BOARD x1; 灯板-R x2",
        "270",
    ]
    assert rows[2][1:5] == ["山田 太郎", '東京都千代田区 "丸の内" 1-1\n2F', "", "東京"]


def test_cells_a_spreadsheet_would_run_as_formulas_are_escaped() -> None:
    hostile = package(
        5,
        name='=HYPERLINK("http://evil.example","click")',
        line1="+cmd|' /C calc'!A0",
        line2="-2+3+cmd|' /C calc'!A0",
        city="@SUM(1+1)*cmd|' /C calc'!A0",
        region="\t=1+1",
        postal_code="\r=1",
        phone="+86 138 0013 8000",
        items={"=SKU": 1},
    )

    [_, row] = read_back(csv_chunks([hostile]))

    assert row[1:10] == [
        '\'=HYPERLINK("http://evil.example","click")',
        "'+cmd|' /C calc'!A0",
        "'-2+3+cmd|' /C calc'!A0",
        "'@SUM(1+1)*cmd|' /C calc'!A0",
        "'\t=1+1",
        "'\r=1",
        "GB",
        "+86 138 0013 8000",
        "'=SKU x1",
    ]
    assert escape_cell("Ada = Countess") == "Ada = Countess"
    assert escape_cell("") == ""


@settings(deadline=None)
@given(st.text())
def test_no_escaped_cell_starts_like_a_formula(value: str) -> None:
    escaped = escape_cell(value)
    assert not escaped.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert escaped in (value, "'" + value)


def test_items_read_sku_times_quantity_with_skus_sorted() -> None:
    assert format_items({"SKU-B": 1, "SKU-A": 2}) == "SKU-A x2; SKU-B x1"
    assert format_items({"SKU-A": 2, "SKU-C": 0}) == "SKU-A x2"
    assert format_items({}) == ""


def test_the_list_is_streamed_in_chunks_without_reading_every_package_first() -> None:
    total = 20_000
    taken = 0

    def packages() -> Iterator[Row]:
        nonlocal taken
        for n in range(1, total + 1):
            taken += 1
            yield package(n, name=f"备用者 {n}")

    chunks = csv_chunks(packages(), chunk_chars=16 * 1024)
    first = next(chunks)
    assert taken < total / 10
    assert 16 * 1024 <= len(first) < 17 * 1024

    rest = list(chunks)
    assert taken == total
    assert len(rest) > 50
    assert all(len(chunk) < 17 * 1024 for chunk in rest)
    rows = read_back(iter([first, *rest]))
    assert len(rows) == total + 1
    assert [row[0] for row in rows[1:]] == [pid(n) for n in range(1, total + 1)]


def test_a_list_of_100000_packages_is_written_whole() -> None:
    packages = (package(n, items={"BOARD": 1, "CASE": 2}, region="广东省") for n in range(100_000))

    written = sum(chunk.count("\n") for chunk in csv_chunks(packages))

    assert written == 100_001


# The tracking upload


def test_a_good_tracking_upload_gives_one_row_per_line() -> None:
    text = (
        "\ufeff tracking_number , Carrier ,pledge_id\r\n"
        f"1Z999AA10123456784,UPS,{pid(1)}\r\n"
        "\r\n"
        f" SF1234567890 , 顺丰速运 , {pid(2).upper()} \r\n"
    )

    rows, errors = parse_shipments_csv(text)

    assert errors == []
    assert rows == [
        ShipmentRow(line=2, pledge_id=uuid.UUID(int=1), carrier="UPS", tracking_number="1Z999AA10123456784"),
        ShipmentRow(line=4, pledge_id=uuid.UUID(int=2), carrier="顺丰速运", tracking_number="SF1234567890"),
    ]


def test_each_bad_line_is_reported_by_its_number() -> None:
    text = "\n".join(
        [
            HEADER,
            f"{pid(1)},DHL,JD0001",
            f"{pid(2)},DHL,",
            f"{pid(1)},DHL,JD0001",
            "not-a-pledge,DHL,JD0003",
            f"{pid(4)},DHL",
            f"{pid(5)},,JD0005",
            f'{pid(6)},"DHL\nExpress",JD0006',
            f"{pid(7)},DHL,{'9' * 65}",
            ",DHL,JD0008",
            f"{pid(9)},DHL,JD0009,extra",
            f"{pid(10)},EMS,EE123",
        ]
    )

    rows, errors = parse_shipments_csv(text)

    assert [(row.line, row.pledge_id) for row in rows] == [(2, uuid.UUID(int=1)), (13, uuid.UUID(int=10))]
    assert errors == [
        FieldError("line 3", "tracking_number is empty"),
        FieldError("line 4", f"pledge {pid(1)} is already on line 2: one package per pledge"),
        FieldError("line 5", "pledge_id 'not-a-pledge' is not a pledge id"),
        FieldError("line 6", "expected 3 cells (pledge_id, carrier, tracking_number), found 2"),
        FieldError("line 7", "carrier is empty"),
        FieldError("line 8", "carrier contains a line break or another control character"),
        FieldError("line 10", "tracking_number is longer than 64 characters"),
        FieldError("line 11", "pledge_id is empty"),
        FieldError("line 12", "expected 3 cells (pledge_id, carrier, tracking_number), found 4"),
    ]


def test_a_header_without_the_contract_columns_is_refused() -> None:
    rows, errors = parse_shipments_csv(f"pledge,carrier\n{pid(1)},DHL\n")

    assert rows == []
    assert errors == [
        FieldError("line 1", "missing column pledge_id"),
        FieldError("line 1", "missing column tracking_number"),
        FieldError("line 1", "unknown column pledge"),
    ]
    assert parse_shipments_csv(f"{HEADER},carrier\n") == ([], [FieldError("line 1", "column carrier appears twice")])
    assert parse_shipments_csv(f"{HEADER},\n") == ([], [FieldError("line 1", "unknown column (empty)")])


def test_an_empty_upload_or_one_with_only_a_header_is_refused() -> None:
    missing_header = FieldError("line 1", "the header row is missing: pledge_id, carrier, tracking_number")
    assert parse_shipments_csv("") == ([], [missing_header])
    assert parse_shipments_csv("\n\n") == ([], [missing_header])
    no_rows = FieldError("line 2", "there are no shipments after the header row")
    assert parse_shipments_csv(HEADER + "\r\n") == ([], [no_rows])


def test_an_upload_that_is_not_csv_is_refused_with_its_line() -> None:
    rows, errors = parse_shipments_csv(f'{HEADER}\n{pid(1)},DHL,JD1\n"{"x" * 200_000}\n')

    assert [row.line for row in rows] == [2]
    assert len(errors) == 1
    assert errors[0].field == "line 3"
    assert "not readable as CSV" in errors[0].message
