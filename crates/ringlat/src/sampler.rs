//! The keep/drop decision: sampling classes (one inclusion probability each, stored in the
//! header's class table), per-kind degradation levels, and the random or trace-id draw.

use crate::Error;
use crate::policy::{KindSettings, Policy};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Most degradation steps a kind can take (each multiplies its rate by the factor).
const MAX_LEVELS: usize = 24;

/// The sampling classes of one ring: class 0 is probability 1 (kept whatever the rate: the
/// full-rate kinds and keep-if-slow records); the others are the distinct rates in use.
#[derive(Debug, Clone)]
pub(crate) struct Classes {
    /// Probability of each class, index = class.
    pub probabilities: Vec<f64>,
    /// Keep threshold of each class: keep when the 64-bit draw is `<=` it.
    pub thresholds: [u64; 256],
    /// Per kind: the class of each degradation level (level 0 = the base rate).
    pub levels: Vec<Vec<u8>>,
}

/// The keep threshold of probability `p`: a uniform 64-bit draw `d` is kept when
/// `d <= threshold(p)`, which happens with probability `p` (to within 2^-53).
pub(crate) fn threshold(p: f64) -> u64 {
    if p >= 1.0 {
        u64::MAX
    } else {
        // `as` saturates; p in (0, 1) maps below 2^64.
        ((p * 18_446_744_073_709_551_616.0) as u64).saturating_sub(1)
    }
}

impl Classes {
    /// Builds the classes for the configured kinds (`None` = not configured).
    pub(crate) fn build(kinds: &[Option<KindSettings>], policy: &Policy) -> Result<Self, Error> {
        let mut probabilities = vec![1.0f64];
        let mut levels = vec![Vec::new(); 256];
        for (kind, settings) in kinds.iter().enumerate() {
            let Some(settings) = settings else { continue };
            let mut rate = settings.rate;
            let mut kind_levels = Vec::new();
            loop {
                let class = match probabilities.iter().position(|p| *p == rate) {
                    Some(class) => class,
                    None => {
                        probabilities.push(rate);
                        probabilities.len() - 1
                    }
                };
                let class = u8::try_from(class).map_err(|_| Error::BadSampling {
                    reason: "more than 256 distinct sampling rates".into(),
                })?;
                kind_levels.push(class);
                let next = (rate * policy.degrade_factor).max(policy.degrade_floor);
                if settings.degrade_above.is_none()
                    || next >= rate
                    || kind_levels.len() == MAX_LEVELS
                {
                    break;
                }
                rate = next;
            }
            levels[kind] = kind_levels;
        }
        let mut thresholds = [0u64; 256];
        for (class, p) in probabilities.iter().enumerate() {
            thresholds[class] = threshold(*p);
        }
        Ok(Classes {
            probabilities,
            thresholds,
            levels,
        })
    }
}

/// The degradation level for a kind called `calls_per_second` times per second against a
/// threshold: the smallest `k` with `calls_per_second * factor^k <= threshold`, capped at
/// `max_level`. So a kind at twice its threshold runs at half its rate (factor 0.5), and it
/// returns to its base rate as soon as the load falls back under the threshold.
pub(crate) fn level_for(
    calls_per_second: f64,
    threshold: u64,
    factor: f64,
    max_level: usize,
) -> usize {
    let mut level = 0;
    let mut load = calls_per_second;
    while load > threshold as f64 && level < max_level {
        load *= factor;
        level += 1;
    }
    level
}

/// The SplitMix64 finalizer: the hash that [`Decision::TraceId`](crate::Decision::TraceId)
/// compares with the keep threshold. A trace is kept at rate `p` when
/// `trace_hash(trace_id) < p * 2^64`; any process (or language) using this function and that
/// rule keeps the same traces, and a higher rate keeps a superset.
///
/// ```
/// assert_eq!(ringlat::trace_hash(0), 0);
/// assert_ne!(ringlat::trace_hash(1), ringlat::trace_hash(2));
/// ```
#[inline]
pub fn trace_hash(trace_id: u64) -> u64 {
    let mut z = trace_id;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Seed material for threads that have not drawn yet; set once per created ring.
static SEED_BASE: AtomicU64 = AtomicU64::new(0x853C_49E6_748F_EA9B);
/// Distinguishes the threads' streams.
static THREAD_SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// The SplitMix64 increment (2^64 / golden ratio, odd: the state visits every u64).
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

thread_local! {
    /// The thread's SplitMix64 state, 0 = not seeded yet. A `Cell` (no borrow flag): a draw
    /// re-entered from a signal handler at worst repeats a draw, which only biases nothing.
    static RNG: Cell<u64> = const { Cell::new(0) };
}

/// Mixes `seed` into the seed of threads that have not drawn yet (called at ring creation,
/// off the hot path).
pub(crate) fn mix_seed_base(seed: u64) {
    // Relaxed: seed material, not synchronisation.
    SEED_BASE.fetch_xor(trace_hash(seed), Ordering::Relaxed);
}

/// Seeds the calling thread's sampling generator ([`Decision::Random`](crate::Decision)),
/// for reproducible runs (tests, simulations). Threads that never call it are seeded from a
/// per-process base and a thread sequence number, without a system call.
///
/// ```
/// ringlat::seed_thread_rng(42);
/// ```
pub fn seed_thread_rng(seed: u64) {
    let _ = RNG.try_with(|state| state.set(nonzero_state(trace_hash(seed))));
}

/// A state the generator can start from (0 means "not seeded").
fn nonzero_state(state: u64) -> u64 {
    if state == 0 { GAMMA } else { state }
}

/// The first state of a thread that never called [`seed_thread_rng`].
#[cold]
fn first_state() -> u64 {
    // Relaxed: seed material only.
    let sequence = THREAD_SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let base = SEED_BASE.load(Ordering::Relaxed);
    nonzero_state(base ^ trace_hash(sequence.wrapping_add(1)))
}

/// A uniform 64-bit draw from the calling thread's generator: SplitMix64 (Steele, Lea and
/// Flood 2014; passes BigCrush), one add and the [`trace_hash`] finaliser, no borrow flag.
#[inline]
pub(crate) fn random_draw() -> u64 {
    RNG.with(|state| {
        let mut now = state.get();
        if now == 0 {
            now = first_state();
        }
        let next = now.wrapping_add(GAMMA);
        // 0 is "not seeded": once every 2^64 draws the thread reseeds, harmlessly.
        state.set(next);
        trace_hash(next)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;

    #[test]
    fn random_draws_are_uniform_and_reproducible_from_a_seed() {
        seed_thread_rng(7);
        let first: Vec<u64> = (0..4).map(|_| random_draw()).collect();
        seed_thread_rng(7);
        assert_eq!((0..4).map(|_| random_draw()).collect::<Vec<_>>(), first);
        let n = 200_000;
        for rate in [0.5, 0.1, 0.01] {
            let kept = (0..n).filter(|_| random_draw() <= threshold(rate)).count();
            let expected = rate * n as f64;
            // More than 5 standard deviations off would not happen by chance.
            let sd = (n as f64 * rate * (1.0 - rate)).sqrt();
            assert!(
                (kept as f64 - expected).abs() < 5.0 * sd,
                "rate {rate}: {kept}"
            );
        }
        let other = std::thread::spawn(|| (0..4).map(|_| random_draw()).collect::<Vec<_>>())
            .join()
            .unwrap();
        assert_ne!(other, first, "unseeded threads get their own streams");
    }

    #[test]
    fn thresholds_are_monotonic_and_exact_at_the_ends() {
        assert_eq!(threshold(1.0), u64::MAX);
        assert_eq!(threshold(0.5), (1u64 << 63) - 1);
        assert!(threshold(0.1) < threshold(0.2));
    }

    #[test]
    fn degradation_levels_halve_down_to_the_floor() {
        let mut kinds = vec![None; 256];
        kinds[1] = Some(KindSettings {
            rate: 0.1,
            degrade_above: Some(2000),
        });
        kinds[2] = Some(KindSettings {
            rate: 0.5,
            degrade_above: None,
        });
        let classes = Classes::build(&kinds, &Policy::default()).unwrap();
        let rates: Vec<f64> = classes.levels[1]
            .iter()
            .map(|c| classes.probabilities[*c as usize])
            .collect();
        assert_eq!(rates[..3], [0.1, 0.05, 0.025]);
        assert_eq!(*rates.last().unwrap(), 0.001);
        assert_eq!(classes.levels[2].len(), 1);
        assert_eq!(level_for(1999.0, 2000, 0.5, 10), 0);
        assert_eq!(level_for(3999.0, 2000, 0.5, 10), 1);
        assert_eq!(level_for(8001.0, 2000, 0.5, 10), 3);
        assert_eq!(level_for(1e12, 2000, 0.5, 7), 7);
    }
}
