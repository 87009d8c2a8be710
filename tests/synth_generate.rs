//! End-to-end tests of `spm-synth`'s library: determinism, the committed sample, book
//! invariants read back with the `dbn` crate, and the effect of each scenario primitive.

use std::io::Read;
use std::path::{Path, PathBuf};

use dbn::decode::{DbnMetadata, DecodeRecord, DynDecoder, DynReader};
use dbn::{Mbp10Msg, SymbolIndex, TradeMsg, UNDEF_PRICE, VersionUpgradePolicy};
use spymaster::synth::{self, Scenario, SynthConfig};

const TICK_PX: i64 = 250_000_000;

fn short_config(seconds: f64) -> SynthConfig {
    SynthConfig {
        duration_s: seconds,
        ..SynthConfig::default()
    }
}

fn read_all(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    DynReader::from_file(path)
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn decode<R: dbn::record::HasRType + dbn::Record<Header = dbn::RecordHeader> + Clone>(
    path: &Path,
) -> Vec<R> {
    let mut dec = DynDecoder::from_file(path, VersionUpgradePolicy::AsIs).unwrap();
    let mut out = Vec::new();
    while let Some(r) = dec.decode_record::<R>().unwrap() {
        out.push(r.clone());
    }
    out
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

const SMALL_SCENARIO: &str = r#"
[[event]]
at = "+00:00:00.5"
kind = "drift"
es = 6885.0
duration_s = 1
hold_s = 60

[[event]]
at = "+00:00:05"
kind = "wall"
side = "bid"
es = 6883.5
width_ticks = 0
duration_s = 20
refill_per_s = 50

[[event]]
at = "+00:00:10"
kind = "vacuum"
side = "ask"
es = 6886.5
width_ticks = 2
duration_s = 20
pull_s = 2
residual = 1

[[event]]
at = "+00:00:20"
kind = "sweep"
side = "buy"
size = 500
prices = 3

[[event]]
at = "+00:00:25"
kind = "options"
customer = "buy"
strikes = [687, 688]
right = "C"
contracts = 500
duration_s = 5
"#;

#[test]
fn same_seed_and_arguments_give_byte_identical_files() {
    let scenario = Scenario::from_toml_str(SMALL_SCENARIO).unwrap();
    let cfg = short_config(40.0);
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    let sa = synth::generate(&cfg, &scenario, a.path(), None).unwrap();
    let sb = synth::generate(&cfg, &scenario, b.path(), None).unwrap();
    assert_eq!(sa.total_records(), sb.total_records());
    let (fa, fb) = (files(a.path()), files(b.path()));
    assert_eq!(fa.len(), 4);
    for (x, y) in fa.iter().zip(&fb) {
        assert_eq!(x.file_name(), y.file_name());
        assert!(
            std::fs::read(x).unwrap() == std::fs::read(y).unwrap(),
            "{} differs",
            x.display()
        );
    }
    let other = SynthConfig { seed: 2, ..cfg };
    synth::generate(&other, &scenario, c.path(), None).unwrap();
    let es = |d: &Path| std::fs::read(d.join("es.mbp-10.dbn.zst")).unwrap();
    assert!(
        es(a.path()) != es(c.path()),
        "another seed must give another market"
    );
}

#[test]
fn committed_sample_regenerates_byte_for_byte() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let text = std::fs::read_to_string(root.join("scenario.toml")).unwrap();
    let scenario = Scenario::from_toml_str(&text).unwrap();
    let mut cfg = SynthConfig::default();
    cfg.apply_session(&scenario.session);
    cfg.zstd_level = None; // compare decompressed content: independent of the zstd level
    let out = tempfile::tempdir().unwrap();
    synth::generate(&cfg, &scenario, out.path(), None).unwrap();
    let mut total = 0;
    for name in ["es.mbp-10", "es.trades", "opra.tcbbo", "spy.trades"] {
        let fresh = std::fs::read(out.path().join(format!("{name}.dbn"))).unwrap();
        let committed = read_all(&root.join(format!("{name}.dbn.zst")));
        assert!(
            fresh == committed,
            "testdata/{name}.dbn.zst is stale: run `just testdata`"
        );
        total += std::fs::metadata(root.join(format!("{name}.dbn.zst")))
            .unwrap()
            .len();
    }
    assert!(
        total + 10_000 <= 10 * 1024 * 1024,
        "testdata too large: {total} bytes"
    );
}

#[test]
fn books_are_never_crossed_and_records_are_ordered() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = Scenario::from_toml_str(SMALL_SCENARIO).unwrap();
    let summary = synth::generate(&short_config(60.0), &scenario, dir.path(), None).unwrap();
    let path = dir.path().join("es.mbp-10.dbn.zst");
    let meta = DynDecoder::from_file(&path, VersionUpgradePolicy::AsIs)
        .unwrap()
        .metadata()
        .clone();
    assert_eq!(meta.dataset, "GLBX.MDP3");
    assert_eq!(meta.symbols, vec!["ESZ5".to_string()]);
    let map = meta.symbol_map().unwrap();
    let recs: Vec<Mbp10Msg> = decode(&path);
    assert_eq!(
        recs.len() as u64 + decode::<TradeMsg>(&dir.path().join("es.trades.dbn.zst")).len() as u64,
        summary.es_records
    );
    assert_eq!(map.get_for_rec(&recs[0]).map(String::as_str), Some("ESZ5"));
    let (mut seq, mut ts, mut recv) = (0u32, 0u64, 0u64);
    let mut one_tick = 0usize;
    for r in &recs {
        assert!(
            r.sequence > seq
                && r.hd.ts_event >= ts
                && r.ts_recv >= recv
                && r.ts_recv >= r.hd.ts_event
        );
        (seq, ts, recv) = (r.sequence, r.hd.ts_event, r.ts_recv);
        let l = &r.levels;
        for row in l {
            if row.bid_px != UNDEF_PRICE {
                assert!(row.bid_sz > 0 && row.bid_ct > 0);
            }
            if row.ask_px != UNDEF_PRICE {
                assert!(row.ask_sz > 0 && row.ask_ct > 0);
            }
        }
        if l[0].bid_px != UNDEF_PRICE && l[0].ask_px != UNDEF_PRICE {
            assert!(
                l[0].bid_px < l[0].ask_px,
                "crossed book at seq {}",
                r.sequence
            );
            one_tick += usize::from(l[0].ask_px - l[0].bid_px == TICK_PX);
        }
    }
    assert!(
        one_tick as f64 > 0.9 * recs.len() as f64,
        "spread is one tick only {one_tick}/{}",
        recs.len()
    );
    let last = recs.last().unwrap();
    assert!(last.flags.is_last());
}

#[test]
fn scenario_primitives_act_on_the_book_and_tape() {
    for seed in 1..=4 {
        primitives_act(seed);
    }
}

fn primitives_act(seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let scenario = Scenario::from_toml_str(SMALL_SCENARIO).unwrap();
    let cfg = SynthConfig {
        seed,
        ..short_config(40.0)
    };
    let start = cfg.start_ns().unwrap();
    synth::generate(&cfg, &scenario, dir.path(), None).unwrap();
    let recs: Vec<Mbp10Msg> = decode(&dir.path().join("es.mbp-10.dbn.zst"));
    let at = |s: f64| {
        let t = start + (s * 1e9) as u64;
        recs.iter().rev().find(|r| r.hd.ts_event <= t).unwrap()
    };
    let size_at = |r: &Mbp10Msg, px: f64, bid: bool| -> u32 {
        let p = (px * 1e9) as i64;
        r.levels
            .iter()
            .map(|l| {
                if bid && l.bid_px == p {
                    l.bid_sz
                } else if !bid && l.ask_px == p {
                    l.ask_sz
                } else {
                    0
                }
            })
            .sum()
    };
    // Wall: the bid at 6883.50 is refilled (about 50 a second for 20 s) and never pulled.
    let before = size_at(at(4.9), 6883.5, true);
    let during = size_at(at(24.0), 6883.5, true);
    assert!(
        during > before + 400,
        "wall did not build: {before} → {during}"
    );
    // Vacuum: asks at 6886.00..6887.00 are pulled to the residual one lot per level.
    let zone = [6886.0, 6886.25, 6886.5, 6886.75, 6887.0];
    let held: u32 = zone.iter().map(|&px| size_at(at(9.9), px, false)).sum();
    assert!(held > 100, "the zone held only {held} before the pull");
    for px in zone {
        let s = size_at(at(12.5), px, false);
        assert!(s <= 2, "ask at {px} still holds {s} after the pull");
    }
    // Sweep: one event printing at three consecutive prices, buy aggressor.
    let t_sweep = start + 20_000_000_000;
    let trades: Vec<TradeMsg> = decode(&dir.path().join("es.trades.dbn.zst"));
    let sweep: Vec<&TradeMsg> = trades.iter().filter(|t| t.hd.ts_event == t_sweep).collect();
    assert_eq!(sweep.len(), 3, "{sweep:?}");
    assert!(sweep.iter().all(|t| t.side as u8 == b'B'));
    assert!(sweep.windows(2).all(|w| w[1].price == w[0].price + TICK_PX));
    assert!(sweep.iter().map(|t| t.size).sum::<u32>() <= 500);
}

#[test]
fn options_file_has_definitions_first_then_trades_inside_their_quotes() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = Scenario::from_toml_str(SMALL_SCENARIO).unwrap();
    let summary = synth::generate(&short_config(40.0), &scenario, dir.path(), None).unwrap();
    let mut dec = DynDecoder::from_file(
        dir.path().join("opra.tcbbo.dbn.zst"),
        VersionUpgradePolicy::AsIs,
    )
    .unwrap();
    assert_eq!(
        dec.metadata().schema,
        None,
        "definitions and trades share one mixed-schema file"
    );
    let mut defs = std::collections::BTreeMap::new();
    let mut n_trades = 0u64;
    let mut customer_buys_688 = 0u32;
    while let Some(rec) = dbn::decode::DecodeRecordRef::decode_record_ref(&mut dec).unwrap() {
        if let Some(d) = rec.get::<dbn::InstrumentDefMsg>() {
            defs.insert(
                d.hd.instrument_id,
                (d.hd.ts_event, d.raw_symbol().unwrap().to_string()),
            );
        } else if let Some(t) = rec.get::<dbn::TcbboMsg>() {
            n_trades += 1;
            let (def_ts, sym) = defs
                .get(&t.hd.instrument_id)
                .expect("definition before trade");
            assert!(*def_ts <= t.hd.ts_event);
            let q = &t.levels[0];
            assert!(
                q.bid_px > 0 && q.bid_px < q.ask_px && t.price >= q.bid_px && t.price <= q.ask_px
            );
            if sym.ends_with("C00688000") && t.side as u8 == b'B' && t.price == q.ask_px {
                customer_buys_688 += t.size;
            }
        } else {
            panic!("unexpected record {rec:?}");
        }
    }
    assert_eq!(defs.len() as u64, summary.option_definitions);
    assert!(
        defs.values().any(|(_, s)| s == "SPY   251121C00687000"),
        "OSI symbols"
    );
    assert_eq!(n_trades, summary.option_trades);
    assert!(
        customer_buys_688 >= 250,
        "scripted customer buys reached the tape: {customer_buys_688}"
    );
}

#[test]
fn documented_scenarios_parse() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for p in ["docs/scenario-minimal.toml", "testdata/scenario.toml"] {
        let text = std::fs::read_to_string(root.join(p)).unwrap();
        let s = Scenario::from_toml_str(&text).unwrap_or_else(|e| panic!("{p}: {e}"));
        assert!(!s.events.is_empty(), "{p}");
    }
    let sample = Scenario::from_toml_str(
        &std::fs::read_to_string(root.join("testdata/scenario.toml")).unwrap(),
    )
    .unwrap();
    let signals: Vec<_> = sample
        .expects
        .iter()
        .map(|e| (e.signal, e.level.as_str()))
        .collect();
    assert_eq!(
        signals,
        vec![
            (synth::scenario::ExpectedSignal::Reject, "ROUND_690"),
            (synth::scenario::ExpectedSignal::Break, "ROUND_687")
        ]
    );
}
