//! Runway, PHYSICS.md §7: the room beyond a level in the signal's direction.

use super::config::Config;
use super::levels::Level;

/// Runway quality.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quality {
    Clear,
    Obstructed,
}

impl Quality {
    pub fn as_str(self) -> &'static str {
        match self {
            Quality::Clear => "CLEAR",
            Quality::Obstructed => "OBSTRUCTED",
        }
    }
}

/// The runway beyond one level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Runway<'a> {
    /// +1 UP, −1 DOWN.
    pub direction: i8,
    pub next_obstacle: Option<&'a Level>,
    pub distance: Option<f64>,
    pub quality: Quality,
}

/// Nearest level of `universe` strictly beyond `from` in `direction`, and whether a strong level
/// lies strictly beyond it within `RUNWAY_LOOKAHEAD`. Ties keep universe order.
pub fn runway<'a>(from: f64, direction: i8, universe: &'a [Level], cfg: &Config) -> Runway<'a> {
    const EPS: f64 = 1e-9;
    let dir = if direction >= 0 { 1.0 } else { -1.0 };
    let mut next: Option<(&Level, f64)> = None;
    let mut obstructed = false;
    for level in universe {
        let ahead = (level.price - from) * dir;
        if ahead <= EPS {
            continue;
        }
        if next.is_none_or(|(_, d)| ahead < d) {
            next = Some((level, ahead));
        }
        if level.kind.is_strong() && ahead <= cfg.runway_lookahead + EPS {
            obstructed = true;
        }
    }
    Runway {
        direction: if direction >= 0 { 1 } else { -1 },
        next_obstacle: next.map(|(l, _)| l),
        distance: next.map(|(_, d)| d),
        quality: if obstructed {
            Quality::Obstructed
        } else {
            Quality::Clear
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::levels::LevelKind;

    fn level(id: &str, price: f64, kind: LevelKind) -> Level {
        Level {
            id: id.into(),
            price,
            kind,
        }
    }

    #[test]
    fn up_from_545_finds_546_and_nothing_above_gives_no_distance() {
        let cfg = Config::default();
        let u = vec![
            level("ROUND_546", 546.0, LevelKind::Round),
            level("ROUND_548", 548.0, LevelKind::Round),
            level("ROUND_542", 542.0, LevelKind::Round),
            level("ROUND_545", 545.0, LevelKind::Round),
        ];
        let r = runway(545.0, 1, &u, &cfg);
        assert_eq!(r.next_obstacle.unwrap().id, "ROUND_546");
        assert_eq!(r.distance, Some(1.0));
        assert_eq!(r.quality, Quality::Clear);
        let down = runway(545.0, -1, &u, &cfg);
        assert_eq!(down.next_obstacle.unwrap().id, "ROUND_542");
        assert_eq!(down.distance, Some(3.0));
        let top = runway(548.0, 1, &u, &cfg);
        assert_eq!(top.next_obstacle, None);
        assert_eq!(top.distance, None);
        assert_eq!(top.quality, Quality::Clear);
    }

    #[test]
    fn a_strong_level_within_the_lookahead_obstructs() {
        let cfg = Config::default();
        let u = vec![
            level("ROUND_546", 546.0, LevelKind::Round),
            level("CALL_WALL", 545.8, LevelKind::CallWall),
            level("VWAP", 544.5, LevelKind::Vwap),
        ];
        let up = runway(545.0, 1, &u, &cfg);
        assert_eq!(up.quality, Quality::Obstructed);
        assert_eq!(up.next_obstacle.unwrap().id, "CALL_WALL");
        assert_eq!(runway(545.0, -1, &u, &cfg).quality, Quality::Obstructed);
        // A strong level more than $1 away, or behind, does not.
        let u = vec![
            level("SESSION_HIGH", 546.5, LevelKind::SessionHigh),
            level("PUT_WALL", 544.0, LevelKind::PutWall),
            level("ROUND_546", 546.0, LevelKind::Round),
        ];
        assert_eq!(runway(545.0, 1, &u, &cfg).quality, Quality::Clear);
        // Exactly at the lookahead obstructs.
        assert_eq!(runway(545.0, -1, &u, &cfg).quality, Quality::Obstructed);
    }
}
