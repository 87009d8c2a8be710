"""Reads a Spymaster lake on S3 with two readers we did not write (pyarrow's S3FileSystem and
polars' object store) and compares what they see with what was archived.

usage:
  lake_s3_readers.py check BUCKET/PREFIX EXPECTED.json
      EXPECTED as for lake_readers.py: per table every row's event time, and the gold rows.
      Prints one line per reader and table; exits 1 on the first difference.
  lake_s3_readers.py seq BUCKET/PREFIX [LAYER]
      Prints `count distinct min max` of lake_seq over every object of LAYER (bronze), each read whole.

The server comes from S3_ENDPOINT (http://host:port), S3_ACCESS_KEY, S3_SECRET_KEY and
S3_REGION. DuckDB is not used here: its Python wheel has no httpfs offline.
"""

import json
import os
import sys

import polars as pl
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lake_readers import GOLD_COLUMNS, check, fail  # noqa: E402

ENDPOINT = os.environ["S3_ENDPOINT"]
ACCESS_KEY = os.environ["S3_ACCESS_KEY"]
SECRET_KEY = os.environ["S3_SECRET_KEY"]
REGION = os.environ.get("S3_REGION", "us-east-1")


def arrow_fs():
    scheme, _, host = ENDPOINT.partition("://")
    return pafs.S3FileSystem(
        endpoint_override=host,
        scheme=scheme,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        region=REGION,
    )


def arrow_rows(location, table, gold):
    t = ds.dataset(f"{location}/{table}", filesystem=arrow_fs(), format="parquet", partitioning="hive").to_table()
    if gold:
        t = t.filter(t["level_id"].is_valid())
        cols = [t["snap_ts"].cast("int64").to_pylist()] + [t[c].to_pylist() for c in GOLD_COLUMNS[1:]]
        return [list(r) for r in zip(*cols)]
    ts = t["ts_event_ns"]
    if str(ts.type) != "timestamp[ns, tz=UTC]":
        fail(f"pyarrow-s3 {table}: ts_event_ns is {ts.type}")
    return ts.cast("int64").to_pylist()


def polars_rows(location, table, gold):
    options = {
        "aws_endpoint_url": ENDPOINT,
        "aws_access_key_id": ACCESS_KEY,
        "aws_secret_access_key": SECRET_KEY,
        "aws_region": REGION,
        "aws_allow_http": "true",
    }
    df = pl.scan_parquet(
        f"s3://{location}/{table}/**/*.parquet", hive_partitioning=True, storage_options=options
    ).collect()
    if gold:
        df = df.filter(pl.col("level_id").is_not_null())
        df = df.with_columns(pl.col("snap_ts").cast(pl.Int64))
        return [list(r) for r in df.select(GOLD_COLUMNS).iter_rows()]
    if str(df.schema["ts_event_ns"]) != "Datetime(time_unit='ns', time_zone='UTC')":
        fail(f"polars-s3 {table}: ts_event_ns is {df.schema['ts_event_ns']}")
    return df["ts_event_ns"].cast(pl.Int64).to_list()


def check_all(location, expected_path):
    with open(expected_path) as f:
        expected = json.load(f)
    for table, want in sorted(expected.items()):
        gold = table.startswith("gold/")
        want_rows = want["levels"] if gold else want["ts"]
        for name, read in [("pyarrow-s3", arrow_rows), ("polars-s3", polars_rows)]:
            check(name, table, read(location, table, gold), want_rows)


def seq_stats(location, layer="bronze"):
    s3 = arrow_fs()
    files = [
        f.path
        for f in s3.get_file_info(pafs.FileSelector(f"{location}/{layer}", recursive=True))
        if f.type == pafs.FileType.File and f.path.endswith(".parquet")
    ]
    seqs = []
    for path in files:
        seqs.extend(pq.read_table(path, filesystem=s3, columns=["lake_seq"])["lake_seq"].to_pylist())
    if not seqs:
        fail(f"no {layer} rows under {location}")
    print(len(seqs), len(set(seqs)), min(seqs), max(seqs))


def main():
    mode = sys.argv[1]
    if mode == "check":
        check_all(sys.argv[2], sys.argv[3])
    elif mode == "seq":
        seq_stats(*sys.argv[2:4])
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
