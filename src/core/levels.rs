//! The level universe, PHYSICS.md §2: which SPY prices are watched, their ids, which are active,
//! in which order they are published and which way they face.

use super::config::Config;
use super::fuel::GammaMarks;

/// The kind of a level (universe order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LevelKind {
    Vwap,
    SessionHigh,
    SessionLow,
    Round,
    Strike,
    CallWall,
    PutWall,
    GammaFlip,
    UserHotzone,
}

impl LevelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LevelKind::Vwap => "VWAP",
            LevelKind::SessionHigh => "SESSION_HIGH",
            LevelKind::SessionLow => "SESSION_LOW",
            LevelKind::Round => "ROUND",
            LevelKind::Strike => "STRIKE",
            LevelKind::CallWall => "CALL_WALL",
            LevelKind::PutWall => "PUT_WALL",
            LevelKind::GammaFlip => "GAMMA_FLIP",
            LevelKind::UserHotzone => "USER_HOTZONE",
        }
    }

    /// Strong levels obstruct a runway (PHYSICS.md §7).
    pub fn is_strong(self) -> bool {
        matches!(
            self,
            LevelKind::CallWall
                | LevelKind::PutWall
                | LevelKind::SessionHigh
                | LevelKind::SessionLow
                | LevelKind::Vwap
                | LevelKind::GammaFlip
        )
    }
}

/// Which way a level faces from spot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Spot above the level; a break goes DOWN.
    Support,
    /// Spot at or below the level; a break goes UP.
    Resistance,
}

impl Direction {
    pub fn of(spot: f64, level: f64) -> Direction {
        if spot > level {
            Direction::Support
        } else {
            Direction::Resistance
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Support => "SUPPORT",
            Direction::Resistance => "RESISTANCE",
        }
    }

    /// Break direction: +1 UP, −1 DOWN.
    pub fn break_sign(self) -> i8 {
        match self {
            Direction::Support => -1,
            Direction::Resistance => 1,
        }
    }
}

/// `UP` / `DOWN` of a sign.
pub fn sign_str(sign: i8) -> &'static str {
    if sign >= 0 { "UP" } else { "DOWN" }
}

/// A level of the universe.
#[derive(Debug, Clone, PartialEq)]
pub struct Level {
    pub id: String,
    pub price: f64,
    pub kind: LevelKind,
}

/// A price as it appears in an id: `687.5`, `687` for whole prices.
pub fn format_price(price: f64) -> String {
    // Snap to a millionth so that spacing arithmetic (k·0.1) prints short.
    let p = (price * 1e6).round() / 1e6;
    let p = if p == 0.0 { 0.0 } else { p };
    format!("{p}")
}

/// What the universe is built from at a snap (all SPY prices).
#[derive(Debug, Clone, Default)]
pub struct UniverseInputs<'a> {
    pub spot: f64,
    pub vwap: Option<f64>,
    pub session_high: Option<f64>,
    pub session_low: Option<f64>,
    /// Strikes with flow within ±`STRIKE_RANGE` of spot, ascending.
    pub strikes: &'a [f64],
    pub marks: GammaMarks,
}

/// Builds the universe in table order; a duplicate id keeps its first entry.
pub fn build_universe(inputs: &UniverseInputs<'_>, cfg: &Config, out: &mut Vec<Level>) {
    out.clear();
    let mut push = |id: String, price: f64, kind: LevelKind| {
        if price.is_finite() && !out.iter().any(|l| l.id == id) {
            out.push(Level { id, price, kind });
        }
    };
    if let Some(p) = inputs.vwap {
        push("VWAP".into(), p, LevelKind::Vwap);
    }
    if let Some(p) = inputs.session_high {
        push("SESSION_HIGH".into(), p, LevelKind::SessionHigh);
    }
    if let Some(p) = inputs.session_low {
        push("SESSION_LOW".into(), p, LevelKind::SessionLow);
    }
    let spot = inputs.spot;
    let spacing = cfg.round_levels_spacing;
    if spot.is_finite() {
        let first = ((spot - cfg.strike_range) / spacing - 1e-9).ceil() as i64;
        let last = ((spot + cfg.strike_range) / spacing + 1e-9).floor() as i64;
        for k in first..=last {
            let p = (k as f64 * spacing * 1e6).round() / 1e6;
            push(format!("ROUND_{}", format_price(p)), p, LevelKind::Round);
        }
    }
    for &k in inputs.strikes {
        push(format!("STRIKE_{}", format_price(k)), k, LevelKind::Strike);
    }
    if let Some(p) = inputs.marks.call_wall {
        push("CALL_WALL".into(), p, LevelKind::CallWall);
    }
    if let Some(p) = inputs.marks.put_wall {
        push("PUT_WALL".into(), p, LevelKind::PutWall);
    }
    if let Some(p) = inputs.marks.gamma_flip {
        push("GAMMA_FLIP".into(), p, LevelKind::GammaFlip);
    }
    for &p in &cfg.hotzones {
        push(
            format!("HOTZONE_{}", format_price(p)),
            p,
            LevelKind::UserHotzone,
        );
    }
}

/// Indices of the active levels (`|spot − price| ≤ MONITOR_BAND`), nearest first, ties in
/// universe order.
pub fn active_levels(universe: &[Level], spot: f64, cfg: &Config, out: &mut Vec<usize>) {
    out.clear();
    out.extend(
        universe
            .iter()
            .enumerate()
            .filter(|(_, l)| (spot - l.price).abs() <= cfg.monitor_band + 1e-9)
            .map(|(i, _)| i),
    );
    // Stable sort: equal distances keep universe order.
    out.sort_by(|&a, &b| {
        let da = (spot - universe[a].price).abs();
        let db = (spot - universe[b].price).abs();
        da.total_cmp(&db)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_keep_fractions_and_drop_whole_decimals() {
        assert_eq!(format_price(687.5), "687.5");
        assert_eq!(format_price(687.0), "687");
        assert_eq!(format_price(6871.0 * 0.1), "687.1");
        assert_eq!(format_price(690.25), "690.25");
    }

    #[test]
    fn universe_is_built_in_table_order_without_duplicate_ids() {
        let cfg = Config {
            hotzones: vec![687.25, 687.25, 700.0],
            ..Config::default()
        };
        let strikes = [683.0, 687.5, 688.0];
        let inputs = UniverseInputs {
            spot: 687.3,
            vwap: Some(686.9),
            session_high: Some(689.1),
            session_low: Some(684.2),
            strikes: &strikes,
            marks: GammaMarks {
                call_wall: Some(690.0),
                put_wall: Some(684.0),
                gamma_flip: Some(686.25),
            },
        };
        let mut u = Vec::new();
        build_universe(&inputs, &cfg, &mut u);
        let ids: Vec<&str> = u.iter().map(|l| l.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "VWAP",
                "SESSION_HIGH",
                "SESSION_LOW",
                "ROUND_683",
                "ROUND_684",
                "ROUND_685",
                "ROUND_686",
                "ROUND_687",
                "ROUND_688",
                "ROUND_689",
                "ROUND_690",
                "ROUND_691",
                "ROUND_692",
                "STRIKE_683",
                "STRIKE_687.5",
                "STRIKE_688",
                "CALL_WALL",
                "PUT_WALL",
                "GAMMA_FLIP",
                "HOTZONE_687.25",
                "HOTZONE_700",
            ]
        );
        assert_eq!(u[0].kind, LevelKind::Vwap);
        assert_eq!(u[14].price, 687.5);
    }

    #[test]
    fn round_levels_span_spot_plus_minus_strike_range() {
        let cfg = Config::default();
        let mut u = Vec::new();
        build_universe(
            &UniverseInputs {
                spot: 687.0,
                ..UniverseInputs::default()
            },
            &cfg,
            &mut u,
        );
        assert_eq!(u.first().unwrap().id, "ROUND_682");
        assert_eq!(u.last().unwrap().id, "ROUND_692");
        assert_eq!(u.len(), 11);
    }

    #[test]
    fn active_levels_are_within_the_band_nearest_first_ties_in_universe_order() {
        let cfg = Config::default();
        let level = |id: &str, price: f64, kind| Level {
            id: id.into(),
            price,
            kind,
        };
        let u = vec![
            level("VWAP", 687.15, LevelKind::Vwap),
            level("ROUND_687", 687.0, LevelKind::Round),
            level("ROUND_688", 688.0, LevelKind::Round),
            level("STRIKE_687", 687.0, LevelKind::Strike),
            level("HOTZONE_687.5", 687.5, LevelKind::UserHotzone),
        ];
        let mut active = Vec::new();
        active_levels(&u, 687.1, &cfg, &mut active);
        let ids: Vec<&str> = active.iter().map(|&i| u[i].id.as_str()).collect();
        assert_eq!(ids, ["VWAP", "ROUND_687", "STRIKE_687", "HOTZONE_687.5"]);
        // Exactly at the band edge is active.
        active_levels(&u, 687.5, &cfg, &mut active);
        assert!(active.iter().any(|&i| u[i].id == "ROUND_687"));
    }

    #[test]
    fn direction_faces_spot() {
        assert_eq!(Direction::of(687.1, 687.0), Direction::Support);
        assert_eq!(Direction::of(686.9, 687.0), Direction::Resistance);
        assert_eq!(Direction::of(687.0, 687.0), Direction::Resistance);
        assert_eq!(Direction::Support.break_sign(), -1);
        assert_eq!(sign_str(Direction::Resistance.break_sign()), "UP");
    }
}
