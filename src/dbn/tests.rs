//! Tests of the DBN reader: the real Databento sample files (skipped when absent) and
//! synthetic streams written with the `dbn` crate's own encoder for the markets the samples do
//! not cover (OPRA options, equities).

use std::io::Cursor;
use std::path::{Path, PathBuf};

use ::dbn::encode::{DbnEncoder, EncodeRecord};
use ::dbn::record::str_to_c_chars;
use ::dbn::{
    BboMsg, BidAskPair, CbboMsg, Cmbp1Msg, ConsolidatedBidAskPair, FlagSet, InstrumentDefMsg,
    Mbp1Msg, Mbp10Msg, Metadata, RecordHeader, SType, Schema, SymbolMappingMsg, TradeMsg,
    UNDEF_PRICE, rtype,
};

use super::*;
use crate::event::{BookRow, Event};

/// The shared sample folder, or `None` (after saying so) when it is absent.
pub(crate) fn samples_dir() -> Option<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let candidates = [
        manifest.join("../shared/dbn-samples"),
        PathBuf::from("/work/shared/dbn-samples"),
    ];
    let found = candidates.into_iter().find(|p| p.is_dir());
    if found.is_none() {
        println!("skipping: ../shared/dbn-samples not found");
    }
    found
}

/// Every sample file of one schema (`test_data.{schema}.dbn`, `.v1.dbn.zst`, ...), sorted.
fn sample_files(dir: &Path, schema: &str) -> Vec<PathBuf> {
    let prefix = format!("test_data.{schema}.");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("sample dir readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with(&prefix) && (n.ends_with(".dbn") || n.ends_with(".dbn.zst"))
            })
        })
        .collect();
    files.sort();
    files
}

fn read_all(reader: &mut DbnEventReader) -> Vec<Event> {
    let mut out = Vec::new();
    while let Some(ev) = reader.next_event().expect("sample decodes") {
        out.push(ev);
    }
    out
}

fn read_file(path: &Path) -> (Vec<Event>, DbnEventReader) {
    let mut reader = DbnEventReader::open(path, "replay").expect("sample opens");
    let events = read_all(&mut reader);
    (events, reader)
}

/// Events of every version of one schema; asserts they are identical and returns them.
fn same_events_in_every_version(dir: &Path, schema: &str) -> (Vec<Event>, DbnEventReader) {
    let files = sample_files(dir, schema);
    assert!(files.len() >= 2, "expected several versions of {schema}");
    let (first, reader) = read_file(&files[0]);
    for f in &files[1..] {
        let (events, other) = read_file(f);
        assert_eq!(
            events,
            first,
            "{} differs from {}",
            f.display(),
            files[0].display()
        );
        assert_eq!(other.skipped(), reader.skipped(), "{}", f.display());
        assert_eq!(other.metadata().dataset, reader.metadata().dataset);
    }
    (first, reader)
}

fn assert_no_sentinel(json: &str) {
    // UNDEF_PRICE / 1e9 ≈ 9223372036.85; it must never appear as a price.
    assert!(!json.contains("9223372036"), "sentinel leaked: {json}");
    assert!(!json.contains("ES_"), "invented symbol: {json}");
}

#[test]
fn mbp10_samples_map_to_book_images_of_esh1() {
    let Some(dir) = samples_dir() else { return };
    let (events, reader) = same_events_in_every_version(&dir, "mbp-10");
    // The samples are CME Globex E-mini S&P futures.
    assert_eq!(reader.metadata().dataset, "GLBX.MDP3");
    assert_eq!(reader.market(), Market::Futures);
    assert_eq!(events.len(), 2);
    assert_eq!(reader.records_read(), 2);
    assert!(reader.skipped().is_empty(), "{:?}", reader.skipped());
    let Event::Mbp10(b) = &events[0] else {
        panic!("not an mbp10: {:?}", events[0])
    };
    // Expected values as printed by Databento's own Python decoder for this record.
    assert_eq!(b.symbol, "ESH1");
    assert_eq!(b.source, "replay");
    assert_eq!(b.ts_event_ns, 1_609_160_400_000_429_831);
    assert_eq!(b.ts_recv_ns, 1_609_160_400_000_704_060);
    assert_eq!(b.action, Some('C'));
    assert_eq!(b.side, Some('A'));
    assert_eq!(b.price, Some(3722.75));
    assert_eq!(b.size, Some(1));
    assert_eq!(b.flags, Some(128));
    assert_eq!(b.seq, Some(1_170_352));
    assert!(!b.is_snapshot);
    assert_eq!(
        b.levels[0],
        BookRow {
            bid_px: Some(3720.25),
            bid_sz: 24,
            ask_px: Some(3720.5),
            ask_sz: 10,
            bid_ct: Some(15),
            ask_ct: Some(8),
        }
    );
    assert_eq!(b.levels[1].bid_px, Some(3720.0));
    assert_eq!(b.levels[1].ask_ct, Some(24));
    for ev in &events {
        assert_no_sentinel(&ev.to_json());
    }
}

#[test]
fn trades_samples_map_to_futures_trades_with_sell_aggressor() {
    let Some(dir) = samples_dir() else { return };
    let (events, reader) = same_events_in_every_version(&dir, "trades");
    assert_eq!(reader.metadata().dataset, "GLBX.MDP3");
    assert_eq!(events.len(), 2);
    let Event::FuturesTrade(t) = &events[0] else {
        panic!("not a futures trade: {:?}", events[0])
    };
    assert_eq!(t.symbol, "ESH1");
    assert_eq!(t.price, 3720.25);
    assert_eq!(t.size, 5);
    assert_eq!(t.aggressor, -1, "side A is a sell aggressor");
    assert_eq!(t.seq, Some(1_170_380));
    assert_eq!(t.ts_event_ns, 1_609_160_400_098_821_953);
    assert_eq!(t.ts_recv_ns, 1_609_160_400_099_150_057);
    let Event::FuturesTrade(t2) = &events[1] else {
        panic!()
    };
    assert_eq!(t2.size, 21);
}

#[test]
fn tbbo_samples_give_the_same_trades_as_the_trades_samples() {
    let Some(dir) = samples_dir() else { return };
    let (tbbo, reader) = same_events_in_every_version(&dir, "tbbo");
    let (trades, _) = same_events_in_every_version(&dir, "trades");
    assert_eq!(reader.metadata().dataset, "GLBX.MDP3");
    assert_eq!(tbbo.len(), 2);
    assert_eq!(tbbo, trades);
}

#[test]
fn futures_top_of_book_samples_are_skipped_with_a_reason() {
    let Some(dir) = samples_dir() else { return };
    // mbp-1 (two adds), cmbp-1 (two adds), cbbo-1s (two quotes), bbo-1s (four quotes): all
    // GLBX futures top-of-book records, which are not 10-level book images.
    for (schema, n) in [("mbp-1", 2), ("cmbp-1", 2), ("cbbo-1s", 2), ("bbo-1s", 4)] {
        let (events, reader) = same_events_in_every_version(&dir, schema);
        assert_eq!(reader.metadata().dataset, "GLBX.MDP3", "{schema}");
        assert!(events.is_empty(), "{schema}: {events:?}");
        assert_eq!(reader.records_read(), n, "{schema}");
        assert_eq!(
            reader.skipped().get(reason::FUTURES_TOP_OF_BOOK),
            Some(&n),
            "{schema}: {:?}",
            reader.skipped()
        );
    }
}

#[test]
fn definition_samples_are_equities_definitions_that_name_instruments() {
    let Some(dir) = samples_dir() else { return };
    let (events, reader) = same_events_in_every_version(&dir, "definition");
    // The definition samples are Nasdaq (MSFT) equities, not OPRA options.
    assert_eq!(reader.metadata().dataset, "XNAS.ITCH");
    assert_eq!(reader.market(), Market::Equities);
    assert!(events.is_empty());
    assert_eq!(reader.records_read(), 2);
    assert!(reader.skipped().is_empty(), "{:?}", reader.skipped());
}

#[test]
fn unsupported_schemas_are_counted_not_errors() {
    let Some(dir) = samples_dir() else { return };
    for (schema, why) in [
        ("ohlcv-1s", "unsupported schema ohlcv-1s"),
        ("mbo", "unsupported schema mbo"),
        ("statistics", "unsupported schema statistics"),
        ("status", "unsupported schema status"),
        ("imbalance", "unsupported schema imbalance"),
    ] {
        for f in sample_files(&dir, schema) {
            let (events, reader) = read_file(&f);
            assert!(events.is_empty(), "{}", f.display());
            assert!(reader.records_read() > 0, "{}", f.display());
            assert_eq!(
                reader.skipped().get(why),
                Some(&reader.records_read()),
                "{}: {:?}",
                f.display(),
                reader.skipped()
            );
        }
    }
}

#[test]
fn a_zstd_stream_without_a_file_name_is_detected_from_its_first_bytes() {
    let Some(dir) = samples_dir() else { return };
    let path = dir.join("test_data.mbp-10.v2.dbn.zst");
    let (from_file, _) = read_file(&path);
    let bytes = std::fs::read(&path).unwrap();
    let mut r = DbnEventReader::from_reader(Cursor::new(bytes), "stdin", "replay").unwrap();
    assert_eq!(read_all(&mut r), from_file);
    // Also through the pipeline trait.
    let bytes = std::fs::read(&path).unwrap();
    let mut src: Box<dyn EventSource> =
        Box::new(DbnEventReader::from_reader(Cursor::new(bytes), "stdin", "replay").unwrap());
    let mut n = 0;
    while src.next_event().unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, from_file.len());
}

/// Bytes of a DBN stream with `metadata` and one record per call of `add`.
struct Stream {
    enc: DbnEncoder<Vec<u8>>,
}

impl Stream {
    fn new(metadata: &Metadata) -> Self {
        Stream {
            enc: DbnEncoder::new(Vec::new(), metadata).unwrap(),
        }
    }
    fn add<R: ::dbn::encode::DbnEncodable>(&mut self, rec: &R) -> &mut Self {
        self.enc.encode_record(rec).unwrap();
        self
    }
    fn bytes(self) -> Vec<u8> {
        self.enc.get_ref().clone()
    }
}

fn metadata(dataset: &str, schema: Option<Schema>, stype_in: SType) -> Metadata {
    Metadata::builder()
        .dataset(dataset)
        .schema(schema)
        .start(1_700_000_000_000_000_000)
        .stype_in(Some(stype_in))
        .stype_out(SType::InstrumentId)
        .build()
}

fn reader_of(bytes: Vec<u8>) -> DbnEventReader {
    DbnEventReader::from_reader(Cursor::new(bytes), "synthetic.dbn", "replay").unwrap()
}

fn hd<R: ::dbn::HasRType>(rtype: u8, publisher: u16, iid: u32, ts_event: u64) -> RecordHeader {
    RecordHeader::new::<R>(rtype, publisher, iid, ts_event)
}

const T0: u64 = 1_710_500_000_000_000_000; // 2024-03-15T10:53:20Z

fn option_def(iid: u32, raw: &str, class: u8, strike: i64, expiration: u64) -> InstrumentDefMsg {
    InstrumentDefMsg {
        hd: hd::<InstrumentDefMsg>(rtype::INSTRUMENT_DEF, 30, iid, T0),
        ts_recv: T0,
        raw_symbol: str_to_c_chars(raw).unwrap(),
        underlying: str_to_c_chars("SPY").unwrap(),
        asset: str_to_c_chars("SPY").unwrap(),
        instrument_class: class as std::ffi::c_char,
        strike_price: strike,
        expiration,
        ..Default::default()
    }
}

fn tcbbo(iid: u32, ts: u64, px: i64, size: u32, side: u8, bid: i64, ask: i64) -> Cmbp1Msg {
    Cmbp1Msg {
        hd: hd::<Cmbp1Msg>(rtype::TCBBO, 30, iid, ts),
        price: px,
        size,
        action: b'T' as std::ffi::c_char,
        side: side as std::ffi::c_char,
        flags: FlagSet::default(),
        ts_recv: ts + 1000,
        levels: [ConsolidatedBidAskPair {
            bid_px: bid,
            ask_px: ask,
            bid_sz: 10,
            ask_sz: 12,
            ..Default::default()
        }],
        ..Cmbp1Msg::default_for_schema(Schema::Tcbbo)
    }
}

const EXP_2024_03_15: u64 = 1_710_460_800_000_000_000; // 2024-03-15T00:00:00Z

#[test]
fn opra_trades_carry_contract_terms_and_quote_once_the_definition_is_known() {
    let md = metadata("OPRA.PILLAR", None, SType::Parent);
    let mut s = Stream::new(&md);
    s.add(&tcbbo(
        7,
        T0 + 1,
        1_500_000_000,
        3,
        b'B',
        1_450_000_000,
        1_550_000_000,
    ))
    .add(&option_def(
        7,
        "SPY   240315C00510000",
        b'C',
        510_000_000_000,
        EXP_2024_03_15,
    ))
    .add(&option_def(
        8,
        "SPY   240315P00505000",
        b'P',
        505_000_000_000,
        EXP_2024_03_15,
    ))
    .add(&tcbbo(
        7,
        T0 + 2,
        1_600_000_000,
        4,
        b'A',
        UNDEF_PRICE,
        1_650_000_000,
    ))
    .add(&tcbbo(
        8,
        T0 + 3,
        2_000_000_000,
        1,
        b'N',
        1_900_000_000,
        2_100_000_000,
    ))
    .add(&tcbbo(
        9,
        T0 + 4,
        2_000_000_000,
        1,
        b'N',
        1_900_000_000,
        2_100_000_000,
    ))
    .add(&tcbbo(
        9,
        T0 + 5,
        2_000_000_000,
        1,
        b'N',
        1_900_000_000,
        2_100_000_000,
    ));
    let mut r = reader_of(s.bytes());
    assert_eq!(r.market(), Market::Options);
    let events = read_all(&mut r);
    assert_eq!(events.len(), 2, "{events:?}");
    let Event::OptionTrade(c) = &events[0] else {
        panic!("{:?}", events[0])
    };
    assert_eq!(c.underlying, "SPY");
    assert_eq!(c.option_symbol, "SPY   240315C00510000");
    assert_eq!(c.exp_date, "2024-03-15", "midnight-UTC expiry is that date");
    assert_eq!(c.strike, 510.0);
    assert_eq!(c.right, 'C');
    assert_eq!(c.price, 1.6);
    assert_eq!(c.size, 4);
    assert_eq!(c.aggressor, -1);
    assert_eq!(c.opt_bid, None, "undefined bid is null, never the sentinel");
    assert_eq!(c.opt_ask, Some(1.65));
    assert_eq!(c.ts_event_ns, T0 + 2);
    assert_eq!(c.ts_recv_ns, T0 + 1002);
    assert_eq!(c.source, "replay");
    let Event::OptionTrade(p) = &events[1] else {
        panic!()
    };
    assert_eq!((p.right, p.strike, p.aggressor), ('P', 505.0, 0));
    assert_eq!((p.opt_bid, p.opt_ask), (Some(1.9), Some(2.1)));
    // The trade before instrument 7's definition and both trades of the never-defined 9.
    assert_eq!(r.skipped().get(reason::NO_DEFINITION), Some(&3));
    assert_eq!(r.records_read(), 7);
}

#[test]
fn opra_plain_trades_have_no_quote_and_interval_records_emit_each_sale_once() {
    let md = metadata("OPRA.PILLAR", None, SType::RawSymbol);
    let trade = TradeMsg {
        hd: hd::<TradeMsg>(rtype::MBP_0, 30, 7, T0 + 10),
        price: 1_250_000_000,
        size: 2,
        action: b'T' as std::ffi::c_char,
        side: b'B' as std::ffi::c_char,
        ts_recv: T0 + 11,
        sequence: 99,
        ..Default::default()
    };
    let cbbo = |ts_recv: u64, last_ts: u64| CbboMsg {
        hd: hd::<CbboMsg>(rtype::CBBO_1S, 30, 7, last_ts),
        price: 1_300_000_000,
        size: 5,
        side: b'A' as std::ffi::c_char,
        ts_recv,
        levels: [ConsolidatedBidAskPair {
            bid_px: 1_200_000_000,
            ask_px: 1_400_000_000,
            bid_sz: 1,
            ask_sz: 1,
            ..Default::default()
        }],
        ..CbboMsg::default_for_schema(Schema::Cbbo1S)
    };
    let mut s = Stream::new(&md);
    s.add(&option_def(
        7,
        "SPY   240315C00510000",
        b'C',
        510_000_000_000,
        EXP_2024_03_15,
    ))
    .add(&trade)
    .add(&cbbo(T0 + 1_000_000_000, T0 + 500))
    .add(&cbbo(T0 + 2_000_000_000, T0 + 500)) // forward-filled: same sale
    .add(&cbbo(T0 + 3_000_000_000, T0 + 2_500_000_000));
    let mut r = reader_of(s.bytes());
    let events = read_all(&mut r);
    assert_eq!(events.len(), 3, "{events:?}");
    let Event::OptionTrade(t) = &events[0] else {
        panic!()
    };
    assert_eq!(
        (t.price, t.size, t.aggressor, t.seq),
        (1.25, 2, 1, Some(99))
    );
    assert_eq!((t.opt_bid, t.opt_ask), (None, None));
    let Event::OptionTrade(c) = &events[1] else {
        panic!()
    };
    assert_eq!(
        (c.ts_event_ns, c.ts_recv_ns),
        (T0 + 500, T0 + 1_000_000_000)
    );
    assert_eq!((c.price, c.aggressor), (1.3, -1));
    assert_eq!((c.opt_bid, c.opt_ask), (Some(1.2), Some(1.4)));
    let Event::OptionTrade(c2) = &events[2] else {
        panic!()
    };
    assert_eq!(c2.ts_event_ns, T0 + 2_500_000_000);
    assert_eq!(r.skipped().get(reason::REPEATED_LAST_SALE), Some(&1));
}

fn mbp1(iid: u32, ts: u64, action: u8, side: u8, bid: i64, ask: i64) -> Mbp1Msg {
    Mbp1Msg {
        hd: hd::<Mbp1Msg>(rtype::MBP_1, 2, iid, ts),
        price: 510_120_000_000,
        size: 100,
        action: action as std::ffi::c_char,
        side: side as std::ffi::c_char,
        ts_recv: ts + 5,
        sequence: 7,
        levels: [BidAskPair {
            bid_px: bid,
            ask_px: ask,
            bid_sz: 300,
            ask_sz: 200,
            bid_ct: 3,
            ask_ct: 2,
        }],
        ..Default::default()
    }
}

#[test]
fn equities_mbp1_gives_trades_and_quotes_with_symbols_from_mapping_records() {
    let md = metadata("XNAS.ITCH", Some(Schema::Mbp1), SType::RawSymbol);
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
    let bbo = BboMsg {
        hd: hd::<BboMsg>(rtype::BBO_1S, 2, 15144, T0 + 3),
        price: 510_000_000_000,
        size: 1,
        side: b'B' as std::ffi::c_char,
        ts_recv: T0 + 1_000_000_000,
        sequence: 8,
        levels: [BidAskPair {
            bid_px: 510_100_000_000,
            ask_px: UNDEF_PRICE,
            bid_sz: 5,
            ask_sz: 9,
            bid_ct: 1,
            ask_ct: 1,
        }],
        ..BboMsg::default_for_schema(Schema::Bbo1S)
    };
    let mut s = Stream::new(&md);
    s.add(&mbp1(
        15144,
        T0,
        b'A',
        b'B',
        510_110_000_000,
        510_130_000_000,
    )) // before mapping
    .add(&mapping)
    .add(&mbp1(
        15144,
        T0 + 1,
        b'A',
        b'B',
        510_110_000_000,
        510_130_000_000,
    ))
    .add(&mbp1(
        15144,
        T0 + 2,
        b'T',
        b'A',
        510_110_000_000,
        510_130_000_000,
    ))
    .add(&bbo);
    let mut r = reader_of(s.bytes());
    assert_eq!(r.market(), Market::Equities);
    let events = read_all(&mut r);
    assert_eq!(events.len(), 3, "{events:?}");
    let Event::StockQuote(q) = &events[0] else {
        panic!("{:?}", events[0])
    };
    assert_eq!(q.symbol, "SPY");
    assert_eq!(
        (q.bid_px, q.ask_px, q.bid_sz, q.ask_sz),
        (510.11, 510.13, 300, 200)
    );
    assert_eq!(q.seq, Some(7));
    let Event::StockTrade(t) = &events[1] else {
        panic!("{:?}", events[1])
    };
    assert_eq!((t.symbol.as_str(), t.price, t.size), ("SPY", 510.12, 100));
    let Event::StockQuote(b) = &events[2] else {
        panic!("{:?}", events[2])
    };
    // An interval quote is stamped at the interval end; the missing ask is null with size 0.
    assert_eq!(
        (b.ts_event_ns, b.ts_recv_ns),
        (T0 + 1_000_000_000, T0 + 1_000_000_000)
    );
    assert_eq!(b.bid_px, 510.1);
    assert!(b.ask_px.is_nan());
    assert_eq!(b.ask_sz, 0);
    let json = events[2].to_json();
    assert!(json.contains(r#""ask_px":null"#), "{json}");
    assert_no_sentinel(&json);
    assert_eq!(r.skipped().get(reason::NO_SYMBOL), Some(&1));
}

#[test]
fn empty_book_rows_and_undefined_prices_become_null_rows() {
    let md = metadata("GLBX.MDP3", Some(Schema::Mbp10), SType::RawSymbol);
    let mapping = SymbolMappingMsg::new(
        42,
        T0,
        SType::RawSymbol,
        "ESM4",
        SType::RawSymbol,
        "ESM4",
        0,
        u64::MAX,
    )
    .unwrap();
    let mut book = Mbp10Msg {
        hd: hd::<Mbp10Msg>(rtype::MBP_10, 1, 42, T0),
        price: UNDEF_PRICE,
        size: 0,
        action: b'R' as std::ffi::c_char,
        side: b'N' as std::ffi::c_char,
        flags: FlagSet::new(::dbn::flags::SNAPSHOT | ::dbn::flags::LAST),
        ts_recv: T0 + 9,
        sequence: 5,
        ..Default::default()
    };
    for l in book.levels.iter_mut() {
        *l = BidAskPair {
            bid_px: UNDEF_PRICE,
            ask_px: UNDEF_PRICE,
            bid_sz: 0,
            ask_sz: 0,
            bid_ct: 0,
            ask_ct: 0,
        };
    }
    book.levels[0].bid_px = 5_300_250_000_000;
    book.levels[0].bid_sz = 4;
    book.levels[0].bid_ct = 2;
    let trade = TradeMsg {
        hd: hd::<TradeMsg>(rtype::MBP_0, 1, 42, T0 + 20),
        price: UNDEF_PRICE,
        size: 1,
        ts_recv: T0 + 21,
        ..Default::default()
    };
    let mut s = Stream::new(&md);
    s.add(&mapping).add(&book).add(&trade);
    let mut r = reader_of(s.bytes());
    let events = read_all(&mut r);
    assert_eq!(events.len(), 1);
    let Event::Mbp10(b) = &events[0] else {
        panic!()
    };
    assert_eq!(b.symbol, "ESM4");
    assert!(b.is_snapshot);
    assert_eq!(b.price, None);
    assert_eq!(b.levels[0].bid_px, Some(5300.25));
    assert_eq!(b.levels[0].ask_px, None);
    assert_eq!(b.levels[0].ask_ct, None);
    assert!(b.levels[1..].iter().all(|row| *row == BookRow::EMPTY));
    assert_no_sentinel(&events[0].to_json());
    assert_eq!(r.skipped().get(reason::UNDEF_TRADE_PRICE), Some(&1));
}

#[test]
fn parent_symbology_does_not_name_contracts() {
    let Some(dir) = samples_dir() else { return };
    // Re-encode the mbp-10 sample as if it had been requested as `ES.FUT` (parent): the
    // mapping then names the product, not the contract, so no symbol is invented.
    let path = dir.join("test_data.mbp-10.dbn");
    let mut dec = ::dbn::decode::DbnDecoder::from_file(&path).unwrap();
    let mut md = ::dbn::decode::DbnMetadata::metadata(&dec).clone();
    md.stype_in = Some(SType::Parent);
    for m in md.mappings.iter_mut() {
        m.raw_symbol = "ES.FUT".into();
    }
    let mut enc = DbnEncoder::new(Vec::new(), &md).unwrap();
    let mut n = 0;
    while let Some(rec) = ::dbn::decode::DecodeRecord::decode_record::<Mbp10Msg>(&mut dec).unwrap()
    {
        enc.encode_record(rec).unwrap();
        n += 1;
    }
    let mut r = reader_of(enc.get_ref().clone());
    assert!(read_all(&mut r).is_empty());
    assert_eq!(r.skipped().get(reason::NO_SYMBOL), Some(&n));
}

#[test]
fn expiry_dates_are_the_named_date_or_the_us_eastern_date() {
    assert_eq!(exp_date(EXP_2024_03_15).as_deref(), Some("2024-03-15"));
    // 2024-03-15T20:00:00Z is 16:00 EDT on the 15th.
    assert_eq!(
        exp_date(1_710_532_800_000_000_000).as_deref(),
        Some("2024-03-15")
    );
    // 2024-03-16T02:00:00Z is still the evening of the 15th in New York.
    assert_eq!(
        exp_date(1_710_554_400_000_000_000).as_deref(),
        Some("2024-03-15")
    );
    assert_eq!(exp_date(u64::MAX), None);
}

#[test]
fn markets_are_decided_by_dataset_prefix() {
    assert_eq!(Market::of_dataset("GLBX.MDP3"), Market::Futures);
    assert_eq!(Market::of_dataset("OPRA.PILLAR"), Market::Options);
    for ds in [
        "XNAS.ITCH",
        "EQUS.MINI",
        "DBEQ.BASIC",
        "XNYS.PILLAR",
        "ARCX.PILLAR",
        "IEXG.TOPS",
    ] {
        assert_eq!(Market::of_dataset(ds), Market::Equities, "{ds}");
    }
    assert_eq!(aggressor(b'B' as std::ffi::c_char), 1);
    assert_eq!(aggressor(b'A' as std::ffi::c_char), -1);
    assert_eq!(aggressor(b'N' as std::ffi::c_char), 0);
}

// ---- truncation -------------------------------------------------------------------------

/// Cuts `bytes` in the middle of its last record and checks the error and the events before.
fn check_truncated(bytes: &[u8], name: &str, dir: &Path) {
    let full = {
        let mut r = reader_of(bytes.to_vec());
        read_all(&mut r)
    };
    assert!(full.len() >= 2, "{name}: need two events");
    let rec_len = 368; // one mbp-10 record
    let cut = bytes.len() - rec_len / 2;
    let path = dir.join(name);
    std::fs::write(&path, &bytes[..cut]).unwrap();
    let mut r = DbnEventReader::open(&path, "replay").unwrap();
    let mut got = Vec::new();
    let err = loop {
        match r.next_event() {
            Ok(Some(ev)) => got.push(ev),
            Ok(None) => panic!("{name}: truncation not reported"),
            Err(e) => break e,
        }
    };
    assert_eq!(got, full[..full.len() - 1], "{name}: events before the cut");
    let start_of_last = (bytes.len() - rec_len) as u64;
    assert_eq!(err.kind.offset(), Some(start_of_last));
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(
        msg.contains(&format!("truncated record at byte offset {start_of_last}")),
        "{msg}"
    );
    // After the error the reader is finished, not stuck.
    assert!(r.next_event().unwrap().is_none());
}

#[test]
fn a_plain_file_cut_mid_record_reports_file_and_offset_after_earlier_events() {
    let Some(samples) = samples_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(samples.join("test_data.mbp-10.dbn")).unwrap();
    check_truncated(&bytes, "cut.mbp-10.dbn", tmp.path());
}

#[test]
fn a_decompressed_zst_cut_mid_record_reports_file_and_offset() {
    let Some(samples) = samples_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    for v in ["v1", "v2", "v3"] {
        let zst =
            std::fs::File::open(samples.join(format!("test_data.mbp-10.{v}.dbn.zst"))).unwrap();
        let mut plain = Vec::new();
        let mut reader = ::dbn::decode::DynReader::new_inferred(zst).unwrap();
        std::io::Read::read_to_end(&mut reader, &mut plain).unwrap();
        // v1 records are upgraded while decoding, but offsets are of the input bytes: the v1
        // mbp-10 record is also 368 bytes long.
        check_truncated(&plain, &format!("cut.mbp-10.{v}.dbn"), tmp.path());
    }
}

#[test]
fn a_cut_zstd_stream_is_reported_with_a_decompressed_offset() {
    // A compressed stream long enough to span several zstd blocks, cut in the middle.
    let md = metadata("GLBX.MDP3", Some(Schema::Trades), SType::RawSymbol);
    let mapping = SymbolMappingMsg::new(
        42,
        T0,
        SType::RawSymbol,
        "ESM4",
        SType::RawSymbol,
        "ESM4",
        0,
        u64::MAX,
    )
    .unwrap();
    let n = 20_000u64;
    let mut zst = Vec::new();
    let mut enc = DbnEncoder::with_zstd(&mut zst, &md).unwrap();
    enc.encode_record(&mapping).unwrap();
    for i in 0..n {
        let trade = TradeMsg {
            hd: hd::<TradeMsg>(rtype::MBP_0, 1, 42, T0 + i),
            price: 5_300_000_000_000 + (i as i64 % 97) * 250_000_000,
            size: (i % 13) as u32 + 1,
            side: b"ABN"[(i % 3) as usize] as std::ffi::c_char,
            ts_recv: T0 + i * 7,
            sequence: i as u32,
            ..Default::default()
        };
        enc.encode_record(&trade).unwrap();
    }
    drop(enc); // writes the end of the zstd frame
    let plain_md_len = Stream::new(&md).bytes().len() as u64;
    let full = reader_of(zst.clone()).count();
    assert_eq!(full as u64, n);

    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("cut.trades.dbn.zst");
    std::fs::write(&path, &zst[..zst.len() / 2]).unwrap();
    let mut r = DbnEventReader::open(&path, "replay").unwrap();
    let mut got = 0u64;
    let err = loop {
        match r.next_event() {
            Ok(Some(_)) => got += 1,
            Ok(None) => panic!("cut zstd stream not reported"),
            Err(e) => break e,
        }
    };
    assert!(got > 0 && got < n, "{got} events before the cut");
    // The offset is where the first record not returned starts in the decompressed stream.
    let expected = plain_md_len + std::mem::size_of::<SymbolMappingMsg>() as u64 + got * 48;
    assert_eq!(err.kind.offset(), Some(expected), "{err}");
    let msg = err.to_string();
    assert!(msg.starts_with(&path.display().to_string()), "{msg}");
    assert!(msg.ends_with("(decompressed stream)"), "{msg}");
    assert!(msg.contains(&format!("byte offset {expected}")), "{msg}");
}

#[test]
fn garbage_and_empty_input_are_errors_naming_the_input() {
    let e =
        DbnEventReader::from_reader(Cursor::new(Vec::new()), "empty.dbn", "replay").unwrap_err();
    assert!(e.to_string().starts_with("empty.dbn: "), "{e}");
    let e = DbnEventReader::from_reader(Cursor::new(b"hello world, not dbn".to_vec()), "junk", "x")
        .unwrap_err();
    assert!(e.to_string().starts_with("junk: "), "{e}");
    let e = DbnEventReader::open(Path::new("/nonexistent/x.dbn"), "replay").unwrap_err();
    assert!(e.to_string().contains("/nonexistent/x.dbn"), "{e}");
}

#[test]
fn a_record_with_a_zero_length_is_corrupt_at_its_offset() {
    let md = metadata("GLBX.MDP3", Some(Schema::Trades), SType::RawSymbol);
    let mapping = SymbolMappingMsg::new(
        42,
        T0,
        SType::RawSymbol,
        "ESM4",
        SType::RawSymbol,
        "ESM4",
        0,
        u64::MAX,
    )
    .unwrap();
    let trade = TradeMsg {
        hd: hd::<TradeMsg>(rtype::MBP_0, 1, 42, T0 + 20),
        price: 5_300_000_000_000,
        size: 1,
        ts_recv: T0 + 21,
        ..Default::default()
    };
    let mut s = Stream::new(&md);
    s.add(&mapping).add(&trade).add(&trade);
    let mut bytes = s.bytes();
    let last = bytes.len() - std::mem::size_of::<TradeMsg>();
    bytes[last] = 0; // length field of the last record
    let mut r = reader_of(bytes);
    assert!(matches!(r.next_event(), Ok(Some(Event::FuturesTrade(_)))));
    let e = r.next_event().unwrap_err();
    assert_eq!(e.kind.offset(), Some(last as u64), "{e}");
    assert!(
        e.to_string().contains("corrupt record at byte offset"),
        "{e}"
    );
}

#[test]
fn readers_can_move_to_another_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<DbnEventReader>();
}

#[test]
fn definitions_from_a_separate_file_make_a_trade_file_readable() {
    let tmp = tempfile::tempdir().unwrap();
    let def_md = metadata("OPRA.PILLAR", Some(Schema::Definition), SType::RawSymbol);
    let mut s = Stream::new(&def_md);
    s.add(&option_def(
        7,
        "SPY   240315C00510000",
        b'C',
        510_000_000_000,
        EXP_2024_03_15,
    ));
    let def_path = tmp.path().join("opra.definition.dbn");
    std::fs::write(&def_path, s.bytes()).unwrap();
    let defs = DbnEventReader::load_definitions(&def_path).unwrap();
    assert_eq!(defs.options.len(), 1);
    assert_eq!(
        defs.symbols.get(&7).map(String::as_str),
        Some("SPY   240315C00510000")
    );

    let md = metadata("OPRA.PILLAR", Some(Schema::Tcbbo), SType::RawSymbol);
    let mut s = Stream::new(&md);
    s.add(&tcbbo(
        7,
        T0 + 1,
        1_500_000_000,
        3,
        b'B',
        1_450_000_000,
        1_550_000_000,
    ));
    let bytes = s.bytes();
    // Without the definitions the trade is skipped, with them it maps.
    let mut bare = reader_of(bytes.clone());
    assert!(read_all(&mut bare).is_empty());
    let mut r = reader_of(bytes);
    r.add_definitions(&defs);
    let events = read_all(&mut r);
    let [Event::OptionTrade(t)] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert_eq!((t.strike, t.right, t.aggressor), (510.0, 'C', 1));
    assert_eq!(
        r.option_terms(7).map(|o| o.exp_date.as_str()),
        Some("2024-03-15")
    );
}

#[test]
fn the_equity_definition_sample_names_its_instruments() {
    let Some(dir) = samples_dir() else { return };
    let defs =
        DbnEventReader::load_definitions(&dir.join("test_data.definition.v1.dbn.zst")).unwrap();
    // Two MSFT definitions (instrument ids of two days), no option terms: XNAS is equities.
    assert_eq!(defs.symbols.get(&6819).map(String::as_str), Some("MSFT"));
    assert_eq!(defs.symbols.get(&6830).map(String::as_str), Some("MSFT"));
    assert!(defs.options.is_empty());
}

#[test]
fn a_recycled_book_image_is_overwritten_completely() {
    let Some(dir) = samples_dir() else { return };
    let path = dir.join("test_data.mbp-10.v3.dbn.zst");
    let fresh: Vec<Event> = DbnEventReader::open(&path, "replay")
        .expect("open")
        .map(|e| e.expect("event"))
        .collect();
    let mut reader = DbnEventReader::open(&path, "replay").expect("open");
    let mut recycled = Vec::new();
    while let Some(ev) = reader.next_event().expect("event") {
        recycled.push(ev.to_json());
        // Hand back a stale image whose every field differs from the next record's.
        let Event::Mbp10(mut stale) = ev else {
            panic!("not an mbp10")
        };
        stale.source = "a much longer source name".into();
        stale.symbol = "NQZ5".into();
        stale.levels = [BookRow::EMPTY; crate::event::BOOK_DEPTH];
        stale.levels[9].bid_px = Some(1.0);
        stale.seq = None;
        stale.price = Some(f64::NAN);
        EventSource::recycle(&mut reader, Event::Mbp10(stale));
    }
    let fresh: Vec<String> = fresh.iter().map(Event::to_json).collect();
    assert_eq!(recycled, fresh);
}
