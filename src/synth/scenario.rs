//! Scenario scripts: timed events that force the market physics, and the signals expected.
//!
//! A scenario is a small TOML file (see `docs/scenarios.md`): an optional `[session]` table,
//! `[[event]]` entries (drift, vacuum, wall, consume, sweep, options, regime) and `[[expect]]`
//! entries telling an end-to-end test which BREAK / REJECT calls the engine should make.

use chrono::{NaiveDate, NaiveTime};
use serde::Deserialize;

use super::book::BookSide;
use super::pricing::Right;

/// Nominal ES/SPY ratio used to convert `spy = ...` prices in scenarios.
pub const NOMINAL_RATIO: f64 = 10.0;
/// Longest duration a primitive may have (seconds).
const MAX_SECONDS: f64 = 86_400.0;
/// Largest `size` / `contracts` of one primitive.
const MAX_CONTRACTS: u32 = 1_000_000;
/// Largest wall refill rate (contracts a second).
const MAX_REFILL_PER_S: f64 = 5_000.0;

/// Errors from reading a scenario.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("scenario TOML: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("event {index} ({kind}): {msg}")]
    Event {
        index: usize,
        kind: String,
        msg: String,
    },
    #[error("expect {index}: {msg}")]
    Expect { index: usize, msg: String },
    #[error("[session]: {0}")]
    Session(String),
    #[error(
        "bad time `{0}`: use \"+HH:MM:SS[.fff]\" (from session start) or \"HH:MM:SS[.fff]\" (ET)"
    )]
    Time(String),
    #[error("time `{0}` is before the session start")]
    BeforeStart(String),
}

/// When an event happens: an offset from the session start, or an ET clock time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSpec {
    /// Nanoseconds after the session start.
    Offset(u64),
    /// ET wall-clock time on the session date.
    Clock(NaiveTime),
}

impl TimeSpec {
    /// Parses `+HH:MM:SS[.fff]`, `+MM:SS` or `HH:MM:SS[.fff]`.
    pub fn parse(s: &str) -> Result<TimeSpec, ScenarioError> {
        let bad = || ScenarioError::Time(s.to_string());
        let t = s.trim();
        if let Some(rest) = t.strip_prefix('+') {
            let parts: Vec<&str> = rest.split(':').collect();
            let (h, m, sec) = match parts.as_slice() {
                [h, m, s] => (*h, *m, *s),
                [m, s] => ("0", *m, *s),
                _ => return Err(bad()),
            };
            let h: u64 = h.parse().map_err(|_| bad())?;
            let m: u64 = m.parse().map_err(|_| bad())?;
            let sec: f64 = sec.parse().map_err(|_| bad())?;
            if m >= 60 || !(0.0..60.0).contains(&sec) {
                return Err(bad());
            }
            if h > 48 {
                return Err(bad());
            }
            let ns = (h * 3600 + m * 60) * 1_000_000_000 + (sec * 1e9).round() as u64;
            Ok(TimeSpec::Offset(ns))
        } else {
            NaiveTime::parse_from_str(t, "%H:%M:%S%.f")
                .or_else(|_| NaiveTime::parse_from_str(t, "%H:%M"))
                .map(TimeSpec::Clock)
                .map_err(|_| bad())
        }
    }

    /// Offset in nanoseconds from a session starting at ET clock `start`.
    pub fn offset_ns(&self, start: NaiveTime) -> Result<u64, ScenarioError> {
        match *self {
            TimeSpec::Offset(ns) => Ok(ns),
            TimeSpec::Clock(t) => {
                let d = t.signed_duration_since(start);
                d.num_nanoseconds()
                    .filter(|&n| n >= 0)
                    .map(|n| n as u64)
                    .ok_or_else(|| ScenarioError::BeforeStart(t.to_string()))
            }
        }
    }
}

/// Aggressor of a market order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggressor {
    Buy,
    Sell,
}

/// Who trades options: the customer buys (dealers short gamma) or sells (dealers long gamma).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Customer {
    Buy,
    Sell,
}

/// One scenario primitive. Prices are ES index points.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Move the fair price linearly to `to` over `duration_s`, then pin it there for `hold_s`.
    Drift {
        to: f64,
        duration_s: f64,
        hold_s: f64,
    },
    /// Pull resting liquidity of `side` within `price ± width_ticks` over `pull_s`, and keep the
    /// zone thin (at most `residual` contracts a level, tiny adds) until `duration_s` ends.
    Vacuum {
        side: BookSide,
        price: f64,
        width_ticks: u32,
        duration_s: f64,
        pull_s: f64,
        residual: u32,
    },
    /// Keep refilling `side` at `price` at `refill_per_s` contracts a second, with no cancels
    /// within `price ± width_ticks`, for `duration_s`.
    Wall {
        side: BookSide,
        price: f64,
        width_ticks: u32,
        duration_s: f64,
        refill_per_s: f64,
    },
    /// Aggressive orders fill `size` contracts resting on `side` at `price` over `duration_s`
    /// (only while `price` is the best of that side).
    Consume {
        side: BookSide,
        price: f64,
        size: u32,
        duration_s: f64,
    },
    /// One aggressive order of `size` contracts walking through up to `prices` price levels,
    /// never trading beyond `limit` (ES points) when given.
    Sweep {
        aggressor: Aggressor,
        size: u32,
        prices: u32,
        limit: Option<f64>,
    },
    /// Customers buy or sell `contracts` 0DTE options spread over `strikes` × `rights`.
    Options {
        customer: Customer,
        strikes: Vec<f64>,
        rights: Vec<Right>,
        contracts: u32,
        duration_s: f64,
    },
    /// Force the busy (or quiet) regime for `duration_s`.
    Regime { busy: bool, duration_s: f64 },
}

impl Action {
    /// The primitive's `kind` name.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Drift { .. } => "drift",
            Action::Vacuum { .. } => "vacuum",
            Action::Wall { .. } => "wall",
            Action::Consume { .. } => "consume",
            Action::Sweep { .. } => "sweep",
            Action::Options { .. } => "options",
            Action::Regime { .. } => "regime",
        }
    }
}

/// A timed scenario event.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioEvent {
    pub at: TimeSpec,
    pub action: Action,
    pub note: Option<String>,
}

/// Signal an end-to-end test expects from the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedSignal {
    Break,
    Reject,
}

/// An expected call: `signal` on `level` (SPY price `price`), first emitted in
/// `[after, after + within_s]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    pub signal: ExpectedSignal,
    pub level: String,
    pub price: f64,
    pub direction: Option<String>,
    pub after: TimeSpec,
    pub within_s: f64,
    pub note: Option<String>,
}

/// Session settings a scenario may fix (command-line flags override them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionOverrides {
    pub seed: Option<u64>,
    pub date: Option<NaiveDate>,
    pub start: Option<NaiveTime>,
    pub duration_s: Option<f64>,
    pub es_start: Option<f64>,
    pub event_rate: Option<f64>,
}

/// A parsed scenario.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scenario {
    pub name: Option<String>,
    pub description: Option<String>,
    pub session: SessionOverrides,
    pub events: Vec<ScenarioEvent>,
    pub expects: Vec<Expectation>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: Option<String>,
    description: Option<String>,
    #[serde(default)]
    session: RawSession,
    #[serde(default)]
    event: Vec<RawEvent>,
    #[serde(default)]
    expect: Vec<RawExpect>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSession {
    seed: Option<u64>,
    date: Option<String>,
    start: Option<String>,
    duration: Option<String>,
    es_start: Option<f64>,
    event_rate: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent {
    at: String,
    kind: String,
    note: Option<String>,
    es: Option<f64>,
    spy: Option<f64>,
    side: Option<String>,
    duration_s: Option<f64>,
    hold_s: Option<f64>,
    width_ticks: Option<u32>,
    pull_s: Option<f64>,
    residual: Option<u32>,
    refill_per_s: Option<f64>,
    size: Option<u32>,
    prices: Option<u32>,
    customer: Option<String>,
    strikes: Option<Vec<f64>>,
    right: Option<String>,
    contracts: Option<u32>,
    busy: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    signal: String,
    level: String,
    spy: f64,
    direction: Option<String>,
    after: String,
    within_s: f64,
    note: Option<String>,
}

fn parse_duration_s(s: &str) -> Result<f64, ScenarioError> {
    match TimeSpec::parse(&format!("+{}", s.trim_start_matches('+')))? {
        TimeSpec::Offset(ns) => Ok(ns as f64 / 1e9),
        TimeSpec::Clock(_) => Err(ScenarioError::Time(s.to_string())),
    }
}

impl Scenario {
    /// An empty scenario: plain market only.
    pub fn empty() -> Scenario {
        Scenario::default()
    }

    /// Parses and validates a scenario from TOML text.
    pub fn from_toml_str(text: &str) -> Result<Scenario, ScenarioError> {
        let raw: RawScenario = toml::from_str(text)?;
        let session = SessionOverrides {
            seed: raw.session.seed,
            date: raw
                .session
                .date
                .as_deref()
                .map(|d| {
                    NaiveDate::parse_from_str(d, "%Y-%m-%d")
                        .map_err(|_| ScenarioError::Session(format!("bad date `{d}` (YYYY-MM-DD)")))
                })
                .transpose()?,
            start: raw
                .session
                .start
                .as_deref()
                .map(|s| match TimeSpec::parse(s)? {
                    TimeSpec::Clock(t) => Ok(t),
                    TimeSpec::Offset(_) => Err(ScenarioError::Session(format!(
                        "start `{s}` must be an ET clock time"
                    ))),
                })
                .transpose()?,
            duration_s: raw
                .session
                .duration
                .as_deref()
                .map(parse_duration_s)
                .transpose()?,
            es_start: raw.session.es_start,
            event_rate: raw.session.event_rate,
        };
        let mut events = Vec::with_capacity(raw.event.len());
        for (index, e) in raw.event.into_iter().enumerate() {
            events.push(parse_event(index, e)?);
        }
        let mut expects = Vec::with_capacity(raw.expect.len());
        for (index, x) in raw.expect.into_iter().enumerate() {
            let err = |msg: String| ScenarioError::Expect { index, msg };
            let signal = match x.signal.to_ascii_uppercase().as_str() {
                "BREAK" => ExpectedSignal::Break,
                "REJECT" => ExpectedSignal::Reject,
                other => return Err(err(format!("signal `{other}`: BREAK or REJECT"))),
            };
            if x.within_s.is_nan() || x.within_s <= 0.0 {
                return Err(err("within_s must be > 0".into()));
            }
            expects.push(Expectation {
                signal,
                level: x.level,
                price: x.spy,
                direction: x.direction,
                after: TimeSpec::parse(&x.after)?,
                within_s: x.within_s,
                note: x.note,
            });
        }
        Ok(Scenario {
            name: raw.name,
            description: raw.description,
            session,
            events,
            expects,
        })
    }
}

fn parse_event(index: usize, e: RawEvent) -> Result<ScenarioEvent, ScenarioError> {
    let kind = e.kind.clone();
    let err = |msg: String| ScenarioError::Event {
        index,
        kind: kind.clone(),
        msg,
    };
    let at = TimeSpec::parse(&e.at)?;
    let price = || -> Result<f64, ScenarioError> {
        match (e.es, e.spy) {
            (Some(p), None) => Ok(p),
            (None, Some(p)) => Ok(p * NOMINAL_RATIO),
            _ => Err(err("give exactly one of `es` or `spy`".into())),
        }
    };
    let book_side = || -> Result<BookSide, ScenarioError> {
        match e.side.as_deref() {
            Some("bid") => Ok(BookSide::Bid),
            Some("ask") => Ok(BookSide::Ask),
            _ => Err(err("`side` must be \"bid\" or \"ask\"".into())),
        }
    };
    let positive =
        |name: &str, v: Option<f64>, default: Option<f64>| -> Result<f64, ScenarioError> {
            match v.or(default) {
                Some(x) if x > 0.0 && x <= MAX_SECONDS => Ok(x),
                Some(_) => Err(err(format!("`{name}` must be in (0, {MAX_SECONDS}]"))),
                None => Err(err(format!("`{name}` is required"))),
            }
        };
    let action = match e.kind.as_str() {
        "drift" => Action::Drift {
            to: price()?,
            duration_s: positive("duration_s", e.duration_s, None)?,
            hold_s: e.hold_s.unwrap_or(0.0).clamp(0.0, MAX_SECONDS),
        },
        "vacuum" => {
            let duration_s = positive("duration_s", e.duration_s, None)?;
            Action::Vacuum {
                side: book_side()?,
                price: price()?,
                width_ticks: e.width_ticks.unwrap_or(2),
                duration_s,
                pull_s: positive("pull_s", e.pull_s, Some(duration_s.min(4.0)))?.min(duration_s),
                residual: e.residual.unwrap_or(2),
            }
        }
        "wall" => Action::Wall {
            side: book_side()?,
            price: price()?,
            width_ticks: e.width_ticks.unwrap_or(2),
            duration_s: positive("duration_s", e.duration_s, None)?,
            refill_per_s: positive("refill_per_s", e.refill_per_s, Some(150.0))?
                .min(MAX_REFILL_PER_S),
        },
        "consume" => Action::Consume {
            side: book_side()?,
            price: price()?,
            size: e
                .size
                .filter(|&s| s > 0 && s <= MAX_CONTRACTS)
                .ok_or_else(|| err(format!("`size` in 1..={MAX_CONTRACTS} is required")))?,
            duration_s: positive("duration_s", e.duration_s, None)?,
        },
        "sweep" => Action::Sweep {
            aggressor: match e.side.as_deref() {
                Some("buy") => Aggressor::Buy,
                Some("sell") => Aggressor::Sell,
                _ => {
                    return Err(err(
                        "`side` must be \"buy\" or \"sell\" (the aggressor)".into()
                    ));
                }
            },
            size: e
                .size
                .filter(|&s| s > 0 && s <= MAX_CONTRACTS)
                .ok_or_else(|| err(format!("`size` in 1..={MAX_CONTRACTS} is required")))?,
            prices: e.prices.unwrap_or(3).clamp(1, 10),
            limit: match (e.es, e.spy) {
                (None, None) => None,
                _ => Some(price()?),
            },
        },
        "options" => {
            let strikes = e.strikes.clone().unwrap_or_default();
            if strikes.is_empty() || strikes.iter().any(|k| k.is_nan() || *k <= 0.0) {
                return Err(err("`strikes` must list positive SPY strikes".into()));
            }
            Action::Options {
                customer: match e.customer.as_deref() {
                    Some("buy") => Customer::Buy,
                    Some("sell") => Customer::Sell,
                    _ => return Err(err("`customer` must be \"buy\" or \"sell\"".into())),
                },
                strikes,
                rights: match e.right.as_deref().unwrap_or("both") {
                    "C" | "call" => vec![Right::Call],
                    "P" | "put" => vec![Right::Put],
                    "both" | "CP" => vec![Right::Call, Right::Put],
                    other => return Err(err(format!("`right` `{other}`: C, P or both"))),
                },
                contracts: e
                    .contracts
                    .filter(|&c| c > 0 && c <= MAX_CONTRACTS)
                    .ok_or_else(|| {
                        err(format!("`contracts` in 1..={MAX_CONTRACTS} is required"))
                    })?,
                duration_s: positive("duration_s", e.duration_s, None)?,
            }
        }
        "regime" => Action::Regime {
            busy: e
                .busy
                .ok_or_else(|| err("`busy` (true/false) is required".into()))?,
            duration_s: positive("duration_s", e.duration_s, None)?,
        },
        other => {
            return Err(err(format!(
                "unknown kind `{other}` (drift, vacuum, wall, consume, sweep, options, regime)"
            )));
        }
    };
    Ok(ScenarioEvent {
        at,
        action,
        note: e.note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_relative_and_clock_times() {
        assert_eq!(
            TimeSpec::parse("+00:03:10").unwrap(),
            TimeSpec::Offset(190_000_000_000)
        );
        assert_eq!(
            TimeSpec::parse("+03:10.5").unwrap(),
            TimeSpec::Offset(190_500_000_000)
        );
        let start = NaiveTime::from_hms_opt(10, 0, 0).unwrap();
        let c = TimeSpec::parse("10:05:00").unwrap();
        assert_eq!(c.offset_ns(start).unwrap(), 300_000_000_000);
        assert!(
            TimeSpec::parse("09:59:00")
                .unwrap()
                .offset_ns(start)
                .is_err()
        );
        assert!(TimeSpec::parse("+1:70:00").is_err());
        assert!(TimeSpec::parse("soon").is_err());
    }

    #[test]
    fn parses_every_primitive() {
        let text = r#"
            name = "t"
            [session]
            date = "2025-11-21"
            start = "10:00:00"
            duration = "00:15:00"
            [[event]]
            at = "+00:01:00"
            kind = "drift"
            spy = 687.5
            duration_s = 30
            [[event]]
            at = "10:02:00"
            kind = "vacuum"
            side = "bid"
            es = 6870.0
            duration_s = 20
            [[event]]
            at = "+00:02:00"
            kind = "wall"
            side = "ask"
            es = 6900.0
            duration_s = 20
            [[event]]
            at = "+00:02:00"
            kind = "consume"
            side = "ask"
            es = 6900.0
            size = 300
            duration_s = 10
            [[event]]
            at = "+00:02:00"
            kind = "sweep"
            side = "sell"
            size = 400
            prices = 4
            [[event]]
            at = "+00:02:00"
            kind = "options"
            customer = "buy"
            strikes = [686, 687]
            right = "C"
            contracts = 2000
            duration_s = 60
            [[event]]
            at = "+00:02:00"
            kind = "regime"
            busy = true
            duration_s = 60
            [[expect]]
            signal = "BREAK"
            level = "ROUND_687"
            spy = 687.0
            after = "+00:02:00"
            within_s = 10
        "#;
        let s = Scenario::from_toml_str(text).unwrap();
        assert_eq!(s.events.len(), 7);
        assert_eq!(s.session.duration_s, Some(900.0));
        assert_eq!(
            s.events[0].action,
            Action::Drift {
                to: 6875.0,
                duration_s: 30.0,
                hold_s: 0.0
            }
        );
        assert!(matches!(
            s.events[1].action,
            Action::Vacuum {
                side: BookSide::Bid,
                width_ticks: 2,
                ..
            }
        ));
        assert_eq!(s.expects[0].signal, ExpectedSignal::Break);
        assert_eq!(s.expects[0].after, TimeSpec::Offset(120_000_000_000));
    }

    #[test]
    fn rejects_unknown_fields_kinds_and_ambiguous_prices() {
        let unknown_field =
            "[[event]]\nat='+00:00:01'\nkind='sweep'\nside='sell'\nsize=1\ncolour='red'";
        assert!(Scenario::from_toml_str(unknown_field).is_err());
        let unknown_kind = "[[event]]\nat='+00:00:01'\nkind='teleport'";
        let e = Scenario::from_toml_str(unknown_kind)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown kind"), "{e}");
        let both = "[[event]]\nat='+00:00:01'\nkind='drift'\nes=6870.0\nspy=687.0\nduration_s=1";
        assert!(Scenario::from_toml_str(both).is_err());
        let huge = "[[event]]\nat='+00:00:01'\nkind='sweep'\nside='sell'\nsize=2000000";
        assert!(Scenario::from_toml_str(huge).is_err());
        let long = "[[event]]\nat='+00:00:01'\nkind='regime'\nbusy=true\nduration_s=1e12";
        assert!(Scenario::from_toml_str(long).is_err());
        assert!(TimeSpec::parse("+99999:00:00").is_err());
        let bad_side = "[[event]]\nat='+00:00:01'\nkind='wall'\nside='up'\nes=1.0\nduration_s=1";
        assert!(Scenario::from_toml_str(bad_side).is_err());
    }
}
