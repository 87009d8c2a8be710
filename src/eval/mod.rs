//! `spm-eval`: are the calls any good? Every BREAK and REJECT call in a stream of
//! `level_signals` snaps is scored against what spot did next, beside a base rate.
//!
//! - A **call** is the onset of a level's BREAK or REJECT (the first snap of a run of snaps in
//!   which the level holds that signal); its outcome follows the rule in [`outcome`].
//! - A **touch** is spot coming within `TOUCH_BAND` of an active level: one per approach (the
//!   level re-arms once spot is more than twice the band away, or the level was inactive).
//!   Touches of approaches in which no call was made are scored both ways, as if BREAK and as
//!   if REJECT: what a coin would get at the same levels on the same day (the **base rate**).
//! - [`report`] groups the outcomes by signal × level kind, [`plot`] draws the session, and
//!   [`sweep`] re-runs the engine in-process for each value of a physics constant.
//!
//! Engine time is event time: everything here is driven by the snaps' `ts`, never the clock,
//! so the same snaps give the same report.

pub mod input;
pub mod outcome;
pub mod plot;
pub mod report;
pub mod sweep;
pub mod view;

use std::collections::HashMap;

use crate::event::LevelSignals;
pub use outcome::{Outcome, Rule, Tracker};
pub use view::{LevelView, SnapView};

/// The two calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Signal {
    #[serde(rename = "BREAK")]
    Break,
    #[serde(rename = "REJECT")]
    Reject,
}

impl Signal {
    pub const ALL: [Signal; 2] = [Signal::Break, Signal::Reject];

    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Break => "BREAK",
            Signal::Reject => "REJECT",
        }
    }

    fn parse(s: &str) -> Option<Signal> {
        match s {
            "BREAK" => Some(Signal::Break),
            "REJECT" => Some(Signal::Reject),
            _ => None,
        }
    }

    /// +1 when the call profits from spot going up at a level of this direction.
    /// A support (spot above) breaks down and rejects up; a resistance the other way.
    fn favourable(self, support: bool) -> f64 {
        match (self, support) {
            (Signal::Break, true) | (Signal::Reject, false) => -1.0,
            (Signal::Break, false) | (Signal::Reject, true) => 1.0,
        }
    }
}

/// Settings of an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct EvalSettings {
    /// $ beyond (BREAK) or away from (REJECT) the level that makes a win.
    pub target: f64,
    /// $ through the level the other way that makes a loss.
    pub stop: f64,
    /// Event time after onset within which the outcome must come, in seconds.
    pub horizon_s: f64,
    /// `TOUCH_BAND` of the base rate's touches ($).
    pub touch_band: f64,
}

impl Default for EvalSettings {
    fn default() -> Self {
        EvalSettings {
            target: 0.25,
            stop: 0.25,
            horizon_s: 120.0,
            touch_band: crate::core::Config::default().touch_band,
        }
    }
}

/// Settings the evaluation cannot work with.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EvalError {
    #[error("{0} must be a finite number ≥ 0, got {1}")]
    Setting(&'static str, f64),
}

impl EvalSettings {
    pub fn validate(&self) -> Result<(), EvalError> {
        for (name, v) in [
            ("--target", self.target),
            ("--stop", self.stop),
            ("--horizon", self.horizon_s),
            ("--touch-band", self.touch_band),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(EvalError::Setting(name, v));
            }
        }
        Ok(())
    }

    fn rule(&self) -> Rule {
        Rule {
            target: self.target,
            stop: self.stop,
            horizon_ns: (self.horizon_s * 1e9).round() as u64,
        }
    }
}

/// One call and its outcome.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Call {
    /// Event time of the onset snap, ms (the payload's `ts`).
    pub onset_ts: i64,
    pub level_id: String,
    pub level_kind: String,
    /// The level's price at onset: the thresholds are measured from it.
    pub level_price: f64,
    /// `SUPPORT` or `RESISTANCE` at onset.
    pub direction: String,
    pub signal: Signal,
    /// `break_score_raw` at onset (the score the trigger uses).
    pub score: f64,
    pub score_smooth: f64,
    pub confidence: String,
    pub barrier_state: String,
    pub fuel_effect: String,
    /// Spot at onset.
    pub spot: f64,
    /// Distance of spot from the level at onset.
    pub distance: f64,
    pub outcome: Outcome,
    pub seconds_to_outcome: Option<f64>,
    /// Maximum favourable and adverse excursion of spot from the onset spot within the
    /// horizon, $ (both ≥ 0).
    pub mfe: f64,
    pub mae: f64,
}

/// A base-rate touch, scored both ways.
#[derive(Debug, Clone, PartialEq)]
pub struct Touch {
    pub ts: i64,
    pub level_id: String,
    pub level_kind: String,
    pub level_price: f64,
    /// Outcome as if BREAK, then as if REJECT.
    pub as_break: Outcome,
    pub as_reject: Outcome,
}

/// The spot path and the active levels over the session, kept for the plot.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    /// (ts ms, spot) per snap.
    pub spot: Vec<(i64, f64)>,
    /// Per level id: its kind and (ts ms, price) at each snap where it was active; a gap of
    /// more than one snap starts a new segment.
    pub levels: Vec<LevelTrace>,
}

/// One level's presence over the session.
#[derive(Debug, Clone, PartialEq)]
pub struct LevelTrace {
    pub id: String,
    pub kind: String,
    /// Runs of consecutive snaps in which the level was active.
    pub segments: Vec<Vec<(i64, f64)>>,
}

/// Counts of what the input held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct InputCounts {
    pub snaps: u64,
    /// Σ active levels over snaps.
    pub level_snaps: u64,
    /// Snaps skipped because their `ts` went back in time.
    pub out_of_order: u64,
    /// Snaps skipped because they carried no spot.
    pub no_spot: u64,
    pub first_ts: Option<i64>,
    pub last_ts: Option<i64>,
}

/// What [`Evaluator::observe`] made of a snap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    Scored,
    /// Its `ts` is earlier than the previous snap's: skipped (the previous ts is given).
    OutOfOrder {
        previous_ts: i64,
    },
    /// No spot (or a non-finite one): skipped.
    NoSpot,
}

/// Who a tracker belongs to.
#[derive(Debug, Clone, Copy)]
enum Owner {
    Call(usize),
    Touch { touch: usize, signal: Signal },
}

/// Per level id: what the previous snaps said.
#[derive(Debug, Clone)]
struct LevelState {
    /// Index of the last snap the level was active in.
    last_snap: u64,
    signal: Option<Signal>,
    /// A touch is counted at the next snap within the band.
    armed: bool,
    /// The touch of the current approach, if one was counted.
    approach: Option<usize>,
    /// Index into `Trace::levels`, when tracing.
    trace: usize,
}

/// Scores every call in a stream of snaps; see the module comment.
pub struct Evaluator {
    settings: EvalSettings,
    rule: Rule,
    levels: HashMap<String, LevelState>,
    live: Vec<(Tracker, Owner)>,
    calls: Vec<Call>,
    touches: Vec<Touch>,
    /// Per touch: (as BREAK, as REJECT) trackers' outcomes once closed, and whether a call
    /// was made during its approach.
    touch_state: Vec<TouchState>,
    counts: InputCounts,
    trace: Option<Trace>,
}

#[derive(Debug, Clone, Default)]
struct TouchState {
    as_break: Option<Outcome>,
    as_reject: Option<Outcome>,
    called: bool,
}

/// Everything an evaluation found.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub settings: EvalSettings,
    pub counts: InputCounts,
    /// Every call, in onset order.
    pub calls: Vec<Call>,
    /// Touches of approaches without a call: the base rate.
    pub touches: Vec<Touch>,
    /// Touches dropped from the base rate because a call was made during their approach.
    pub touches_with_call: u64,
    pub trace: Option<Trace>,
}

impl Evaluator {
    /// `trace`: keep the spot path and level lines for a plot.
    pub fn new(settings: EvalSettings, trace: bool) -> Evaluator {
        Evaluator {
            rule: settings.rule(),
            settings,
            levels: HashMap::new(),
            live: Vec::new(),
            calls: Vec::new(),
            touches: Vec::new(),
            touch_state: Vec::new(),
            counts: InputCounts::default(),
            trace: trace.then(Trace::default),
        }
    }

    pub fn counts(&self) -> &InputCounts {
        &self.counts
    }

    /// Feeds one full snap (the engine's, in-process), in event-time order.
    pub fn observe_signals(&mut self, snap: &LevelSignals) -> Observed {
        self.observe(&SnapView::of(snap))
    }

    /// Feeds one snap, in event-time order.
    pub fn observe(&mut self, snap: &SnapView) -> Observed {
        if let Some(last) = self.counts.last_ts
            && snap.ts < last
        {
            self.counts.out_of_order += 1;
            return Observed::OutOfOrder { previous_ts: last };
        }
        let Some(spot) = snap.spy.spot.filter(|s| s.is_finite()) else {
            self.counts.no_spot += 1;
            return Observed::NoSpot;
        };
        let snap_index = self.counts.snaps;
        self.counts.snaps += 1;
        self.counts.level_snaps += snap.levels.len() as u64;
        self.counts.first_ts.get_or_insert(snap.ts);
        self.counts.last_ts = Some(snap.ts);
        let ts_ns = (snap.ts.max(0) as u64).saturating_mul(1_000_000);

        // The path moves on for everything already followed.
        let rule = self.rule;
        let mut i = 0;
        while i < self.live.len() {
            if self.live[i].0.step(&rule, ts_ns, spot) {
                let (tracker, owner) = self.live.swap_remove(i);
                self.settle(tracker, owner);
            } else {
                i += 1;
            }
        }
        if let Some(trace) = &mut self.trace {
            trace.spot.push((snap.ts, spot));
        }
        for level in &snap.levels {
            self.observe_level(level, snap_index, snap.ts, ts_ns, spot);
        }
        Observed::Scored
    }

    fn observe_level(
        &mut self,
        level: &LevelView,
        snap_index: u64,
        ts: i64,
        ts_ns: u64,
        spot: f64,
    ) {
        if !(level.price.is_finite() && level.distance.is_finite()) {
            return;
        }
        let state = match self.levels.get_mut(&*level.id) {
            Some(s) => s,
            None => {
                let trace = match &mut self.trace {
                    Some(t) => {
                        t.levels.push(LevelTrace {
                            id: level.id.to_string(),
                            kind: level.kind.to_string(),
                            segments: Vec::new(),
                        });
                        t.levels.len() - 1
                    }
                    None => 0,
                };
                self.levels
                    .entry(level.id.to_string())
                    .or_insert_with(|| LevelState {
                        last_snap: u64::MAX,
                        signal: None,
                        armed: true,
                        approach: None,
                        trace,
                    })
            }
        };
        let continuing = snap_index > 0 && state.last_snap == snap_index - 1;
        if !continuing {
            state.signal = None;
            state.armed = true;
            state.approach = None;
        }
        if let Some(trace) = &mut self.trace {
            let segments = &mut trace.levels[state.trace].segments;
            match segments.last_mut() {
                Some(seg) if continuing => seg.push((ts, level.price)),
                _ => segments.push(vec![(ts, level.price)]),
            }
        }
        state.last_snap = snap_index;
        let signal = Signal::parse(&level.signal);
        let onset = signal.is_some() && signal != state.signal;
        state.signal = signal;
        let support = level.direction == "SUPPORT";

        // Touches: one per approach.
        let band = self.settings.touch_band;
        if level.distance > 2.0 * band + 1e-9 {
            state.armed = true;
            state.approach = None;
        }
        if state.armed && level.distance <= band + 1e-9 {
            state.armed = false;
            let touch = self.touches.len();
            state.approach = Some(touch);
            self.touches.push(Touch {
                ts,
                level_id: level.id.to_string(),
                level_kind: level.kind.to_string(),
                level_price: level.price,
                as_break: Outcome::Open,
                as_reject: Outcome::Open,
            });
            self.touch_state.push(TouchState {
                called: signal.is_some(),
                ..TouchState::default()
            });
            for s in Signal::ALL {
                let tracker =
                    Tracker::new(&self.rule, ts_ns, level.price, s.favourable(support), spot);
                self.live.push((tracker, Owner::Touch { touch, signal: s }));
            }
        }
        if onset && let Some(touch) = state.approach {
            self.touch_state[touch].called = true;
        }

        if let (true, Some(signal)) = (onset, signal) {
            let tracker = Tracker::new(
                &self.rule,
                ts_ns,
                level.price,
                signal.favourable(support),
                spot,
            );
            let call = self.calls.len();
            self.calls.push(Call {
                onset_ts: ts,
                level_id: level.id.to_string(),
                level_kind: level.kind.to_string(),
                level_price: level.price,
                direction: level.direction.to_string(),
                signal,
                score: level.break_score_raw,
                score_smooth: level.break_score_smooth,
                confidence: level.confidence.to_string(),
                barrier_state: level.barrier.state.to_string(),
                fuel_effect: level.fuel.effect.to_string(),
                spot,
                distance: level.distance,
                outcome: Outcome::Open,
                seconds_to_outcome: None,
                mfe: 0.0,
                mae: 0.0,
            });
            self.live.push((tracker, Owner::Call(call)));
        }
    }

    /// Records a closed tracker's result.
    fn settle(&mut self, tracker: Tracker, owner: Owner) {
        match owner {
            Owner::Call(i) => {
                let call = &mut self.calls[i];
                call.outcome = tracker.outcome();
                call.seconds_to_outcome = tracker.seconds_to_outcome();
                call.mfe = tracker.mfe;
                call.mae = tracker.mae;
            }
            Owner::Touch { touch, signal } => {
                let state = &mut self.touch_state[touch];
                match signal {
                    Signal::Break => state.as_break = Some(tracker.outcome()),
                    Signal::Reject => state.as_reject = Some(tracker.outcome()),
                }
            }
        }
    }

    /// Ends the input: whatever is still followed is closed where it stands.
    pub fn finish(mut self) -> Evaluation {
        for (mut tracker, owner) in std::mem::take(&mut self.live) {
            tracker.close();
            self.settle(tracker, owner);
        }
        let mut touches = Vec::with_capacity(self.touches.len());
        let mut touches_with_call = 0;
        for (mut touch, state) in self.touches.into_iter().zip(self.touch_state) {
            if state.called {
                touches_with_call += 1;
                continue;
            }
            touch.as_break = state.as_break.unwrap_or(Outcome::Open);
            touch.as_reject = state.as_reject.unwrap_or(Outcome::Open);
            touches.push(touch);
        }
        Evaluation {
            settings: self.settings,
            counts: self.counts,
            calls: self.calls,
            touches,
            touches_with_call,
            trace: self.trace,
        }
    }
}

#[cfg(test)]
mod tests;
