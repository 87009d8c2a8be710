//! Counters of what the engine saw and did, for the exit summary and periodic logs.

use serde::Serialize;

use crate::event::EventKind;

/// Engine counters. All counts since the engine was created.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EngineStats {
    /// Events applied, by kind.
    pub futures_trades: u64,
    pub mbp10: u64,
    pub option_trades: u64,
    pub stock_trades: u64,
    pub stock_quotes: u64,
    /// `level_signals` events on the input (ignored).
    pub level_signals_in: u64,
    /// `feed_status` events on the input (ignored).
    pub feed_status_in: u64,
    /// Events whose time is earlier than an event before them.
    pub out_of_order: u64,
    /// Futures events of contracts other than the followed one.
    pub other_contract_events: u64,
    /// Futures events of calendar spreads (ignored).
    pub spread_events: u64,
    /// Stock and option events of symbols other than the underlying (ignored).
    pub unknown_symbols: u64,
    /// Book images with best bid ≥ best ask.
    pub crossed_books: u64,
    /// NaN, infinite or non-positive prices (the row or event is skipped).
    pub non_finite_prices: u64,
    /// Option trades recorded in the session flows.
    pub options_recorded: u64,
    /// Option trades skipped because they do not expire on the trading date (`FUEL_EXPIRY` 0dte).
    pub options_not_0dte: u64,
    /// Option trades recorded with zero greeks because there was no spot yet.
    pub options_no_spot: u64,
    /// Option trades whose greeks used `DEFAULT_IV` (no volatility fits the price).
    pub options_default_iv: u64,
    /// Option trades skipped for an unreadable right or expiry.
    pub options_bad_contract: u64,
    /// Snaps emitted.
    pub snaps_emitted: u64,
    /// Snap boundaries passed before a trade and a book image were seen.
    pub snaps_not_ready: u64,
    /// Changes of the followed futures contract.
    pub contract_switches: u64,
    /// Trading-date changes.
    pub session_resets: u64,
}

impl EngineStats {
    /// Counts one event of `kind`.
    pub fn count(&mut self, kind: EventKind) {
        match kind {
            EventKind::FuturesTrade => self.futures_trades += 1,
            EventKind::Mbp10 => self.mbp10 += 1,
            EventKind::OptionTrade => self.option_trades += 1,
            EventKind::StockTrade => self.stock_trades += 1,
            EventKind::StockQuote => self.stock_quotes += 1,
            EventKind::LevelSignals => self.level_signals_in += 1,
            EventKind::FeedStatus => self.feed_status_in += 1,
        }
    }

    /// The exit summary: every non-zero counter, one per line.
    pub fn report(&self) -> String {
        let mut out = String::from("core summary:\n");
        if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(self) {
            for (name, value) in map {
                if let Some(n) = value.as_u64().filter(|&n| n > 0) {
                    out.push_str(&format!("  {name:<22} {:>12}\n", crate::cli::thousands(n)));
                }
            }
        }
        out
    }

    /// Total events seen.
    pub fn events(&self) -> u64 {
        self.futures_trades
            + self.mbp10
            + self.option_trades
            + self.stock_trades
            + self.stock_quotes
            + self.level_signals_in
            + self.feed_status_in
    }
}
