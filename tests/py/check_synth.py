#!/usr/bin/env python3
"""Check spm-synth output with Databento's official Python decoder (`databento_dbn`).

Usage: check_synth.py DIR [--symbol ESZ5] [--stats] [--physics SCENARIO.toml]

Checks (exit 1 with one line per failure):
- metadata: dataset, schema, symbols and mappings, time range holding every record;
- records in time order (ts_event and ts_recv non-decreasing, ts_recv >= ts_event) and
  increasing sequence numbers;
- no MBP-10 image is crossed, no priced row has a size <= 0, rows are ordered, empty rows are
  empty;
- every trade is at a price the book allowed: for an MBP-10 `T` record, at or between the best
  bid/ask of the previous image or at a price resting on the passive side; every record of the
  trades file matches an MBP-10 `T` record;
- options: definitions before any trade of the instrument, the trade inside its quote and
  within its no-arbitrage bounds with S = ES mid / 10 at that time;
- SPY trades within 10 cents of ES / 10.

`--physics` additionally replays the files through a small reference reading of PHYSICS.md
(barrier, tape, fuel, score, trigger) around each `[[expect]]` of the scenario and checks that
the expected BREAK / REJECT is called in its window. Prints a JSON summary on stdout.
"""

import argparse
import bisect
import json
import math
import os
import sys

import databento_dbn as dbn

UNDEF = dbn.UNDEF_PRICE
PX = 1e-9
failures = []


def fail(msg):
    if len(failures) < 50:
        failures.append(msg)


def load(path):
    comp = dbn.Compression.ZSTD if path.endswith(".zst") else dbn.Compression.NONE
    dec = dbn.DBNDecoder(compression=comp)
    out = []
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 22)
            if not chunk:
                break
            dec.write(chunk)
            out.extend(dec.decode())
    out.extend(dec.decode())
    if not out or not isinstance(out[0], dbn.Metadata):
        raise SystemExit(f"{path}: no metadata")
    return out[0], out[1:]


def find(d, stem):
    for ext in (".dbn.zst", ".dbn"):
        p = os.path.join(d, stem + ext)
        if os.path.exists(p):
            return p
    return None


def check_meta(name, meta, recs, dataset, schema, symbols=None):
    if meta.dataset != dataset:
        fail(f"{name}: dataset {meta.dataset} != {dataset}")
    if (meta.schema if meta.schema is None else str(meta.schema)) != schema:
        fail(f"{name}: schema {meta.schema} != {schema}")
    if symbols is not None and list(meta.symbols) != symbols:
        fail(f"{name}: symbols {list(meta.symbols)[:5]} != {symbols}")
    mapped = {raw: [i["symbol"] for i in ivs] for raw, ivs in meta.mappings.items()}
    for s in meta.symbols:
        if s not in mapped or not mapped[s]:
            fail(f"{name}: symbol {s} has no mapping")
    ids = {int(v[0]) for v in mapped.values() if v}
    end = meta.end
    prev_ev = prev_recv = 0
    for r in recs:
        if r.instrument_id not in ids:
            fail(f"{name}: instrument {r.instrument_id} not in the symbology mappings")
            break
        if not (meta.start <= r.ts_event and (end is None or r.ts_event <= end)):
            fail(f"{name}: ts_event {r.ts_event} outside [{meta.start}, {end}]")
            break
        if r.ts_event < prev_ev or r.ts_recv < prev_recv:
            fail(f"{name}: records out of time order at ts_event {r.ts_event}")
            break
        if r.ts_recv < r.ts_event:
            fail(f"{name}: ts_recv < ts_event at {r.ts_event}")
            break
        prev_ev, prev_recv = r.ts_event, r.ts_recv
    return {raw: int(v[0]) for raw, v in mapped.items() if v}


def rows(r):
    """(bids, asks) as lists of (price, size, count) of the priced rows; checks the image."""
    bids, asks = [], []
    empty_seen = [False, False]
    for i, lv in enumerate(r.levels):
        for side, px, sz, ct, out in ((0, lv.bid_px, lv.bid_sz, lv.bid_ct, bids), (1, lv.ask_px, lv.ask_sz, lv.ask_ct, asks)):
            if px == UNDEF:
                empty_seen[side] = True
                if sz != 0 or ct != 0:
                    fail(f"mbp-10 seq {r.sequence}: empty row {i} has size {sz} count {ct}")
                continue
            if empty_seen[side]:
                fail(f"mbp-10 seq {r.sequence}: priced row {i} after an empty row")
            if sz <= 0 or ct <= 0 or ct > sz:
                fail(f"mbp-10 seq {r.sequence}: priced row {i} has size {sz} count {ct}")
            out.append((px, sz, ct))
    for lst, sign, nm in ((bids, -1, "bid"), (asks, 1, "ask")):
        for a, b in zip(lst, lst[1:]):
            if (b[0] - a[0]) * sign <= 0:
                fail(f"mbp-10 seq {r.sequence}: {nm} rows not strictly ordered")
                break
    if bids and asks and bids[0][0] >= asks[0][0]:
        fail(f"mbp-10 seq {r.sequence}: crossed book {bids[0][0] * PX} >= {asks[0][0] * PX}")
    return bids, asks


def check_es(d, symbol, stats):
    meta, mbp = load(find(d, "es.mbp-10"))
    check_meta("es.mbp-10", meta, mbp, "GLBX.MDP3", "mbp-10", [symbol])
    tmeta, trades = load(find(d, "es.trades"))
    check_meta("es.trades", tmeta, trades, "GLBX.MDP3", "trades", [symbol])
    prev = None
    prev_seq = 0
    t_recs = {}
    mid_ts, mid_px = [], []
    spreads = {}
    per_sec = {}
    sizes_top = []
    for r in mbp:
        if r.sequence <= prev_seq:
            fail(f"mbp-10: sequence {r.sequence} not increasing")
        prev_seq = r.sequence
        bids, asks = rows(r)
        if str(r.action) == "T":
            side = str(r.side)
            t_recs[r.sequence] = (r.price, r.size, side)
            if prev is not None:
                pb, pa = prev
                ok = bool(pb) and bool(pa) and pb[0][0] <= r.price <= pa[0][0]
                passive = pa if side == "B" else pb
                ok = ok or any(p == r.price for p, _, _ in passive)
                if not ok:
                    fail(f"mbp-10 seq {r.sequence}: trade at {r.price * PX} outside the previous book")
            else:
                fail("mbp-10: trade before any book image")
        if bids and asks:
            sp = round((asks[0][0] - bids[0][0]) * PX / 0.25)
            spreads[sp] = spreads.get(sp, 0) + 1
            m = (asks[0][0] + bids[0][0]) * PX / 2
            if not mid_px or mid_px[-1] != m:
                mid_ts.append(r.ts_event)
                mid_px.append(m)
            if stats:
                sizes_top.append(bids[0][1])
        if stats:
            s = r.ts_event // 1_000_000_000
            per_sec[s] = per_sec.get(s, 0) + 1
        prev = (bids, asks)
    prev_seq = 0
    for r in trades:
        if r.sequence <= prev_seq:
            fail(f"es.trades: sequence {r.sequence} not increasing")
        prev_seq = r.sequence
        if t_recs.get(r.sequence) != (r.price, r.size, str(r.side)):
            fail(f"es.trades seq {r.sequence}: no matching MBP-10 trade record")
    if len(trades) != len(t_recs):
        fail(f"es.trades has {len(trades)} records, MBP-10 has {len(t_recs)} trade records")
    total = sum(spreads.values()) or 1
    out = {
        "mbp10_records": len(mbp),
        "trades": len(trades),
        "one_tick_spread_share": spreads.get(1, 0) / total,
        "start": meta.start,
        "end": meta.end,
    }
    if stats:
        rates = sorted(per_sec.values())
        out["updates_per_s_median"] = rates[len(rates) // 2]
        out["updates_per_s_max"] = rates[-1]
        out["spreads"] = {str(k): v for k, v in sorted(spreads.items())}
        sz = sorted(t.size for t in trades)
        out["trade_size_p50_p99_max"] = [sz[len(sz) // 2], sz[int(len(sz) * 0.99)], sz[-1]]
        out["top_bid_size_median"] = sorted(sizes_top)[len(sizes_top) // 2]
        out["mid_changes_per_min"] = len(mid_px) / ((meta.end - meta.start) / 60e9)
        out["es_range"] = [min(mid_px), max(mid_px)]
    return out, (mid_ts, mid_px), mbp, trades


def mid_at(mids, ts):
    mid_ts, mid_px = mids
    i = bisect.bisect_right(mid_ts, ts) - 1
    return mid_px[max(i, 0)]


def check_options(d, mids, rate=0.04):
    meta, recs = load(find(d, "opra.tcbbo"))
    by_sym = check_meta("opra.tcbbo", meta, recs, "OPRA.PILLAR", None)
    defs = {}
    n_trades = 0
    for r in recs:
        if isinstance(r, dbn.InstrumentDefMsg):
            defs[r.instrument_id] = r
            if str(r.instrument_class) not in ("C", "P"):
                fail(f"definition {r.raw_symbol}: class {r.instrument_class}")
            if r.underlying != "SPY" or by_sym.get(r.raw_symbol) != r.instrument_id:
                fail(f"definition {r.raw_symbol}: underlying {r.underlying} / mapping mismatch")
            continue
        n_trades += 1
        dfn = defs.get(r.instrument_id)
        if dfn is None or dfn.ts_event > r.ts_event:
            fail(f"tcbbo {r.instrument_id} at {r.ts_event}: no earlier definition")
            continue
        q = r.levels[0]
        if not (q.bid_px <= r.price <= q.ask_px):
            fail(f"tcbbo {dfn.raw_symbol}: price {r.price * PX} outside quote {q.bid_px * PX}/{q.ask_px * PX}")
        s = mid_at(mids, r.ts_event) / 10.0
        k = dfn.strike_price * PX
        t = max(dfn.expiration - r.ts_event, 60e9) / (365 * 86400e9)
        dk = k * math.exp(-rate * t)
        call = str(dfn.instrument_class) == "C"
        lo, hi = (max(0.0, s - dk), s) if call else (max(0.0, dk - s), dk)
        p = r.price * PX
        if not (lo - 0.03 <= p <= hi + 0.03):
            fail(f"tcbbo {dfn.raw_symbol}: price {p} outside no-arbitrage [{lo:.4f}, {hi:.4f}] (S={s})")
    strikes = sorted({d.strike_price * PX for d in defs.values()})
    spot0 = mid_at(mids, meta.start) / 10.0
    if not strikes or strikes[0] > spot0 - 10 or strikes[-1] < spot0 + 10:
        fail(f"strikes {strikes[:1]}..{strikes[-1:]} do not cover spot {spot0} ± 10")
    return {"definitions": len(defs), "option_trades": n_trades}, recs, defs


def check_spy(d, mids):
    p = find(d, "spy.trades")
    if p is None:
        return {"spy_trades": 0}, []
    meta, recs = load(p)
    check_meta("spy.trades", meta, recs, "XNAS.ITCH", "trades", ["SPY"])
    for r in recs:
        if abs(r.price * PX - mid_at(mids, r.ts_event) / 10.0) > 0.10:
            fail(f"spy trade {r.price * PX} far from ES/10 {mid_at(mids, r.ts_event) / 10.0}")
            break
    return {"spy_trades": len(recs)}, recs


# ----------------------------------------------------------------------------- physics reference


def norm_cdf(x):
    return 0.5 * math.erfc(-x / math.sqrt(2))


def bs(call, s, k, t, r, v):
    st = v * math.sqrt(t)
    d1 = (math.log(s / k) + (r + 0.5 * v * v) * t) / st
    d2 = d1 - st
    if call:
        return s * norm_cdf(d1) - k * math.exp(-r * t) * norm_cdf(d2)
    return k * math.exp(-r * t) * norm_cdf(-d2) - s * norm_cdf(-d1)


def gamma_of(call, s, k, t, r, price):
    lo, hi = 1e-4, 5.0
    if not (bs(call, s, k, t, r, lo) <= price <= bs(call, s, k, t, r, hi)):
        v = 0.20
    else:
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            if bs(call, s, k, t, r, mid) < price:
                lo = mid
            else:
                hi = mid
            if hi - lo < 1e-6:
                break
        v = 0.5 * (lo + hi)
    st = v * math.sqrt(t)
    d1 = (math.log(s / k) + (r + 0.5 * v * v) * t) / st
    return math.exp(-0.5 * d1 * d1) / math.sqrt(2 * math.pi) / (s * st)


def physics(scenario_path, meta_start, mbp, trades, opts, defs, spy):
    import tomllib

    with open(scenario_path, "rb") as f:
        sc = tomllib.load(f)
    results = []

    def off_ns(s):
        s = s.lstrip("+")
        parts = [float(x) for x in s.split(":")]
        while len(parts) < 3:
            parts.insert(0, 0.0)
        return int((parts[0] * 3600 + parts[1] * 60 + parts[2]) * 1e9)

    # one merged stream: (ts, kind, rec); stable on kind order for equal ts
    events = [(r.ts_event, 0, i) for i, r in enumerate(mbp)]
    events += [(r.ts_event, 1, i) for i, r in enumerate(trades)]
    events += [(r.ts_event, 2, i) for i, r in enumerate(opts) if not isinstance(r, dbn.InstrumentDefMsg)]
    events += [(r.ts_event, 3, i) for i, r in enumerate(spy)]
    events.sort()
    for ex in sc.get("expect", []):
        level = float(ex["spy"])
        t_lo = meta_start + off_ns(ex["after"])
        t_hi = t_lo + int(float(ex["within_s"]) * 1e9)
        want = ex["signal"].upper()
        results.append(run_level(level, want, t_lo, t_hi, events, mbp, trades, opts, defs, spy))
    return results


def run_level(level, want, t_lo, t_hi, events, mbp, trades, opts, defs, spy):
    interval = 250_000_000
    eval_from = t_lo - 20_000_000_000
    eval_to = t_hi + 5_000_000_000
    last_es = last_spy = None
    images = []  # (ts, bids, asks) within the barrier window
    es_tr = []  # (ts, price, size, aggressor)
    gamma_by_strike = {}
    next_b = None
    machine = {"dir": None, "high": None, "low": None, "held": None, "active": False}
    first_call = None
    log = []

    def snap(now):
        nonlocal first_call
        if last_es is None or not images:
            return
        ratio = last_es / last_spy if last_spy else 10.0
        spot = last_es / ratio
        dist = abs(spot - level)
        if dist > 0.5:
            machine.update(active=False, held=None, high=None, low=None)
            return
        direction = "SUPPORT" if spot > level else "RESISTANCE"
        if not machine["active"] or machine["dir"] != direction:
            machine.update(active=True, held=None, high=None, low=None, dir=direction)
        es_level = level * ratio
        zlo, zhi = es_level - 0.5, es_level + 0.5
        side = 0 if direction == "SUPPORT" else 1
        win = [im for im in images if now - 10_000_000_000 <= im[0] < now]

        def depth(im):
            return sum(sz for px, sz in im[1 + side] if zlo - 1e-9 <= px <= zhi + 1e-9)

        added = canceled = filled = 0.0
        ti = 0
        for prev, cur in zip(win, win[1:]):
            dl = depth(cur) - depth(prev)
            if dl > 0:
                added += dl
            elif dl < 0:
                v = sum(
                    sz
                    for ts, px, sz, ag in es_tr
                    if prev[0] < ts <= cur[0] and zlo - 1e-9 <= px <= zhi + 1e-9 and ag == (-1 if side == 0 else 1)
                )
                f = min(-dl, v)
                filled += f
                canceled += -dl - f
        dliq = added - canceled - filled
        ratio_r = added / (canceled + filled + 1e-6)
        dz = depth(images[-1])
        if len(win) < 2:
            state = "NEUTRAL"
        elif ratio_r < 0.3 and dliq < -100:
            state = "VACUUM"
        elif ratio_r > 1.5 and dliq > 100:
            state = "WALL"
        elif dliq < -100 and filled > canceled:
            state = "CONSUMED"
        elif dliq > 0 and ratio_r > 1:
            state = "ABSORPTION"
        elif dz < 50:
            state = "WEAK"
        elif abs(dliq) < 50 and added + canceled + filled > 100:
            state = "ABSORPTION"
        else:
            state = "NEUTRAL"
        s_l = {"VACUUM": 100, "WEAK": 75, "CONSUMED": 60, "NEUTRAL": 50, "WALL": 0, "ABSORPTION": 0}[state]
        g = sum(v for k, v in gamma_by_strike.items() if abs(k - level) <= 2 + 1e-9)
        s_h = 100 if g < -10_000 else (0 if g > 10_000 else 50)
        near = [x for x in es_tr if now - 5_000_000_000 <= x[0] < now and abs(x[1] - es_level) <= 0.1 * ratio + 1e-9]
        buy = sum(x[2] for x in near if x[3] == 1)
        sell = sum(x[2] for x in near if x[3] == -1)
        imb = (buy - sell) / (buy + sell + 1e-6)
        vel_tr = [x for x in es_tr if now - 3_000_000_000 <= x[0] < now]
        vel = 0.0
        if len(vel_tr) >= 2:
            xs = [(x[0] - vel_tr[0][0]) / 1e9 for x in vel_tr]
            ys = [x[1] for x in vel_tr]
            mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
            sxx = sum((a - mx) ** 2 for a in xs)
            if sxx > 0:
                vel = sum((a - mx) * (b - my) for a, b in zip(xs, ys)) / sxx
        down = direction == "SUPPORT"
        sweep = False
        clusters, cur_c = [], []
        for x in near:
            if cur_c and x[0] - cur_c[-1][0] > 100_000_000:
                clusters.append(cur_c)
                cur_c = []
            cur_c.append(x)
        if cur_c:
            clusters.append(cur_c)
        for c in clusters:
            sides = {x[3] for x in c if x[3] != 0}
            notional = sum(x[1] * x[2] * 50 for x in c)
            if len(c) >= 2 and len(sides) == 1 and notional >= 5e6 and len({x[1] for x in c}) >= 2:
                if (sides == {-1}) == down:
                    sweep = True
        if sweep:
            s_t = 100.0
        else:
            s_t = 0.0
            if (vel < 0) == down and vel != 0:
                s_t += 25 * min(1, abs(vel) / 0.5)
            if (imb < 0) == down and imb != 0:
                s_t += 25 * abs(imb)
            s_t = min(s_t, 50)
        score = max(0.0, min(100.0, 0.45 * s_l + 0.35 * s_h + 0.20 * s_t))
        machine["high"] = (machine["high"] or now) if score > 80 else None
        machine["low"] = (machine["low"] or now) if (score < 20 and dist <= 0.05 + 1e-9) else None
        held = machine["held"]
        if held == "BREAK" and score < 70:
            held = None
        if held == "REJECT" and (score > 30 or dist > 0.1):
            held = None
        if held is None:
            if machine["high"] is not None and now - machine["high"] >= 3_000_000_000:
                held = "BREAK"
            elif machine["low"] is not None and now - machine["low"] >= 3_000_000_000:
                held = "REJECT"
        machine["held"] = held
        log.append((now, round(spot, 3), direction, state, round(dliq), round(ratio_r, 2), round(g), round(s_t), round(score, 1), held))
        if held == want and first_call is None:
            first_call = now

    for ts, kind, i in events:
        if ts > eval_to:
            break
        in_eval = ts >= eval_from
        if in_eval:
            if next_b is None:
                next_b = (ts // interval) * interval + interval
            elif ts >= next_b:
                b = (ts // interval) * interval
                snap(b)
                next_b = b + interval
        if kind == 0:
            r = mbp[i]
            if ts >= eval_from - 11_000_000_000:
                bids = [(lv.bid_px * PX, lv.bid_sz) for lv in r.levels if lv.bid_px != UNDEF]
                asks = [(lv.ask_px * PX, lv.ask_sz) for lv in r.levels if lv.ask_px != UNDEF]
                images.append((ts, bids, asks))
                while images and images[0][0] < ts - 11_000_000_000:
                    images.pop(0)
        elif kind == 1:
            r = trades[i]
            last_es = r.price * PX
            ag = 1 if str(r.side) == "B" else -1
            es_tr.append((ts, last_es, r.size, ag))
            while es_tr and es_tr[0][0] < ts - 11_000_000_000:
                es_tr.pop(0)
        elif kind == 2:
            r = opts[i]
            dfn = defs[r.instrument_id]
            if last_es is None:
                continue
            ratio = last_es / last_spy if last_spy else 10.0
            s = last_es / ratio
            q = r.levels[0]
            ag = 1 if r.price >= q.ask_px else (-1 if r.price <= q.bid_px else 0)
            k = dfn.strike_price * PX
            t = max(dfn.expiration - ts, 60e9) / (365 * 86400e9)
            call = str(dfn.instrument_class) == "C"
            gm = gamma_of(call, s, k, t, 0.04, r.price * PX)
            gamma_by_strike[k] = gamma_by_strike.get(k, 0.0) - ag * r.size * gm * 100
        else:
            last_spy = spy[i].price * PX
    ok = first_call is not None and t_lo <= first_call <= t_hi
    around = [x for x in log if t_lo - 12e9 <= x[0] <= t_hi + 2e9]
    return {"level": level, "want": want, "first_call_ns": first_call, "ok": ok, "window": [t_lo, t_hi], "log": around[::4]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--symbol", default="ESZ5")
    ap.add_argument("--stats", action="store_true")
    ap.add_argument("--physics")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()
    summary, mids, mbp, trades = check_es(a.dir, a.symbol, a.stats)
    osum, opts, defs = check_options(a.dir, mids)
    summary.update(osum)
    ssum, spy = check_spy(a.dir, mids)
    summary.update(ssum)
    if summary["one_tick_spread_share"] < 0.9:
        fail(f"one-tick spread only {summary['one_tick_spread_share']:.3f} of the time")
    if a.physics:
        res = physics(a.physics, summary["start"], mbp, trades, opts, defs, spy)
        for r in res:
            if not r["ok"]:
                fail(f"physics: expected {r['want']} at {r['level']} in {r['window']}, first call {r['first_call_ns']}")
            if not a.verbose:
                r.pop("log")
        summary["physics"] = res
    summary["failures"] = failures
    print(json.dumps(summary, indent=1, default=str))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
