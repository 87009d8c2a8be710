//! Market simulator: a realistic synthetic market written as genuine Databento DBN files.
//!
//! [`generate`] runs one session of an ES futures order book (ten levels a side, driven by order
//! arrivals, cancellations and trades), SPY 0DTE option trades priced by Black–Scholes on a
//! volatility smile, and optional SPY stock trades, steered by a [`Scenario`] script whose events
//! force the physics the signal engine measures (barrier, tape, fuel). The output is
//! deterministic: the same [`SynthConfig`] and scenario give byte-identical files.
//!
//! Files written to the output directory (`.zst` unless compression is off):
//! - `es.mbp-10.dbn.zst` — GLBX.MDP3 `mbp-10` (trades appear as action `T` records),
//! - `es.trades.dbn.zst` — GLBX.MDP3 `trades`,
//! - `opra.tcbbo.dbn.zst` — OPRA.PILLAR, mixed schema: `definition` records first, then `tcbbo`,
//! - `spy.trades.dbn.zst` — XNAS.ITCH `trades` (when enabled).

pub mod book;
pub mod pricing;
pub mod scenario;
mod sim;
pub mod writer;

use std::path::{Path, PathBuf};

use chrono::{NaiveDate, NaiveTime, TimeZone};
use chrono_tz::America::New_York;

pub use pricing::{Right, Smile};
pub use scenario::{Scenario, ScenarioError};

/// Errors from generating a session.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Dbn { path: PathBuf, source: dbn::Error },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
}

/// Everything that shapes a generated session. `Default` gives a 15-minute 10:00 ET session.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthConfig {
    /// Seed of every random stream.
    pub seed: u64,
    /// Session date (ET).
    pub date: NaiveDate,
    /// Session start, ET time of day.
    pub start: NaiveTime,
    /// Session length in seconds.
    pub duration_s: f64,
    /// ES outright contract symbol.
    pub es_symbol: String,
    /// ES price at the start (index points, rounded to the tick).
    pub es_start: f64,
    /// Mean ES book events a second in the quiet regime at mid-day (before the intraday profile).
    pub event_rate: f64,
    /// Rate multiplier of the busy regime.
    pub busy_multiplier: f64,
    /// Annualised volatility of the ES fair price.
    pub volatility: f64,
    /// Mean seconds spent in the quiet and in the busy regime.
    pub quiet_mean_s: f64,
    pub busy_mean_s: f64,
    /// Scale of resting depth per level (1.0 ≈ 30 contracts at the top, 90 deeper).
    pub depth_scale: f64,
    /// Share of ES events that are market orders.
    pub trade_share: f64,
    /// Background 0DTE option trades a second.
    pub option_rate: f64,
    /// Strikes are listed from spot − range to spot + range dollars (1-dollar spacing).
    pub strike_range: u32,
    /// Volatility smile of the option prices.
    pub smile: Smile,
    /// Risk-free rate used for option prices.
    pub risk_free_rate: f64,
    /// SPY trades a second (0 disables the SPY file).
    pub spy_rate: f64,
    /// SPY − ES/10 basis in dollars.
    pub spy_basis: f64,
    /// zstd level of the outputs; `None` writes plain `.dbn`.
    pub zstd_level: Option<i32>,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            seed: 1,
            date: NaiveDate::from_ymd_opt(2025, 11, 21).expect("valid date"),
            start: NaiveTime::from_hms_opt(10, 0, 0).expect("valid time"),
            duration_s: 900.0,
            es_symbol: "ESZ5".to_string(),
            es_start: 6885.0,
            event_rate: 400.0,
            busy_multiplier: 3.0,
            volatility: 0.15,
            quiet_mean_s: 300.0,
            busy_mean_s: 90.0,
            depth_scale: 1.0,
            trade_share: 0.06,
            option_rate: 1.5,
            strike_range: 15,
            smile: Smile::default(),
            risk_free_rate: 0.04,
            spy_rate: 8.0,
            spy_basis: 0.0,
            zstd_level: Some(3),
        }
    }
}

impl SynthConfig {
    /// Applies the `[session]` settings of a scenario (callers then apply their own overrides).
    pub fn apply_session(&mut self, s: &scenario::SessionOverrides) {
        if let Some(v) = s.seed {
            self.seed = v;
        }
        if let Some(v) = s.date {
            self.date = v;
        }
        if let Some(v) = s.start {
            self.start = v;
        }
        if let Some(v) = s.duration_s {
            self.duration_s = v;
        }
        if let Some(v) = s.es_start {
            self.es_start = v;
        }
        if let Some(v) = s.event_rate {
            self.event_rate = v;
        }
    }

    /// Session start as Unix nanoseconds (UTC).
    pub fn start_ns(&self) -> Result<u64, SynthError> {
        et_to_ns(self.date, self.start)
    }

    /// Session end as Unix nanoseconds (UTC).
    pub fn end_ns(&self) -> Result<u64, SynthError> {
        Ok(self.start_ns()? + (self.duration_s * 1e9).round() as u64)
    }

    fn validate(&self) -> Result<(), SynthError> {
        let bad = |m: &str| Err(SynthError::Config(m.to_string()));
        let pos = |x: f64| x > 0.0 && x.is_finite();
        if !pos(self.duration_s) || self.duration_s > 86_400.0 {
            return bad("duration must be > 0 and at most 24 h");
        }
        if !pos(self.es_start) || self.es_start > 100_000.0 {
            return bad("es_start must be a positive index price");
        }
        if !pos(self.event_rate) || self.event_rate > 100_000.0 {
            return bad("event_rate must be in (0, 100000]");
        }
        if !pos(self.busy_multiplier) || !pos(self.quiet_mean_s) || !pos(self.busy_mean_s) {
            return bad("regime settings must be > 0");
        }
        if !(self.volatility >= 0.0 && self.volatility < 5.0) {
            return bad("volatility must be in [0, 5)");
        }
        if !pos(self.depth_scale) || !(0.0..0.9).contains(&self.trade_share) {
            return bad("depth_scale must be > 0 and trade_share in [0, 0.9)");
        }
        if !(self.option_rate >= 0.0
            && self.spy_rate >= 0.0
            && self.option_rate.is_finite()
            && self.spy_rate.is_finite())
        {
            return bad("option_rate and spy_rate must be ≥ 0");
        }
        if self.strike_range < 10 || self.strike_range > 200 {
            return bad("strike_range must be in [10, 200]");
        }
        if !pos(self.smile.atm) {
            return bad("smile ATM volatility must be > 0");
        }
        if self.es_symbol.is_empty() || self.es_symbol.len() > 20 {
            return bad("es_symbol must be 1-20 characters");
        }
        if let Some(l) = self.zstd_level
            && !(1..=22).contains(&l)
        {
            return bad("zstd level must be in 1..=22");
        }
        Ok(())
    }
}

/// Unix nanoseconds of an ET wall-clock time.
pub fn et_to_ns(date: NaiveDate, time: NaiveTime) -> Result<u64, SynthError> {
    let dt = New_York
        .from_local_datetime(&date.and_time(time))
        .earliest()
        .ok_or_else(|| SynthError::Config(format!("{date} {time} does not exist in ET")))?;
    dt.timestamp_nanos_opt()
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| SynthError::Config("date out of range".into()))
}

/// Progress of a running generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Simulated nanoseconds done and total.
    pub done_ns: u64,
    pub total_ns: u64,
    /// Records written so far (all files).
    pub records: u64,
}

/// One file written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    pub path: PathBuf,
    pub records: u64,
}

/// What a generation produced.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthSummary {
    pub files: Vec<OutputFile>,
    /// ES records (MBP-10 plus trades).
    pub es_records: u64,
    pub es_trades: u64,
    pub option_trades: u64,
    pub option_definitions: u64,
    pub spy_trades: u64,
    pub start_ns: u64,
    pub end_ns: u64,
    /// ES price range and last price (index points).
    pub es_low: f64,
    pub es_high: f64,
    pub es_last: f64,
    /// Scenario actions that could not act (e.g. a consume while its price was not the best).
    pub skipped_actions: u64,
}

impl SynthSummary {
    /// Total records of every file.
    pub fn total_records(&self) -> u64 {
        self.files.iter().map(|f| f.records).sum()
    }
}

/// Generates one session into `out_dir` (created if missing).
pub fn generate(
    config: &SynthConfig,
    scenario: &Scenario,
    out_dir: &Path,
    progress: Option<&dyn Fn(Progress)>,
) -> Result<SynthSummary, SynthError> {
    config.validate()?;
    std::fs::create_dir_all(out_dir).map_err(|e| SynthError::Io {
        path: out_dir.to_path_buf(),
        source: e,
    })?;
    sim::run(config, scenario, out_dir, progress)
}
