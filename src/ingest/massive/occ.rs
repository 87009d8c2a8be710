//! OSI (OCC) option symbols, in the two forms the feeds use.
//!
//! - Massive (Polygon): `O:SPY251121C00687000` — an `O:` prefix, the root unpadded.
//! - Databento / OPRA (the canonical `option_symbol`): `SPY   251121C00687000` — the root
//!   padded with spaces to 6 characters, 21 characters in all.
//!
//! Both are root + `YYMMDD` expiration + `C`/`P` + the strike in thousandths of a dollar on 8
//! digits. [`OptionSymbol::parse`] reads either (and the bare unpadded `SPY251121C00687000`);
//! [`OptionSymbol::osi`] writes the padded form, [`OptionSymbol::massive`] the Massive one.

use chrono::{Datelike, NaiveDate};

/// Length of the padded OSI root.
const ROOT_WIDTH: usize = 6;
/// `YYMMDD` + right + 8 strike digits.
const TAIL_LEN: usize = 15;

/// A symbol that is not an OSI option symbol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an OSI option symbol {symbol:?}: {why}")]
pub struct OsiError {
    pub symbol: String,
    pub why: &'static str,
}

/// One option contract, as named by its OSI symbol. Orders by root, expiration, strike, right.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OptionSymbol {
    root: String,
    expiry: NaiveDate,
    strike_milli: u64,
    right: char,
}

impl OptionSymbol {
    /// A contract from its terms. `root`: 1–6 ASCII letters or digits (upper-cased); `right`:
    /// `C` or `P`; `strike_milli`: the strike in thousandths of a dollar, 1..=99 999 999.
    pub fn new(
        root: &str,
        expiry: NaiveDate,
        right: char,
        strike_milli: u64,
    ) -> Result<OptionSymbol, OsiError> {
        let err = |why| OsiError {
            symbol: format!("{root} {expiry} {right} {strike_milli}"),
            why,
        };
        let root = check_root(root).map_err(err)?;
        let right = match right.to_ascii_uppercase() {
            r @ ('C' | 'P') => r,
            _ => return Err(err("the right is neither C nor P")),
        };
        if strike_milli == 0 || strike_milli > 99_999_999 {
            return Err(err("the strike does not fit OSI's 8 digits"));
        }
        if !(2000..=2099).contains(&expiry.year()) {
            return Err(err("the expiration year does not fit OSI's 2 digits"));
        }
        Ok(OptionSymbol {
            root,
            expiry,
            strike_milli,
            right,
        })
    }

    /// Reads `O:SPY251121C00687000`, `SPY   251121C00687000` or `SPY251121C00687000`.
    pub fn parse(symbol: &str) -> Result<OptionSymbol, OsiError> {
        let err = |why| OsiError {
            symbol: symbol.to_string(),
            why,
        };
        let s = symbol.strip_prefix("O:").unwrap_or(symbol);
        if !s.is_ascii() {
            return Err(err("non-ASCII characters"));
        }
        if s.len() <= TAIL_LEN {
            return Err(err("too short"));
        }
        let (root_part, tail) = s.split_at(s.len() - TAIL_LEN);
        let root = root_part.trim_end_matches(' ');
        if root.len() != root_part.len() && root_part.len() != ROOT_WIDTH {
            return Err(err("a padded root must be 6 characters wide"));
        }
        let root = check_root(root).map_err(err)?;
        let tail = tail.as_bytes();
        let digits = |b: &[u8]| -> Option<u64> {
            b.iter().try_fold(0u64, |n, c| {
                c.is_ascii_digit().then(|| n * 10 + u64::from(c - b'0'))
            })
        };
        let (Some(yy), Some(mm), Some(dd)) = (
            digits(&tail[0..2]),
            digits(&tail[2..4]),
            digits(&tail[4..6]),
        ) else {
            return Err(err("the expiration is not YYMMDD"));
        };
        let expiry = NaiveDate::from_ymd_opt(2000 + yy as i32, mm as u32, dd as u32)
            .ok_or_else(|| err("the expiration is not a calendar date"))?;
        let right = match tail[6] {
            b'C' => 'C',
            b'P' => 'P',
            _ => return Err(err("the right is neither C nor P")),
        };
        let strike_milli = digits(&tail[7..]).ok_or_else(|| err("the strike is not 8 digits"))?;
        if strike_milli == 0 {
            return Err(err("a zero strike"));
        }
        Ok(OptionSymbol {
            root,
            expiry,
            strike_milli,
            right,
        })
    }

    /// The padded OSI form, `SPY   251121C00687000` (the canonical `option_symbol`).
    pub fn osi(&self) -> String {
        format!("{:<ROOT_WIDTH$}{}", self.root, self.tail())
    }

    /// Massive's form, `O:SPY251121C00687000`.
    pub fn massive(&self) -> String {
        format!("O:{}{}", self.root, self.tail())
    }

    fn tail(&self) -> String {
        format!(
            "{:02}{:02}{:02}{}{:08}",
            self.expiry.year() % 100,
            self.expiry.month(),
            self.expiry.day(),
            self.right,
            self.strike_milli
        )
    }

    /// The root (the underlying for standard contracts: `SPY`).
    pub fn root(&self) -> &str {
        &self.root
    }

    pub fn expiry(&self) -> NaiveDate {
        self.expiry
    }

    /// `YYYY-MM-DD`.
    pub fn exp_date(&self) -> String {
        self.expiry.format("%Y-%m-%d").to_string()
    }

    /// `C` or `P`.
    pub fn right(&self) -> char {
        self.right
    }

    /// The strike in dollars.
    pub fn strike(&self) -> f64 {
        self.strike_milli as f64 / 1000.0
    }

    pub fn strike_milli(&self) -> u64 {
        self.strike_milli
    }
}

fn check_root(root: &str) -> Result<String, &'static str> {
    if root.is_empty() {
        return Err("no root");
    }
    if root.len() > ROOT_WIDTH {
        return Err("a root longer than 6 characters");
    }
    if !root.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err("a root that is not letters and digits");
    }
    Ok(root.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nov21() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 11, 21).unwrap()
    }

    #[test]
    fn massive_form_is_parsed_and_normalised_to_the_padded_osi_form() {
        let s = OptionSymbol::parse("O:SPY251121C00687000").unwrap();
        assert_eq!(s.root(), "SPY");
        assert_eq!(s.expiry(), nov21());
        assert_eq!(s.exp_date(), "2025-11-21");
        assert_eq!(s.right(), 'C');
        assert_eq!(s.strike(), 687.0);
        assert_eq!(s.osi(), "SPY   251121C00687000");
        assert_eq!(s.massive(), "O:SPY251121C00687000");
    }

    #[test]
    fn padded_osi_form_is_parsed_to_the_same_contract() {
        let padded = OptionSymbol::parse("SPY   251121P00687500").unwrap();
        let massive = OptionSymbol::parse("O:SPY251121P00687500").unwrap();
        assert_eq!(padded, massive);
        assert_eq!(padded.strike(), 687.5);
        assert_eq!(padded.right(), 'P');
        assert_eq!(padded.osi(), "SPY   251121P00687500");
        // Unpadded without the prefix, and a six-character root that needs no padding.
        assert_eq!(OptionSymbol::parse("SPY251121P00687500").unwrap(), massive);
        let spxw = OptionSymbol::parse("O:SPXW251121C06800000").unwrap();
        assert_eq!(spxw.osi(), "SPXW  251121C06800000");
        assert_eq!(spxw.strike(), 6800.0);
        let six = OptionSymbol::parse("ABCDEF251121C00001500").unwrap();
        assert_eq!(six.osi(), "ABCDEF251121C00001500");
        assert_eq!(six.strike(), 1.5);
    }

    #[test]
    fn built_contracts_print_both_forms() {
        let c = OptionSymbol::new("spy", nov21(), 'p', 5_000).unwrap();
        assert_eq!(c.osi(), "SPY   251121P00005000");
        assert_eq!(c.massive(), "O:SPY251121P00005000");
        assert!(OptionSymbol::new("SPY", nov21(), 'X', 5_000).is_err());
        assert!(OptionSymbol::new("SPY", nov21(), 'C', 0).is_err());
        assert!(OptionSymbol::new("SPY", nov21(), 'C', 100_000_000).is_err());
        assert!(OptionSymbol::new("TOOLONG", nov21(), 'C', 1_000).is_err());
    }

    #[test]
    fn malformed_symbols_are_rejected_with_a_reason() {
        let cases = [
            ("", "too short"),
            ("O:", "too short"),
            ("SPY", "too short"),
            ("O:251121C00687000", "too short"),
            (
                "O:SPY251321C00687000",
                "the expiration is not a calendar date",
            ),
            (
                "O:SPY250230C00687000",
                "the expiration is not a calendar date",
            ),
            ("O:SPY25112XC00687000", "the expiration is not YYMMDD"),
            ("O:SPY251121X00687000", "the right is neither C nor P"),
            ("O:SPY251121C0068700A", "the strike is not 8 digits"),
            ("O:SPY251121C00000000", "a zero strike"),
            (
                "O:SPY-X251121C00687000",
                "a root that is not letters and digits",
            ),
            (
                "O:TOOLONG251121C00687000",
                "a root longer than 6 characters",
            ),
            (
                "SPY 251121C00687000",
                "a padded root must be 6 characters wide",
            ),
            (
                "SPY    251121C00687000",
                "a padded root must be 6 characters wide",
            ),
            ("O:SPÝ251121C00687000", "non-ASCII characters"),
            ("      251121C00687000", "no root"),
        ];
        for (symbol, why) in cases {
            let e = OptionSymbol::parse(symbol).unwrap_err();
            assert_eq!(e.why, why, "{symbol:?}");
            assert_eq!(e.symbol, symbol);
        }
    }

    #[test]
    fn contracts_order_by_expiration_then_strike_then_right() {
        let a = OptionSymbol::parse("O:SPY251121P00686000").unwrap();
        let b = OptionSymbol::parse("O:SPY251121C00687000").unwrap();
        let c = OptionSymbol::parse("O:SPY251121P00687000").unwrap();
        let d = OptionSymbol::parse("O:SPY251124C00600000").unwrap();
        let mut v = vec![d.clone(), c.clone(), b.clone(), a.clone()];
        v.sort();
        assert_eq!(v, [a, b, c, d]);
    }
}
