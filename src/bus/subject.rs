//! NATS subject wildcards (`*` one token, `>` one or more trailing tokens): matching and
//! overlap, used to route a consumer's subjects to the streams that hold them.

/// Whether the literal `subject` matches `pattern`.
pub fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut p = pattern.split('.');
    let mut s = subject.split('.');
    loop {
        match (p.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Whether some subject could match both patterns.
pub fn subjects_overlap(a: &str, b: &str) -> bool {
    let mut x = a.split('.');
    let mut y = b.split('.');
    loop {
        match (x.next(), y.next()) {
            (Some(">"), Some(_)) | (Some(_), Some(">")) => return true,
            (Some("*"), Some(_)) | (Some(_), Some("*")) => {}
            (Some(p), Some(q)) if p == q => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Whether every subject matching `inner` also matches `outer`.
pub fn subject_covers(outer: &str, inner: &str) -> bool {
    let mut o = outer.split('.');
    let mut i = inner.split('.');
    loop {
        match (o.next(), i.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(t)) if t != ">" => {}
            (Some(p), Some(q)) if p == q => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_and_wildcard_subjects_match() {
        assert!(subject_matches("market.>", "market.futures.trades"));
        assert!(subject_matches("market.*.trades", "market.options.trades"));
        assert!(!subject_matches("market.*.trades", "market.futures.mbp10"));
        assert!(!subject_matches("market.>", "market"));
        assert!(subject_matches("levels.signals", "levels.signals"));
        assert!(!subject_matches("levels.signals", "levels.signals.x"));
        assert!(subject_matches(">", "a"));
    }

    #[test]
    fn overlap_finds_streams_a_pattern_can_reach() {
        assert!(subjects_overlap("market.>", "market.futures.trades"));
        assert!(subjects_overlap(">", "levels.>"));
        assert!(subjects_overlap("*.signals", "levels.>"));
        assert!(!subjects_overlap("level.signals", "levels.>"));
        assert!(!subjects_overlap("market.a", "market.a.b"));
    }

    #[test]
    fn covers_is_pattern_inclusion() {
        assert!(subject_covers(">", "market.>"));
        assert!(subject_covers("market.>", "market.*.trades"));
        assert!(subject_covers("market.*.trades", "market.futures.trades"));
        assert!(!subject_covers("market.*.trades", "market.>"));
        assert!(!subject_covers("market.futures.trades", "market.>"));
        assert!(subject_covers("*.*", "*.*"));
        assert!(!subject_covers("*.*", "a.>"));
    }
}
