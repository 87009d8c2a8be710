//! Cross-check of the DBN → event mapping against Databento's official Python decoder.
//!
//! For every sample file of the market schemas (mbp-10, trades, tbbo, mbp-1, cmbp-1, cbbo-1s,
//! bbo-1s, tcbbo) in the shared sample folder, and for synthetic OPRA and equity streams written
//! here with the `dbn` crate's encoder (the samples are all CME futures apart from an equity
//! definition file), `tests/py/dbn_dump.py` decodes the file with `databento_dbn` and each of our
//! events is matched, in order, to the record it came from: timestamps, prices, sizes, sides
//! (aggressor ↔ side), and book rows must agree, and every record the decoder saw must be either
//! an event or a counted skip.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use dbn::encode::{DbnEncodable, DbnEncoder, EncodeRecord};
use dbn::record::str_to_c_chars;
use dbn::{
    BboMsg, BidAskPair, CbboMsg, Cmbp1Msg, ConsolidatedBidAskPair, FlagSet, InstrumentDefMsg,
    Mbp1Msg, Metadata, RecordHeader, SType, Schema, SymbolMappingMsg, TradeMsg, UNDEF_PRICE, rtype,
};
use serde_json::Value;
use spymaster::dbn::DbnEventReader;
use spymaster::event::{BookRow, Event};

const SCHEMAS: [&str; 8] = [
    "mbp-10", "trades", "tbbo", "mbp-1", "cmbp-1", "cbbo-1s", "bbo-1s", "tcbbo",
];

fn samples_dir() -> Option<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    [
        manifest.join("../shared/dbn-samples"),
        PathBuf::from("/work/shared/dbn-samples"),
    ]
    .into_iter()
    .find(|p| p.is_dir())
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/dbn_dump.py")
}

/// Whether python3 with `databento_dbn` can run; prints why not.
fn python_ready() -> bool {
    match Command::new("python3")
        .args(["-c", "import databento_dbn"])
        .output()
    {
        Ok(out) if out.status.success() => true,
        Ok(_) => {
            println!("skipping: python3 has no databento_dbn module (pip install databento-dbn)");
            false
        }
        Err(e) => {
            println!("skipping: python3 not runnable: {e}");
            false
        }
    }
}

/// The official decoder's records of `path` (metadata line dropped).
fn python_records(path: &Path) -> Vec<Value> {
    let out = Command::new("python3")
        .arg(script())
        .arg(path)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "dbn_dump.py failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v.get("metadata").is_none())
        .collect()
}

fn int(v: &Value, key: &str) -> i64 {
    v.get(key)
        .and_then(|x| x.as_i64().or_else(|| x.as_u64().map(|u| u as i64)))
        .unwrap_or_else(|| panic!("no integer {key} in {v}"))
}

fn uint(v: &Value, key: &str) -> u64 {
    v.get(key)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no unsigned {key} in {v}"))
}

fn chr(v: &Value, key: &str) -> char {
    v.get(key)
        .and_then(Value::as_str)
        .and_then(|s| s.chars().next())
        .unwrap_or_else(|| panic!("no {key} in {v}"))
}

/// Our float price against the decoder's fixed-point integer.
fn same_price(ours: Option<f64>, raw: i64, what: &str) {
    match ours {
        None => assert_eq!(
            raw, UNDEF_PRICE,
            "{what}: we have no price, decoder has {raw}"
        ),
        Some(p) => {
            assert_ne!(raw, UNDEF_PRICE, "{what}: sentinel leaked as {p}");
            assert!(p.is_finite(), "{what}: {p}");
            assert_eq!((p * 1e9).round() as i64, raw, "{what}: {p} vs {raw}");
        }
    }
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

fn aggressor_of(side: char) -> i8 {
    match side {
        'B' => 1,
        'A' => -1,
        _ => 0,
    }
}

fn ts_recv_of(ev: &Event) -> u64 {
    ev.ts_recv_ns()
        .unwrap_or_else(|| panic!("a DBN file gave a {}", ev.kind().type_name()))
}

fn is_interval(rtype: u8) -> bool {
    matches!(
        rtype,
        rtype::BBO_1S | rtype::BBO_1M | rtype::CBBO_1S | rtype::CBBO_1M
    )
}

/// Compares one event with the record it came from.
fn compare(ev: &Event, rec: &Value, what: &str) {
    let rt = uint(rec, "rtype") as u8;
    let ts_event = uint(rec, "ts_event");
    let level0 = rec.get("levels").and_then(|l| l.get(0));
    match ev {
        Event::Mbp10(b) => {
            assert_eq!(b.ts_event_ns, ts_event, "{what}");
            same_price(b.price, int(rec, "price"), what);
            assert_eq!(b.size, Some(uint(rec, "size") as u32), "{what}");
            assert_eq!(b.side, Some(chr(rec, "side")), "{what}");
            assert_eq!(b.action, Some(chr(rec, "action")), "{what}");
            assert_eq!(b.seq, Some(uint(rec, "sequence")), "{what}");
            let flags = uint(rec, "flags") as u8;
            assert_eq!(b.flags, Some(flags), "{what}");
            assert_eq!(b.is_snapshot, flags & 0x20 != 0, "{what}");
            let levels = rec["levels"].as_array().unwrap();
            assert_eq!(levels.len(), 10, "{what}");
            for (i, (row, l)) in b.levels.iter().zip(levels).enumerate() {
                compare_row(row, l, &format!("{what} row {i}"));
            }
        }
        Event::FuturesTrade(t) => {
            assert_eq!(t.ts_event_ns, ts_event, "{what}");
            same_price(Some(t.price), int(rec, "price"), what);
            assert_eq!(t.size as u64, uint(rec, "size"), "{what}");
            assert_eq!(t.aggressor, aggressor_of(chr(rec, "side")), "{what}");
            assert_eq!(t.seq, rec.get("sequence").and_then(Value::as_u64), "{what}");
        }
        Event::StockTrade(t) => {
            assert_eq!(t.ts_event_ns, ts_event, "{what}");
            same_price(Some(t.price), int(rec, "price"), what);
            assert_eq!(t.size as u64, uint(rec, "size"), "{what}");
            assert_eq!(t.seq, rec.get("sequence").and_then(Value::as_u64), "{what}");
        }
        Event::OptionTrade(t) => {
            assert_eq!(t.ts_event_ns, ts_event, "{what}");
            same_price(Some(t.price), int(rec, "price"), what);
            assert_eq!(t.size as u64, uint(rec, "size"), "{what}");
            assert_eq!(t.aggressor, aggressor_of(chr(rec, "side")), "{what}");
            match level0 {
                Some(l) => {
                    same_price(t.opt_bid, int(l, "bid_px"), what);
                    same_price(t.opt_ask, int(l, "ask_px"), what);
                }
                None => assert_eq!((t.opt_bid, t.opt_ask), (None, None), "{what}"),
            }
        }
        Event::StockQuote(q) => {
            let expected_ts = if is_interval(rt) {
                uint(rec, "ts_recv")
            } else {
                ts_event
            };
            assert_eq!(q.ts_event_ns, expected_ts, "{what}");
            let l = level0.expect("a quote record has a top level");
            same_price(finite(q.bid_px), int(l, "bid_px"), what);
            same_price(finite(q.ask_px), int(l, "ask_px"), what);
            let sz = |px: f64, key| {
                if px.is_finite() {
                    uint(l, key) as u32
                } else {
                    0
                }
            };
            assert_eq!(q.bid_sz, sz(q.bid_px, "bid_sz"), "{what}");
            assert_eq!(q.ask_sz, sz(q.ask_px, "ask_sz"), "{what}");
        }
        Event::LevelSignals(_) | Event::FeedStatus(_) => unreachable!(),
    }
}

fn compare_row(row: &BookRow, l: &Value, what: &str) {
    same_price(row.bid_px, int(l, "bid_px"), what);
    same_price(row.ask_px, int(l, "ask_px"), what);
    let (bid_sz, bid_ct) = if row.bid_px.is_some() {
        (uint(l, "bid_sz") as u32, Some(uint(l, "bid_ct") as u32))
    } else {
        (0, None)
    };
    let (ask_sz, ask_ct) = if row.ask_px.is_some() {
        (uint(l, "ask_sz") as u32, Some(uint(l, "ask_ct") as u32))
    } else {
        (0, None)
    };
    assert_eq!(
        (row.bid_sz, row.bid_ct, row.ask_sz, row.ask_ct),
        (bid_sz, bid_ct, ask_sz, ask_ct),
        "{what}"
    );
}

/// Cross-checks one file; returns how many events were compared.
fn check_file(path: &Path) -> usize {
    let records = python_records(path);
    let mut reader = DbnEventReader::open(path, "replay").expect("opens");
    let mut events = Vec::new();
    while let Some(ev) = reader.next_event().expect("decodes") {
        events.push(ev);
    }
    assert_eq!(
        reader.records_read() as usize,
        records.len(),
        "{}: record counts differ",
        path.display()
    );
    let market_records = records.iter().filter(|r| r.get("price").is_some()).count();
    let skipped: u64 = reader.skipped().values().sum();
    assert_eq!(
        events.len() + skipped as usize,
        market_records,
        "{}: every market record is an event or a counted skip ({:?})",
        path.display(),
        reader.skipped()
    );
    let mut next = 0;
    for (i, ev) in events.iter().enumerate() {
        let ts_recv = ts_recv_of(ev);
        let found = records[next..]
            .iter()
            .position(|r| {
                r.get("price").is_some()
                    && r.get("ts_recv").and_then(Value::as_u64) == Some(ts_recv)
            })
            .unwrap_or_else(|| {
                panic!(
                    "{}: event {i} ({ev:?}) matches no decoder record",
                    path.display()
                )
            });
        let rec = &records[next + found];
        compare(ev, rec, &format!("{} event {i}", path.display()));
        next += found + 1;
    }
    println!(
        "{}: {} records, {} events compared, skipped {:?}",
        path.display(),
        records.len(),
        events.len(),
        reader.skipped()
    );
    events.len()
}

// ---- synthetic OPRA and equity streams ---------------------------------------------------

const T0: u64 = 1_710_500_000_000_000_000;
const EXP: u64 = 1_710_460_800_000_000_000; // 2024-03-15T00:00:00Z

fn metadata(dataset: &str, schema: Option<Schema>) -> Metadata {
    Metadata::builder()
        .dataset(dataset)
        .schema(schema)
        .start(T0)
        .stype_in(Some(SType::RawSymbol))
        .stype_out(SType::InstrumentId)
        .build()
}

fn write(path: &Path, md: &Metadata, f: impl FnOnce(&mut dyn FnMut(&dyn DbnEncodableDyn))) {
    let mut enc = DbnEncoder::new(Vec::new(), md).unwrap();
    f(&mut |rec| rec.encode_into(&mut enc));
    std::fs::File::create(path)
        .unwrap()
        .write_all(enc.get_ref())
        .unwrap();
}

/// Object-safe encoding of one record.
trait DbnEncodableDyn {
    fn encode_into(&self, enc: &mut DbnEncoder<Vec<u8>>);
}

impl<R: DbnEncodable> DbnEncodableDyn for R {
    fn encode_into(&self, enc: &mut DbnEncoder<Vec<u8>>) {
        enc.encode_record(self).unwrap();
    }
}

fn c(b: u8) -> std::ffi::c_char {
    b as std::ffi::c_char
}

fn definition(iid: u32, raw: &str, class: u8, strike: i64) -> InstrumentDefMsg {
    InstrumentDefMsg {
        hd: RecordHeader::new::<InstrumentDefMsg>(rtype::INSTRUMENT_DEF, 30, iid, T0),
        ts_recv: T0,
        raw_symbol: str_to_c_chars(raw).unwrap(),
        underlying: str_to_c_chars("SPY").unwrap(),
        instrument_class: c(class),
        strike_price: strike,
        expiration: EXP,
        ..Default::default()
    }
}

fn cons_level(i: u64) -> [ConsolidatedBidAskPair; 1] {
    [ConsolidatedBidAskPair {
        bid_px: if i.is_multiple_of(5) {
            UNDEF_PRICE
        } else {
            1_000_000_000 + i as i64 * 10_000_000
        },
        ask_px: 1_100_000_000 + i as i64 * 10_000_000,
        bid_sz: 10 + i as u32,
        ask_sz: 20 + i as u32,
        ..Default::default()
    }]
}

fn write_synthetic(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let side = |i: u64| c(b"BAN"[(i % 3) as usize]);

    // OPRA tcbbo and cmbp-1 with definitions (one instrument left undefined).
    for (schema, rt, sch) in [
        ("tcbbo", rtype::TCBBO, Schema::Tcbbo),
        ("cmbp-1", rtype::CMBP_1, Schema::Cmbp1),
    ] {
        let path = dir.join(format!("synthetic.opra.{schema}.dbn"));
        write(&path, &metadata("OPRA.PILLAR", Some(sch)), |add| {
            add(&definition(
                1,
                "SPY   240315C00510000",
                b'C',
                510_000_000_000,
            ));
            add(&definition(
                2,
                "SPY   240315P00505000",
                b'P',
                505_000_000_000,
            ));
            for i in 0..30u64 {
                let action = if rt == rtype::TCBBO || i.is_multiple_of(2) {
                    b'T'
                } else {
                    b'A'
                };
                add(&Cmbp1Msg {
                    hd: RecordHeader::new::<Cmbp1Msg>(rt, 30, 1 + (i % 3) as u32, T0 + i * 100),
                    price: 1_050_000_000 + i as i64 * 10_000_000,
                    size: 1 + i as u32,
                    action: c(action),
                    side: side(i),
                    flags: FlagSet::default(),
                    ts_recv: T0 + i * 100 + 7,
                    levels: cons_level(i),
                    ..Cmbp1Msg::default_for_schema(Schema::Cmbp1)
                });
            }
        });
        files.push(path);
    }

    // OPRA trades and cbbo-1s.
    let path = dir.join("synthetic.opra.trades.dbn");
    write(
        &path,
        &metadata("OPRA.PILLAR", Some(Schema::Trades)),
        |add| {
            add(&definition(
                1,
                "SPY   240315C00510000",
                b'C',
                510_000_000_000,
            ));
            for i in 0..20u64 {
                add(&TradeMsg {
                    hd: RecordHeader::new::<TradeMsg>(rtype::MBP_0, 30, 1, T0 + i * 100),
                    price: 2_000_000_000 + i as i64 * 10_000_000,
                    size: 1 + i as u32,
                    action: c(b'T'),
                    side: side(i),
                    ts_recv: T0 + i * 100 + 3,
                    sequence: i as u32,
                    ..Default::default()
                });
            }
        },
    );
    files.push(path);
    let path = dir.join("synthetic.opra.cbbo-1s.dbn");
    write(
        &path,
        &metadata("OPRA.PILLAR", Some(Schema::Cbbo1S)),
        |add| {
            add(&definition(
                1,
                "SPY   240315C00510000",
                b'C',
                510_000_000_000,
            ));
            for i in 0..20u64 {
                add(&CbboMsg {
                    // The last sale changes every other interval.
                    hd: RecordHeader::new::<CbboMsg>(rtype::CBBO_1S, 30, 1, T0 + (i / 2) * 1_000),
                    price: 2_000_000_000 + (i / 2) as i64 * 10_000_000,
                    size: 3,
                    side: side(i / 2),
                    ts_recv: T0 + (i + 1) * 1_000_000_000,
                    levels: cons_level(i),
                    ..CbboMsg::default_for_schema(Schema::Cbbo1S)
                });
            }
        },
    );
    files.push(path);

    // Equities mbp-1 (trades and quotes) and bbo-1s with a symbol mapping record.
    let mapping = SymbolMappingMsg::new(
        15144,
        T0,
        SType::RawSymbol,
        "SPY",
        SType::RawSymbol,
        "SPY",
        T0,
        u64::MAX,
    )
    .unwrap();
    let path = dir.join("synthetic.xnas.mbp-1.dbn");
    write(&path, &metadata("XNAS.ITCH", Some(Schema::Mbp1)), |add| {
        add(&mapping);
        for i in 0..30u64 {
            add(&Mbp1Msg {
                hd: RecordHeader::new::<Mbp1Msg>(rtype::MBP_1, 2, 15144, T0 + i * 10),
                price: 510_000_000_000 + i as i64 * 10_000_000,
                size: 100,
                action: c(if i.is_multiple_of(4) { b'T' } else { b'A' }),
                side: side(i),
                ts_recv: T0 + i * 10 + 1,
                sequence: 1000 + i as u32,
                levels: [BidAskPair {
                    bid_px: 509_990_000_000,
                    ask_px: if i.is_multiple_of(7) {
                        UNDEF_PRICE
                    } else {
                        510_010_000_000
                    },
                    bid_sz: 300,
                    ask_sz: 200,
                    bid_ct: 3,
                    ask_ct: 2,
                }],
                ..Default::default()
            });
        }
    });
    files.push(path);
    let path = dir.join("synthetic.xnas.bbo-1s.dbn");
    write(&path, &metadata("XNAS.ITCH", Some(Schema::Bbo1S)), |add| {
        add(&mapping);
        for i in 0..10u64 {
            add(&BboMsg {
                hd: RecordHeader::new::<BboMsg>(rtype::BBO_1S, 2, 15144, T0 + i * 500),
                price: 510_000_000_000,
                size: 5,
                side: side(i),
                ts_recv: T0 + (i + 1) * 1_000_000_000,
                sequence: i as u32,
                levels: [BidAskPair {
                    bid_px: 509_900_000_000 + i as i64 * 10_000_000,
                    ask_px: 510_100_000_000,
                    bid_sz: 1 + i as u32,
                    ask_sz: 2,
                    bid_ct: 1,
                    ask_ct: 1,
                }],
                ..BboMsg::default_for_schema(Schema::Bbo1S)
            });
        }
    });
    files.push(path);
    files
}

#[test]
fn events_agree_with_databentos_python_decoder() {
    if !python_ready() {
        return;
    }
    let mut compared = 0;
    let mut files = 0;
    match samples_dir() {
        None => println!("skipping samples: ../shared/dbn-samples not found"),
        Some(dir) => {
            let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
                .unwrap()
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    SCHEMAS
                        .iter()
                        .any(|s| name.starts_with(&format!("test_data.{s}.")))
                        && (name.ends_with(".dbn") || name.ends_with(".dbn.zst"))
                })
                .collect();
            paths.sort();
            assert!(!paths.is_empty(), "no sample files of the market schemas");
            for p in &paths {
                compared += check_file(p);
                files += 1;
            }
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    for p in write_synthetic(tmp.path()) {
        let n = check_file(&p);
        assert!(n > 0, "{}: nothing compared", p.display());
        compared += n;
        files += 1;
    }
    println!("{files} files, {compared} events compared");
    assert!(compared > 0);
}
