//! [`weight_of`] with a memory of the last few probabilities: records carry one of a few
//! sampling rates, and a division, a rounding and a 128-bit conversion per record cost more
//! than the rest of a pass's work on it.

use ringlat_read::percentile::{WEIGHT_ONE, weight_of};

/// How many probabilities are remembered.
const REMEMBERED: usize = 4;

/// The fixed-point weight of each record, as [`weight_of`] gives it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Weights {
    raw: bool,
    /// (bits of a probability, its weight); empty slots hold a NaN's bits, whose weight is
    /// [`WEIGHT_ONE`] (what [`weight_of`] gives a NaN), so that even a match on them is right.
    seen: [(u64, u128); REMEMBERED],
    next: usize,
}

impl Weights {
    pub(crate) fn new(raw: bool) -> Self {
        Weights {
            raw,
            seen: [(u64::MAX, WEIGHT_ONE); REMEMBERED],
            next: 0,
        }
    }

    /// `weight_of(probability, raw)`.
    #[inline]
    pub(crate) fn of(&mut self, probability: f64) -> u128 {
        let bits = probability.to_bits();
        for (seen, weight) in &self.seen {
            if *seen == bits {
                return *weight;
            }
        }
        self.remember(bits, probability)
    }

    #[cold]
    fn remember(&mut self, bits: u64, probability: f64) -> u128 {
        let weight = weight_of(probability, self.raw);
        self.seen[self.next] = (bits, weight);
        self.next = (self.next + 1) % REMEMBERED;
        weight
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_equal_weight_of() {
        for raw in [false, true] {
            let mut weights = Weights::new(raw);
            let probabilities = [1.0, 0.1, 0.5, 0.3, 0.01, f64::NAN, 0.0, -1.0, 2.0, 1e-300];
            for round in 0..3 {
                for (i, p) in probabilities.iter().enumerate() {
                    let p = if round == 2 {
                        probabilities[(i * 7) % 10]
                    } else {
                        *p
                    };
                    assert_eq!(weights.of(p), weight_of(p, raw), "{p} raw {raw}");
                }
            }
            let nan = f64::from_bits(u64::MAX);
            assert_eq!(Weights::new(raw).of(nan), weight_of(nan, raw));
        }
    }
}
