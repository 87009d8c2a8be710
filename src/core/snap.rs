//! Snaps, PHYSICS.md §8: the boundary clock on event time and the note of a level.
//!
//! Boundaries are `B = k·SNAP_INTERVAL_MS`. When an event arrives at or past the next boundary,
//! one snap is taken at the largest boundary `B ≤ ts` before the event is applied, and the next
//! boundary becomes `B + interval`: a quiet gap gives one snap, and nothing is emitted at the end
//! of the input.

use super::barrier::BarrierState;
use super::fuel::FuelEffect;

/// The snap boundary clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapClock {
    interval_ns: u64,
    next: Option<u64>,
}

impl SnapClock {
    pub fn new(interval_ms: u64) -> SnapClock {
        SnapClock {
            interval_ns: interval_ms.max(1).saturating_mul(1_000_000),
            next: None,
        }
    }

    /// For an event at `ts`: the boundary to snap at before applying it, if one is crossed.
    /// The first event only starts the clock.
    pub fn on_event(&mut self, ts: u64) -> Option<u64> {
        match self.next {
            None => {
                self.next = Some(
                    (ts / self.interval_ns)
                        .saturating_add(1)
                        .saturating_mul(self.interval_ns),
                );
                None
            }
            Some(_) => self.due(ts),
        }
    }

    /// The boundary to snap at for time `now`, if the next boundary has been reached.
    pub fn due(&mut self, now: u64) -> Option<u64> {
        let next = self.next?;
        if now < next {
            return None;
        }
        let boundary = now / self.interval_ns * self.interval_ns;
        self.next = Some(boundary.saturating_add(self.interval_ns));
        Some(boundary)
    }

    /// The next boundary, once the clock has started.
    pub fn next_boundary(&self) -> Option<u64> {
        self.next
    }
}

/// The note of a level: barrier, fuel and sweep remarks joined by "; ", or "Monitoring".
pub fn note(barrier: BarrierState, fuel: FuelEffect, sweep_confirms: bool) -> String {
    let mut parts: [&str; 3] = [""; 3];
    let mut n = 0;
    let mut add = |s: &'static str| {
        parts[n] = s;
        n += 1;
    };
    match barrier {
        BarrierState::Vacuum => add("Vacuum"),
        BarrierState::Wall => add("Wall holding"),
        BarrierState::Consumed => add("Being consumed"),
        _ => {}
    }
    match fuel {
        FuelEffect::Amplify => add("dealers chase"),
        FuelEffect::Dampen => add("dealers fade"),
        FuelEffect::Neutral => {}
    }
    if sweep_confirms {
        add("sweep confirms");
    }
    if n == 0 {
        "Monitoring".to_string()
    } else {
        parts[..n].join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn first_event_starts_the_clock_and_crossing_snaps_at_the_last_boundary() {
        let mut c = SnapClock::new(250);
        assert_eq!(c.on_event(1_000 * MS + 10), None);
        assert_eq!(c.next_boundary(), Some(1_250 * MS));
        assert_eq!(c.on_event(1_249 * MS), None);
        assert_eq!(c.on_event(1_250 * MS), Some(1_250 * MS));
        assert_eq!(c.on_event(1_499 * MS), None);
        // A quiet gap of many intervals gives one snap, at the largest boundary ≤ ts.
        assert_eq!(c.on_event(3_010 * MS), Some(3_000 * MS));
        assert_eq!(c.next_boundary(), Some(3_250 * MS));
        // An earlier (out-of-order) event does not snap.
        assert_eq!(c.on_event(2_000 * MS), None);
    }

    #[test]
    fn notes_join_remarks_or_say_monitoring() {
        assert_eq!(
            note(BarrierState::Vacuum, FuelEffect::Amplify, true),
            "Vacuum; dealers chase; sweep confirms"
        );
        assert_eq!(
            note(BarrierState::Wall, FuelEffect::Dampen, false),
            "Wall holding; dealers fade"
        );
        assert_eq!(
            note(BarrierState::Consumed, FuelEffect::Neutral, false),
            "Being consumed"
        );
        assert_eq!(
            note(BarrierState::Neutral, FuelEffect::Neutral, true),
            "sweep confirms"
        );
        assert_eq!(
            note(BarrierState::Weak, FuelEffect::Neutral, false),
            "Monitoring"
        );
    }
}
