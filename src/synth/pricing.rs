//! Option pricing for the simulator: Black–Scholes (no dividends) on a volatility smile.
//!
//! The simulator prices SPY 0DTE options from the synthetic SPY price (ES / 10) so that the
//! fuel engine, which solves implied volatility back from trade prices, sees coherent greeks.

/// Call or put.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Right {
    Call,
    Put,
}

impl Right {
    /// The DBN / OSI letter: `C` or `P`.
    pub fn letter(self) -> char {
        match self {
            Right::Call => 'C',
            Right::Put => 'P',
        }
    }
}

/// Standard normal cumulative distribution, accurate to about 1e-15 (via `erfc`).
pub fn norm_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// Standard normal density.
pub fn norm_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// Complementary error function (W. J. Cody's rational approximations, double precision).
fn erfc(x: f64) -> f64 {
    // Numerical Recipes `erfcc`-style Chebyshev fit has 1.2e-7 error; use a higher-precision
    // formulation: erfc(x) = exp(-x²)·P(|x|)/Q(|x|) piecewise (Cody 1969).
    let ax = x.abs();
    let r = if ax < 0.5 {
        1.0 - erf_small(x)
    } else {
        let v = erfc_large(ax);
        if x < 0.0 { 2.0 - v } else { v }
    };
    r.clamp(0.0, 2.0)
}

#[allow(clippy::excessive_precision)]
fn erf_small(x: f64) -> f64 {
    const A: [f64; 5] = [
        3.161_123_743_870_565_6,
        1.138_641_541_510_501_6e2,
        3.774_852_376_853_020_2e2,
        3.209_377_589_138_469_5e3,
        1.857_777_061_846_031_5e-1,
    ];
    const B: [f64; 4] = [
        2.360_129_095_234_412_2e1,
        2.440_246_379_344_441_7e2,
        1.282_616_526_077_372_3e3,
        2.844_236_833_439_170_6e3,
    ];
    let z = x * x;
    let mut num = A[4] * z;
    let mut den = z;
    for i in 0..3 {
        num = (num + A[i]) * z;
        den = (den + B[i]) * z;
    }
    x * (num + A[3]) / (den + B[3])
}

#[allow(clippy::excessive_precision)]
fn erfc_large(ax: f64) -> f64 {
    if ax < 4.0 {
        const C: [f64; 9] = [
            5.641_884_969_886_700_9e-1,
            8.883_149_794_388_375_9,
            6.611_919_063_714_163e1,
            2.986_351_381_974_001_3e2,
            8.819_522_212_417_691e2,
            1.712_047_612_634_070_7e3,
            2.051_078_377_826_071_6e3,
            1.230_339_354_797_997_2e3,
            2.153_115_354_744_038_5e-8,
        ];
        const D: [f64; 8] = [
            1.574_492_611_070_983_5e1,
            1.176_939_508_913_125e2,
            5.371_811_018_620_098_6e2,
            1.621_389_574_566_690_3e3,
            3.290_799_235_733_459_7e3,
            4.362_619_090_143_247e3,
            3.439_367_674_143_721_6e3,
            1.230_339_354_803_749_5e3,
        ];
        let mut num = C[8] * ax;
        let mut den = ax;
        for i in 0..7 {
            num = (num + C[i]) * ax;
            den = (den + D[i]) * ax;
        }
        let r = (num + C[7]) / (den + D[7]);
        exp_neg_sq(ax) * r
    } else {
        const P: [f64; 6] = [
            3.053_266_349_612_323_4e-1,
            3.603_448_999_498_044_5e-1,
            1.257_817_261_112_292_6e-1,
            1.608_378_514_874_227_5e-2,
            6.587_491_615_298_378_5e-4,
            1.631_538_713_730_709_7e-2,
        ];
        const Q: [f64; 5] = [
            2.568_520_192_289_822,
            1.872_952_849_923_460_4,
            5.279_051_029_514_284e-1,
            6.051_834_131_244_132e-2,
            2.335_204_976_268_691_8e-3,
        ];
        let z = 1.0 / (ax * ax);
        let mut num = P[5] * z;
        let mut den = z;
        for i in 0..4 {
            num = (num + P[i]) * z;
            den = (den + Q[i]) * z;
        }
        let mut r = z * (num + P[4]) / (den + Q[4]);
        r = (1.0 / std::f64::consts::PI.sqrt() - r) / ax;
        exp_neg_sq(ax) * r
    }
}

/// exp(-x²) computed in two parts to keep precision for large x.
fn exp_neg_sq(x: f64) -> f64 {
    let xs = (x * 16.0).trunc() / 16.0;
    let del = (x - xs) * (x + xs);
    (-xs * xs).exp() * (-del).exp()
}

/// Black–Scholes price of a European option (q = 0). `t_years` and `vol` below tiny floors
/// give the discounted intrinsic value.
pub fn bs_price(right: Right, spot: f64, strike: f64, t_years: f64, rate: f64, vol: f64) -> f64 {
    let disc_k = strike * (-rate * t_years.max(0.0)).exp();
    let sig_t = vol * t_years.max(0.0).sqrt();
    if sig_t < 1e-12 || spot <= 0.0 || strike <= 0.0 {
        return match right {
            Right::Call => (spot - disc_k).max(0.0),
            Right::Put => (disc_k - spot).max(0.0),
        };
    }
    let d1 = ((spot / strike).ln() + (rate + 0.5 * vol * vol) * t_years) / sig_t;
    let d2 = d1 - sig_t;
    match right {
        Right::Call => spot * norm_cdf(d1) - disc_k * norm_cdf(d2),
        Right::Put => disc_k * norm_cdf(-d2) - spot * norm_cdf(-d1),
    }
}

/// Black–Scholes gamma (per share), 0 when time or volatility vanish.
pub fn bs_gamma(spot: f64, strike: f64, t_years: f64, rate: f64, vol: f64) -> f64 {
    let sig_t = vol * t_years.max(0.0).sqrt();
    if sig_t < 1e-12 || spot <= 0.0 || strike <= 0.0 {
        return 0.0;
    }
    let d1 = ((spot / strike).ln() + (rate + 0.5 * vol * vol) * t_years) / sig_t;
    norm_pdf(d1) / (spot * sig_t)
}

/// No-arbitrage bounds `(low, high)` of a European option price (q = 0).
pub fn no_arb_bounds(right: Right, spot: f64, strike: f64, t_years: f64, rate: f64) -> (f64, f64) {
    let disc_k = strike * (-rate * t_years.max(0.0)).exp();
    match right {
        Right::Call => ((spot - disc_k).max(0.0), spot),
        Right::Put => ((disc_k - spot).max(0.0), disc_k),
    }
}

/// A simple equity-index volatility smile: quadratic in percent moneyness with a put skew.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Smile {
    /// At-the-money volatility (annualised).
    pub atm: f64,
    /// Change of volatility (relative) per 1 % of moneyness (negative: puts richer).
    pub skew: f64,
    /// Relative curvature per (1 %)².
    pub curvature: f64,
}

impl Default for Smile {
    fn default() -> Self {
        Smile {
            atm: 0.14,
            skew: -0.10,
            curvature: 0.04,
        }
    }
}

impl Smile {
    /// Volatility for `strike` when the underlying is at `spot`, clamped to [0.03, 3].
    pub fn vol(&self, spot: f64, strike: f64) -> f64 {
        let x = (strike / spot - 1.0) * 100.0;
        (self.atm * (1.0 + self.skew * x + self.curvature * x * x)).clamp(0.03, 3.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norm_cdf_matches_known_values() {
        assert!((norm_cdf(0.0) - 0.5).abs() < 1e-15);
        assert!((norm_cdf(1.0) - 0.841_344_746_068_542_9).abs() < 1e-13);
        assert!((norm_cdf(-1.96) - 0.024_997_895_148_220_435).abs() < 1e-13);
        assert!((norm_cdf(-6.0) - 9.865_876_450_376_98e-10).abs() < 1e-18);
        assert!((norm_cdf(0.3) - 0.617_911_422_188_952_7).abs() < 1e-13);
    }

    #[test]
    fn put_call_parity_holds() {
        let (s, k, t, r, v) = (687.3, 690.0, 5.0 / (365.0 * 24.0), 0.04, 0.16);
        let c = bs_price(Right::Call, s, k, t, r, v);
        let p = bs_price(Right::Put, s, k, t, r, v);
        assert!((c - p - (s - k * (-r * t).exp())).abs() < 1e-9);
    }

    #[test]
    fn textbook_call_price() {
        // Hull: S=42, K=40, r=10 %, σ=20 %, T=0.5 → call 4.76, put 0.81.
        let c = bs_price(Right::Call, 42.0, 40.0, 0.5, 0.1, 0.2);
        let p = bs_price(Right::Put, 42.0, 40.0, 0.5, 0.1, 0.2);
        assert!((c - 4.759).abs() < 1e-3, "{c}");
        assert!((p - 0.8086).abs() < 1e-3, "{p}");
    }

    #[test]
    fn prices_stay_inside_no_arbitrage_bounds() {
        let t = 2.0 / (365.0 * 24.0);
        for k in 670..=705 {
            for right in [Right::Call, Right::Put] {
                let px = bs_price(right, 687.4, f64::from(k), t, 0.04, 0.2);
                let (lo, hi) = no_arb_bounds(right, 687.4, f64::from(k), t, 0.04);
                assert!(px >= lo - 1e-9 && px <= hi + 1e-9, "{k} {right:?} {px}");
            }
        }
    }

    #[test]
    fn atm_zero_dte_gamma_is_large() {
        let g = bs_gamma(687.0, 687.0, 6.0 / (365.0 * 24.0), 0.04, 0.14);
        assert!(g > 0.1 && g < 0.2, "{g}");
    }

    #[test]
    fn smile_puts_richer_than_calls() {
        let s = Smile::default();
        assert!(s.vol(687.0, 680.0) > s.vol(687.0, 687.0));
        assert!((s.vol(687.0, 687.0) - 0.14).abs() < 1e-12);
    }
}
