//! The evaluator on constructed snap streams: calls, outcomes, touches and the base rate.

use super::*;
use crate::event::{LevelSignal, SpyQuote};

/// A level in a constructed snap: id, price, signal.
type L<'a> = (&'a str, f64, &'a str);

fn snap(ts_s: f64, spot: f64, levels: &[L]) -> LevelSignals {
    LevelSignals {
        ts: (1_763_737_200_000.0 + ts_s * 1000.0).round() as i64,
        spy: SpyQuote {
            spot: Some(spot),
            bid: Some(spot - 0.005),
            ask: Some(spot + 0.005),
        },
        levels: levels
            .iter()
            .map(|&(id, price, signal)| LevelSignal {
                id: id.to_string(),
                price,
                kind: id.split('_').next().unwrap_or(id).to_string(),
                direction: if spot > price {
                    "SUPPORT"
                } else {
                    "RESISTANCE"
                }
                .to_string(),
                distance: (spot - price).abs(),
                signal: signal.to_string(),
                confidence: "HIGH".to_string(),
                break_score_raw: if signal == "BREAK" { 90.0 } else { 10.0 },
                ..LevelSignal::default()
            })
            .collect(),
    }
}

fn evaluate(snaps: &[LevelSignals]) -> Evaluation {
    let mut e = Evaluator::new(EvalSettings::default(), true);
    for s in snaps {
        e.observe_signals(s);
    }
    e.finish()
}

#[test]
fn one_call_per_onset_not_per_snap() {
    let snaps = [
        snap(0.0, 687.10, &[("ROUND_687", 687.0, "NEUTRAL")]),
        snap(0.25, 687.05, &[("ROUND_687", 687.0, "BREAK")]),
        snap(0.5, 687.02, &[("ROUND_687", 687.0, "BREAK")]),
        snap(0.75, 687.01, &[("ROUND_687", 687.0, "BREAK")]),
        // Released, then held again: a second onset.
        snap(1.0, 687.03, &[("ROUND_687", 687.0, "NEUTRAL")]),
        snap(1.25, 687.02, &[("ROUND_687", 687.0, "BREAK")]),
        snap(5.0, 686.70, &[]),
    ];
    let e = evaluate(&snaps);
    assert_eq!(e.calls.len(), 2);
    assert_eq!(e.calls[0].onset_ts, snaps[1].ts);
    assert_eq!(e.calls[1].onset_ts, snaps[5].ts);
    assert!(e.calls.iter().all(|c| c.outcome == Outcome::Win));
    assert_eq!(e.calls[0].seconds_to_outcome, Some(4.75));
    assert_eq!(e.calls[0].direction, "SUPPORT");
    assert_eq!(e.calls[0].score, 90.0);
}

#[test]
fn a_level_that_left_the_active_set_and_came_back_holding_its_signal_is_a_new_onset() {
    let snaps = [
        snap(0.0, 690.0, &[("ROUND_690", 690.0, "REJECT")]),
        snap(0.25, 689.4, &[]),
        snap(0.5, 689.98, &[("ROUND_690", 690.0, "REJECT")]),
    ];
    assert_eq!(evaluate(&snaps).calls.len(), 2);
}

#[test]
fn a_switch_from_break_to_reject_is_a_new_call() {
    let snaps = [
        snap(0.0, 687.04, &[("ROUND_687", 687.0, "BREAK")]),
        snap(0.25, 687.04, &[("ROUND_687", 687.0, "REJECT")]),
    ];
    let e = evaluate(&snaps);
    let signals: Vec<Signal> = e.calls.iter().map(|c| c.signal).collect();
    assert_eq!(signals, [Signal::Break, Signal::Reject]);
}

#[test]
fn reject_win_loss_and_open_on_the_stream() {
    // REJECT at the 690 resistance: profits from spot going down.
    let win = [
        snap(0.0, 689.98, &[("ROUND_690", 690.0, "REJECT")]),
        snap(10.0, 689.80, &[("ROUND_690", 690.0, "NEUTRAL")]),
        snap(20.0, 689.70, &[]),
    ];
    let e = evaluate(&win);
    assert_eq!(e.calls[0].outcome, Outcome::Win);
    assert_eq!(e.calls[0].seconds_to_outcome, Some(20.0));
    assert!((e.calls[0].mfe - 0.28).abs() < 1e-9);
    assert_eq!(e.calls[0].mae, 0.0);

    let loss = [
        snap(0.0, 689.98, &[("ROUND_690", 690.0, "REJECT")]),
        snap(3.0, 690.30, &[]),
    ];
    assert_eq!(evaluate(&loss).calls[0].outcome, Outcome::Loss);

    // Quiet for longer than the horizon: open, even though the target comes later.
    let open = [
        snap(0.0, 689.98, &[("ROUND_690", 690.0, "REJECT")]),
        snap(60.0, 689.9, &[]),
        snap(130.0, 689.0, &[]),
    ];
    let e = evaluate(&open);
    assert_eq!(e.calls[0].outcome, Outcome::Open);
    assert_eq!(e.calls[0].seconds_to_outcome, None);
}

#[test]
fn both_thresholds_in_one_snap_the_path_decides_and_the_onset_side_comes_first() {
    // A BREAK of the 687 support called with spot 0.30 above it, and the next snap 0.30
    // below: the straight path from the onset starts beyond the stop, so the stop is reached
    // first (at the onset) and the call is a loss.
    let snaps = [
        snap(0.0, 687.30, &[("ROUND_687", 687.0, "BREAK")]),
        snap(0.25, 686.70, &[]),
    ];
    let e = evaluate(&snaps);
    assert_eq!(e.calls[0].outcome, Outcome::Loss);
    assert_eq!(e.calls[0].seconds_to_outcome, Some(0.0));
}

#[test]
fn the_thresholds_stay_at_the_level_price_at_onset_when_the_level_moves() {
    // VWAP drifts down with spot; the call is judged against where it was at onset.
    let snaps = [
        snap(0.0, 688.52, &[("VWAP", 688.50, "BREAK")]),
        snap(5.0, 688.30, &[("VWAP", 688.40, "BREAK")]),
        snap(6.0, 688.24, &[("VWAP", 688.38, "BREAK")]),
    ];
    let e = evaluate(&snaps);
    assert_eq!(e.calls[0].level_price, 688.50);
    assert_eq!(e.calls[0].outcome, Outcome::Win);
    assert_eq!(e.calls[0].seconds_to_outcome, Some(6.0));
}

#[test]
fn a_touch_is_counted_once_per_approach_and_re_arms_beyond_twice_the_band() {
    let path = [
        687.30, // active, far
        687.04, // touch 1
        687.02, // same approach
        687.08, // out of the band but within twice it: still the same approach
        687.03, // no new touch
        687.20, // beyond 2 × band: re-armed
        687.05, // touch 2 (the band is inclusive)
        687.60, // inactive (outside the monitor band: the level is absent)
        687.45, // active again, far
        687.01, // touch 3
    ];
    let snaps: Vec<LevelSignals> = path
        .iter()
        .enumerate()
        .map(|(i, &spot)| {
            let levels: &[L] = if spot > 687.5 {
                &[]
            } else {
                &[("ROUND_687", 687.0, "NEUTRAL")]
            };
            snap(i as f64, spot, levels)
        })
        .collect();
    let e = evaluate(&snaps);
    let ts: Vec<i64> = e.touches.iter().map(|t| t.ts).collect();
    assert_eq!(ts, [snaps[1].ts, snaps[6].ts, snaps[9].ts]);
    assert_eq!(e.touches_with_call, 0);
}

#[test]
fn a_touch_re_arms_when_the_level_was_inactive_even_if_spot_stayed_close() {
    // The level disappears for a snap (e.g. a strike whose flow was not yet recorded).
    let snaps = [
        snap(0.0, 687.02, &[("STRIKE_687", 687.0, "NEUTRAL")]),
        snap(1.0, 687.02, &[]),
        snap(2.0, 687.02, &[("STRIKE_687", 687.0, "NEUTRAL")]),
    ];
    assert_eq!(evaluate(&snaps).touches.len(), 2);
}

#[test]
fn touches_are_scored_both_ways_and_the_approaches_with_a_call_are_left_out() {
    let snaps = [
        // Approach 1 at 690 (resistance): no call, then spot falls away: as REJECT a win, as
        // BREAK a loss.
        snap(0.0, 689.97, &[("ROUND_690", 690.0, "NEUTRAL")]),
        snap(1.0, 689.80, &[("ROUND_690", 690.0, "NEUTRAL")]),
        snap(2.0, 689.74, &[("ROUND_690", 690.0, "NEUTRAL")]),
        // Approach 2 at 690: a REJECT is called 0.5 s after the touch: not in the base.
        snap(3.0, 689.98, &[("ROUND_690", 690.0, "NEUTRAL")]),
        snap(3.5, 689.99, &[("ROUND_690", 690.0, "REJECT")]),
        snap(4.0, 689.70, &[]),
    ];
    let e = evaluate(&snaps);
    assert_eq!(e.touches.len(), 1);
    assert_eq!(e.touches_with_call, 1);
    assert_eq!(e.touches[0].as_reject, Outcome::Win);
    assert_eq!(e.touches[0].as_break, Outcome::Loss);
    assert_eq!(e.calls.len(), 1);

    let report = report::build(&e);
    let reject_all = report
        .rows
        .iter()
        .find(|r| r.signal == Signal::Reject && r.level_kind == "ALL")
        .unwrap();
    assert_eq!(reject_all.calls, 1);
    assert_eq!(reject_all.win_rate, Some(1.0));
    assert_eq!(reject_all.base_rate, Some(1.0));
    assert_eq!(reject_all.edge, Some(0.0));
    let break_round = report
        .rows
        .iter()
        .find(|r| r.signal == Signal::Break && r.level_kind == "ALL")
        .unwrap();
    assert_eq!(break_round.calls, 0);
    assert_eq!(break_round.base_rate, Some(0.0));
    assert_eq!(break_round.edge, None);
}

#[test]
fn out_of_order_and_spotless_snaps_are_skipped_and_counted() {
    let mut e = Evaluator::new(EvalSettings::default(), false);
    assert_eq!(e.observe_signals(&snap(1.0, 687.1, &[])), Observed::Scored);
    let back = snap(0.5, 687.1, &[]);
    assert_eq!(
        e.observe_signals(&back),
        Observed::OutOfOrder {
            previous_ts: snap(1.0, 0.0, &[]).ts
        }
    );
    let mut spotless = snap(2.0, 687.1, &[]);
    spotless.spy.spot = None;
    assert_eq!(e.observe_signals(&spotless), Observed::NoSpot);
    let mut nan = snap(2.0, 687.1, &[]);
    nan.spy.spot = Some(f64::NAN);
    assert_eq!(e.observe_signals(&nan), Observed::NoSpot);
    let c = *e.counts();
    assert_eq!((c.snaps, c.out_of_order, c.no_spot), (1, 1, 2));
}

#[test]
fn the_report_groups_by_signal_and_kind_with_an_all_row() {
    let snaps = [
        snap(
            0.0,
            687.02,
            &[("ROUND_687", 687.0, "BREAK"), ("VWAP", 687.0, "BREAK")],
        ),
        snap(1.0, 686.70, &[]),
        snap(2.0, 689.98, &[("ROUND_690", 690.0, "REJECT")]),
        snap(3.0, 690.30, &[]),
    ];
    let report = report::build(&evaluate(&snaps));
    let keys: Vec<(Signal, &str, u64, u64, u64)> = report
        .rows
        .iter()
        .map(|r| (r.signal, r.level_kind.as_str(), r.calls, r.wins, r.losses))
        .collect();
    assert_eq!(
        keys,
        [
            (Signal::Break, "VWAP", 1, 1, 0),
            (Signal::Break, "ROUND", 1, 1, 0),
            (Signal::Break, "ALL", 2, 2, 0),
            (Signal::Reject, "ROUND", 1, 0, 1),
            (Signal::Reject, "ALL", 1, 0, 1),
        ]
    );
    let mut table = Vec::new();
    report::write_table(&report, &mut table).unwrap();
    let table = String::from_utf8(table).unwrap();
    assert!(table.contains("BREAK   VWAP"), "{table}");
    let mut csv = Vec::new();
    report::write_csv(&report, &mut csv).unwrap();
    assert_eq!(String::from_utf8(csv).unwrap().lines().count(), 6);
}
