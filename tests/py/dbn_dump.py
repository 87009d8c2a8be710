#!/usr/bin/env python3
"""Dump a DBN file with Databento's official decoder, one JSON object per line.

Used by tests/dbn_crosscheck.rs to check Spymaster's DBN mapping against `databento_dbn`.
The first line is the metadata ({"dataset", "schema", "version"}); then one line per record
with raw fields (fixed-point integer prices, no pretty_* values):
rtype, instrument_id, ts_event, ts_recv, price, size, side, action, flags, sequence and the
book levels (bid_px, ask_px, bid_sz, ask_sz, bid_ct/ask_ct where present).

Usage: python3 tests/py/dbn_dump.py FILE   (plain or zstd DBN, v1-v3; upgraded to v3)
Exit code 3 when the `databento_dbn` module is missing.
"""

import json
import sys

try:
    import databento_dbn as dbn
except ImportError:
    print("databento_dbn module not installed", file=sys.stderr)
    sys.exit(3)

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def enum_value(v):
    """A DBN enum (Side, Action) or plain char as its one-character code."""
    if v is None:
        return None
    value = getattr(v, "value", v)
    return value if isinstance(value, str) else chr(value)


def level(lv):
    out = {
        "bid_px": lv.bid_px,
        "ask_px": lv.ask_px,
        "bid_sz": lv.bid_sz,
        "ask_sz": lv.ask_sz,
    }
    for key in ("bid_ct", "ask_ct"):
        if hasattr(lv, key):
            out[key] = getattr(lv, key)
    return out


def record(rec):
    out = {
        "type": type(rec).__name__,
        "rtype": int(rec.rtype),
        "instrument_id": rec.instrument_id,
        "ts_event": rec.ts_event,
    }
    for key in ("ts_recv", "price", "size", "flags", "sequence"):
        if hasattr(rec, key):
            out[key] = getattr(rec, key)
    for key in ("side", "action"):
        if hasattr(rec, key):
            out[key] = enum_value(getattr(rec, key))
    if hasattr(rec, "levels"):
        out["levels"] = [level(lv) for lv in rec.levels]
    return out


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1], "rb") as f:
        data = f.read()
    kwargs = {}
    if data.startswith(ZSTD_MAGIC):
        kwargs["compression"] = dbn.Compression.ZSTD
    decoder = dbn.DBNDecoder(**kwargs)
    decoder.write(data)
    records = decoder.decode()
    out = sys.stdout
    for rec in records:
        if isinstance(rec, dbn.Metadata):
            meta = {
                "metadata": True,
                "dataset": rec.dataset,
                "schema": str(rec.schema) if rec.schema is not None else None,
                "version": rec.version,
            }
            out.write(json.dumps(meta) + "\n")
        else:
            out.write(json.dumps(record(rec)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
