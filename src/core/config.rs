//! Physics constants of the signal engine (PHYSICS.md), with their defaults.
//!
//! Every constant can be overridden from a TOML file (`--config FILE.toml`); unknown keys are
//! rejected so a typo is not silently ignored. `spm-core --print-config` prints the effective set
//! through [`Config::to_toml_string`]. Windows and timers are integer milliseconds so that window
//! arithmetic on nanosecond event time stays exact.

use serde::{Deserialize, Serialize};

/// Which option expiries feed the fuel (dealer gamma) flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum FuelExpiry {
    /// Only options expiring on the trading date.
    #[default]
    #[serde(rename = "0dte")]
    ZeroDte,
    /// Every expiry.
    #[serde(rename = "all")]
    All,
}

/// Errors from loading a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid configuration: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// All physics constants (PHYSICS.md §1–§8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    // --- §8 snaps
    /// `SNAP_INTERVAL_MS`: snap boundaries are multiples of this in event time.
    pub snap_interval_ms: u64,

    // --- §1 market state
    /// `--futures-symbol`: the futures contract to follow; none = most traded outright.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub futures_symbol: Option<String>,
    /// Symbol of the equity whose trades drive the ratio and whose options feed the fuel.
    pub underlying: String,
    /// `ES_SPY_RATIO` until SPY prints have been seen.
    pub es_spy_ratio: f64,
    /// ES tick size (index points).
    pub es_tick_size: f64,
    /// ES dollars per index point (sweep notional).
    pub es_point_value: f64,
    /// Option contract multiplier.
    pub option_multiplier: f64,
    /// `FUEL_EXPIRY`: `0dte` or `all`.
    pub fuel_expiry: FuelExpiry,
    /// `RISK_FREE_RATE` of the Black–Scholes greeks.
    pub risk_free_rate: f64,
    /// `MIN_T` floor of the time to expiry, seconds.
    pub min_t_s: f64,
    /// `DEFAULT_IV` where no volatility fits the price.
    pub default_iv: f64,
    /// Tolerance of the implied-volatility solver.
    pub iv_tolerance: f64,

    // --- §2 level universe
    /// `ROUND_LEVELS_SPACING` ($).
    pub round_levels_spacing: f64,
    /// `STRIKE_RANGE` ($).
    pub strike_range: f64,
    /// `WALL_MIN_GAMMA`: a wall needs summed dealer gamma ≤ −this.
    pub wall_min_gamma: f64,
    /// `MONITOR_BAND` ($): a level is active within this distance of spot.
    pub monitor_band: f64,
    /// `USER_HOTZONE` prices (`--hotzone`).
    pub hotzones: Vec<f64>,

    // --- §3 barrier
    /// `W_b` (ms).
    pub barrier_window_ms: u64,
    /// `BARRIER_ZONE_TICKS`.
    pub barrier_zone_ticks: u32,
    /// `R_vac`.
    pub r_vac: f64,
    /// `R_wall`.
    pub r_wall: f64,
    /// `F_thresh` (contracts).
    pub f_thresh: f64,
    /// `WEAK_DEPTH` (contracts).
    pub weak_depth: f64,
    /// Barrier confidence is (added + canceled + filled) / this, capped at 1.
    pub barrier_confidence_volume: f64,

    // --- §4 tape
    /// `W_t` (ms).
    pub tape_window_ms: u64,
    /// `W_v` (ms).
    pub velocity_window_ms: u64,
    /// `TAPE_BAND` ($ SPY).
    pub tape_band: f64,
    /// `SWEEP_MAX_GAP_MS`.
    pub sweep_max_gap_ms: u64,
    /// `SWEEP_MIN_NOTIONAL` ($).
    pub sweep_min_notional: f64,
    /// `SWEEP_MIN_PRICES`.
    pub sweep_min_prices: u32,
    /// Tape confidence is (buy + sell) / this, capped at 1.
    pub tape_confidence_volume: f64,

    // --- §5 fuel
    /// `FUEL_STRIKE_RANGE` ($).
    pub fuel_strike_range: f64,
    /// `GAMMA_THRESHOLD`.
    pub gamma_threshold: f64,
    /// Fuel confidence is Σ volume / this, capped at 1.
    pub fuel_confidence_volume: f64,

    // --- §6 score and signal
    /// `w_L`.
    pub w_l: f64,
    /// `w_H`.
    pub w_h: f64,
    /// `w_T`.
    pub w_t: f64,
    /// Velocity (ES points/s) giving the full velocity part of S_T.
    pub velocity_full_scale: f64,
    /// `BREAK_SCORE_THRESHOLD`.
    pub break_score_threshold: f64,
    /// `REJECT_SCORE_THRESHOLD`.
    pub reject_score_threshold: f64,
    /// `BREAK_EXIT_SCORE`.
    pub break_exit_score: f64,
    /// `REJECT_EXIT_SCORE`.
    pub reject_exit_score: f64,
    /// `TOUCH_BAND` ($).
    pub touch_band: f64,
    /// `TRIGGER_HOLD_TIME` (ms).
    pub trigger_hold_time_ms: u64,
    /// `CONTESTED_MIN_VOLUME` (contracts).
    pub contested_min_volume: f64,
    /// EWMA time constants (s).
    pub tau_score_s: f64,
    pub tau_delta_liq_s: f64,
    pub tau_replenishment_s: f64,
    pub tau_velocity_s: f64,
    pub tau_dealer_gamma_s: f64,

    // --- §7 runway
    /// `RUNWAY_LOOKAHEAD` ($).
    pub runway_lookahead: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            snap_interval_ms: 250,
            futures_symbol: None,
            underlying: "SPY".to_string(),
            es_spy_ratio: 10.0,
            es_tick_size: 0.25,
            es_point_value: 50.0,
            option_multiplier: 100.0,
            fuel_expiry: FuelExpiry::ZeroDte,
            risk_free_rate: 0.04,
            min_t_s: 60.0,
            default_iv: 0.20,
            iv_tolerance: 1e-6,
            round_levels_spacing: 1.0,
            strike_range: 5.0,
            wall_min_gamma: 1_000.0,
            monitor_band: 0.50,
            hotzones: Vec::new(),
            barrier_window_ms: 10_000,
            barrier_zone_ticks: 2,
            r_vac: 0.3,
            r_wall: 1.5,
            f_thresh: 100.0,
            weak_depth: 50.0,
            barrier_confidence_volume: 500.0,
            tape_window_ms: 5_000,
            velocity_window_ms: 3_000,
            tape_band: 0.10,
            sweep_max_gap_ms: 100,
            sweep_min_notional: 5_000_000.0,
            sweep_min_prices: 2,
            tape_confidence_volume: 500.0,
            fuel_strike_range: 2.0,
            gamma_threshold: 10_000.0,
            fuel_confidence_volume: 1_000.0,
            w_l: 0.45,
            w_h: 0.35,
            w_t: 0.20,
            velocity_full_scale: 0.5,
            break_score_threshold: 80.0,
            reject_score_threshold: 20.0,
            break_exit_score: 70.0,
            reject_exit_score: 30.0,
            touch_band: 0.05,
            trigger_hold_time_ms: 3_000,
            contested_min_volume: 500.0,
            tau_score_s: 2.0,
            tau_delta_liq_s: 3.0,
            tau_replenishment_s: 3.0,
            tau_velocity_s: 1.5,
            tau_dealer_gamma_s: 5.0,
            runway_lookahead: 1.0,
        }
    }
}

impl Config {
    /// Parses a TOML document; absent keys keep their defaults.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    /// The effective configuration as TOML.
    pub fn to_toml_string(&self) -> String {
        // A struct of numbers, strings and a list always serialises.
        toml::to_string(self).expect("config serialises to TOML")
    }

    /// Rejects values the engine cannot work with.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |what: &str| Err(ConfigError::Invalid(what.to_string()));
        if self.snap_interval_ms == 0 {
            return bad("snap_interval_ms must be > 0");
        }
        if !(self.es_spy_ratio.is_finite() && self.es_spy_ratio > 0.0) {
            return bad("es_spy_ratio must be a positive number");
        }
        if !(self.es_tick_size.is_finite() && self.es_tick_size > 0.0) {
            return bad("es_tick_size must be a positive number");
        }
        if !(self.round_levels_spacing.is_finite() && self.round_levels_spacing > 0.0) {
            return bad("round_levels_spacing must be a positive number");
        }
        if !(self.default_iv.is_finite() && self.default_iv > 0.0) {
            return bad("default_iv must be a positive number");
        }
        if self.hotzones.iter().any(|p| !p.is_finite()) {
            return bad("hotzones must be finite prices");
        }
        Ok(())
    }

    /// The largest window any query needs, in nanoseconds.
    pub fn max_window_ns(&self) -> u64 {
        self.barrier_window_ms
            .max(self.tape_window_ms)
            .max(self.velocity_window_ms)
            .saturating_mul(1_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_physics_constants() {
        let c = Config::default();
        assert_eq!(c.snap_interval_ms, 250);
        assert_eq!(c.es_spy_ratio, 10.0);
        assert_eq!(c.barrier_window_ms, 10_000);
        assert_eq!(c.sweep_min_notional, 5_000_000.0);
        assert_eq!(c.contested_min_volume, 500.0);
        assert_eq!(c.fuel_expiry, FuelExpiry::ZeroDte);
        assert_eq!((c.w_l, c.w_h, c.w_t), (0.45, 0.35, 0.20));
    }

    #[test]
    fn toml_overrides_some_keys_and_keeps_the_rest() {
        let c =
            Config::from_toml_str("f_thresh = 50.0\nfuel_expiry = \"all\"\nhotzones = [687.5]\n")
                .unwrap();
        assert_eq!(c.f_thresh, 50.0);
        assert_eq!(c.fuel_expiry, FuelExpiry::All);
        assert_eq!(c.hotzones, vec![687.5]);
        assert_eq!(c.r_vac, 0.3);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_rejected() {
        assert!(Config::from_toml_str("f_thresold = 50.0").is_err());
        assert!(Config::from_toml_str("snap_interval_ms = 0").is_err());
        assert!(Config::from_toml_str("es_spy_ratio = -1.0").is_err());
    }

    #[test]
    fn printed_config_reads_back_identical() {
        let c = Config {
            futures_symbol: Some("ESZ5".into()),
            hotzones: vec![687.0, 690.25],
            ..Config::default()
        };
        let text = c.to_toml_string();
        assert!(text.contains("snap_interval_ms = 250"), "{text}");
        assert_eq!(Config::from_toml_str(&text).unwrap(), c);
        let text = Config::default().to_toml_string();
        assert_eq!(Config::from_toml_str(&text).unwrap(), Config::default());
    }
}
