//! The outcome rule of one call (or one base-rate touch) on the spot path after its onset.
//!
//! Everything is measured against the level's price at onset, in *favourable coordinates*:
//! `x = d·(spot − level)` where `d` is +1 when the call profits from spot going up (a BREAK of
//! a resistance, a REJECT at a support) and −1 otherwise. Then, for BREAK and REJECT alike,
//! the call **wins** when `x ≥ target` (spot `target` beyond the level in the call's direction)
//! and **loses** when `x ≤ −stop` (spot `stop` through the level the other way). Between two
//! snaps the path is the straight line between their spots; when one step reaches both
//! thresholds, the one reached first along it decides, and a tie is a loss.

/// Tolerance of the threshold comparisons, as PHYSICS.md's bands.
const EPS: f64 = 1e-9;

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Win,
    Loss,
    /// Neither threshold was reached within the horizon, or the input ended first.
    Open,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Win => "win",
            Outcome::Loss => "loss",
            Outcome::Open => "open",
        }
    }
}

/// Which threshold a straight step from `x0` to `x1` reaches first, if any, with the fraction
/// of the step at which it does (0 when `x0` is already there).
pub fn first_reached(x0: f64, x1: f64, target: f64, stop: f64) -> Option<(Outcome, f64)> {
    let win = if x0 >= target - EPS {
        Some(0.0)
    } else if x1 >= target - EPS {
        Some(((target - x0) / (x1 - x0)).clamp(0.0, 1.0))
    } else {
        None
    };
    let loss = if x0 <= -stop + EPS {
        Some(0.0)
    } else if x1 <= -stop + EPS {
        Some(((-stop - x0) / (x1 - x0)).clamp(0.0, 1.0))
    } else {
        None
    };
    match (win, loss) {
        (Some(w), Some(l)) if w < l => Some((Outcome::Win, w)),
        (_, Some(l)) => Some((Outcome::Loss, l)),
        (Some(w), None) => Some((Outcome::Win, w)),
        (None, None) => None,
    }
}

/// A call or touch being followed until it resolves or its horizon passes.
#[derive(Debug, Clone)]
pub struct Tracker {
    pub onset_ns: u64,
    /// +1: the call profits from spot going up; −1: from spot going down.
    pub favourable: f64,
    pub level_price: f64,
    /// `x` at onset.
    entry_x: f64,
    last_x: f64,
    pub mfe: f64,
    pub mae: f64,
    /// The outcome and the event time it was reached (`Open` only once closed).
    pub resolved: Option<(Outcome, u64)>,
    /// Whether the horizon has passed (or the input ended): nothing changes any more.
    pub closed: bool,
}

/// The thresholds and horizon every tracker uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    pub target: f64,
    pub stop: f64,
    pub horizon_ns: u64,
}

impl Tracker {
    /// Starts following at the onset snap; the onset spot itself may already decide.
    pub fn new(rule: &Rule, onset_ns: u64, level_price: f64, favourable: f64, spot: f64) -> Self {
        let x = favourable * (spot - level_price);
        let mut t = Tracker {
            onset_ns,
            favourable,
            level_price,
            entry_x: x,
            last_x: x,
            mfe: 0.0,
            mae: 0.0,
            resolved: None,
            closed: false,
        };
        if let Some((outcome, _)) = first_reached(x, x, rule.target, rule.stop) {
            t.resolved = Some((outcome, onset_ns));
        }
        t
    }

    /// Feeds the spot of a later snap. Returns true once the tracker is closed (its horizon
    /// has passed), after which it can be dropped from the live set.
    pub fn step(&mut self, rule: &Rule, ts_ns: u64, spot: f64) -> bool {
        if self.closed {
            return true;
        }
        if ts_ns.saturating_sub(self.onset_ns) > rule.horizon_ns {
            self.close();
            return true;
        }
        let x = self.favourable * (spot - self.level_price);
        self.mfe = self.mfe.max(x - self.entry_x);
        self.mae = self.mae.max(self.entry_x - x);
        if self.resolved.is_none()
            && let Some((outcome, _)) = first_reached(self.last_x, x, rule.target, rule.stop)
        {
            self.resolved = Some((outcome, ts_ns));
        }
        self.last_x = x;
        false
    }

    /// Ends the tracker: unresolved means open.
    pub fn close(&mut self) {
        self.closed = true;
        if self.resolved.is_none() {
            self.resolved = Some((Outcome::Open, self.onset_ns));
        }
    }

    pub fn outcome(&self) -> Outcome {
        self.resolved.map_or(Outcome::Open, |(o, _)| o)
    }

    /// Seconds from onset to the outcome (win or loss only).
    pub fn seconds_to_outcome(&self) -> Option<f64> {
        match self.resolved {
            Some((Outcome::Win | Outcome::Loss, ts)) => {
                Some(ts.saturating_sub(self.onset_ns) as f64 / 1e9)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn rule() -> Rule {
        Rule {
            target: 0.25,
            stop: 0.25,
            horizon_ns: 120 * S,
        }
    }

    /// Follows a path of (seconds after onset, spot) and returns the tracker, closed.
    fn follow(level: f64, favourable: f64, path: &[(u64, f64)]) -> Tracker {
        let r = rule();
        let mut t = Tracker::new(&r, 0, level, favourable, path[0].1);
        for &(s, spot) in &path[1..] {
            t.step(&r, s * S, spot);
        }
        t.close();
        t
    }

    #[test]
    fn break_of_a_support_wins_when_spot_goes_the_target_below_the_level_first() {
        let t = follow(
            687.0,
            -1.0,
            &[(0, 687.02), (1, 686.90), (5, 686.75), (6, 687.30)],
        );
        assert_eq!(t.outcome(), Outcome::Win);
        assert_eq!(t.seconds_to_outcome(), Some(5.0));
        // Excursions over the whole horizon, from the onset spot: 0.27 down, 0.28 up.
        assert!((t.mfe - 0.27).abs() < 1e-9, "{}", t.mfe);
        assert!((t.mae - 0.28).abs() < 1e-9, "{}", t.mae);
    }

    #[test]
    fn break_of_a_support_loses_when_spot_goes_the_stop_back_above_the_level_first() {
        let t = follow(
            687.0,
            -1.0,
            &[(0, 687.02), (2, 687.20), (3, 687.25), (9, 686.0)],
        );
        assert_eq!(t.outcome(), Outcome::Loss);
        assert_eq!(t.seconds_to_outcome(), Some(3.0));
    }

    #[test]
    fn reject_at_a_resistance_wins_on_the_move_down_and_loses_on_the_cross_up() {
        // REJECT at a resistance profits from spot going down.
        let win = follow(690.0, -1.0, &[(0, 689.98), (4, 689.80), (7, 689.74)]);
        assert_eq!(win.outcome(), Outcome::Win);
        assert_eq!(win.seconds_to_outcome(), Some(7.0));
        let loss = follow(690.0, -1.0, &[(0, 689.98), (4, 690.10), (7, 690.26)]);
        assert_eq!(loss.outcome(), Outcome::Loss);
    }

    #[test]
    fn neither_threshold_within_the_horizon_is_open_even_if_reached_after_it() {
        let t = follow(687.0, -1.0, &[(0, 687.02), (60, 686.9), (121, 686.0)]);
        assert_eq!(t.outcome(), Outcome::Open);
        assert_eq!(t.seconds_to_outcome(), None);
        // The excursions stop at the horizon too.
        assert!((t.mfe - 0.12).abs() < 1e-9, "{}", t.mfe);
    }

    #[test]
    fn the_input_ending_before_either_threshold_leaves_the_call_open() {
        let t = follow(687.0, 1.0, &[(0, 687.01), (3, 687.2)]);
        assert_eq!(t.outcome(), Outcome::Open);
    }

    #[test]
    fn a_threshold_exactly_reached_counts_within_the_tolerance() {
        // 686.75 - 687.0 rounds to -0.25000000000002274 in binary: still a win.
        let t = follow(687.0, -1.0, &[(0, 687.0), (1, 686.75)]);
        assert_eq!(t.outcome(), Outcome::Win);
    }

    #[test]
    fn both_thresholds_in_one_step_the_one_reached_first_along_the_path_decides() {
        // A BREAK of the 687 support called with spot 0.40 above it: the onset is already
        // past the stop; the next snap is below the target. Along the path the stop side is
        // where it starts, so it is a loss at the onset, however well the move went.
        let t = follow(687.0, -1.0, &[(0, 687.40), (1, 686.60)]);
        assert_eq!(t.outcome(), Outcome::Loss);
        assert_eq!(t.seconds_to_outcome(), Some(0.0));
        // A step from beyond the stop to beyond the target reaches the stop first ...
        assert_eq!(
            first_reached(-0.40, 0.60, 0.25, 0.25),
            Some((Outcome::Loss, 0.0))
        );
        // ... and a step from beyond the target the other way reaches the target first.
        assert_eq!(
            first_reached(0.40, -0.60, 0.25, 0.25),
            Some((Outcome::Win, 0.0))
        );
        // Wide thresholds reached in one step from inside: whichever comes first on the line.
        assert_eq!(
            first_reached(0.0, 1.0, 0.25, 0.25),
            Some((Outcome::Win, 0.25))
        );
        assert_eq!(
            first_reached(0.0, -1.0, 0.25, 0.25),
            Some((Outcome::Loss, 0.25))
        );
    }

    #[test]
    fn both_thresholds_at_the_same_point_of_the_path_is_a_tie_and_a_loss() {
        // target = stop = 0: both thresholds sit on the level, and a spot exactly on it
        // reaches both at the same instant.
        assert_eq!(
            first_reached(0.0, 0.0, 0.0, 0.0),
            Some((Outcome::Loss, 0.0))
        );
        assert_eq!(
            first_reached(0.0, 1.0, 0.0, 0.0),
            Some((Outcome::Loss, 0.0))
        );
        let r = Rule {
            target: 0.0,
            stop: 0.0,
            horizon_ns: 120 * S,
        };
        let mut t = Tracker::new(&r, 0, 687.0, -1.0, 687.0);
        t.step(&r, S, 686.0);
        assert_eq!(t.outcome(), Outcome::Loss);
        assert_eq!(t.seconds_to_outcome(), Some(0.0));
    }

    #[test]
    fn a_step_that_stays_inside_reaches_nothing() {
        assert_eq!(first_reached(0.1, -0.2, 0.25, 0.25), None);
        assert_eq!(first_reached(-0.2, 0.24, 0.25, 0.25), None);
    }
}
