//! Engine-level behaviour tests (PHYSICS.md §8–§9): snaps, market state and payloads.

use super::*;
use crate::event::{BOOK_DEPTH, BookRow, FuturesTrade, Mbp10, OptionTrade, StockTrade};

const S: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;
/// 2026-11-24 15:00:00 UTC = 10:00 EST (a Tuesday).
const T0: u64 = 1_795_532_400 * S;

fn trade(ts: u64, symbol: &str, price: f64, size: u32, aggressor: i8) -> Event {
    Event::FuturesTrade(FuturesTrade {
        ts_event_ns: ts,
        ts_recv_ns: ts,
        source: "test".into(),
        symbol: symbol.into(),
        price,
        size,
        aggressor,
        exchange: None,
        seq: None,
    })
}

fn book(ts: u64, symbol: &str, bids: &[(f64, u32)], asks: &[(f64, u32)]) -> Event {
    let mut levels = [BookRow::EMPTY; BOOK_DEPTH];
    for (i, &(p, s)) in bids.iter().enumerate() {
        levels[i].bid_px = Some(p);
        levels[i].bid_sz = s;
    }
    for (i, &(p, s)) in asks.iter().enumerate() {
        levels[i].ask_px = Some(p);
        levels[i].ask_sz = s;
    }
    Event::Mbp10(Box::new(Mbp10 {
        ts_event_ns: ts,
        ts_recv_ns: ts,
        source: "test".into(),
        symbol: symbol.into(),
        levels,
        is_snapshot: false,
        seq: None,
        action: None,
        side: None,
        price: None,
        size: None,
        flags: None,
    }))
}

fn spy(ts: u64, price: f64) -> Event {
    Event::StockTrade(StockTrade {
        ts_event_ns: ts,
        ts_recv_ns: ts,
        source: "test".into(),
        symbol: "SPY".into(),
        price,
        size: 100,
        exchange: None,
        seq: None,
    })
}

#[allow(clippy::too_many_arguments)]
fn option(
    ts: u64,
    exp: &str,
    strike: f64,
    right: char,
    price: f64,
    size: u32,
    quote: Option<(f64, f64)>,
    aggressor: i8,
) -> Event {
    Event::OptionTrade(OptionTrade {
        ts_event_ns: ts,
        ts_recv_ns: ts,
        source: "test".into(),
        underlying: "SPY".into(),
        option_symbol: format!("SPY {exp} {right}{strike}"),
        exp_date: exp.into(),
        strike,
        right,
        price,
        size,
        opt_bid: quote.map(|q| q.0),
        opt_ask: quote.map(|q| q.1),
        aggressor,
        seq: None,
    })
}

/// Applies events, collecting snaps.
fn feed(engine: &mut Engine, events: &[Event]) -> Vec<LevelSignals> {
    events.iter().filter_map(|e| engine.apply(e)).collect()
}

fn level<'a>(snap: &'a LevelSignals, id: &str) -> &'a LevelSignal {
    snap.levels
        .iter()
        .find(|l| l.id == id)
        .unwrap_or_else(|| panic!("{id} not in {:?}", ids(snap)))
}

fn ids(snap: &LevelSignals) -> Vec<&str> {
    snap.levels.iter().map(|l| l.id.as_str()).collect()
}

#[test]
fn ratio_10_maps_es_6870_to_spy_687_and_4_ticks_to_10_cents() {
    let mut e = Engine::new(Config::default());
    feed(&mut e, &[trade(T0, "ESZ5", 6870.0, 1, 1)]);
    assert_eq!(e.market().ratio(), 10.0);
    assert_eq!(e.market().spot(), Some(687.0));
    assert_eq!(4.0 * e.config().es_tick_size / e.market().ratio(), 0.10);
}

#[test]
fn no_snap_before_a_trade_and_a_book_image_then_one_per_quiet_gap_and_none_at_the_end() {
    let mut e = Engine::new(Config::default());
    let snaps = feed(
        &mut e,
        &[
            book(T0 + 10 * MS, "ESZ5", &[(6870.0, 10)], &[(6870.25, 10)]),
            book(T0 + 300 * MS, "ESZ5", &[(6870.0, 11)], &[(6870.25, 10)]),
            book(T0 + 600 * MS, "ESZ5", &[(6870.0, 12)], &[(6870.25, 10)]),
        ],
    );
    assert!(snaps.is_empty());
    assert_eq!(e.stats().snaps_not_ready, 2);
    let snaps = feed(
        &mut e,
        &[
            trade(T0 + 700 * MS, "ESZ5", 6870.25, 1, 1),
            // Boundary 750 ms: first snap.
            trade(T0 + 800 * MS, "ESZ5", 6870.25, 1, 1),
            // A quiet gap of 10 s: one snap at the largest boundary ≤ ts.
            trade(T0 + 10_900 * MS, "ESZ5", 6870.25, 1, 1),
        ],
    );
    let ts: Vec<i64> = snaps.iter().map(|s| s.ts).collect();
    let t0_ms = (T0 / MS) as i64;
    assert_eq!(ts, [t0_ms + 750, t0_ms + 10_750]);
    assert_eq!(e.stats().snaps_emitted, 2);
    // Bid/ask from the latest image, spot from the last trade.
    assert_eq!(snaps[0].spy.spot, Some(687.025));
    assert_eq!(snaps[0].spy.bid, Some(687.0));
    assert_eq!(snaps[0].spy.ask, Some(687.025));
}

#[test]
fn a_snap_reflects_events_before_its_boundary_and_not_the_crossing_event() {
    let mut e = Engine::new(Config::default());
    let snaps = feed(
        &mut e,
        &[
            book(T0, "ESZ5", &[(6870.0, 10)], &[(6870.25, 10)]),
            trade(T0 + 100 * MS, "ESZ5", 6870.0, 1, -1),
            trade(T0 + 250 * MS, "ESZ5", 6880.0, 1, 1),
        ],
    );
    assert_eq!(snaps.len(), 1);
    assert_eq!(snaps[0].spy.spot, Some(687.0));
    assert_eq!(e.market().spot(), Some(688.0));
}

/// Support at ROUND_687: spot 687.1, bid depth at 6870 pulled from 500 to 100.
fn vacuum_events(side_bid: bool) -> Vec<Event> {
    let (px, bids_before, asks_before, bids_after, asks_after) = if side_bid {
        (
            6871.0,
            vec![(6870.0, 500)],
            vec![(6871.25, 10)],
            vec![(6870.0, 100)],
            vec![(6871.25, 10)],
        )
    } else {
        (
            6869.0,
            vec![(6868.75, 10)],
            vec![(6870.0, 500)],
            vec![(6868.75, 10)],
            vec![(6870.0, 100)],
        )
    };
    vec![
        trade(T0, "ESZ5", px, 1, 0),
        book(T0 + 10 * MS, "ESZ5", &bids_before, &asks_before),
        book(T0 + 20 * MS, "ESZ5", &bids_after, &asks_after),
        trade(T0 + 300 * MS, "ESZ5", px, 1, 0),
    ]
}

#[test]
fn pulled_bids_under_a_support_and_pulled_asks_over_a_resistance_are_vacuums() {
    let cfg = Config {
        f_thresh: 50.0,
        ..Config::default()
    };
    for side_bid in [true, false] {
        let mut e = Engine::new(cfg.clone());
        let snaps = feed(&mut e, &vacuum_events(side_bid));
        assert_eq!(snaps.len(), 1);
        let l = level(&snaps[0], "ROUND_687");
        let want_dir = if side_bid { "SUPPORT" } else { "RESISTANCE" };
        assert_eq!(l.direction, want_dir);
        assert_eq!(l.barrier.state, "VACUUM");
        assert_eq!(l.barrier.canceled, 400.0);
        assert_eq!(l.barrier.filled, 0.0);
        assert_eq!(l.barrier.depth_in_zone, 100.0);
        assert_eq!(l.barrier.defending_quote.price, Some(687.0));
        assert_eq!(l.barrier.defending_quote.size, 100);
        assert_eq!(l.note, "Vacuum");
        // VACUUM + NEUTRAL fuel + flat tape.
        assert_eq!(l.break_score_raw, 0.45 * 100.0 + 0.35 * 50.0);
        assert_eq!(l.break_score_smooth, l.break_score_raw);
        assert!((l.distance - 0.1).abs() < 1e-9);
    }
}

#[test]
fn levels_are_active_within_the_band_nearest_first_with_hotzones() {
    let cfg = Config {
        hotzones: vec![687.25, 700.0],
        ..Config::default()
    };
    let mut e = Engine::new(cfg);
    let snaps = feed(
        &mut e,
        &[
            trade(T0, "ESZ5", 6871.0, 10, 1),
            book(T0 + 1, "ESZ5", &[(6870.75, 10)], &[(6871.0, 10)]),
            trade(T0 + 300 * MS, "ESZ5", 6871.0, 1, 1),
        ],
    );
    // Spot 687.1: VWAP/high/low at 687.1, HOTZONE_687.25 at 0.15, ROUND_687 at 0.1.
    assert_eq!(
        ids(&snaps[0]),
        [
            "VWAP",
            "SESSION_HIGH",
            "SESSION_LOW",
            "ROUND_687",
            "HOTZONE_687.25"
        ]
    );
    let l = level(&snaps[0], "ROUND_687");
    assert_eq!(
        (l.kind.as_str(), l.direction.as_str()),
        ("ROUND", "SUPPORT")
    );
    // Runway DOWN from 687: nothing in the universe below within view except ROUND_686.
    assert_eq!(l.runway.direction, "DOWN");
    assert_eq!(l.runway.next_obstacle.as_ref().unwrap().id, "ROUND_686");
    assert_eq!(l.runway.distance, Some(1.0));
    assert_eq!(l.runway.quality, "CLEAR");
    let h = level(&snaps[0], "HOTZONE_687.25");
    assert_eq!(
        (h.kind.as_str(), h.direction.as_str()),
        ("USER_HOTZONE", "RESISTANCE")
    );
    // The strong levels (VWAP, extremes) sit at spot, behind both levels' runways.
    assert_eq!(h.runway.direction, "UP");
    assert_eq!(h.runway.next_obstacle.as_ref().unwrap().id, "ROUND_688");
    assert_eq!(h.runway.quality, "CLEAR");
}

#[test]
fn ratio_follows_spy_prints() {
    let mut e = Engine::new(Config::default());
    let snaps = feed(
        &mut e,
        &[
            trade(T0, "ESZ5", 6880.0, 1, 1),
            book(T0 + 1, "ESZ5", &[(6879.75, 10)], &[(6880.0, 10)]),
            spy(T0 + 2, 687.5),
            trade(T0 + 300 * MS, "ESZ5", 6880.0, 1, 1),
        ],
    );
    let ratio = 6880.0 / 687.5;
    assert_eq!(e.market().ratio(), ratio);
    assert_eq!(snaps[0].spy.spot, Some(6880.0 / ratio));
    assert_eq!(snaps[0].spy.bid, Some(6879.75 / ratio));
}

#[test]
fn session_resets_at_six_pm_eastern() {
    // 2026-11-24 17:59:59 EST = 22:59:59 UTC.
    let before = 1_795_561_199 * S;
    let mut e = Engine::new(Config::default());
    let snaps = feed(
        &mut e,
        &[
            trade(before - 2 * S, "ESZ5", 6900.0, 10, 1),
            book(
                before - 2 * S + 1,
                "ESZ5",
                &[(6899.75, 10)],
                &[(6900.0, 10)],
            ),
            trade(before - S, "ESZ5", 6870.0, 10, 1),
            trade(before + 100 * MS, "ESZ5", 6870.0, 10, 1),
            // 18:00:00.2 EST: a new trading date.
            trade(before + S + 200 * MS, "ESZ5", 6871.0, 10, 1),
            trade(before + S + 600 * MS, "ESZ5", 6871.0, 10, 1),
        ],
    );
    // The snap at 18:00:00 still reflects the old session: VWAP 6880 → 688, outside the band.
    let pre = snaps.iter().find(|s| s.ts == ((before + S) / MS) as i64);
    let pre = pre.expect("a snap at 18:00");
    assert!(pre.levels.iter().all(|l| l.id != "VWAP"));
    assert_eq!(pre.spy.spot, Some(687.0));
    assert_eq!(e.stats().session_resets, 1);
    let post = snaps.last().unwrap();
    assert!(post.ts > (before / MS) as i64 + 1_000);
    assert_eq!(level(post, "VWAP").price, 687.1);
    assert_eq!(level(post, "SESSION_HIGH").price, 687.1);
    assert_eq!(level(post, "SESSION_LOW").price, 687.1);
}

#[test]
fn the_most_traded_outright_contract_is_followed_and_spreads_are_ignored() {
    let mut e = Engine::new(Config::default());
    let snaps = feed(
        &mut e,
        &[
            trade(T0, "ESZ5", 6870.0, 5, 1),
            book(T0 + 1, "ESZ5", &[(6869.75, 10)], &[(6870.0, 10)]),
            trade(T0 + 2, "ESZ5-ESH6", 50.0, 1_000, 1),
            trade(T0 + 3, "ESH6", 6930.0, 50, 1),
            book(T0 + 4, "ESH6", &[(6929.75, 10)], &[(6930.0, 10)]),
            // Boundary 250 ms: ESH6 has the most volume; the switch clears the book.
            trade(T0 + 300 * MS, "ESH6", 6930.0, 1, 1),
            book(T0 + 400 * MS, "ESH6", &[(6929.75, 10)], &[(6930.0, 10)]),
            trade(T0 + 600 * MS, "ESH6", 6930.0, 1, 1),
        ],
    );
    assert_eq!(e.stats().spread_events, 1);
    assert_eq!(e.stats().contract_switches, 1);
    assert_eq!(e.market().followed_symbol(), Some("ESH6"));
    // The switch snap had no ESH6 book yet: only the 500 ms snap is emitted.
    assert_eq!(snaps.len(), 1);
    assert_eq!(snaps[0].spy.spot, Some(693.0));
    assert_eq!(snaps[0].spy.bid, Some(692.975));
}

#[test]
fn a_pinned_futures_symbol_is_never_switched() {
    let cfg = Config {
        futures_symbol: Some("ESZ5".into()),
        ..Config::default()
    };
    let mut e = Engine::new(cfg);
    feed(
        &mut e,
        &[
            trade(T0, "ESH6", 6930.0, 50, 1),
            trade(T0 + 1, "ESZ5", 6870.0, 5, 1),
            trade(T0 + 300 * MS, "ESH6", 6930.0, 50, 1),
        ],
    );
    assert_eq!(e.market().followed_symbol(), Some("ESZ5"));
    assert_eq!(e.stats().other_contract_events, 2);
    assert_eq!(e.market().spot(), Some(687.0));
}

#[test]
fn option_flows_record_0dte_trades_with_greeks_and_feed_strike_levels() {
    let mut e = Engine::new(Config::default());
    let snaps = feed(
        &mut e,
        &[
            // No spot yet: recorded with zero greeks.
            option(
                T0,
                "2026-11-24",
                687.0,
                'C',
                1.50,
                10,
                Some((1.40, 1.50)),
                0,
            ),
            trade(T0 + 1, "ESZ5", 6871.0, 1, 1),
            book(T0 + 2, "ESZ5", &[(6870.75, 10)], &[(6871.0, 10)]),
            // Customer buys at the ask: dealers short gamma.
            option(
                T0 + 3,
                "2026-11-24",
                687.0,
                'C',
                1.50,
                1_000,
                Some((1.40, 1.50)),
                0,
            ),
            // Not 0dte: skipped.
            option(T0 + 4, "2026-11-25", 687.0, 'C', 2.50, 50, None, 1),
            // Another underlying: ignored.
            trade(T0 + 300 * MS, "ESZ5", 6871.0, 1, 1),
        ],
    );
    let st = e.stats();
    assert_eq!(
        (st.options_recorded, st.options_no_spot, st.options_not_0dte),
        (2, 1, 1)
    );
    let l = level(&snaps[0], "STRIKE_687");
    assert_eq!(l.kind, "STRIKE");
    // Independent check of the dealer gamma: −1·1000·γ·100 with γ from the implied volatility.
    let t = (1_795_554_000.0 - (T0 + 3) as f64 / 1e9) / (365.0 * 86_400.0);
    let bs = greeks::BsInputs {
        is_call: true,
        spot: 687.1,
        strike: 687.0,
        t,
        r: 0.04,
    };
    let sigma = bs.implied_vol(1.50, 1e-6).unwrap();
    let (gamma, _) = bs.gamma_delta(sigma);
    let want = -1_000.0 * gamma * 100.0;
    assert!(want < -10_000.0, "{want}");
    assert!((l.fuel.net_dealer_gamma - want).abs() < 1e-6 * want.abs());
    assert_eq!(l.fuel.effect, "AMPLIFY");
    assert_eq!(level(&snaps[0], "ROUND_687").fuel.effect, "AMPLIFY");
    assert!(l.note.contains("dealers chase"), "{}", l.note);
    // The same strike is the call wall (−gamma beyond 1 000) and is named in the payload.
    assert_eq!(l.fuel.call_wall, Some(687.0));
    assert!(snaps[0].levels.iter().any(|l| l.id == "CALL_WALL"));
}

#[test]
fn a_level_returning_to_the_band_starts_its_smoothers_afresh() {
    let cfg = Config {
        f_thresh: 50.0,
        ..Config::default()
    };
    let mut e = Engine::new(cfg);
    let mut events = vacuum_events(true);
    // Spot moves away (687.9: ROUND_687 inactive) while bids come back, then returns.
    events.push(trade(T0 + 600 * MS, "ESZ5", 6879.0, 1, 0));
    events.push(book(
        T0 + 700 * MS,
        "ESZ5",
        &[(6870.0, 300)],
        &[(6871.25, 10)],
    ));
    events.push(trade(T0 + 800 * MS, "ESZ5", 6871.0, 1, 0));
    events.push(trade(T0 + 1_100 * MS, "ESZ5", 6871.0, 1, 0));
    let snaps = feed(&mut e, &events);
    assert_eq!(snaps.len(), 4);
    assert!(snaps[1].levels.iter().any(|l| l.id == "ROUND_687"));
    assert!(snaps[2].levels.iter().all(|l| l.id != "ROUND_687"));
    let back = level(&snaps[3], "ROUND_687");
    assert_eq!(level(&snaps[1], "ROUND_687").barrier.delta_liq, -400.0);
    assert_eq!(back.barrier.delta_liq, -200.0);
    // Without the reset the smoother would still remember −400.
    assert_eq!(back.barrier.delta_liq_smooth, -200.0);
    assert_eq!(back.break_score_smooth, back.break_score_raw);
}

/// A busy synthetic session used for determinism and the allocation-free path.
fn synthetic(n: usize) -> Vec<Event> {
    let mut out = Vec::with_capacity(n);
    let mut x: u64 = 42;
    let mut rnd = |m: u64| {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) % m
    };
    let mut ts = T0;
    let mut mid = 6870.0;
    for i in 0..n {
        ts += 1 + rnd(2 * MS);
        match rnd(20) {
            0..=3 => {
                mid += 0.25 * (rnd(3) as f64 - 1.0);
                let agg = if rnd(2) == 0 { 1 } else { -1 };
                let px = if agg == 1 { mid + 0.25 } else { mid };
                out.push(trade(ts, "ESZ5", px, 1 + rnd(30) as u32, agg));
            }
            4 => out.push(spy(ts, mid / 10.0 + 0.01 * (rnd(3) as f64 - 1.0))),
            5 => {
                let k = (mid / 10.0).round() + rnd(5) as f64 - 2.0;
                let right = if rnd(2) == 0 { 'C' } else { 'P' };
                let p = 0.5 + rnd(200) as f64 / 100.0;
                out.push(option(
                    ts,
                    "2026-11-24",
                    k,
                    right,
                    p,
                    1 + rnd(50) as u32,
                    Some((p - 0.05, p + 0.05)),
                    0,
                ));
            }
            _ => {
                let bids: Vec<(f64, u32)> = (0..10)
                    .map(|j| (mid - 0.25 * j as f64, 1 + rnd(300) as u32))
                    .collect();
                let asks: Vec<(f64, u32)> = (0..10)
                    .map(|j| (mid + 0.25 * (j + 1) as f64, 1 + rnd(300) as u32))
                    .collect();
                out.push(book(ts, "ESZ5", &bids, &asks));
            }
        }
        if i % 5000 == 0 {
            mid += 0.25;
        }
    }
    out
}

fn run_to_json(events: &[Event], cfg: &Config) -> Vec<String> {
    let mut e = Engine::new(cfg.clone());
    events
        .iter()
        .filter_map(|ev| e.apply(ev))
        .map(|s| Event::LevelSignals(s).to_json())
        .collect()
}

#[test]
fn the_same_events_give_byte_identical_payloads() {
    let events = synthetic(30_000);
    let cfg = Config {
        hotzones: vec![687.3],
        ..Config::default()
    };
    let a = run_to_json(&events, &cfg);
    let b = run_to_json(&events, &cfg);
    assert!(a.len() > 50, "{}", a.len());
    assert_eq!(a, b);
    // Every payload is valid JSON without non-finite numbers and reads back.
    for line in &a {
        assert!(!line.contains("NaN") && !line.contains("inf"));
        let back = Event::from_json(line.as_bytes(), None).unwrap();
        assert_eq!(back.kind(), crate::event::EventKind::LevelSignals);
    }
    assert!(a.iter().any(|l| l.contains("\"kind\":\"STRIKE\"")));
}

#[test]
fn every_payload_key_of_physics_section_8_is_present() {
    let events = synthetic(5_000);
    let line = run_to_json(&events, &Config::default())
        .pop()
        .expect("a snap");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["type"], "level_signals");
    for key in ["spot", "bid", "ask"] {
        assert!(v["spy"].get(key).is_some(), "spy.{key}");
    }
    let l = &v["levels"][0];
    for key in [
        "id",
        "price",
        "kind",
        "direction",
        "distance",
        "break_score_raw",
        "break_score_smooth",
        "signal",
        "confidence",
        "note",
    ] {
        assert!(l.get(key).is_some(), "{key}");
    }
    for key in [
        "state",
        "delta_liq",
        "delta_liq_smooth",
        "replenishment_ratio",
        "replenishment_ratio_smooth",
        "added",
        "canceled",
        "filled",
        "defending_quote",
        "churn",
        "depth_in_zone",
    ] {
        assert!(l["barrier"].get(key).is_some(), "barrier.{key}");
    }
    for key in ["price", "size"] {
        assert!(l["barrier"]["defending_quote"].get(key).is_some());
    }
    for key in [
        "imbalance",
        "buy_vol",
        "sell_vol",
        "velocity",
        "velocity_smooth",
        "sweep",
    ] {
        assert!(l["tape"].get(key).is_some(), "tape.{key}");
    }
    for key in [
        "detected",
        "direction",
        "notional",
        "num_prints",
        "window_ms",
    ] {
        assert!(l["tape"]["sweep"].get(key).is_some(), "sweep.{key}");
    }
    for key in [
        "effect",
        "net_dealer_gamma",
        "net_dealer_gamma_smooth",
        "call_wall",
        "put_wall",
        "hvl",
    ] {
        assert!(l["fuel"].get(key).is_some(), "fuel.{key}");
    }
    for key in ["direction", "distance", "next_obstacle", "quality"] {
        assert!(l["runway"].get(key).is_some(), "runway.{key}");
    }
}

#[test]
fn out_of_order_events_are_counted_and_applied() {
    let mut e = Engine::new(Config::default());
    feed(
        &mut e,
        &[
            trade(T0 + 100, "ESZ5", 6870.0, 1, 1),
            trade(T0 + 50, "ESZ5", 6871.0, 1, 1),
        ],
    );
    assert_eq!(e.stats().out_of_order, 1);
    assert_eq!(e.market().spot(), Some(687.1));
}

#[test]
fn bad_prices_are_counted_not_applied() {
    let mut e = Engine::new(Config::default());
    feed(
        &mut e,
        &[
            trade(T0, "ESZ5", 6870.0, 1, 1),
            trade(T0 + 1, "ESZ5", f64::NAN, 1, 1),
            book(
                T0 + 2,
                "ESZ5",
                &[(f64::NAN, 5), (6869.75, 5)],
                &[(6869.5, 5)],
            ),
        ],
    );
    assert_eq!(e.stats().non_finite_prices, 2);
    assert_eq!(e.stats().crossed_books, 1);
    assert_eq!(e.market().spot(), Some(687.0));
}

#[test]
fn wall_clock_snaps_only_when_a_boundary_passed_quietly() {
    let mut e = Engine::new(Config::default());
    feed(
        &mut e,
        &[
            trade(T0, "ESZ5", 6870.0, 1, 1),
            book(T0 + 1, "ESZ5", &[(6869.75, 5)], &[(6870.0, 5)]),
        ],
    );
    assert_eq!(e.snap_at(T0 + 100 * MS), None);
    let s = e.snap_at(T0 + 1_100 * MS).expect("quiet boundary");
    assert_eq!(s.ts, ((T0 + 1_000 * MS) / MS) as i64);
    assert_eq!(e.snap_at(T0 + 1_200 * MS), None);
}

#[test]
fn a_pulled_offer_with_dealers_short_gamma_and_buying_breaks_after_three_seconds() {
    let mut e = Engine::new(Config::default());
    let mut events = vec![
        trade(T0, "ESZ5", 6869.0, 1, 1),
        book(T0 + 10 * MS, "ESZ5", &[(6868.75, 50)], &[(6870.0, 500)]),
        book(T0 + 20 * MS, "ESZ5", &[(6868.75, 50)], &[(6870.0, 100)]),
        option(T0 + 30 * MS, "2026-11-24", 687.0, 'C', 1.50, 5_000, None, 1),
    ];
    for i in 1..60u64 {
        events.push(trade(T0 + i * 100 * MS, "ESZ5", 6869.0, 5, 1));
    }
    let snaps = feed(&mut e, &events);
    let signals: Vec<(i64, String, f64)> = snaps
        .iter()
        .map(|s| {
            let l = level(s, "ROUND_687");
            (s.ts, l.signal.clone(), l.break_score_raw)
        })
        .collect();
    let first = signals[0].0;
    for (ts, signal, score) in &signals {
        assert!(*score > 80.0, "{ts}: {score}");
        let held_for = ts - first;
        let want = if held_for >= 3_000 {
            "BREAK"
        } else {
            "NEUTRAL"
        };
        assert_eq!(signal, want, "after {held_for} ms");
    }
    assert!(signals.len() >= 20);
    let l = level(snaps.last().unwrap(), "ROUND_687");
    assert_eq!(
        (l.direction.as_str(), l.runway.direction.as_str()),
        ("RESISTANCE", "UP")
    );
    assert_eq!(l.barrier.state, "VACUUM");
    assert_eq!(l.fuel.effect, "AMPLIFY");
    assert_eq!(l.note, "Vacuum; dealers chase");
    // The call wall sits at the level itself, so the next obstacle up is ROUND_688.
    assert_eq!(l.runway.next_obstacle.as_ref().unwrap().id, "ROUND_688");
}

#[test]
fn absurd_values_are_counted_or_absorbed_without_panicking() {
    let mut e = Engine::new(Config::default());
    let events = vec![
        trade(T0, "ESZ5", 6870.0, 1, 1),
        trade(T0 + 1, "ESZ5", 1e300, 1, 1),
        trade(T0 + 2, "ESZ5", -5.0, 1, 1),
        book(
            T0 + 3,
            "ESZ5",
            &[(6869.75, u32::MAX), (-1e300, 5)],
            &[(6870.0, 0)],
        ),
        book(T0 + 4, "ESZ5", &[(6869.75, 0)], &[(6870.0, u32::MAX)]),
        // A far-away price in the book, then back.
        book(T0 + 5, "ESZ5", &[(1.0, 10)], &[(6870.0, 1)]),
        book(T0 + 6, "ESZ5", &[(6869.75, 10)], &[(6870.0, 1)]),
        option(T0 + 7, "9999-12-31", 1e300, 'C', 1.0, 1, None, 1),
        option(T0 + 8, "2026-11-24", 687.0, 'X', 1.0, 1, None, 1),
        option(T0 + 9, "not a date", 687.0, 'P', 1.0, 1, None, 1),
        option(
            u64::MAX / 2,
            "2026-11-24",
            687.0,
            'P',
            1e9,
            u32::MAX,
            Some((1e9, 0.0)),
            0,
        ),
        trade(T0 + 300 * MS, "ESZ5", 6870.0, u32::MAX, -1),
        trade(T0 + 200 * MS, "ESZ5", 6870.25, u32::MAX, -1),
        trade(T0 + 600 * MS, "ESZ5", 6870.0, 1, 1),
        trade(u64::MAX - 1, "ESZ5", 6870.0, 1, 1),
        trade(u64::MAX, "ESZ5", 6870.0, 1, 1),
    ];
    let snaps = feed(&mut e, &events);
    assert!(!snaps.is_empty());
    for s in &snaps {
        let json = Event::LevelSignals(s.clone()).to_json();
        assert!(!json.contains("NaN") && !json.contains("inf"), "{json}");
    }
    let st = e.stats();
    assert_eq!(st.non_finite_prices, 3);
    assert_eq!(st.options_bad_contract, 2);
    assert!(st.out_of_order >= 1);
}
