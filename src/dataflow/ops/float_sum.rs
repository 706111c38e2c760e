//! An exact, retractable sum of floats. A running `f64` sum cannot be un-added: after
//! 0.1 + 0.2 + 1e20 − 1e20 it says 0. This keeps Shewchuk's non-overlapping partials (the
//! algorithm behind Python's `math.fsum`), so adding then removing a value restores the
//! exact previous sum, and counts NaN/±Infinity apart so removing them heals the sum.

#[derive(Debug, Clone, Default)]
pub struct FloatSum {
    partials: Vec<f64>,
    nan: i64,
    pos_inf: i64,
    neg_inf: i64,
}

impl crate::state::encoding::StateCodec for FloatSum {
    fn encode(&self, w: &mut crate::state::encoding::Writer) -> crate::error::Result<()> {
        w.u64(self.partials.len() as u64);
        for p in &self.partials {
            w.f64(*p);
        }
        w.i64(self.nan).i64(self.pos_inf).i64(self.neg_inf);
        Ok(())
    }

    fn decode(r: &mut crate::state::encoding::Reader<'_>) -> crate::error::Result<Self> {
        let n = r.u64()?;
        let partials = (0..n)
            .map(|_| r.f64())
            .collect::<crate::error::Result<_>>()?;
        Ok(FloatSum {
            partials,
            nan: r.i64()?,
            pos_inf: r.i64()?,
            neg_inf: r.i64()?,
        })
    }
}

impl FloatSum {
    /// Add `x` with multiplicity `w` (negative removes).
    pub fn add(&mut self, x: f64, w: i64) {
        if x.is_nan() {
            self.nan += w;
        } else if x == f64::INFINITY {
            self.pos_inf += w;
        } else if x == f64::NEG_INFINITY {
            self.neg_inf += w;
        } else {
            let v = if w < 0 { -x } else { x };
            for _ in 0..w.unsigned_abs() {
                self.add_finite(v);
            }
        }
    }

    fn add_finite(&mut self, mut x: f64) {
        let mut i = 0;
        for j in 0..self.partials.len() {
            let mut y = self.partials[j];
            if x.abs() < y.abs() {
                std::mem::swap(&mut x, &mut y);
            }
            let hi = x + y;
            let lo = y - (hi - x);
            if lo != 0.0 {
                self.partials[i] = lo;
                i += 1;
            }
            x = hi;
        }
        self.partials.truncate(i);
        if x != 0.0 {
            self.partials.push(x);
        }
    }

    pub fn value(&self) -> f64 {
        if self.nan > 0 || (self.pos_inf > 0 && self.neg_inf > 0) {
            return f64::NAN;
        }
        if self.pos_inf > 0 {
            return f64::INFINITY;
        }
        if self.neg_inf > 0 {
            return f64::NEG_INFINITY;
        }
        // Sum from the largest partial down, stopping when the rest cannot change it.
        let mut hi = 0.0;
        let mut n = self.partials.len();
        if n > 0 {
            n -= 1;
            hi = self.partials[n];
            while n > 0 {
                let x = hi;
                n -= 1;
                let y = self.partials[n];
                hi = x + y;
                let lo = y - (hi - x);
                if lo != 0.0 {
                    break;
                }
            }
        }
        hi
    }
}

#[cfg(test)]
mod tests {
    use super::FloatSum;

    #[test]
    fn removing_a_large_value_restores_the_small_ones() {
        let mut s = FloatSum::default();
        for x in [0.1, 0.2, 1e20] {
            s.add(x, 1);
        }
        s.add(1e20, -1);
        assert_eq!(s.value(), 0.1 + 0.2);
    }

    #[test]
    fn nan_and_infinity_heal_when_removed() {
        let mut s = FloatSum::default();
        s.add(1.5, 1);
        s.add(f64::NAN, 1);
        s.add(f64::INFINITY, 1);
        assert!(s.value().is_nan());
        s.add(f64::NAN, -1);
        assert_eq!(s.value(), f64::INFINITY);
        s.add(f64::INFINITY, -1);
        assert_eq!(s.value(), 1.5);
    }
}
