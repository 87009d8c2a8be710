//! Black–Scholes greeks of option trades (PHYSICS.md §1 "Greeks").
//!
//! Dividend yield 0, risk-free rate from the config, volatility implied from the trade price by
//! bisection (a bracketed solver; the bracket halves until it is narrower than the tolerance).
//! Where no volatility fits — the price is outside the no-arbitrage bounds or beyond what the
//! bracket can reach — the caller uses `DEFAULT_IV`. The normal CDF goes through `erfc` from
//! `libm` (a port of fdlibm, accurate to about one ulp), so deep tails do not cancel.

/// Lowest and highest volatility the solver brackets.
const SIGMA_MIN: f64 = 1e-4;
const SIGMA_MAX: f64 = 10.0;

/// Standard normal CDF.
pub fn norm_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// Standard normal density.
pub fn norm_pdf(x: f64) -> f64 {
    const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;
    INV_SQRT_2PI * (-0.5 * x * x).exp()
}

/// Contract terms and market inputs of one Black–Scholes evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BsInputs {
    pub is_call: bool,
    /// Underlying price.
    pub spot: f64,
    pub strike: f64,
    /// Time to expiry, years.
    pub t: f64,
    /// Risk-free rate.
    pub r: f64,
}

impl BsInputs {
    fn d1(&self, sigma: f64) -> f64 {
        ((self.spot / self.strike).ln() + (self.r + 0.5 * sigma * sigma) * self.t)
            / (sigma * self.t.sqrt())
    }

    /// Black–Scholes price at volatility `sigma`.
    pub fn price(&self, sigma: f64) -> f64 {
        let d1 = self.d1(sigma);
        let d2 = d1 - sigma * self.t.sqrt();
        let df = (-self.r * self.t).exp();
        if self.is_call {
            self.spot * norm_cdf(d1) - self.strike * df * norm_cdf(d2)
        } else {
            self.strike * df * norm_cdf(-d2) - self.spot * norm_cdf(-d1)
        }
    }

    /// (γ, Δ) at volatility `sigma`: γ = φ(d1)/(S·σ·√T); Δ = N(d1) for calls, N(d1) − 1 for puts.
    pub fn gamma_delta(&self, sigma: f64) -> (f64, f64) {
        let d1 = self.d1(sigma);
        let gamma = norm_pdf(d1) / (self.spot * sigma * self.t.sqrt());
        let delta = if self.is_call {
            norm_cdf(d1)
        } else {
            norm_cdf(d1) - 1.0
        };
        (gamma, delta)
    }

    /// The volatility whose price is `price`, or `None` when no volatility fits.
    pub fn implied_vol(&self, price: f64, tolerance: f64) -> Option<f64> {
        let valid = |x: f64| x.is_finite() && x > 0.0;
        if !(valid(price) && valid(self.spot) && valid(self.strike) && valid(self.t)) {
            return None;
        }
        let df = (-self.r * self.t).exp();
        let (lower, upper) = if self.is_call {
            ((self.spot - self.strike * df).max(0.0), self.spot)
        } else {
            ((self.strike * df - self.spot).max(0.0), self.strike * df)
        };
        if price <= lower || price >= upper {
            return None;
        }
        let (mut lo, mut hi) = (SIGMA_MIN, SIGMA_MAX);
        if price < self.price(lo) || price > self.price(hi) {
            return None;
        }
        let tolerance = tolerance.max(1e-12);
        while hi - lo > tolerance {
            let mid = 0.5 * (lo + hi);
            if self.price(mid) < price {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Some(0.5 * (lo + hi))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn normal_cdf_matches_reference_values_including_tails() {
        // python3 -c "import math; print([0.5*math.erfc(-x/math.sqrt(2)) for x in (0,1,-1,1.96,-8)])"
        let refs = [
            (0.0, 0.5),
            (1.0, 0.8413447460685429),
            (-1.0, 0.15865525393145707),
            (1.96, 0.9750021048517795),
            (-8.0, 6.220960574271819e-16),
        ];
        for (x, want) in refs {
            let got = norm_cdf(x);
            assert!(
                close(got, want, want * 1e-13 + 1e-300),
                "N({x}) = {got}, want {want}"
            );
        }
    }

    #[test]
    fn gamma_and_delta_match_independent_reference_values() {
        // S=687, K=690, T=0.01, r=0.04, sigma=0.2:
        // python3 -c "
        // import math
        // S,K,T,r,s=687.0,690.0,0.01,0.04,0.2
        // d1=(math.log(S/K)+(r+s*s/2)*T)/(s*math.sqrt(T))
        // N=lambda x:0.5*math.erfc(-x/math.sqrt(2))
        // print(math.exp(-d1*d1/2)/math.sqrt(2*math.pi)/(S*s*math.sqrt(T)), N(d1), N(d1)-1)"
        let call = BsInputs {
            is_call: true,
            spot: 687.0,
            strike: 690.0,
            t: 0.01,
            r: 0.04,
        };
        let (g, d) = call.gamma_delta(0.2);
        assert!(close(g, 0.028527221718792285, 1e-12), "gamma {g}");
        assert!(close(d, 0.4254911348433334, 1e-12), "delta {d}");
        let put = BsInputs {
            is_call: false,
            ..call
        };
        let (g, d) = put.gamma_delta(0.2);
        assert!(close(g, 0.028527221718792285, 1e-12), "gamma {g}");
        assert!(close(d, -0.5745088651566665, 1e-12), "delta {d}");
    }

    #[test]
    fn implied_vol_recovers_the_volatility_of_a_price() {
        for is_call in [true, false] {
            for sigma in [0.08, 0.2, 0.55] {
                let bs = BsInputs {
                    is_call,
                    spot: 687.0,
                    strike: 688.0,
                    t: 3.0 / (365.0 * 24.0),
                    r: 0.04,
                };
                let price = bs.price(sigma);
                let iv = bs.implied_vol(price, 1e-6).expect("a volatility fits");
                assert!(close(iv, sigma, 2e-6), "call={is_call} {sigma} -> {iv}");
            }
        }
    }

    #[test]
    fn prices_outside_no_arbitrage_bounds_have_no_volatility() {
        let call = BsInputs {
            is_call: true,
            spot: 687.0,
            strike: 680.0,
            t: 0.001,
            r: 0.04,
        };
        // Below intrinsic value.
        assert_eq!(call.implied_vol(6.0, 1e-6), None);
        // Above the underlying.
        assert_eq!(call.implied_vol(700.0, 1e-6), None);
        assert_eq!(call.implied_vol(f64::NAN, 1e-6), None);
        assert_eq!(call.implied_vol(0.0, 1e-6), None);
    }
}
