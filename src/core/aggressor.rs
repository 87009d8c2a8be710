//! Aggressor of option trades when the feed gives none (PHYSICS.md §1 "Option aggressor").
//!
//! With the quote at the trade: at or above the ask is a buy, at or below the bid a sell,
//! otherwise the side of the mid; exactly at the mid falls through to the tick rule. Without a
//! quote: the tick rule against the previous trade of the same contract (uptick buy, downtick
//! sell, unchanged keeps the previous classification). Nothing to go on: 0 (unknown).

/// The last trade of one option contract, for the tick rule.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TickState {
    pub last_price: f64,
    /// Classification of that trade: 1 buy, −1 sell, 0 unknown.
    pub last_class: i8,
}

/// Tick rule against the previous trade of the same contract.
pub fn tick_rule(price: f64, prev: Option<TickState>) -> i8 {
    match prev {
        None => 0,
        Some(p) if price > p.last_price => 1,
        Some(p) if price < p.last_price => -1,
        Some(p) => p.last_class,
    }
}

/// Classifies an option trade: 1 buy, −1 sell, 0 unknown.
pub fn classify(price: f64, bid: Option<f64>, ask: Option<f64>, prev: Option<TickState>) -> i8 {
    let usable = |x: Option<f64>| x.filter(|v| v.is_finite() && *v >= 0.0);
    if let (Some(bid), Some(ask)) = (usable(bid), usable(ask))
        && bid <= ask
    {
        if price >= ask {
            return 1;
        }
        if price <= bid {
            return -1;
        }
        let mid = 0.5 * (bid + ask);
        if price > mid {
            return 1;
        }
        if price < mid {
            return -1;
        }
    }
    tick_rule(price, prev)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREV_UP: Option<TickState> = Some(TickState {
        last_price: 2.00,
        last_class: 1,
    });

    #[test]
    fn quote_at_or_beyond_the_touch_decides() {
        assert_eq!(classify(2.10, Some(2.00), Some(2.10), None), 1);
        assert_eq!(classify(2.20, Some(2.00), Some(2.10), None), 1);
        assert_eq!(classify(2.00, Some(2.00), Some(2.10), None), -1);
        assert_eq!(classify(1.90, Some(2.00), Some(2.10), None), -1);
    }

    #[test]
    fn inside_the_spread_the_mid_decides_and_the_mid_uses_the_tick_rule() {
        assert_eq!(classify(2.08, Some(2.00), Some(2.10), None), 1);
        assert_eq!(classify(2.02, Some(2.00), Some(2.10), None), -1);
        // At the mid: tick rule (2.05 > 2.00 is an uptick).
        assert_eq!(classify(2.05, Some(2.00), Some(2.10), PREV_UP), 1);
        let prev_high = Some(TickState {
            last_price: 2.50,
            last_class: 1,
        });
        assert_eq!(classify(2.05, Some(2.00), Some(2.10), prev_high), -1);
        // At the mid with no previous trade: unknown.
        assert_eq!(classify(2.05, Some(2.00), Some(2.10), None), 0);
    }

    #[test]
    fn without_a_quote_the_tick_rule_applies() {
        assert_eq!(classify(2.05, None, None, PREV_UP), 1);
        assert_eq!(classify(1.95, None, None, PREV_UP), -1);
        // Unchanged keeps the previous classification.
        assert_eq!(classify(2.00, None, None, PREV_UP), 1);
        let prev_sell = Some(TickState {
            last_price: 2.00,
            last_class: -1,
        });
        assert_eq!(classify(2.00, None, None, prev_sell), -1);
        // A one-sided or crossed quote is no quote.
        assert_eq!(classify(2.05, Some(2.00), None, PREV_UP), 1);
        assert_eq!(classify(2.05, Some(2.20), Some(2.10), None), 0);
    }

    #[test]
    fn nothing_to_go_on_is_unknown() {
        assert_eq!(classify(2.00, None, None, None), 0);
    }
}
