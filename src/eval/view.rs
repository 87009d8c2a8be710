//! The part of a `level_signals` payload the evaluation reads, borrowed from the bytes.
//!
//! A snap of six levels is about five kilobytes of JSON of which the evaluation needs a dozen
//! fields per level. Deserialising into these borrowed views skips the rest without building
//! it (numbers that are skipped are scanned, not converted), which is what lets `spm-eval`
//! keep up with any pipeline. Every field the full [`LevelSignals`] requires is either read
//! here or skipped, so a payload the full parser accepts is accepted here too.

use std::borrow::Cow;

use serde::Deserialize;

use crate::event::LevelSignals;

/// The values of the payload's enumerations (level kinds, directions, signals, confidences,
/// barrier states, fuel effects), shared instead of copied by [`SnapView::into_owned`].
const WORDS: [&str; 26] = [
    "level_signals",
    "SUPPORT",
    "RESISTANCE",
    "NEUTRAL",
    "BREAK",
    "REJECT",
    "CONTESTED",
    "HIGH",
    "MEDIUM",
    "LOW",
    "VACUUM",
    "WALL",
    "CONSUMED",
    "ABSORPTION",
    "WEAK",
    "AMPLIFY",
    "DAMPEN",
    "ROUND",
    "STRIKE",
    "VWAP",
    "SESSION_HIGH",
    "SESSION_LOW",
    "GAMMA_FLIP",
    "CALL_WALL",
    "PUT_WALL",
    "USER_HOTZONE",
];

/// A snap: its event time (ms), spot and active levels.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct SnapView<'a> {
    /// `level_signals`, or absent (a payload from an older publisher).
    #[serde(rename = "type", borrow, default)]
    pub kind: Option<Cow<'a, str>>,
    pub ts: i64,
    #[serde(default)]
    pub spy: SpyView,
    #[serde(borrow, default)]
    pub levels: Vec<LevelView<'a>>,
}

/// Spot at the snap.
#[derive(Debug, Clone, Copy, Deserialize, Default)]
pub struct SpyView {
    #[serde(default)]
    pub spot: Option<f64>,
}

/// The fields of one level the evaluation uses.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct LevelView<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    pub price: f64,
    #[serde(borrow)]
    pub kind: Cow<'a, str>,
    #[serde(borrow)]
    pub direction: Cow<'a, str>,
    pub distance: f64,
    #[serde(default)]
    pub break_score_raw: f64,
    #[serde(default)]
    pub break_score_smooth: f64,
    #[serde(borrow)]
    pub signal: Cow<'a, str>,
    #[serde(borrow, default)]
    pub confidence: Cow<'a, str>,
    #[serde(borrow, default)]
    pub barrier: StateView<'a>,
    #[serde(borrow, default)]
    pub fuel: EffectView<'a>,
}

/// `barrier.state`.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct StateView<'a> {
    #[serde(borrow, default)]
    pub state: Cow<'a, str>,
}

/// `fuel.effect`.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct EffectView<'a> {
    #[serde(borrow, default)]
    pub effect: Cow<'a, str>,
}

impl<'a> SnapView<'a> {
    /// Parses one payload: the compact form the engine writes through [`fast`], anything else
    /// (other spacing, escaped strings, a missing field) through serde, which also names what
    /// is wrong with a broken payload.
    pub fn parse(bytes: &'a [u8]) -> Result<SnapView<'a>, serde_json::Error> {
        match fast::snap(bytes) {
            Some(view) => Ok(view),
            None => serde_json::from_slice(bytes),
        }
    }

    /// The same snap owning its strings, to move it to another thread.
    pub fn into_owned(self) -> SnapView<'static> {
        fn own(s: Cow<'_, str>) -> Cow<'static, str> {
            // The enumerations repeat in every level: no allocation for them.
            match WORDS.iter().find(|w| **w == s) {
                Some(word) => Cow::Borrowed(word),
                None => Cow::Owned(s.into_owned()),
            }
        }
        SnapView {
            kind: self.kind.map(own),
            ts: self.ts,
            spy: self.spy,
            levels: self
                .levels
                .into_iter()
                .map(|l| LevelView {
                    id: own(l.id),
                    price: l.price,
                    kind: own(l.kind),
                    direction: own(l.direction),
                    distance: l.distance,
                    break_score_raw: l.break_score_raw,
                    break_score_smooth: l.break_score_smooth,
                    signal: own(l.signal),
                    confidence: own(l.confidence),
                    barrier: StateView {
                        state: own(l.barrier.state),
                    },
                    fuel: EffectView {
                        effect: own(l.fuel.effect),
                    },
                })
                .collect(),
        }
    }

    /// Whether the payload says it is something other than `level_signals`.
    pub fn is_other_type(&self) -> bool {
        self.kind.as_deref().is_some_and(|k| k != "level_signals")
    }

    /// Borrows a full snap (from the engine in-process, or a decoded event).
    pub fn of(snap: &'a LevelSignals) -> SnapView<'a> {
        SnapView {
            kind: None,
            ts: snap.ts,
            spy: SpyView {
                spot: snap.spy.spot,
            },
            levels: snap
                .levels
                .iter()
                .map(|l| LevelView {
                    id: Cow::Borrowed(&l.id),
                    price: l.price,
                    kind: Cow::Borrowed(&l.kind),
                    direction: Cow::Borrowed(&l.direction),
                    distance: l.distance,
                    break_score_raw: l.break_score_raw,
                    break_score_smooth: l.break_score_smooth,
                    signal: Cow::Borrowed(&l.signal),
                    confidence: Cow::Borrowed(&l.confidence),
                    barrier: StateView {
                        state: Cow::Borrowed(&l.barrier.state),
                    },
                    fuel: EffectView {
                        effect: Cow::Borrowed(&l.fuel.effect),
                    },
                })
                .collect(),
        }
    }
}

/// A scanner for the payloads as the engine writes them: compact, keys unescaped, every
/// needed field present. It reads the needed fields and skips the rest by structure (strings,
/// nesting) without converting it, about three times faster than serde's skipping. It gives
/// up (`None`) on anything it does not expect, and the caller falls back to serde.
mod fast {
    use std::borrow::Cow;

    use super::{EffectView, LevelView, SnapView, SpyView, StateView};

    struct Cursor<'a> {
        b: &'a [u8],
        i: usize,
    }

    impl<'a> Cursor<'a> {
        fn peek(&self) -> Option<u8> {
            self.b.get(self.i).copied()
        }

        fn eat(&mut self, c: u8) -> Option<()> {
            (self.peek()? == c).then(|| self.i += 1)
        }

        /// The bytes of a string without escapes (not checked further: keys are only compared).
        fn raw_str(&mut self) -> Option<&'a [u8]> {
            self.eat(b'"')?;
            let start = self.i;
            let len = memchr::memchr2(b'"', b'\\', &self.b[start..])?;
            if self.b[start + len] != b'"' {
                return None;
            }
            self.i = start + len + 1;
            Some(&self.b[start..start + len])
        }

        /// A string value without escapes, borrowed.
        fn str(&mut self) -> Option<&'a str> {
            let bytes = self.raw_str()?;
            if bytes.iter().any(|&c| c < 0x20) {
                return None;
            }
            std::str::from_utf8(bytes).ok()
        }

        /// The bytes of a number token.
        fn number_token(&mut self) -> Option<&'a str> {
            let start = self.i;
            while let Some(c) = self.peek() {
                if c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E') {
                    self.i += 1;
                } else {
                    break;
                }
            }
            // Digits, signs and dots are ASCII.
            std::str::from_utf8(&self.b[start..self.i])
                .ok()
                .filter(|t| !t.is_empty())
        }

        fn f64(&mut self) -> Option<f64> {
            let v: f64 = self.number_token()?.parse().ok()?;
            v.is_finite().then_some(v)
        }

        fn opt_f64(&mut self) -> Option<Option<f64>> {
            if self.b[self.i..].starts_with(b"null") {
                self.i += 4;
                return Some(None);
            }
            self.f64().map(Some)
        }

        /// Skips one value of any kind, checking its structure but not converting it.
        fn skip(&mut self) -> Option<()> {
            match self.peek()? {
                b'"' => self.skip_str(),
                // In valid JSON brackets nest within braces and the other way round, so the
                // end of an object is found counting braces only (and of an array, brackets).
                b'{' => self.skip_nested(b'{', b'}'),
                b'[' => self.skip_nested(b'[', b']'),
                b't' | b'f' | b'n' => {
                    for word in [&b"true"[..], b"false", b"null"] {
                        if self.b[self.i..].starts_with(word) {
                            self.i += word.len();
                            return Some(());
                        }
                    }
                    None
                }
                _ => self.number_token().map(|_| ()),
            }
        }

        fn skip_str(&mut self) -> Option<()> {
            self.i += 1;
            loop {
                let rest = &self.b[self.i..];
                let n = memchr::memchr2(b'"', b'\\', rest)?;
                self.i += n + 1;
                if rest[n] == b'"' {
                    return Some(());
                }
                self.i += 1; // the escaped byte
            }
        }

        fn skip_nested(&mut self, open: u8, close: u8) -> Option<()> {
            let mut depth = 0usize;
            loop {
                let n = memchr::memchr3(b'"', open, close, &self.b[self.i..])?;
                self.i += n;
                match self.b[self.i] {
                    b'"' => {
                        self.skip_str()?;
                        continue;
                    }
                    c if c == open => depth += 1,
                    _ => {
                        depth -= 1;
                        if depth == 0 {
                            self.i += 1;
                            return Some(());
                        }
                    }
                }
                self.i += 1;
            }
        }

        /// Calls `field` with each key of an object, which must consume the value.
        fn object(
            &mut self,
            mut field: impl FnMut(&mut Self, &'a [u8]) -> Option<()>,
        ) -> Option<()> {
            self.eat(b'{')?;
            if self.eat(b'}').is_some() {
                return Some(());
            }
            loop {
                let key = self.raw_str()?;
                self.eat(b':')?;
                field(self, key)?;
                match self.peek()? {
                    b',' => self.i += 1,
                    b'}' => {
                        self.i += 1;
                        return Some(());
                    }
                    _ => return None,
                }
            }
        }
    }

    fn level<'a>(c: &mut Cursor<'a>) -> Option<LevelView<'a>> {
        let mut l = LevelView::default();
        // id, price, kind, direction, distance, signal: required, as in the full payload.
        let mut seen = 0u8;
        c.object(|c, key| {
            match key {
                b"id" => (l.id, seen) = (Cow::Borrowed(c.str()?), seen | 1),
                b"price" => (l.price, seen) = (c.f64()?, seen | 2),
                b"kind" => (l.kind, seen) = (Cow::Borrowed(c.str()?), seen | 4),
                b"direction" => (l.direction, seen) = (Cow::Borrowed(c.str()?), seen | 8),
                b"distance" => (l.distance, seen) = (c.f64()?, seen | 16),
                b"signal" => (l.signal, seen) = (Cow::Borrowed(c.str()?), seen | 32),
                b"break_score_raw" => l.break_score_raw = c.f64()?,
                b"break_score_smooth" => l.break_score_smooth = c.f64()?,
                b"confidence" => l.confidence = Cow::Borrowed(c.str()?),
                b"barrier" => c.object(|c, key| match key {
                    b"state" => {
                        l.barrier = StateView {
                            state: Cow::Borrowed(c.str()?),
                        };
                        Some(())
                    }
                    _ => c.skip(),
                })?,
                b"fuel" => c.object(|c, key| match key {
                    b"effect" => {
                        l.fuel = EffectView {
                            effect: Cow::Borrowed(c.str()?),
                        };
                        Some(())
                    }
                    _ => c.skip(),
                })?,
                _ => c.skip()?,
            }
            Some(())
        })?;
        (seen == 63).then_some(l)
    }

    /// The snap, or `None` when the bytes are not in the form this scanner expects.
    pub(super) fn snap(bytes: &[u8]) -> Option<SnapView<'_>> {
        let mut c = Cursor { b: bytes, i: 0 };
        let mut snap = SnapView::default();
        let mut has_ts = false;
        c.object(|c, key| {
            match key {
                b"type" => snap.kind = Some(Cow::Borrowed(c.str()?)),
                b"ts" => {
                    snap.ts = c.number_token()?.parse().ok()?;
                    has_ts = true;
                }
                b"spy" => c.object(|c, key| match key {
                    b"spot" => {
                        snap.spy = SpyView { spot: c.opt_f64()? };
                        Some(())
                    }
                    _ => c.skip(),
                })?,
                b"levels" => {
                    c.eat(b'[')?;
                    if c.eat(b']').is_none() {
                        loop {
                            snap.levels.push(level(c)?);
                            match c.peek()? {
                                b',' => c.i += 1,
                                b']' => {
                                    c.i += 1;
                                    break;
                                }
                                _ => return None,
                            }
                        }
                    }
                }
                _ => c.skip()?,
            }
            Some(())
        })?;
        (has_ts && c.i == bytes.len()).then_some(snap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;

    #[test]
    fn a_payload_reads_the_same_through_the_view_and_the_full_event() {
        let line = br#"{"type":"level_signals","ts":1763737762750,"spy":{"spot":687.01,"bid":687.0,"ask":687.02},"levels":[{"id":"ROUND_687","price":687.0,"kind":"ROUND","direction":"SUPPORT","distance":0.01,"break_score_raw":100.0,"break_score_smooth":87.9,"signal":"BREAK","confidence":"HIGH","barrier":{"state":"VACUUM","delta_liq":-420.0,"delta_liq_smooth":-300.5,"replenishment_ratio":0.1,"replenishment_ratio_smooth":0.2,"added":10.0,"canceled":400.0,"filled":30.0,"defending_quote":{"price":null,"size":0},"churn":440.0,"depth_in_zone":0.0},"tape":{"imbalance":-0.9,"buy_vol":5.0,"sell_vol":95.0,"velocity":-1.2,"velocity_smooth":-0.8,"sweep":{"detected":true,"direction":"DOWN","notional":9000000.0,"num_prints":6,"window_ms":80.0}},"fuel":{"effect":"AMPLIFY","net_dealer_gamma":-52000.0,"net_dealer_gamma_smooth":-40000.0,"call_wall":687.0,"put_wall":687.0,"hvl":null},"runway":{"direction":"DOWN","distance":0.5,"next_obstacle":{"id":"ROUND_686","price":686.0},"quality":"CLEAR"},"note":"Vacuum; dealers chase; sweep confirms \"now\""}]}"#;
        let view = SnapView::parse(line).unwrap();
        let Ok(Event::LevelSignals(full)) = Event::from_json(line, None) else {
            panic!("the full parser refused the payload");
        };
        let of = SnapView::of(&full);
        for v in [&view, &of] {
            assert_eq!(v.ts, 1_763_737_762_750);
            assert_eq!(v.spy.spot, Some(687.01));
            let l = &v.levels[0];
            assert_eq!(
                (&*l.id, &*l.kind, &*l.direction, &*l.signal, &*l.confidence),
                ("ROUND_687", "ROUND", "SUPPORT", "BREAK", "HIGH")
            );
            assert_eq!(
                (l.price, l.distance, l.break_score_raw),
                (687.0, 0.01, 100.0)
            );
            assert_eq!((&*l.barrier.state, &*l.fuel.effect), ("VACUUM", "AMPLIFY"));
        }
        assert!(!view.is_other_type());
    }

    fn serde_view(bytes: &[u8]) -> Result<SnapView<'_>, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    #[test]
    fn the_fast_scanner_reads_the_engine_output_exactly_as_serde_does() {
        // A real snap of the bundled sample (the engine's own bytes) with two levels.
        let line = br#"{"type":"level_signals","ts":1763737424250,"spy":{"spot":689.98,"bid":689.975,"ask":690.0},"levels":[{"id":"ROUND_690","price":690.0,"kind":"ROUND","direction":"RESISTANCE","distance":0.01999999999998181,"break_score_raw":0.7422512222801775,"break_score_smooth":3.057871,"signal":"REJECT","confidence":"HIGH","barrier":{"state":"WALL","delta_liq":1056.0,"delta_liq_smooth":900.1,"replenishment_ratio":4.1,"replenishment_ratio_smooth":3.9,"added":1400.0,"canceled":44.0,"filled":300.0,"defending_quote":{"price":690.0,"size":412},"churn":1744.0,"depth_in_zone":980.0},"tape":{"imbalance":-0.2,"buy_vol":120.0,"sell_vol":180.0,"velocity":-0.01,"velocity_smooth":-0.02,"sweep":{"detected":false,"direction":null,"notional":0.0,"num_prints":0,"window_ms":0.0}},"fuel":{"effect":"DAMPEN","net_dealer_gamma":31000.5,"net_dealer_gamma_smooth":30000.0,"call_wall":null,"put_wall":687.0,"hvl":688.25},"runway":{"direction":"DOWN","distance":1.0,"next_obstacle":{"id":"ROUND_689","price":689.0},"quality":"OBSTRUCTED"},"note":"Wall holding; dealers fade"},{"id":"SESSION_HIGH","price":690.005000181166,"kind":"SESSION_HIGH","direction":"RESISTANCE","distance":0.025,"break_score_raw":3.36,"break_score_smooth":3.59,"signal":"NEUTRAL","confidence":"HIGH","barrier":{"state":"WALL"},"tape":{},"fuel":{"effect":"DAMPEN"},"runway":{"next_obstacle":null},"note":"a \"quoted\" note, with {braces} and [brackets]"}]}"#;
        let fast = fast::snap(line).expect("the fast path takes the engine's form");
        assert_eq!(
            format!("{fast:?}"),
            format!("{:?}", serde_view(line).unwrap())
        );
        assert_eq!(fast.levels.len(), 2);
        assert_eq!(fast.levels[1].price, 690.005000181166);
    }

    #[test]
    fn other_forms_fall_back_to_serde_with_the_same_reading() {
        let compact = br#"{"ts":5,"spy":{"spot":null},"levels":[{"id":"A","price":1,"kind":"ROUND","direction":"SUPPORT","distance":0.5,"signal":"BREAK"}]}"#;
        assert!(fast::snap(compact).is_some());
        for other in [
            // Spaces, an escaped id, keys in another order, a trailing garbage byte.
            &br#"{ "ts": 5, "levels": [ {"id":"A","price":1,"kind":"ROUND","direction":"SUPPORT","distance":0.5,"signal":"BREAK"} ] }"#[..],
            br#"{"ts":5,"levels":[{"id":"A","price":1,"kind":"ROUND","direction":"SUPPORT","distance":0.5,"signal":"BREAK"}]}"#,
            br#"{"levels":[{"signal":"BREAK","distance":0.5,"direction":"SUPPORT","kind":"ROUND","price":1,"id":"A"}],"ts":5}"#,
        ] {
            let fast = fast::snap(other);
            let full = SnapView::parse(other).unwrap();
            assert_eq!(&*full.levels[0].id, "A");
            assert_eq!(full.ts, 5);
            if let Some(f) = fast {
                assert_eq!(format!("{f:?}"), format!("{full:?}"));
            }
        }
        // Broken payloads: the fast path declines, serde names the problem.
        for broken in [
            &br#"{"ts":5,"levels":[{"id":"A","price":null,"kind":"ROUND","direction":"SUPPORT","distance":0.5,"signal":"BREAK"}]}"#[..],
            br#"{"ts":5,"levels":[{"id":"A"}]}"#,
            br#"{"ts":5.5,"levels":[]}"#,
            br#"{"ts":5,"levels":[]}x"#,
            br#"{"ts":5,"levels":[],"note":"unterminated}"#,
        ] {
            assert!(fast::snap(broken).is_none(), "{}", String::from_utf8_lossy(broken));
            assert!(SnapView::parse(broken).is_err(), "{}", String::from_utf8_lossy(broken));
        }
    }

    #[test]
    fn other_events_are_told_apart_and_broken_payloads_refused() {
        let trade = br#"{"type":"futures_trade","ts_event_ns":1,"ts_recv_ns":1,"source":"x","symbol":"ESZ5","price":6870.0,"size":1,"aggressor":1,"ts":5}"#;
        assert!(SnapView::parse(trade).unwrap().is_other_type());
        assert!(SnapView::parse(br#"{"ts":1,"levels":[{"id":"X"}]}"#).is_err());
        assert!(SnapView::parse(b"{\"ts\":").is_err());
    }
}
