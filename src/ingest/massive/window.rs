//! The option contracts to follow: 0DTE, integer strikes around spot, nearest first, capped.
//!
//! The window is every call and put of one expiration whose strike is a whole number of dollars
//! within `width` dollars of spot. Massive limits the option *quote* subscriptions of one
//! connection, and a contract's trade and quote subscriptions count once, so the window is cut
//! to the `max` contracts nearest spot (ties: the lower strike, then the call).

use std::cmp::Ordering;
use std::collections::BTreeSet;

use chrono::NaiveDate;

use super::occ::OptionSymbol;

/// The contracts of `root` expiring on `expiry` with an integer strike within `width` dollars
/// of `spot`, at most `max` of them, nearest strikes first.
pub fn window(
    root: &str,
    expiry: NaiveDate,
    spot: f64,
    width: f64,
    max: usize,
) -> BTreeSet<OptionSymbol> {
    if !spot.is_finite() || spot <= 0.0 || !width.is_finite() || width < 0.0 || max == 0 {
        return BTreeSet::new();
    }
    let lo = (spot - width).ceil().max(1.0) as u64;
    let hi = (spot + width).floor().min(99_999.0) as u64;
    let mut strikes: Vec<u64> = (lo..=hi).collect();
    strikes.sort_by(|a, b| {
        let da = (*a as f64 - spot).abs();
        let db = (*b as f64 - spot).abs();
        da.partial_cmp(&db)
            .unwrap_or(Ordering::Equal)
            .then(a.cmp(b))
    });
    strikes
        .into_iter()
        .flat_map(|k| ['C', 'P'].map(|right| (k, right)))
        .filter_map(|(k, right)| OptionSymbol::new(root, expiry, right, k * 1000).ok())
        .take(max)
        .collect()
}

/// What to change to go from the `current` subscriptions to `want`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub unsubscribe: Vec<OptionSymbol>,
    pub subscribe: Vec<OptionSymbol>,
}

impl Changes {
    pub fn between(current: &BTreeSet<OptionSymbol>, want: &BTreeSet<OptionSymbol>) -> Changes {
        Changes {
            unsubscribe: current.difference(want).cloned().collect(),
            subscribe: want.difference(current).cloned().collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.unsubscribe.is_empty() && self.subscribe.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 11, 21).unwrap()
    }

    fn names(set: &BTreeSet<OptionSymbol>) -> Vec<String> {
        set.iter().map(|c| c.massive()).collect()
    }

    fn strikes(list: &[OptionSymbol]) -> Vec<(u64, char)> {
        list.iter()
            .map(|c| (c.strike_milli() / 1000, c.right()))
            .collect()
    }

    #[test]
    fn window_holds_both_rights_of_every_integer_strike_within_the_width() {
        let w = window("SPY", day(), 687.4, 2.0, 1000);
        assert_eq!(
            names(&w),
            [
                "O:SPY251121C00686000",
                "O:SPY251121P00686000",
                "O:SPY251121C00687000",
                "O:SPY251121P00687000",
                "O:SPY251121C00688000",
                "O:SPY251121P00688000",
                "O:SPY251121C00689000",
                "O:SPY251121P00689000",
            ]
        );
        // Edges are inclusive: 685 and 689 are exactly 2 away from 687.
        let w = window("SPY", day(), 687.0, 2.0, 1000);
        assert_eq!(w.len(), 10);
    }

    #[test]
    fn window_keeps_the_nearest_strikes_when_over_the_limit() {
        // 687 (0.4), 688 (0.6), 686 (1.4) — 689 (1.6) is cut.
        let w = window("SPY", day(), 687.4, 2.0, 6);
        let s: Vec<_> = w.iter().map(|c| c.strike_milli() / 1000).collect();
        assert_eq!(s, [686, 686, 687, 687, 688, 688]);
        // A tie in distance keeps the lower strike; an odd limit keeps the call.
        let w = window("SPY", day(), 689.0, 2.0, 5);
        let v: Vec<_> = w.into_iter().collect();
        assert_eq!(
            strikes(&v),
            [(688, 'C'), (688, 'P'), (689, 'C'), (689, 'P'), (690, 'C')]
        );
    }

    #[test]
    fn window_is_empty_without_a_sane_spot_or_limit() {
        assert!(window("SPY", day(), f64::NAN, 2.0, 10).is_empty());
        assert!(window("SPY", day(), 0.0, 2.0, 10).is_empty());
        assert!(window("SPY", day(), 687.0, 2.0, 0).is_empty());
        assert!(window("SPY", day(), 687.5, 0.4, 10).is_empty());
        // Strikes never go below $1.
        let w = window("SPY", day(), 1.2, 5.0, 100);
        assert_eq!(w.iter().map(|c| c.strike_milli()).min(), Some(1000));
    }

    #[test]
    fn changes_name_what_left_and_what_entered() {
        let before = window("SPY", day(), 687.4, 2.0, 6);
        let after = window("SPY", day(), 689.0, 2.0, 6);
        let c = Changes::between(&before, &after);
        assert_eq!(
            strikes(&c.unsubscribe),
            [(686, 'C'), (686, 'P'), (687, 'C'), (687, 'P')]
        );
        assert_eq!(
            strikes(&c.subscribe),
            [(689, 'C'), (689, 'P'), (690, 'C'), (690, 'P')]
        );
        assert!(Changes::between(&after, &after).is_empty());
    }
}
