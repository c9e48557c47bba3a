"""Benchmark 5, the design log: inclusion proofs of any record in a log of 100,000 records.

    python -m bench.design_log --records 100000 --proofs 2000

The records are appended in bulk (their leaves and every complete subtree computed here, written with a few
multi-row INSERTs, exactly the rows `campaigns.transparency.log.append_record` would write one by one), then a
few more through `append_record` itself. Then, for random indices, the proof the API serves is timed: its inclusion
proof against the current size (`log.inclusion_proof`, O(log n) stored nodes in one query) and the whole published
document (`log.published_record`: the record, the root, the proof and a signed head). Every proof is checked.

The references, in the same run: hashing a record's leaf (the work a proof cannot avoid), and the database's
round trip for one primary-key read (`SELECT … WHERE id = :id` on design_records). The goal: a proof under 10 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text

from bench.common import BenchServices, Latencies, Report, embedded_services, insert_live_campaign, ratio, say, verdict
from campaigns.transparency import log, merkle
from service.database import create_engine, create_sessionmaker

GOAL_SECONDS = 0.010
CHUNK = 20_000


@dataclass(frozen=True)
class Options:
    records: int = 100_000
    proofs: int = 2_000


@dataclass(frozen=True)
class DesignLogResult:
    records: int
    bulk_seconds: float
    appends: Latencies
    inclusion: Latencies
    inclusion_mean: float
    published: Latencies
    published_mean: float
    leaf_hash: Latencies
    leaf_hash_mean: float
    row_read: Latencies
    row_read_mean: float
    failed_proofs: int


def measure(options: Options) -> DesignLogResult:
    with embedded_services("design_log") as services:
        return asyncio.run(_measure(services, options))


def _subtree_rows(leaves: list[bytes]) -> list[tuple[int, int, bytes]]:
    """Every complete subtree of the log, (level, position, hash), level 0 being the leaves."""
    rows = [(0, position, leaf) for position, leaf in enumerate(leaves)]
    level, nodes = 0, leaves
    while len(nodes) > 1:
        nodes = [merkle.node_hash(nodes[i], nodes[i + 1]) for i in range(0, len(nodes) - 1, 2)]
        level += 1
        rows += [(level, position, node) for position, node in enumerate(nodes)]
    return rows


async def _measure(services: BenchServices, options: Options) -> DesignLogResult:
    engine = create_engine(services.settings.database_url, pool_size=2, max_overflow=0)
    sessions = create_sessionmaker(engine)
    key = Ed25519PrivateKey.generate()
    try:
        async with engine.begin() as connection:
            campaign = await insert_live_campaign(connection, slots=1, label="design")
        say(f"appending {options.records:,} records in bulk")
        started = time.perf_counter()
        recorded_at = datetime.now(UTC).replace(microsecond=0)
        records, leaves = [], []
        for index in range(options.records):
            fields: dict[str, object] = {
                "index": index,
                "sha256": hashlib.sha256(f"file {index}".encode()).hexdigest(),
                "file_name": f"bom-{index}.csv",
                "size": 1000 + index,
                "kind": "bom",
                "maker_id": str(campaign.maker_id),
                "campaign_id": str(campaign.id),
                "recorded_at": log.timestamp(recorded_at),
            }
            leaves.append(merkle.leaf_hash(log.leaf_data(fields)))
            records.append(fields)
        nodes = _subtree_rows(leaves)
        async with engine.begin() as connection:
            for start in range(0, len(records), CHUNK):
                chunk = records[start : start + CHUNK]
                await connection.execute(
                    text(
                        "INSERT INTO design_records"
                        " (id, sha256, file_name, size_bytes, kind, maker_id, campaign_id, recorded_at, leaf_hash)"
                        " SELECT i, s, f, z, 'bom', :maker, :campaign, :at, h FROM unnest("
                        "CAST(:i AS bigint[]), CAST(:s AS text[]), CAST(:f AS text[]), CAST(:z AS bigint[]),"
                        " CAST(:h AS bytea[])) AS t(i, s, f, z, h)"
                    ),
                    {
                        "maker": campaign.maker_id,
                        "campaign": campaign.id,
                        "at": recorded_at,
                        "i": [r["index"] for r in chunk],
                        "s": [r["sha256"] for r in chunk],
                        "f": [r["file_name"] for r in chunk],
                        "z": [r["size"] for r in chunk],
                        "h": leaves[start : start + CHUNK],
                    },
                )
            for start in range(0, len(nodes), CHUNK):
                chunk_nodes = nodes[start : start + CHUNK]
                await connection.execute(
                    text(
                        "INSERT INTO design_log_nodes (level, position, hash) SELECT * FROM unnest("
                        "CAST(:l AS smallint[]), CAST(:p AS bigint[]), CAST(:h AS bytea[]))"
                    ),
                    {
                        "l": [n[0] for n in chunk_nodes],
                        "p": [n[1] for n in chunk_nodes],
                        "h": [n[2] for n in chunk_nodes],
                    },
                )
            await connection.execute(
                text("INSERT INTO design_log (id, size) VALUES (1, :size)"), {"size": options.records}
            )
            await connection.execute(text("ANALYZE design_log_nodes"))
        bulk_seconds = time.perf_counter() - started

        appends = []
        for i in range(20):
            began = time.perf_counter()
            async with sessions.begin() as session:
                await log.append_record(
                    session,
                    sha256=hashlib.sha256(f"late {i}".encode()).hexdigest(),
                    file_name=f"late-{i}.step",
                    size_bytes=i,
                    kind="cad",
                    maker_id=campaign.maker_id,
                    campaign_id=campaign.id,
                )
            appends.append(time.perf_counter() - began)
        size = options.records + 20

        say(f"timing {options.proofs:,} inclusion proofs in a log of {size:,} records")
        rng = random.Random(2026)
        indices = [rng.randrange(options.records) for _ in range(options.proofs)]
        inclusion, published, leaf_times, row_reads, failed = [], [], [], [], 0
        async with sessions() as session:
            root = await log.root_at(session, size)
            for index in indices:
                began = time.perf_counter()
                proof = await log.inclusion_proof(session, index, size)
                inclusion.append(time.perf_counter() - began)
                if not merkle.verify_inclusion(index, size, leaves[index], proof, root):
                    failed += 1

                began = time.perf_counter()
                document = await log.published_record(session, index, key, now=datetime.now(UTC))
                published.append(time.perf_counter() - began)
                if document["leaf_hash"] != leaves[index].hex():
                    failed += 1

                began = time.perf_counter()
                merkle.leaf_hash(log.leaf_data(records[index]))
                leaf_times.append(time.perf_counter() - began)

                began = time.perf_counter()
                await session.execute(text("SELECT leaf_hash FROM design_records WHERE id = :id"), {"id": index})
                row_reads.append(time.perf_counter() - began)
                session.expunge_all()
    finally:
        await engine.dispose()

    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    return DesignLogResult(
        records=size,
        bulk_seconds=bulk_seconds,
        appends=Latencies.of(appends),
        inclusion=Latencies.of(inclusion),
        inclusion_mean=mean(inclusion),
        published=Latencies.of(published),
        published_mean=mean(published),
        leaf_hash=Latencies.of(leaf_times),
        leaf_hash_mean=mean(leaf_times),
        row_read=Latencies.of(row_reads),
        row_read_mean=mean(row_reads),
        failed_proofs=failed,
    )


def report(result: DesignLogResult) -> Report:
    printed = Report(f"Design log: inclusion proofs in a log of {result.records:,} records")
    rows = printed.section("Building the log")
    rows.append(("bulk append", f"{result.bulk_seconds:.1f} s"))
    rows.append(("append_record, one by one", str(result.appends)))
    rows = printed.section("Inclusion proofs (random records)")
    rows.append(("proof (log.inclusion_proof)", f"mean {result.inclusion_mean * 1000:.2f} ms  {result.inclusion}"))
    rows.append(("published record + signed head", f"mean {result.published_mean * 1000:.2f} ms  {result.published}"))
    rows.append(("proofs that failed to verify (must be 0)", str(result.failed_proofs)))
    rows = printed.section("References, same run")
    rows.append(("hashing the leaf", f"mean {result.leaf_hash_mean * 1000:.3f} ms  {result.leaf_hash}"))
    rows.append(("one primary-key read", f"mean {result.row_read_mean * 1000:.2f} ms  {result.row_read}"))
    rows.append(("proof vs one read", ratio(result.inclusion_mean, result.row_read_mean)))
    rows = printed.section("Goal")
    met = result.inclusion.p99 < GOAL_SECONDS and result.published.p99 < GOAL_SECONDS and not result.failed_proofs
    rows.append(("p99 of a proof and of a published record under 10 ms", verdict(met)))
    return printed


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.design_log", description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000, help="records in the log (default 100000)")
    parser.add_argument("--proofs", type=int, default=2_000, help="random records to prove (default 2000)")
    return Options(**vars(parser.parse_args(argv)))


def main(argv: Sequence[str] | None = None) -> int:
    result = measure(parse_options(argv))
    print(report(result).render())
    return 1 if result.failed_proofs else 0


if __name__ == "__main__":
    sys.exit(main())
