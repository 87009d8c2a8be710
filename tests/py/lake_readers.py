"""Reads a Spymaster lake with three readers we did not write (DuckDB, pyarrow, polars) and
compares what they see with what was archived.

usage: lake_readers.py ROOT EXPECTED.json

EXPECTED maps a table path (e.g. "bronze/futures/mbp10") to {"ts": [ns, ...]} (every row's event
time, in nanoseconds) and, for "gold/levels/signals", {"levels": [[snap_ts_ns, level_id,
level_price, signal, break_score_smooth, barrier_state, tape_imbalance], ...]}. Prints one line
per reader and table; exits 1 on the first difference.
"""

import json
import sys

import duckdb
import polars as pl
import pyarrow.dataset as ds

GOLD_COLUMNS = [
    "snap_ts",
    "level_id",
    "level_price",
    "signal",
    "break_score_smooth",
    "barrier_state",
    "tape_imbalance",
]


def fail(msg):
    print(f"MISMATCH: {msg}")
    sys.exit(1)


def check(reader, table, got, want):
    if len(got) != len(want):
        fail(f"{reader} {table}: {len(got)} rows, expected {len(want)}")
    if sorted(got) != sorted(want):
        for g, w in zip(sorted(got), sorted(want)):
            if g != w:
                fail(f"{reader} {table}: first difference {g!r} != {w!r}")
    print(f"{reader:8} {table:24} {len(got):>9} rows, equal")


def duckdb_rows(root, table, gold):
    glob = f"{root}/{table}/**/*.parquet"
    con = duckdb.connect()
    if gold:
        cols = ", ".join(["epoch_ns(snap_ts)"] + GOLD_COLUMNS[1:])
        q = f"select {cols} from read_parquet('{glob}', hive_partitioning=true) where level_id is not null"
        rows = [list(r) for r in con.sql(q).fetchall()]
    else:
        q = f"select epoch_ns(ts_event_ns), typeof(ts_event_ns) from read_parquet('{glob}', hive_partitioning=true)"
        res = con.sql(q).fetchall()
        if res and res[0][1] != "TIMESTAMP WITH TIME ZONE" and not res[0][1].startswith("TIMESTAMPTZ"):
            fail(f"duckdb {table}: ts_event_ns is {res[0][1]}, not a UTC timestamp")
        rows = [r[0] for r in res]
    return rows


def arrow_rows(root, table, gold):
    t = ds.dataset(f"{root}/{table}", format="parquet", partitioning="hive").to_table()
    if gold:
        t = t.filter(t["level_id"].is_valid())
        cols = [t["snap_ts"].cast("int64").to_pylist()] + [t[c].to_pylist() for c in GOLD_COLUMNS[1:]]
        return [list(r) for r in zip(*cols)]
    ts = t["ts_event_ns"]
    if str(ts.type) != "timestamp[ns, tz=UTC]":
        fail(f"pyarrow {table}: ts_event_ns is {ts.type}")
    return ts.cast("int64").to_pylist()


def polars_rows(root, table, gold):
    df = pl.scan_parquet(f"{root}/{table}/**/*.parquet", hive_partitioning=True).collect()
    if gold:
        df = df.filter(pl.col("level_id").is_not_null())
        df = df.with_columns(pl.col("snap_ts").cast(pl.Int64))
        return [list(r) for r in df.select(GOLD_COLUMNS).iter_rows()]
    if str(df.schema["ts_event_ns"]) != "Datetime(time_unit='ns', time_zone='UTC')":
        fail(f"polars {table}: ts_event_ns is {df.schema['ts_event_ns']}")
    return df["ts_event_ns"].cast(pl.Int64).to_list()


def main():
    root, expected_path = sys.argv[1], sys.argv[2]
    with open(expected_path) as f:
        expected = json.load(f)
    for table, want in sorted(expected.items()):
        gold = table.startswith("gold/")
        want_rows = want["levels"] if gold else want["ts"]
        for name, read in [("duckdb", duckdb_rows), ("pyarrow", arrow_rows), ("polars", polars_rows)]:
            check(name, table, read(root, table, gold), want_rows)


if __name__ == "__main__":
    main()
