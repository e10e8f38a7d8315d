//! The weighted percentile engine: exact nearest-rank percentiles over any number of records,
//! in two streaming passes whose memory depends on the spread of the values, not on how many
//! records there are.
//!
//! Definition: records sorted by value, each weighing `w = 1/p` (its inverse inclusion
//! probability; 1 in raw mode), the q-th percentile is the smallest value whose cumulative
//! weight reaches `q% of the total weight`. Weights are fixed-point integers (`1/p` in units
//! of 2^-32), so sums are exact and the result does not depend on the order of the records.
//!
//! Pass 1 builds, per group, a histogram over logarithmic bins (exact below 128, then 64 bins
//! per power of two, held in a dense array over the group's range of bins: one index per
//! record, a few KiB per group) and finds the bin where each percentile falls. Pass 2 keeps the
//! exact values of those bins only, and walks them to the answer. The bins only narrow down
//! where to look: the answer is exact whatever their width.

use std::collections::BTreeMap;

/// One unit of weight: a record kept with probability 1 weighs this much.
pub const WEIGHT_ONE: u128 = 1 << 32;

/// The fixed-point weight of a record kept with probability `p` (raw: every record weighs 1).
///
/// ```
/// use ringlat_read::percentile::{weight_of, WEIGHT_ONE};
/// assert_eq!(weight_of(1.0, false), WEIGHT_ONE);
/// assert_eq!(weight_of(0.5, false), 2 * WEIGHT_ONE);
/// assert_eq!(weight_of(0.1, true), WEIGHT_ONE);
/// assert_eq!(weight_of(1e-300, false), u128::from(u64::MAX)); // capped: sums cannot overflow
/// ```
pub fn weight_of(probability: f64, raw: bool) -> u128 {
    if raw || !(probability > 0.0 && probability < 1.0) {
        WEIGHT_ONE
    } else {
        let weight = (WEIGHT_ONE as f64 / probability).round();
        // At most u64::MAX (a probability below 2^-32, which no writer uses, weighs as
        // 2^-32 does), so that sums of up to 2^64 weights never overflow a u128 whatever a
        // damaged file's class table says; `as u64` saturates.
        u128::from(weight as u64)
    }
}

/// A percentile as written on the command line, kept as an exact fraction.
///
/// ```
/// let q = ringlat_read::percentile::Quantile::parse("99.9").unwrap();
/// assert_eq!(q.label(), "99.9");
/// assert!(ringlat_read::percentile::Quantile::parse("101").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quantile {
    label: String,
    /// q / 100 = numerator / denominator.
    numerator: u128,
    denominator: u128,
}

impl Quantile {
    /// Parses `50`, `99.9`, `99.99`, `100`; at most 9 decimals.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits_ok = |s: &str| s.chars().all(|c| c.is_ascii_digit());
        if whole.is_empty() || !digits_ok(whole) || !digits_ok(fraction) || fraction.len() > 9 {
            return Err(format!("'{text}' is not a percentile (0..=100)"));
        }
        let scale = 10u128.pow(fraction.len() as u32);
        let whole: u128 = whole
            .parse()
            .map_err(|_| format!("'{text}' is not a percentile (0..=100)"))?;
        let fraction: u128 = if fraction.is_empty() {
            0
        } else {
            fraction
                .parse()
                .map_err(|_| format!("'{text}' is not a percentile"))?
        };
        let numerator = whole * scale + fraction;
        if numerator > 100 * scale {
            return Err(format!("'{text}' is above 100"));
        }
        Ok(Quantile {
            label: text.to_string(),
            numerator,
            denominator: 100 * scale,
        })
    }

    /// As written.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The fraction as a float (for `1/(1-q)` axes).
    pub fn fraction(&self) -> f64 {
        self.numerator as f64 / self.denominator as f64
    }

    /// The cumulative weight this percentile must reach, out of `total` (at least 1).
    fn target(&self, total: u128) -> u128 {
        (total * self.numerator).div_ceil(self.denominator).max(1)
    }
}

/// The bin of a value: exact below 128, then 64 bins per power of two; order-preserving,
/// negative values mirrored below zero (all bins lie in -3776..3776).
///
/// ```
/// use ringlat_read::percentile::bin_of;
/// assert!(bin_of(-5) < bin_of(-4) && bin_of(-1) < bin_of(0) && bin_of(0) < bin_of(1));
/// assert_eq!(bin_of(100), 100);
/// assert!(bin_of(1_000_000) < bin_of(1_020_000));
/// assert!(bin_of(i64::MIN) >= -3776 && bin_of(i64::MAX) < 3776);
/// ```
#[inline]
pub fn bin_of(value: i64) -> i64 {
    #[inline]
    fn magnitude(v: u64) -> i64 {
        if v < 128 {
            return v as i64;
        }
        let exponent = 63 - v.leading_zeros() as i64; // >= 7
        let mantissa = ((v >> (exponent - 6)) & 63) as i64;
        128 + (exponent - 7) * 64 + mantissa
    }
    if value >= 0 {
        magnitude(value as u64)
    } else {
        -magnitude(value.unsigned_abs()) - 1
    }
}

/// What a row summarises besides its percentiles.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Records in the group.
    pub records: u64,
    /// Total weight (fixed point).
    pub weight: u128,
    /// Smallest value.
    pub min: i64,
    /// Largest value.
    pub max: i64,
    /// Σ value × weight, for the weighted mean.
    weighted_sum: f64,
    /// Σ value² × weight, for the standard deviation.
    weighted_sum_sq: f64,
}

impl Summary {
    /// Events the records represent: Σ 1/p.
    pub fn events(&self) -> f64 {
        self.weight as f64 / WEIGHT_ONE as f64
    }

    /// The weighted mean.
    pub fn mean(&self) -> f64 {
        if self.weight == 0 {
            0.0
        } else {
            self.weighted_sum / self.weight as f64
        }
    }

    /// The weighted standard deviation.
    pub fn std_dev(&self) -> f64 {
        if self.weight == 0 {
            return 0.0;
        }
        let mean = self.mean();
        (self.weighted_sum_sq / self.weight as f64 - mean * mean)
            .max(0.0)
            .sqrt()
    }
}

/// A group's bins: a dense array over the range of bins seen so far (`first` is the bin of
/// `weights[0]`), so that adding a record is an index, not a tree walk.
#[derive(Debug, Clone, Default)]
struct Bins {
    first: i64,
    weights: Vec<u128>,
}

impl Bins {
    #[inline]
    fn add(&mut self, bin: i64, weight: u128) {
        let offset = bin - self.first;
        if offset >= 0
            && let Some(slot) = self.weights.get_mut(offset as usize)
        {
            *slot += weight;
            return;
        }
        self.grow_to(bin);
        self.weights[(bin - self.first) as usize] += weight;
    }

    /// Widens the range to hold `bin` (at most 7,552 bins: bounded by [`bin_of`]'s range).
    #[cold]
    fn grow_to(&mut self, bin: i64) {
        if self.weights.is_empty() {
            self.first = bin;
            self.weights.push(0);
        } else if bin < self.first {
            let extra = (self.first - bin) as usize;
            self.weights.splice(0..0, std::iter::repeat_n(0, extra));
            self.first = bin;
        } else {
            self.weights.resize((bin - self.first) as usize + 1, 0);
        }
    }

    /// (bin, weight) of the bins holding records, in bin order.
    fn iter(&self) -> impl Iterator<Item = (i64, u128)> + '_ {
        self.weights
            .iter()
            .enumerate()
            .filter(|(_, w)| **w > 0)
            .map(|(i, w)| (self.first + i as i64, *w))
    }
}

#[derive(Debug, Clone)]
struct FirstPass {
    bins: Bins,
    summary: Summary,
}

/// The groups of a pass: a map from key to index, with the last few keys looked up kept in a
/// small array (rows rotate among a few kinds and statuses, and windows follow time), so that
/// most records find their group without a tree walk.
///
/// A caller that can pack its key into a `u128` (see [`Tally::add_packed`]) finds its group in
/// a direct-mapped cache of packed keys instead: one hash, one comparison.
#[derive(Debug, Clone)]
struct Groups<K, V> {
    index: BTreeMap<K, usize>,
    values: Vec<V>,
    /// Each group's key, by index (the index's reverse).
    keys: Vec<K>,
    recent: Vec<(K, usize)>,
    next_recent: usize,
    /// Packed key -> group index, direct-mapped; [`NO_PACKED_KEY`] marks an empty slot.
    packed: Vec<(u128, usize)>,
    /// Packed keys below [`SMALL_KEYS`] (kind and status, no window) -> group index + 1,
    /// indexed directly (0: not known yet); empty until the first such key.
    small: Vec<u32>,
    /// The same for the keys of one window (high word `window`, not 0; low word below
    /// [`SMALL_KEYS`]): the newest window a key was found in, where records in time order
    /// are (one load instead of the hash cache). `window_lows` lists the entries set, to
    /// clear them when a newer window comes.
    window: u64,
    in_window: Vec<u32>,
    window_lows: Vec<u16>,
}

/// Packed keys below this find their group in [`Groups::small`]: one load.
const SMALL_KEYS: u128 = 1 << 16;

/// How many recently used groups [`Groups`] keeps at hand.
const RECENT_GROUPS: usize = 16;

/// Slots of the packed-key cache (a power of two): more than the groups a pass of ringcat
/// touches at once (kinds x statuses, within a few windows).
const PACKED_SLOTS: usize = 1 << 10;

/// The one packed key callers may not use: it marks an empty slot of the cache.
///
/// ```
/// // A key packed from a u64 and a u16 never reaches it.
/// let packed = (u128::from(u64::MAX) << 64) | u128::from(u16::MAX);
/// assert_ne!(packed, ringlat_read::percentile::NO_PACKED_KEY);
/// ```
pub const NO_PACKED_KEY: u128 = u128::MAX;

impl<K: Ord + Clone, V> Groups<K, V> {
    fn new() -> Self {
        Groups {
            index: BTreeMap::new(),
            values: Vec::new(),
            keys: Vec::new(),
            recent: Vec::with_capacity(RECENT_GROUPS),
            next_recent: 0,
            packed: Vec::new(),
            small: Vec::new(),
            window: 0,
            in_window: Vec::new(),
            window_lows: Vec::new(),
        }
    }

    /// [`Groups::find`] by a packed key (one packed key per key, never [`NO_PACKED_KEY`]);
    /// `key` makes the key itself when the cache does not know the packed one.
    #[inline(always)]
    fn find_packed(
        &mut self,
        packed: u128,
        key: impl FnOnce() -> K,
        make: Option<&mut dyn FnMut() -> V>,
    ) -> Option<usize> {
        let (high, low) = ((packed >> 64) as u64, packed as u64);
        if low < SMALL_KEYS as u64 {
            let table = if high == 0 {
                &self.small
            } else if high == self.window {
                &self.in_window
            } else {
                &Vec::new()
            };
            if let Some(&at) = table.get(low as usize)
                && at != 0
            {
                return Some(at as usize - 1);
            }
        }
        let folded = low ^ high.rotate_left(29);
        let slot = (folded.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 54) as usize;
        if let Some(&(cached, at)) = self.packed.get(slot)
            && cached == packed
        {
            if high > self.window && low < SMALL_KEYS as u64 {
                self.remember_in_window(high, low, at);
            }
            return Some(at);
        }
        self.find_packed_slow(slot, packed, &key(), make)
    }

    /// Keeps group `at` of packed key (`high`, `low`) in the window table (a window at least
    /// as new as the table's: a newer one takes the table over; a key without a window, or
    /// whose low word is 2^16 or more, is not kept).
    #[inline(never)]
    fn remember_in_window(&mut self, high: u64, low: u64, at: usize) {
        let (Ok(low), Ok(at)) = (u16::try_from(low), u32::try_from(at + 1)) else {
            return;
        };
        if high < self.window || high == 0 {
            return;
        }
        if high > self.window {
            for low in self.window_lows.drain(..) {
                self.in_window[usize::from(low)] = 0;
            }
            self.window = high;
        }
        if self.in_window.is_empty() {
            self.in_window = vec![0; SMALL_KEYS as usize];
        }
        if self.in_window[usize::from(low)] == 0 {
            self.window_lows.push(low);
        }
        self.in_window[usize::from(low)] = at;
    }

    #[inline(never)]
    fn find_packed_slow(
        &mut self,
        slot: usize,
        packed: u128,
        key: &K,
        make: Option<&mut dyn FnMut() -> V>,
    ) -> Option<usize> {
        let at = self.find(key, make)?;
        if self.packed.is_empty() {
            self.packed = vec![(NO_PACKED_KEY, 0); PACKED_SLOTS];
        }
        if packed < SMALL_KEYS && u32::try_from(at + 1).is_ok() {
            if self.small.is_empty() {
                self.small = vec![0; SMALL_KEYS as usize];
            }
            self.small[packed as usize] = (at + 1) as u32;
        } else if packed != NO_PACKED_KEY {
            self.packed[slot] = (packed, at);
            self.remember_in_window((packed >> 64) as u64, packed as u64, at);
        }
        Some(at)
    }

    /// The index of `key`'s group, made with `make` when it is new (`None`: new and no `make`).
    #[inline]
    fn find(&mut self, key: &K, make: Option<&mut dyn FnMut() -> V>) -> Option<usize> {
        if let Some((_, at)) = self.recent.iter().find(|(k, _)| k == key) {
            return Some(*at);
        }
        self.find_slow(key, make)
    }

    #[cold]
    fn find_slow(&mut self, key: &K, make: Option<&mut dyn FnMut() -> V>) -> Option<usize> {
        let at = match self.index.get(key) {
            Some(at) => *at,
            None => {
                let make = make?;
                self.values.push(make());
                self.keys.push(key.clone());
                self.index.insert(key.clone(), self.values.len() - 1);
                self.values.len() - 1
            }
        };
        if self.recent.len() < RECENT_GROUPS {
            self.recent.push((key.clone(), at));
        } else {
            self.recent[self.next_recent] = (key.clone(), at);
            self.next_recent = (self.next_recent + 1) % RECENT_GROUPS;
        }
        Some(at)
    }

    /// Adds the group of a key not seen before.
    fn push(&mut self, key: K, value: V) {
        self.values.push(value);
        self.keys.push(key.clone());
        self.index.insert(key, self.values.len() - 1);
    }

    /// Every group, in key order.
    fn into_sorted(self) -> Vec<(K, V)> {
        let mut values: Vec<Option<V>> = self.values.into_iter().map(Some).collect();
        self.index
            .into_iter()
            .filter_map(|(key, at)| values[at].take().map(|v| (key, v)))
            .collect()
    }
}

/// Pass 1: feed every record with [`Histograms::add`], then [`Histograms::plan`].
///
/// ```
/// use ringlat_read::percentile::{Histograms, Quantile, WEIGHT_ONE};
/// let quantiles = vec![Quantile::parse("50").unwrap(), Quantile::parse("100").unwrap()];
/// let mut pass1 = Histograms::new(quantiles);
/// for v in 1..=10 { pass1.add(0u8, v, WEIGHT_ONE); }
/// let mut pass2 = pass1.plan();
/// for v in 1..=10 { pass2.add(&0u8, v, WEIGHT_ONE); }
/// let rows = pass2.finish();
/// assert_eq!(rows[0].1, vec![5, 10]);
/// ```
#[derive(Debug, Clone)]
pub struct Histograms<K> {
    quantiles: Vec<Quantile>,
    groups: Groups<K, FirstPass>,
}

/// `weight` as a float, without the slow 128-bit conversion (a library call of about 50
/// instructions) for weights below 2^53, every weight a sampling rate above 2^-21 gives: there
/// the two 32-bit halves convert exactly, so the value is the same. (Converting through `u64`
/// did not help: the compiler saw both arms compute `weight as f64` and kept the library call.)
#[inline]
fn weight_f64(weight: u128) -> f64 {
    if weight < 1 << 53 {
        let (high, low) = ((weight >> 32) as u32, weight as u32);
        f64::from(high) * 4_294_967_296.0 + f64::from(low)
    } else {
        weight as f64
    }
}

impl<K: Ord + Clone> Histograms<K> {
    /// For these percentiles.
    pub fn new(quantiles: Vec<Quantile>) -> Self {
        Histograms {
            quantiles,
            groups: Groups::new(),
        }
    }

    /// Adds one record of group `key`.
    #[inline]
    pub fn add(&mut self, key: K, value: i64, weight: u128) {
        let Some(at) = self.groups.find(&key, Some(&mut FirstPass::new)) else {
            return;
        };
        self.groups.values[at].add(value, weight);
    }

    /// Groups seen so far.
    pub fn len(&self) -> usize {
        self.groups.values.len()
    }

    /// True when no record was added.
    pub fn is_empty(&self) -> bool {
        self.groups.values.is_empty()
    }

    /// Finds the bin of every percentile; pass 2 collects those bins' exact values.
    pub fn plan(self) -> Selection<K> {
        let mut groups = Groups::new();
        for (key, pass) in self.groups.into_sorted() {
            groups.push(key, plan_group(&self.quantiles, pass));
        }
        Selection { groups }
    }

    /// Adds what `other` counted (the same percentiles), as if its records had been added
    /// here: the result does not depend on how records were split between the two.
    pub fn merge(&mut self, other: Histograms<K>) {
        for (key, pass) in other.groups.into_sorted() {
            match self.groups.find(&key, None) {
                Some(at) => self.groups.values[at].merge(pass),
                None => self.groups.push(key, pass),
            }
        }
    }
}

impl FirstPass {
    fn new() -> Self {
        FirstPass {
            bins: Bins::default(),
            summary: Summary {
                records: 0,
                weight: 0,
                min: i64::MAX,
                max: i64::MIN,
                weighted_sum: 0.0,
                weighted_sum_sq: 0.0,
            },
        }
    }

    #[inline]
    fn add(&mut self, value: i64, weight: u128) {
        self.count(value, weight);
        self.bin_and_sum(value, weight);
    }

    /// A value's weight, without a record: weight, min and max, bins and weighted sums (for
    /// values taken from an exact group's map, whose records are counted already).
    fn weigh_and_bin(&mut self, value: i64, weight: u128) {
        self.weigh(value, weight);
        self.bin_and_sum(value, weight);
    }

    /// Bins and weighted sums only (records, weight, min and max already counted).
    #[inline]
    fn bin_and_sum(&mut self, value: i64, weight: u128) {
        self.bins.add(bin_of(value), weight);
        let weight = weight_f64(weight);
        self.summary.weighted_sum += value as f64 * weight;
        self.summary.weighted_sum_sq += (value as f64) * (value as f64) * weight;
    }

    /// Records, weight, min and max only.
    #[inline]
    fn count(&mut self, value: i64, weight: u128) {
        self.summary.records += 1;
        self.weigh(value, weight);
    }

    /// Weight, min and max only: per record once binned; for an exact group, once per
    /// distinct value from its value map (when it is binned or finished), not per record.
    #[inline]
    fn weigh(&mut self, value: i64, weight: u128) {
        let summary = &mut self.summary;
        summary.weight += weight;
        summary.min = summary.min.min(value);
        summary.max = summary.max.max(value);
    }

    fn merge(&mut self, other: FirstPass) {
        for (bin, weight) in other.bins.iter() {
            self.bins.add(bin, weight);
        }
        let (a, b) = (&mut self.summary, other.summary);
        a.records += b.records;
        a.weight += b.weight;
        a.min = a.min.min(b.min);
        a.max = a.max.max(b.max);
        a.weighted_sum += b.weighted_sum;
        a.weighted_sum_sq += b.weighted_sum_sq;
    }
}

/// Finds the bin of every percentile of one group (pass 2 collects those bins' values).
fn plan_group(quantiles: &[Quantile], pass: FirstPass) -> Planned {
    let mut targets = Vec::with_capacity(quantiles.len());
    for quantile in quantiles {
        let target = quantile.target(pass.summary.weight);
        let mut before = 0u128;
        let mut found = None;
        for (bin, weight) in pass.bins.iter() {
            if before + weight >= target {
                found = Some(bin);
                break;
            }
            before += weight;
        }
        let bin = found.unwrap_or_else(|| bin_of(pass.summary.max));
        targets.push(Target {
            bin,
            before,
            target,
        });
    }
    let mut exact: Vec<(i64, BTreeMap<i64, u128>)> =
        targets.iter().map(|t| (t.bin, BTreeMap::new())).collect();
    exact.sort_by_key(|(bin, _)| *bin);
    exact.dedup_by_key(|(bin, _)| *bin);
    Planned {
        summary: pass.summary,
        targets,
        exact,
        done: None,
        at_or_below: None,
    }
}

#[derive(Debug, Clone, Copy)]
struct Target {
    bin: i64,
    before: u128,
    target: u128,
}

#[derive(Debug, Clone)]
struct Planned {
    summary: Summary,
    targets: Vec<Target>,
    /// The target bins (ascending, distinct: one per percentile at most) and the exact values seen in each.
    exact: Vec<(i64, BTreeMap<i64, u128>)>,
    /// The percentile values, when a [`Tally`] already knew them exactly (no pass 2 needed).
    done: Option<Vec<i64>>,
    /// With `done`: per percentile value, the weight of the records at or below it.
    at_or_below: Option<Vec<u128>>,
}

/// Pass 2: feed the same records again with [`Selection::add`], then [`Selection::finish`].
#[derive(Debug, Clone)]
pub struct Selection<K> {
    groups: Groups<K, Planned>,
}

impl<K: Ord + Clone> Selection<K> {
    /// True when every group's percentiles are already known (a [`Tally`] that kept every
    /// distinct value): pass 2 can be left out, [`Selection::finish`] gives the answer.
    pub fn is_complete(&self) -> bool {
        self.groups.values.iter().all(|g| g.done.is_some())
    }

    /// Adds what `other` collected in pass 2 (a clone of the same plan, fed other records).
    pub fn merge(&mut self, other: Selection<K>) {
        for (key, group) in other.groups.into_sorted() {
            let Some(at) = self.groups.find(&key, None) else {
                continue;
            };
            let mine = &mut self.groups.values[at].exact;
            for ((_, into), (_, from)) in mine.iter_mut().zip(group.exact) {
                for (value, weight) in from {
                    *into.entry(value).or_insert(0) += weight;
                }
            }
        }
    }

    /// Adds one record (only values in a target bin are kept; nothing for a group whose
    /// percentiles are already known).
    #[inline]
    pub fn add(&mut self, key: &K, value: i64, weight: u128) {
        let Some(at) = self.groups.find(key, None) else {
            return;
        };
        self.add_at(at, value, weight);
    }

    /// [`Selection::add`] by a packed key, as [`Tally::add_packed`] (the same packing).
    ///
    /// ```
    /// use ringlat_read::percentile::{Quantile, Tally, WEIGHT_ONE};
    /// let mut tally = Tally::with_budget(vec![Quantile::parse("50").unwrap()], 1);
    /// for v in [1, 2, 3] { tally.add_packed(7, || 'a', v, WEIGHT_ONE); }
    /// let mut pass2 = tally.finish(); // past its budget of 1 value: a second pass
    /// for v in [1, 2, 3] { pass2.add_packed(7, || 'a', v, WEIGHT_ONE); }
    /// assert_eq!(pass2.finish()[0].1, vec![2]);
    /// ```
    #[inline]
    pub fn add_packed(&mut self, packed: u128, key: impl FnOnce() -> K, value: i64, weight: u128) {
        let Some(at) = self.groups.find_packed(packed, key, None) else {
            return;
        };
        self.add_at(at, value, weight);
    }

    #[inline]
    fn add_at(&mut self, at: usize, value: i64, weight: u128) {
        if self.groups.values[at].done.is_some() {
            return;
        }
        let exact = &mut self.groups.values[at].exact;
        if let Ok(found) = exact.binary_search_by_key(&bin_of(value), |(bin, _)| *bin) {
            *exact[found].1.entry(value).or_insert(0) += weight;
        }
    }

    /// Per group, in key order, per percentile value: the weight of the records at or below
    /// it (HdrHistogram's total count), when the [`Tally`] knew every value of every group
    /// ([`Selection::is_complete`]); `None` otherwise (it takes a pass over the records).
    ///
    /// ```
    /// use ringlat_read::percentile::{Quantile, Tally, WEIGHT_ONE};
    /// let mut tally = Tally::new(vec![Quantile::parse("50").unwrap()]);
    /// for v in [3, 1, 2, 2] { tally.add((), v, WEIGHT_ONE); }
    /// let selection = tally.finish();
    /// assert_eq!(selection.at_or_below(), Some(vec![vec![3 * WEIGHT_ONE]])); // p50 = 2
    /// ```
    pub fn at_or_below(&self) -> Option<Vec<Vec<u128>>> {
        self.groups
            .index
            .values()
            .map(|at| self.groups.values[*at].at_or_below.clone())
            .collect()
    }

    /// Each group's summary and percentile values, in key order.
    pub fn finish(self) -> Vec<(K, Vec<i64>, Summary)> {
        self.groups
            .into_sorted()
            .into_iter()
            .map(|(key, group)| {
                if let Some(values) = group.done {
                    return (key, values, group.summary);
                }
                let values = group
                    .targets
                    .iter()
                    .map(|target| {
                        let mut cumulative = target.before;
                        if let Some((_, values)) =
                            group.exact.iter().find(|(b, _)| *b == target.bin)
                        {
                            for (value, weight) in values {
                                cumulative += weight;
                                if cumulative >= target.target {
                                    return *value;
                                }
                            }
                        }
                        group.summary.max
                    })
                    .collect();
                (key, values, group.summary)
            })
            .collect()
    }
}

/// Distinct values a [`Tally`] keeps exactly, over all its groups, before it falls back to
/// bins and a second pass: at most 16 MiB of tables.
pub const DISTINCT_BUDGET: usize = 1 << 17;

/// Pass 1 that is often the only pass: per group, the exact weight of every distinct value,
/// while the number of distinct values stays within a budget (latencies stored in µs units
/// take a few thousand distinct values, however many records there are). Beyond the budget it
/// turns into [`Histograms`] (log bins) and [`Tally::finish`] returns a plan that needs pass 2
/// ([`Selection::add`] over the same records), exactly as the two-pass engine. Either way the
/// answer is the exact weighted percentile of the module's definition.
///
/// Tallies of disjoint parts of the records (e.g. one per thread) [`merge`](Tally::merge)
/// into the tally of the whole: weights are integers, so the percentiles, counts, min and max
/// do not depend on how the records were split (the weighted sums behind the mean are summed
/// in value order when exact; once binned, in arrival order, up to float rounding).
///
/// ```
/// use ringlat_read::percentile::{Quantile, Tally, WEIGHT_ONE};
/// let quantiles = vec![Quantile::parse("50").unwrap(), Quantile::parse("100").unwrap()];
/// let (mut left, mut right) = (Tally::new(quantiles.clone()), Tally::new(quantiles));
/// for v in 1..=4 { left.add(0u8, v, WEIGHT_ONE); }
/// for v in 5..=10 { right.add(0u8, v, WEIGHT_ONE); }
/// left.merge(right);
/// let selection = left.finish();
/// assert!(selection.is_complete()); // no second pass needed
/// assert_eq!(selection.finish()[0].1, vec![5, 10]);
/// ```
#[derive(Debug, Clone)]
pub struct Tally<K> {
    quantiles: Vec<Quantile>,
    groups: Groups<K, TallyGroup>,
    /// Distinct values held over all groups (while exact).
    distinct: usize,
    budget: usize,
    /// False once the budget was passed: every group is binned.
    exact: bool,
    /// A merge met a group closed on both sides (see [`Tally::added_after_close`]).
    closed_twice: bool,
    /// The groups [`Tally::close`] has not closed, by index, as of its last call...
    open: Vec<usize>,
    /// ...and how many groups there were then (later ones are open too).
    groups_then: usize,
    /// Value tables of closed groups, emptied, for new groups...
    spare: Vec<ValueMap>,
    /// ...and their slots in all (at most 4 times the budget, and [`SPARE_SLOTS`]).
    spare_slots: usize,
}

/// Slots the emptied tables [`Tally::close`] keeps for new groups may hold in all, at most
/// (12 MiB; less with a smaller budget).
const SPARE_SLOTS: usize = 4 * DISTINCT_BUDGET;

#[derive(Debug, Clone)]
struct TallyGroup {
    /// Records always; weight, min and max, bins and weighted sums once binned (while the
    /// tally is exact, weight, min and max are the value map's, taken at the end). Zero
    /// records again once the group is closed: a record after that breaks the promise.
    pass: FirstPass,
    /// Every distinct value and its weight, while the tally is exact and the group open.
    values: ValueMap,
    /// The group's answer, once [`Tally::close`] finished it.
    closed: Option<Box<Planned>>,
}

impl TallyGroup {
    fn new() -> Self {
        TallyGroup {
            pass: FirstPass::new(),
            values: ValueMap::default(),
            closed: None,
        }
    }

    /// Closed, and fed a record since.
    fn added_after_close(&self) -> bool {
        self.closed.is_some() && self.pass.summary.records > 0
    }
}

impl<K: Ord + Clone> Tally<K> {
    /// For these percentiles, with the default budget ([`DISTINCT_BUDGET`]).
    pub fn new(quantiles: Vec<Quantile>) -> Self {
        Tally::with_budget(quantiles, DISTINCT_BUDGET)
    }

    /// For these percentiles, keeping at most `budget` distinct values exactly.
    pub fn with_budget(quantiles: Vec<Quantile>, budget: usize) -> Self {
        Tally {
            quantiles,
            groups: Groups::new(),
            distinct: 0,
            budget,
            exact: true,
            closed_twice: false,
            open: Vec::new(),
            groups_then: 0,
            spare: Vec::new(),
            spare_slots: 0,
        }
    }

    /// Adds one record of group `key`.
    #[inline]
    pub fn add(&mut self, key: K, value: i64, weight: u128) {
        let Some(at) = self.groups.find(&key, Some(&mut TallyGroup::new)) else {
            return;
        };
        self.add_at(at, value, weight);
    }

    /// [`Tally::add`] for a caller that packs each key into a `u128` (`packed`: the same
    /// for equal keys, different for different keys, never [`NO_PACKED_KEY`]); `key` makes
    /// the key when the packed key is not cached. Finds the group with one hash instead of
    /// comparing keys: for callers whose keys are a few small fields.
    ///
    /// ```
    /// use ringlat_read::percentile::{Quantile, Tally, WEIGHT_ONE};
    /// let mut tally = Tally::new(vec![Quantile::parse("50").unwrap()]);
    /// for (kind, v) in [(1u8, 10), (2, 20), (1, 30), (1, 20)] {
    ///     tally.add_packed(u128::from(kind), || kind, v, WEIGHT_ONE);
    /// }
    /// let rows = tally.finish().finish();
    /// assert_eq!((rows[0].0, &rows[0].1), (1, &vec![20]));
    /// ```
    #[inline(always)]
    pub fn add_packed(&mut self, packed: u128, key: impl FnOnce() -> K, value: i64, weight: u128) {
        let Some(at) = self
            .groups
            .find_packed(packed, key, Some(&mut TallyGroup::new))
        else {
            return;
        };
        self.add_at(at, value, weight);
    }

    #[inline(always)]
    fn add_at(&mut self, at: usize, value: i64, weight: u128) {
        let group = &mut self.groups.values[at];
        if self.exact {
            // Weight, min and max come from the value map later (`bin_all`, `exact_group`).
            group.pass.summary.records += 1;
            if group.values.add(value, weight) {
                self.added_new_value(at);
            }
        } else {
            group.pass.add(value, weight);
        }
    }

    /// What follows a value new to group `at`, off the per-record path (kept out of line so
    /// that the callers' loops stay small enough to inline their folds).
    #[inline(never)]
    fn added_new_value(&mut self, at: usize) {
        let Some(group) = self.groups.values.get_mut(at) else {
            return;
        };
        // A new group's table about to grow for the first time: move its values into the
        // emptied table of a closed group, when there is one. Its first values have settled
        // the grid by now, so the large table is not placed again for each of them.
        if group.values.distinct() == ValueMap::HAND_OVER
            && group.values.slots() == ValueMap::FIRST_SLOTS
            && let Some(mut spare) = self.spare.pop()
        {
            self.spare_slots -= spare.slots();
            spare.adopt(std::mem::take(&mut group.values));
            group.values = spare;
        }
        self.distinct += 1;
        if self.distinct > self.budget || group.values.hopeless() {
            self.bin_all();
        }
    }

    /// True while every distinct value is kept (no pass 2 will be needed).
    pub fn is_exact(&self) -> bool {
        self.exact
    }

    /// Groups seen so far.
    pub fn len(&self) -> usize {
        self.groups.values.len()
    }

    /// True when no record was added.
    pub fn is_empty(&self) -> bool {
        self.groups.values.is_empty()
    }

    /// Finishes now, exactly, every open group whose key `ended` says no record is still to
    /// come for (e.g. a time window that the records have left behind for good): its
    /// percentiles are computed and its values freed, so that they no longer count against
    /// the budget. Nothing is closed once the tally is binned (it has no exact values left).
    ///
    /// The caller promises that no record of a closed group follows, in this tally or in one
    /// merged into it; a broken promise is not silent: [`Tally::added_after_close`] says so,
    /// and the answers are then not to be used (count again without closing).
    ///
    /// ```
    /// use ringlat_read::percentile::{Quantile, Tally, WEIGHT_ONE};
    /// let mut tally = Tally::with_budget(vec![Quantile::parse("50").unwrap()], 4);
    /// for window in 0..10u64 {
    ///     for v in 1..=3 { tally.add(window, v + window as i64, WEIGHT_ONE); }
    ///     // Windows end in time: close the one just filled. 30 values, a budget of 4.
    ///     tally.close(|w| *w == window);
    /// }
    /// assert!(tally.is_exact() && !tally.added_after_close());
    /// let rows = tally.finish();
    /// assert!(rows.is_complete());
    /// assert_eq!(rows.finish()[9].1, vec![11]);
    /// ```
    pub fn close(&mut self, ended: impl Fn(&K) -> bool) {
        self.close_with(ended, |_, _, _| {});
    }

    /// [`Tally::close`], handing each group it closes to `closed` first: its key, its
    /// records and its distinct values with their summed weights (in no order), e.g. to add
    /// them to a coarser tally ([`Tally::absorb`]) instead of adding every record to both.
    ///
    /// ```
    /// use ringlat_read::percentile::{Quantile, Tally, WEIGHT_ONE};
    /// let q = vec![Quantile::parse("50").unwrap()];
    /// let (mut windows, mut whole) = (Tally::new(q.clone()), Tally::new(q));
    /// for (window, v) in [(0u64, 5), (0, 5), (1, 9)] { windows.add(window, v, WEIGHT_ONE); }
    /// windows.close_with(|w| *w == 0, |_, records, values| whole.absorb((), records, values));
    /// windows.for_each_open(|_, records, values| whole.absorb((), records, values));
    /// let rows = whole.finish().finish();
    /// assert_eq!((rows[0].1[0], rows[0].2.records), (5, 3));
    /// ```
    pub fn close_with(
        &mut self,
        ended: impl Fn(&K) -> bool,
        mut closed: impl FnMut(&K, u64, &[(i64, u128)]),
    ) {
        if !self.exact {
            return;
        }
        // Only the groups still open are looked at: a call costs the open groups, not every
        // group so far (a day of windows would make closing quadratic).
        let groups = &mut self.groups;
        self.open.extend(self.groups_then..groups.values.len());
        self.groups_then = groups.values.len();
        let mut still_open = Vec::with_capacity(self.open.len());
        for at in self.open.drain(..) {
            let (Some(group), Some(key)) = (groups.values.get_mut(at), groups.keys.get(at)) else {
                continue;
            };
            if group.closed.is_some() {
                continue;
            }
            if !ended(key) {
                still_open.push(at);
                continue;
            }
            let distinct = group.values.distinct();
            self.distinct = self.distinct.saturating_sub(distinct);
            let mut open = std::mem::replace(group, TallyGroup::new());
            let values = open.values.take_entries();
            closed(key, open.pass.summary.records, &values);
            group.closed = Some(Box::new(exact_answer(&self.quantiles, open.pass, values)));
            // The emptied table serves a group of a later window: no growing from 16 slots
            // and no fresh memory per window and group. Only a table its group filled to an
            // eighth at least (a table grows at half full): a large one handed to a group of
            // a few values is dropped when that group closes, rather than walked again at
            // every close.
            let slots = open.values.slots();
            let limit = self.budget.saturating_mul(4).min(SPARE_SLOTS);
            if distinct.saturating_mul(8) >= slots && self.spare_slots + slots <= limit {
                self.spare_slots += slots;
                self.spare.push(open.values);
            }
        }
        self.open = still_open;
    }

    /// Hands each group not closed to `open` as [`Tally::close_with`] hands a closed one,
    /// leaving it as it is; nothing once the tally is binned (its values are gone: see
    /// [`Tally::is_exact`]).
    pub fn for_each_open(&self, mut open: impl FnMut(&K, u64, &[(i64, u128)])) {
        if !self.exact {
            return;
        }
        for (group, key) in self.groups.values.iter().zip(&self.groups.keys) {
            if group.closed.is_none() {
                open(key, group.pass.summary.records, &group.values.to_entries());
            }
        }
    }

    /// Adds `records` records of group `key` at once, whose distinct values and their
    /// summed weights are `values` (as [`Tally::close_with`] hands them on): the same counts
    /// as adding each record (the weighted sums of a binned tally may differ in their last
    /// bits: they are summed per value).
    pub fn absorb(&mut self, key: K, records: u64, values: &[(i64, u128)]) {
        let Some(at) = self.groups.find(&key, Some(&mut TallyGroup::new)) else {
            return;
        };
        let group = &mut self.groups.values[at];
        group.pass.summary.records += records;
        if !self.exact {
            for &(value, weight) in values {
                group.pass.weigh_and_bin(value, weight);
            }
            return;
        }
        let hopeless = self.add_exact(at, values.iter().copied());
        if self.distinct > self.budget || hopeless {
            self.bin_all();
        }
    }

    /// Adds values and their weights to the exact values of group `at` (whose records are
    /// counted by the caller), counting the new ones against the budget; true when a table
    /// found its values colliding beyond help ([`ValueMap::hopeless`]). The caller bins.
    fn add_exact(&mut self, at: usize, values: impl IntoIterator<Item = (i64, u128)>) -> bool {
        let Some(group) = self.groups.values.get_mut(at) else {
            return false;
        };
        let mut hopeless = false;
        for (value, weight) in values {
            if group.values.add(value, weight) {
                self.distinct += 1;
                hopeless |= group.values.hopeless();
            }
        }
        hopeless
    }

    /// True when a record reached a group after [`Tally::close`] closed it (here or in a
    /// tally merged into this one): the promise was broken, the answers are wrong.
    ///
    /// ```
    /// use ringlat_read::percentile::{Quantile, Tally, WEIGHT_ONE};
    /// let mut tally = Tally::new(vec![Quantile::parse("50").unwrap()]);
    /// tally.add("09:00", 5, WEIGHT_ONE);
    /// tally.close(|window| *window == "09:00");
    /// assert!(!tally.added_after_close());
    /// tally.add("09:00", 7, WEIGHT_ONE); // late: its window was closed
    /// assert!(tally.added_after_close());
    /// ```
    pub fn added_after_close(&self) -> bool {
        self.closed_twice || self.groups.values.iter().any(TallyGroup::added_after_close)
    }

    /// Leaves exact counting for bins (the budget was passed).
    #[cold]
    fn bin_all(&mut self) {
        for group in &mut self.groups.values {
            for (value, weight) in std::mem::take(&mut group.values).entries() {
                group.pass.weigh_and_bin(value, weight);
            }
        }
        self.distinct = 0;
        self.exact = false;
    }

    /// Adds what `other` counted (the same percentiles and budget) as if its records had
    /// been added here.
    pub fn merge(&mut self, mut other: Tally<K>) {
        if !(self.exact && other.exact) {
            self.bin_all();
            other.bin_all();
        }
        let mut hopeless = false;
        self.closed_twice |= other.closed_twice;
        for (key, group) in other.groups.into_sorted() {
            let Some(at) = self.groups.find(&key, Some(&mut TallyGroup::new)) else {
                continue;
            };
            let mine = &mut self.groups.values[at];
            if let Some(closed) = group.closed {
                // Closed on both sides: records of it in both tallies (a broken promise).
                self.closed_twice |= mine.closed.is_some();
                mine.closed = Some(closed);
            }
            mine.pass.merge(group.pass);
            hopeless |= self.add_exact(at, group.values.entries());
        }
        // Binned after every group is in (binning moves the values out of the maps).
        if self.exact && (self.distinct > self.budget || hopeless) {
            self.bin_all();
        }
    }

    /// The percentiles: known already when the tally stayed exact
    /// ([`Selection::is_complete`]), else the plan for pass 2.
    pub fn finish(self) -> Selection<K> {
        let mut groups = Groups::new();
        for (key, group) in self.groups.into_sorted() {
            let planned = if let Some(closed) = group.closed {
                *closed
            } else if self.exact {
                exact_group(&self.quantiles, group)
            } else {
                plan_group(&self.quantiles, group.pass)
            };
            groups.push(key, planned);
        }
        Selection { groups }
    }
}

/// The answer for a group whose every distinct value is known.
fn exact_group(quantiles: &[Quantile], group: TallyGroup) -> Planned {
    exact_answer(quantiles, group.pass, group.values.entries())
}

/// [`exact_group`] from the group's first pass and its values.
fn exact_answer(
    quantiles: &[Quantile],
    mut pass: FirstPass,
    mut values: Vec<(i64, u128)>,
) -> Planned {
    values.sort_unstable_by_key(|(value, _)| *value);
    for (value, weight) in &values {
        pass.weigh(*value, *weight);
    }
    let mut summary = pass.summary;
    // Summed in value order: the same result however the records were split or ordered.
    for (value, weight) in &values {
        let weight = weight_f64(*weight);
        summary.weighted_sum += *value as f64 * weight;
        summary.weighted_sum_sq += (*value as f64) * (*value as f64) * weight;
    }
    let answers: Vec<i64> = quantiles
        .iter()
        .map(|quantile| {
            let target = quantile.target(summary.weight);
            let mut cumulative = 0u128;
            for (value, weight) in &values {
                cumulative += weight;
                if cumulative >= target {
                    return *value;
                }
            }
            summary.max
        })
        .collect();
    let at_or_below = answers
        .iter()
        .map(|answer| {
            values
                .iter()
                .take_while(|(value, _)| value <= answer)
                .map(|(_, weight)| weight)
                .sum()
        })
        .collect();
    Planned {
        summary,
        targets: Vec::new(),
        exact: Vec::new(),
        done: Some(answers),
        at_or_below: Some(at_or_below),
    }
}

/// A map from value to weight: open addressing, linear probing, at most half full. Values are
/// placed by their rank on the grid of their greatest common divisor (`value / quantum`,
/// modulo the table size): latencies stored in µs units are ns multiples of 1000, so values
/// next to each other sit in slots next to each other, and the values most records take
/// (around the median) stay in a few cache lines. The division is exact, so it is a shift
/// and a multiplication by the modular inverse of the odd part. A run of consecutive values
/// fills consecutive slots, each value in its own first slot: lookups stay one probe. Where
/// values crowd instead (on average [`ValueMap::CROWDED`] slots from their first at a rebuild,
/// or one probe longer than [`ValueMap::LONG_PROBE`]), the map switches for good to a
/// scattering hash.
#[derive(Debug, Clone, Default)]
struct ValueMap {
    slots: Vec<Slot>,
    len: usize,
    /// Values are placed by a scattering hash rather than by their rank on the grid.
    scatter: bool,
    /// The greatest common divisor of the values (0: none but 0 yet), as `odd << shift`.
    quantum: u64,
    shift: u32,
    /// The inverse of `quantum >> shift` modulo 2^64.
    inverse: u64,
    /// The weight of the value [`ValueMap::EMPTY`] itself, which cannot live in a slot.
    empty_value: Option<u128>,
    /// A new value probed past [`ValueMap::LONG_PROBE`] even scattered: values chosen to
    /// collide (a hostile file). The tally gives up exact counting rather than probe on.
    hopeless: bool,
}

/// One value and its weight (as two words: 24 bytes rather than 32 with a u128's alignment).
#[derive(Debug, Clone, Copy)]
struct Slot {
    value: i64,
    low: u64,
    high: u64,
}

impl Slot {
    const FREE: Slot = Slot {
        value: ValueMap::EMPTY,
        low: 0,
        high: 0,
    };

    #[inline]
    fn weight(&self) -> u128 {
        (u128::from(self.high) << 64) | u128::from(self.low)
    }

    #[inline]
    fn set_weight(&mut self, weight: u128) {
        self.low = weight as u64;
        self.high = (weight >> 64) as u64;
    }
}

impl ValueMap {
    const EMPTY: i64 = i64::MIN;
    const LONG_PROBE: usize = 1024;
    /// The table a map starts with.
    const FIRST_SLOTS: usize = 16;
    /// Values a map holds when a tally hands it an emptied larger table: the most its first
    /// table holds before it grows (at half full).
    const HAND_OVER: usize = Self::FIRST_SLOTS / 2;

    /// Adds `weight` to `value`; true when the value is new.
    ///
    /// The usual case, a value already held in the slot its probe starts at (values on the
    /// grid sit there), is inlined into the caller's loop; the rest is [`ValueMap::add_probing`].
    #[inline(always)]
    fn add(&mut self, value: i64, weight: u128) -> bool {
        let at = self.slot_of(value) & self.slots.len().wrapping_sub(1);
        if let Some(slot) = self.slots.get_mut(at)
            && slot.value == value
            && value != Self::EMPTY
        {
            let sum = slot.weight() + weight;
            slot.set_weight(sum);
            return false;
        }
        self.add_probing(value, weight)
    }

    /// [`ValueMap::add`] past its first probe: a value elsewhere in the table, a new value,
    /// [`ValueMap::EMPTY`] itself, or the first value of an empty map.
    #[inline(never)]
    fn add_probing(&mut self, value: i64, weight: u128) -> bool {
        if value == Self::EMPTY {
            let new = self.empty_value.is_none();
            *self.empty_value.get_or_insert(0) += weight;
            return new;
        }
        if self.slots.is_empty() {
            self.inverse = 1;
            self.rebuild(Self::FIRST_SLOTS, false);
        }
        let mask = self.slots.len() - 1;
        let mut at = self.slot_of(value) & mask;
        let mut probes = 0;
        loop {
            let slot = &mut self.slots[at];
            if slot.value == value {
                let sum = slot.weight() + weight;
                slot.set_weight(sum);
                return false;
            }
            if slot.value == Self::EMPTY {
                break;
            }
            at = (at + 1) & mask;
            probes += 1;
        }
        // A new value.
        if !self.scatter && !self.on_grid(value) {
            self.widen_grid(value);
            return self.add_probing(value, weight);
        }
        let slot = &mut self.slots[at];
        slot.value = value;
        slot.set_weight(weight);
        self.len += 1;
        if 2 * self.len > self.slots.len() {
            self.rebuild(2 * self.slots.len(), self.scatter);
        } else if probes > Self::LONG_PROBE {
            if self.scatter {
                self.hopeless = true;
            } else {
                self.rebuild(self.slots.len(), true);
            }
        }
        true
    }

    /// Distinct values held.
    fn distinct(&self) -> usize {
        self.len + usize::from(self.empty_value.is_some())
    }

    /// True when values collide even scattered (see the field).
    fn hopeless(&self) -> bool {
        self.hopeless
    }

    /// Where `value`'s probe starts (before the mask).
    #[inline]
    fn slot_of(&self, value: i64) -> usize {
        if self.scatter {
            // Fibonacci hashing: the top bits of the product spread values that differ in
            // any bit.
            ((value as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize
        } else {
            // value / quantum, exact for a value on the grid.
            ((value as u64) >> self.shift).wrapping_mul(self.inverse) as usize
        }
    }

    fn on_grid(&self, value: i64) -> bool {
        match self.quantum {
            0 => value == 0,
            quantum => value.unsigned_abs().is_multiple_of(quantum),
        }
    }

    /// Makes the grid fine enough for `value` too, and places every value again.
    #[cold]
    fn widen_grid(&mut self, value: i64) {
        let (mut a, mut b) = (self.quantum, value.unsigned_abs());
        while b != 0 {
            (a, b) = (b, a % b);
        }
        self.quantum = a;
        self.shift = a.trailing_zeros();
        let odd = a >> self.shift;
        // Newton's iteration doubles the correct low bits each step: 3 -> 6 -> ... -> 96.
        let mut inverse = odd;
        for _ in 0..5 {
            inverse = inverse.wrapping_mul(2u64.wrapping_sub(odd.wrapping_mul(inverse)));
        }
        self.inverse = inverse;
        self.rebuild(self.slots.len(), false);
    }

    /// Moves every value into a table of `slots` slots, placed on the grid or scattered.
    /// When values sit this far from their first slot on average (over the whole table, at a
    /// rebuild), they crowd on the grid: scatter them.
    const CROWDED: usize = 4;

    #[cold]
    fn rebuild(&mut self, slots: usize, scatter: bool) {
        let old = std::mem::replace(&mut self.slots, vec![Slot::FREE; slots]);
        self.scatter = scatter;
        let mask = slots - 1;
        let mut displaced = 0;
        for slot in old.iter().filter(|s| s.value != Self::EMPTY) {
            let mut at = self.slot_of(slot.value) & mask;
            while self.slots[at].value != Self::EMPTY {
                at = (at + 1) & mask;
                displaced += 1;
            }
            self.slots[at] = *slot;
        }
        if !scatter && displaced > Self::CROWDED * self.len + 64 {
            self.rebuild(slots, true);
        }
    }

    /// Slots of the table (its memory, 24 bytes each).
    fn slots(&self) -> usize {
        self.slots.len()
    }

    /// Takes the values of `small` (with its grid) into this emptied map (see
    /// [`ValueMap::take_entries`]), whose table is larger.
    fn adopt(&mut self, small: ValueMap) {
        (self.scatter, self.quantum, self.shift, self.inverse) =
            (small.scatter, small.quantum, small.shift, small.inverse);
        self.hopeless = small.hopeless;
        for (value, weight) in small.entries() {
            self.add_probing(value, weight);
        }
    }

    /// Every `(value, weight)`, in no particular order, leaving the map as a new one (no
    /// grid, not scattered: placing another group's values by this one's hash could crowd
    /// them) but with its table, ready for as many values.
    fn take_entries(&mut self) -> Vec<(i64, u128)> {
        let entries = self.to_entries();
        self.slots.fill(Slot::FREE);
        self.empty_value = None;
        self.len = 0;
        self.hopeless = false;
        (self.scatter, self.quantum, self.shift, self.inverse) = (false, 0, 0, 1);
        entries
    }

    /// Every `(value, weight)`, in no particular order, the map left as it is.
    fn to_entries(&self) -> Vec<(i64, u128)> {
        let mut entries: Vec<(i64, u128)> = self
            .slots
            .iter()
            .filter(|s| s.value != Self::EMPTY)
            .map(|s| (s.value, s.weight()))
            .collect();
        entries.extend(self.empty_value.map(|w| (Self::EMPTY, w)));
        entries
    }

    /// Every `(value, weight)`, in no particular order.
    fn entries(self) -> Vec<(i64, u128)> {
        self.to_entries()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator for the brute-force comparison.
    /// The fast conversion of a weight equals the plain one, at and around its bounds.
    #[test]
    fn weights_convert_exactly() {
        let mut state = 3;
        let weights = [
            0,
            1,
            WEIGHT_ONE,
            (1 << 53) - 1,
            1 << 53,
            (1 << 53) + 1,
            u128::MAX,
        ]
        .into_iter()
        .chain((0..10_000).map(|_| u128::from(lcg(&mut state)) >> (lcg(&mut state) % 64)));
        for weight in weights {
            assert_eq!(
                weight_f64(weight).to_bits(),
                (weight as f64).to_bits(),
                "{weight}"
            );
        }
    }

    /// Groups found by packed keys (the cache, its collisions and evictions: more keys than
    /// slots, windows in the high word, the table of the newest window's keys) hold what
    /// groups found by key comparison hold, in the tally (exact and binned) and in pass 2's
    /// selection.
    #[test]
    fn packed_keys_find_the_same_groups() {
        for budget in [DISTINCT_BUDGET, 50] {
            let quantiles = vec![
                Quantile::parse("50").unwrap(),
                Quantile::parse("99").unwrap(),
            ];
            let (mut by_key, mut by_packed) = (
                Tally::with_budget(quantiles.clone(), budget),
                Tally::with_budget(quantiles.clone(), budget),
            );
            let mut state = 7;
            let mut records: Vec<((u64, u16), i64)> = (0..60_000)
                .map(|_| {
                    // A quarter in window 0: packed below 2^16, the directly indexed keys,
                    // up to the last of them (kind u16::MAX).
                    let window = match lcg(&mut state) % 4 {
                        0 => 0,
                        _ => lcg(&mut state) % 700 * 1_000_000_000,
                    };
                    let kind = match lcg(&mut state) % 3 {
                        0 => u16::MAX - (lcg(&mut state) % 3) as u16,
                        _ => (lcg(&mut state) % 5) as u16,
                    };
                    ((window, kind), (lcg(&mut state) % 300) as i64)
                })
                .collect();
            // Then windows in time order, as a pass reads an archive (the window table
            // follows the newest), a tenth of the records one to three windows late, and
            // kinds past the window table's reach.
            records.extend((0..40_000u64).map(|i| {
                let late = if lcg(&mut state).is_multiple_of(10) {
                    lcg(&mut state) % 4
                } else {
                    0
                };
                let window = (1_000 + i / 97).saturating_sub(late) * 1_000_000;
                let kind = (lcg(&mut state) % 7) as u16 * 9_000;
                ((window, kind), (lcg(&mut state) % 300) as i64)
            }));
            let pack = |(window, kind): (u64, u16)| (u128::from(window) << 64) | u128::from(kind);
            for (key, value) in &records {
                by_key.add(*key, *value, WEIGHT_ONE);
                by_packed.add_packed(pack(*key), || *key, *value, WEIGHT_ONE);
            }
            assert!(by_key.len() > PACKED_SLOTS);
            let (mut by_key, mut by_packed) = (by_key.finish(), by_packed.finish());
            assert_eq!(by_key.is_complete(), budget == DISTINCT_BUDGET);
            if !by_key.is_complete() {
                for (key, value) in &records {
                    by_key.add(key, *value, WEIGHT_ONE);
                    by_packed.add_packed(pack(*key), || *key, *value, WEIGHT_ONE);
                }
            }
            let (by_key, by_packed) = (by_key.finish(), by_packed.finish());
            assert_eq!(by_key.len(), by_packed.len());
            for (a, b) in by_key.iter().zip(&by_packed) {
                assert_eq!(
                    (a.0, &a.1, a.2.records, a.2.weight),
                    (b.0, &b.1, b.2.records, b.2.weight)
                );
            }
        }
    }

    fn lcg(state: &mut u64) -> u64 {
        *state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        *state >> 11
    }

    /// The weight at or below each percentile value, from an exact tally, equals a count over
    /// the records (per group, tallies merged); a tally that fell back knows none.
    #[test]
    fn weights_at_or_below_the_values_equal_a_count() {
        let quantiles: Vec<Quantile> = ["0", "25", "50", "99", "99.9", "100"]
            .iter()
            .map(|q| Quantile::parse(q).unwrap())
            .collect();
        let mut state = 7;
        let records: Vec<(u8, i64, u128)> = (0..5_000)
            .map(|_| {
                let group = (lcg(&mut state) % 3) as u8;
                let value = (lcg(&mut state) % 400) as i64 - 50;
                (
                    group,
                    value,
                    (lcg(&mut state) % 5 + 1) as u128 * WEIGHT_ONE / 2,
                )
            })
            .collect();
        for budget in [DISTINCT_BUDGET, 100] {
            let mut left = Tally::with_budget(quantiles.clone(), budget);
            let mut right = Tally::with_budget(quantiles.clone(), budget);
            for (i, (group, value, weight)) in records.iter().enumerate() {
                let tally = if i % 2 == 0 { &mut left } else { &mut right };
                tally.add(*group, *value, *weight);
            }
            left.merge(right);
            let selection = left.finish();
            let Some(counts) = selection.at_or_below() else {
                assert_eq!(budget, 100, "an exact tally knows the counts");
                continue;
            };
            let rows = selection.finish();
            assert_eq!(rows.len(), counts.len());
            for ((group, values, _), counts) in rows.iter().zip(counts) {
                for (value, count) in values.iter().zip(counts) {
                    let expected: u128 = records
                        .iter()
                        .filter(|(g, v, _)| g == group && v <= value)
                        .map(|r| r.2)
                        .sum();
                    assert_eq!(count, expected, "group {group} value {value}");
                }
            }
        }
    }

    fn brute_force(records: &[(i64, u128)], quantile: &Quantile) -> i64 {
        let mut sorted = records.to_vec();
        sorted.sort();
        let total: u128 = sorted.iter().map(|r| r.1).sum();
        let target = quantile.target(total);
        let mut cumulative = 0;
        for (value, weight) in sorted {
            cumulative += weight;
            if cumulative >= target {
                return value;
            }
        }
        unreachable!()
    }

    #[test]
    fn matches_brute_force_on_random_weighted_data() {
        let quantiles: Vec<Quantile> = ["0", "1", "25", "50", "90", "99", "99.9", "99.99", "100"]
            .iter()
            .map(|q| Quantile::parse(q).unwrap())
            .collect();
        let mut state = 42u64;
        for round in 0..40 {
            let n = 1 + (lcg(&mut state) % 5000) as usize;
            let spread = [10, 3000, 1 << 20, 1 << 40][round % 4];
            let records: Vec<(i64, u128)> = (0..n)
                .map(|_| {
                    let value = (lcg(&mut state) % spread) as i64 - (spread / 10) as i64;
                    let p = [1.0, 0.5, 0.1, 0.01, 0.3][(lcg(&mut state) % 5) as usize];
                    (value, weight_of(p, false))
                })
                .collect();
            let mut pass1 = Histograms::new(quantiles.clone());
            for (value, weight) in &records {
                pass1.add((), *value, *weight);
            }
            let mut pass2 = pass1.plan();
            for (value, weight) in &records {
                pass2.add(&(), *value, *weight);
            }
            let rows = pass2.finish();
            let (_, values, summary) = &rows[0];
            for (quantile, value) in quantiles.iter().zip(values) {
                assert_eq!(
                    *value,
                    brute_force(&records, quantile),
                    "round {round}, p{}",
                    quantile.label()
                );
            }
            assert_eq!(summary.records, n as u64);
            assert_eq!(summary.min, records.iter().map(|r| r.0).min().unwrap());
            assert_eq!(summary.max, records.iter().map(|r| r.0).max().unwrap());
        }
    }

    /// Many groups, records interleaved among them (more groups than are kept at hand), each
    /// group's percentiles equal to the brute force over that group alone.
    #[test]
    fn many_interleaved_groups_match_brute_force() {
        let quantiles: Vec<Quantile> = ["0", "50", "99", "99.9", "100"]
            .iter()
            .map(|q| Quantile::parse(q).unwrap())
            .collect();
        let mut state = 7u64;
        let records: Vec<(u16, i64, u128)> = (0..60_000)
            .map(|i| {
                let key = if i % 7 == 0 {
                    (lcg(&mut state) % 40) as u16
                } else {
                    (i % 5) as u16
                };
                let value = (lcg(&mut state) % (1 << 30)) as i64 - (1 << 20);
                let p = [1.0, 0.5, 0.1][(lcg(&mut state) % 3) as usize];
                (key, value, weight_of(p, false))
            })
            .collect();
        let mut pass1 = Histograms::new(quantiles.clone());
        for (key, value, weight) in &records {
            pass1.add(*key, *value, *weight);
        }
        let mut pass2 = pass1.plan();
        for (key, value, weight) in &records {
            pass2.add(key, *value, *weight);
        }
        let rows = pass2.finish();
        let keys: std::collections::BTreeSet<u16> = records.iter().map(|r| r.0).collect();
        assert_eq!(rows.len(), keys.len());
        for (key, values, summary) in rows {
            let group: Vec<(i64, u128)> = records
                .iter()
                .filter(|r| r.0 == key)
                .map(|r| (r.1, r.2))
                .collect();
            assert_eq!(summary.records, group.len() as u64);
            for (quantile, value) in quantiles.iter().zip(values) {
                assert_eq!(
                    value,
                    brute_force(&group, quantile),
                    "group {key}, p{}",
                    quantile.label()
                );
            }
        }
    }

    /// The one-pass tally, exact (a budget it never reaches) and fallen back to bins and a
    /// second pass (a budget passed mid-stream, or only in the merge), its records split
    /// among several tallies merged in any order: every percentile equals the brute force.
    #[test]
    fn tally_one_pass_and_fallback_match_brute_force() {
        let quantiles: Vec<Quantile> = ["0", "1", "50", "90", "99", "99.9", "100"]
            .iter()
            .map(|q| Quantile::parse(q).unwrap())
            .collect();
        let mut state = 99u64;
        for round in 0..24 {
            let n = 1 + (lcg(&mut state) % 20_000) as usize;
            let spread = [10u64, 3000, 1 << 20, 1 << 40][round % 4];
            let records: Vec<(u8, i64, u128)> = (0..n)
                .map(|i| {
                    let value = match i % 50 {
                        0 => i64::MIN,
                        1 => i64::MAX,
                        _ => (lcg(&mut state) % spread) as i64 - (spread / 10) as i64,
                    };
                    let p = [1.0, 0.5, 0.1, 0.01, 0.3][(lcg(&mut state) % 5) as usize];
                    ((lcg(&mut state) % 3) as u8, value, weight_of(p, false))
                })
                .collect();
            let distinct: std::collections::BTreeSet<(u8, i64)> =
                records.iter().map(|r| (r.0, r.1)).collect();
            // Budgets: never reached, reached by one part only, reached by the merge only.
            let parts = 1 + round % 3;
            for budget in [usize::MAX, distinct.len() / 3, distinct.len() - 1] {
                let mut tallies: Vec<Tally<u8>> = (0..parts)
                    .map(|_| Tally::with_budget(quantiles.clone(), budget))
                    .collect();
                for (i, (key, value, weight)) in records.iter().enumerate() {
                    tallies[i * parts / n].add(*key, *value, *weight);
                }
                let mut tally = tallies.remove(0);
                for other in tallies.into_iter().rev() {
                    tally.merge(other);
                }
                let exact = budget >= distinct.len();
                assert_eq!(tally.is_exact(), exact, "round {round} budget {budget}");
                let mut selection = tally.finish();
                assert_eq!(selection.is_complete(), exact);
                if !exact {
                    for (key, value, weight) in &records {
                        selection.add(key, *value, *weight);
                    }
                }
                for (key, values, summary) in selection.finish() {
                    let group: Vec<(i64, u128)> = records
                        .iter()
                        .filter(|r| r.0 == key)
                        .map(|r| (r.1, r.2))
                        .collect();
                    assert_eq!(summary.records, group.len() as u64);
                    assert_eq!(summary.weight, group.iter().map(|r| r.1).sum::<u128>());
                    assert_eq!(summary.min, group.iter().map(|r| r.0).min().unwrap());
                    assert_eq!(summary.max, group.iter().map(|r| r.0).max().unwrap());
                    for (quantile, value) in quantiles.iter().zip(values) {
                        assert_eq!(
                            value,
                            brute_force(&group, quantile),
                            "round {round}, budget {budget}, group {key}, p{}",
                            quantile.label()
                        );
                    }
                }
            }
        }
    }

    /// Values chosen so that the scattering hash sends them all to one slot (a hostile file)
    /// make the tally give up exact counting after a bounded probe, not probe quadratically;
    /// the two-pass answer stays exact.
    #[test]
    fn values_built_to_collide_end_exact_counting_and_stay_exact() {
        let quantiles: Vec<Quantile> = ["50", "99", "100"]
            .iter()
            .map(|q| Quantile::parse(q).unwrap())
            .collect();
        // The inverse of the Fibonacci multiplier modulo 2^64 (Newton's iteration).
        let c: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut inverse = c;
        for _ in 0..6 {
            inverse = inverse.wrapping_mul(2u64.wrapping_sub(c.wrapping_mul(inverse)));
        }
        assert_eq!(c.wrapping_mul(inverse), 1);
        // First values that crowd on their grid (j << 20 | 1: the same slot in any table
        // below 2^20 slots), which switches the map to scattering for good; then values whose
        // product with c is i << 48: bits 32..48 zero, the same first slot when scattered.
        let records: Vec<(i64, u128)> = (1..3_000u64)
            .map(|j| ((j << 20) | 1) as i64)
            .chain((1..5_000u64).map(|i| (i << 48).wrapping_mul(inverse) as i64))
            .map(|value| (value, WEIGHT_ONE))
            .collect();
        let started = std::time::Instant::now();
        let mut tally = Tally::new(quantiles.clone());
        for (value, weight) in &records {
            tally.add((), *value, *weight);
        }
        assert!(!tally.is_exact(), "a hopeless map must end exact counting");
        let mut selection = tally.finish();
        for (value, weight) in &records {
            selection.add(&(), *value, *weight);
        }
        let (_, values, _) = selection.finish().remove(0);
        for (quantile, value) in quantiles.iter().zip(values) {
            assert_eq!(value, brute_force(&records, quantile));
        }
        // Not a timing test: a generous bound that only quadratic probing (12.5M probes
        // per thousand values here) could break.
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }

    /// Pass 2 split among clones of one plan and merged equals pass 2 over everything.
    #[test]
    fn histograms_and_selections_merge() {
        let quantiles: Vec<Quantile> = ["50", "99", "100"]
            .iter()
            .map(|q| Quantile::parse(q).unwrap())
            .collect();
        let mut state = 5u64;
        let records: Vec<(i64, u128)> = (0..10_000)
            .map(|_| ((lcg(&mut state) % 100_000) as i64, weight_of(0.5, false)))
            .collect();
        let (left, right) = records.split_at(3_000);
        let mut pass1 = Histograms::new(quantiles.clone());
        let mut other = Histograms::new(quantiles.clone());
        left.iter().for_each(|(v, w)| pass1.add((), *v, *w));
        right.iter().for_each(|(v, w)| other.add((), *v, *w));
        pass1.merge(other);
        let plan = pass1.plan();
        assert!(!plan.is_complete());
        let (mut a, mut b) = (plan.clone(), plan);
        left.iter().for_each(|(v, w)| a.add(&(), *v, *w));
        right.iter().for_each(|(v, w)| b.add(&(), *v, *w));
        a.merge(b);
        let rows = a.finish();
        for (quantile, value) in quantiles.iter().zip(&rows[0].1) {
            assert_eq!(*value, brute_force(&records, quantile));
        }
    }

    /// The value map against a BTreeMap: µs latencies in ns (grid 1000), consecutive values,
    /// negative ones, values that crowd on their grid (switches to scattering), and the EMPTY
    /// marker itself.
    #[test]
    fn value_map_matches_a_btree_map() {
        let mut state = 3u64;
        for (case, make) in [
            // µs latencies in ns, a long tail: what rings store.
            |s: &mut u64| {
                let uniform = (lcg(s) >> 1) as f64 / (1u64 << 52) as f64;
                (40.0 * (1.0 + 3.0 * -(1.0 - uniform).ln())) as i64 * 1_000
            },
            |s: &mut u64| 1_000_000 + (lcg(s) % 20_000) as i64,
            |s: &mut u64| (lcg(s) % 2_000) as i64 - 1_000,
            // Multiples of 2^20 and one odd value: the grid is 1, the values crowd.
            |s: &mut u64| {
                (lcg(s) % 5_000) as i64 * (1 << 20) + i64::from(lcg(s).is_multiple_of(999))
            },
            |s: &mut u64| [i64::MIN, i64::MAX, 0, -1][(lcg(s) % 4) as usize],
        ]
        .into_iter()
        .enumerate()
        {
            let mut map = ValueMap::default();
            let mut model = BTreeMap::new();
            for _ in 0..50_000 {
                let value = make(&mut state);
                let weight = u128::from(lcg(&mut state) % 7 + 1);
                let new = !model.contains_key(&value);
                *model.entry(value).or_insert(0) += weight;
                assert_eq!(map.add(value, weight), new, "case {case}");
            }
            assert_eq!(map.scatter, case == 3, "case {case}");
            let mut entries = map.entries();
            entries.sort_unstable();
            assert_eq!(
                entries,
                model.into_iter().collect::<Vec<_>>(),
                "case {case}"
            );
        }
    }

    #[test]
    fn quantile_parsing() {
        assert_eq!(Quantile::parse("99.99").unwrap().target(1_000_000), 999_900);
        assert_eq!(Quantile::parse("0").unwrap().target(10), 1);
        assert!(Quantile::parse("-1").is_err());
        assert!(Quantile::parse("abc").is_err());
        assert!(Quantile::parse("50.").is_ok());
    }

    /// Tables emptied by closing serve later windows whose values sit on other grids (a
    /// multiple of 1000, odd values, values crowding one slot, the value `EMPTY` itself)
    /// and in other numbers: every window's answer equals a fresh tally's, and the tables
    /// kept stay within their bound.
    #[test]
    fn tables_reused_across_windows_keep_every_answer_exact() {
        let quantiles = vec![
            Quantile::parse("0").unwrap(),
            Quantile::parse("50").unwrap(),
            Quantile::parse("99.9").unwrap(),
            Quantile::parse("100").unwrap(),
        ];
        let mut closing = Tally::with_budget(quantiles.clone(), 5_000);
        let mut state = 7u64;
        for window in 0..40u64 {
            let mut fresh = Tally::new(quantiles.clone());
            let count = 10 + (window * 997) % 3_000;
            for i in 0..count {
                let r = lcg(&mut state);
                let value = match window % 5 {
                    0 => (r % 2_000) as i64 * 1_000,
                    1 => (r % 5_000) as i64 * 2 + 1,
                    2 => ((r % 300) as i64) << 40,
                    3 if i % 97 == 0 => i64::MIN,
                    _ => -((r % 100_000) as i64),
                };
                let weight = WEIGHT_ONE * u128::from(1 + r % 3);
                closing.add((window, i % 2), value, weight);
                fresh.add((window, i % 2), value, weight);
            }
            closing.close(|(w, _)| *w == window);
            let pooled: usize = closing.spare.iter().map(ValueMap::slots).sum();
            assert_eq!(pooled, closing.spare_slots);
            assert!(pooled <= 4 * 5_000);
            let rows = closing.clone().finish().finish();
            let expected = fresh.finish().finish();
            assert_eq!(
                rows[rows.len() - expected.len()..],
                expected[..],
                "window {window}"
            );
        }
        assert!(closing.is_exact() && !closing.added_after_close());
        assert!(!closing.spare.is_empty());
    }

    /// Groups handed on as they close, and the open ones at the end, absorbed into a coarser
    /// tally (windows into kinds) give the coarser tally every record would give: the same
    /// percentiles, records and weights, whether the coarser one stays exact or is binned.
    #[test]
    fn closed_groups_absorbed_equal_every_record_added() {
        let quantiles = vec![
            Quantile::parse("1").unwrap(),
            Quantile::parse("50").unwrap(),
            Quantile::parse("99.9").unwrap(),
        ];
        for budget in [DISTINCT_BUDGET, 300] {
            let mut windows = Tally::new(quantiles.clone());
            let mut absorbed = Tally::with_budget(quantiles.clone(), budget);
            let mut direct = Tally::with_budget(quantiles.clone(), budget);
            let mut state = 3u64;
            for window in 0..50u64 {
                for _ in 0..400 {
                    let kind = lcg(&mut state) % 3;
                    let value = (lcg(&mut state) % 500) as i64 * 1_000;
                    let weight = WEIGHT_ONE * u128::from(1 + kind);
                    windows.add((window, kind), value, weight);
                    direct.add(kind, value, weight);
                }
                windows.close_with(
                    |(w, _)| *w + 2 <= window,
                    |(_, kind), records, values| absorbed.absorb(*kind, records, values),
                );
            }
            windows.for_each_open(|(_, kind), records, values| {
                absorbed.absorb(*kind, records, values)
            });
            assert!(windows.is_exact());
            assert_eq!(absorbed.is_exact(), budget == DISTINCT_BUDGET);
            let (mut a, mut d) = (absorbed.finish(), direct.finish());
            assert_eq!(a.is_complete(), d.is_complete());
            if !a.is_complete() {
                // Each record is counted once, in both, by the bins' pass.
                let mut state = 3u64;
                for _window in 0..50u64 {
                    for _ in 0..400 {
                        let kind = lcg(&mut state) % 3;
                        let value = (lcg(&mut state) % 500) as i64 * 1_000;
                        let weight = WEIGHT_ONE * u128::from(1 + kind);
                        a.add(&kind, value, weight);
                        d.add(&kind, value, weight);
                    }
                }
            }
            let (a, d) = (a.finish(), d.finish());
            assert_eq!(a.len(), 3);
            for (x, y) in a.iter().zip(&d) {
                assert_eq!(
                    (x.0, &x.1, x.2.records, x.2.weight),
                    (y.0, &y.1, y.2.records, y.2.weight)
                );
            }
        }
    }

    /// A table that scattered its values (they crowded on their grid) is handed on as a new
    /// table: values of a later window on a coarse grid stay exact, as in a fresh tally (kept
    /// scattered, they crowded into one run of slots until counting gave up).
    #[test]
    fn a_reused_table_forgets_how_its_last_values_were_placed() {
        let quantiles = vec![Quantile::parse("50").unwrap()];
        let mut closing = Tally::with_budget(quantiles.clone(), 100_000);
        let mut fresh = Tally::with_budget(quantiles, 100_000);
        closing.add(0u64, 1, WEIGHT_ONE);
        for k in 1..3_000i64 {
            closing.add(0, k << 16, WEIGHT_ONE);
        }
        closing.close(|w| *w == 0);
        assert_eq!(closing.spare.len(), 1);
        for m in 1..3_000i64 {
            closing.add(1, m << 48, WEIGHT_ONE);
            fresh.add(1, m << 48, WEIGHT_ONE);
        }
        assert!(fresh.is_exact());
        assert!(closing.is_exact());
        let rows = closing.finish().finish();
        assert_eq!(rows[1..], fresh.finish().finish()[..]);
    }

    /// A large table handed to a group of a few values is dropped when that group closes:
    /// many small windows after a wide one keep only small tables, and closing stays cheap;
    /// a group of fewer values than a first table holds takes none.
    #[test]
    fn a_large_table_is_not_handed_on_and_on() {
        let mut closing = Tally::with_budget(vec![Quantile::parse("50").unwrap()], 200_000);
        for v in 0..50_000i64 {
            closing.add(0u64, v, WEIGHT_ONE);
        }
        closing.close(|w| *w == 0);
        let large = closing.spare_slots;
        assert!(large >= 100_000);
        closing.add(1, 7, WEIGHT_ONE);
        closing.close(|w| *w == 1);
        assert_eq!(
            closing.spare_slots, large,
            "a group of one value took the table"
        );
        for window in 2..100u64 {
            for v in 0..20 {
                closing.add(window, v, WEIGHT_ONE);
            }
            closing.close(|w| *w == window);
        }
        assert!(closing.spare_slots < large / 100, "{}", closing.spare_slots);
    }

    /// Closing looks only at the groups still open (a day of windows must not make it
    /// quadratic), and what it finishes equals a tally that never closes.
    #[test]
    fn closing_keeps_only_the_open_groups_in_view() {
        let quantiles = vec![
            Quantile::parse("50").unwrap(),
            Quantile::parse("99").unwrap(),
        ];
        let mut closing = Tally::with_budget(quantiles.clone(), 100);
        let mut whole = Tally::new(quantiles);
        for window in 0..2_000u64 {
            for kind in 0..3u64 {
                for v in 0..10i64 {
                    let value = v * 7 + (window % 13) as i64 + kind as i64;
                    closing.add((window, kind), value, WEIGHT_ONE);
                    whole.add((window, kind), value, WEIGHT_ONE);
                }
            }
            closing.close(|(w, _)| *w + 1 < window);
            assert!(
                closing.open.len() <= 6,
                "window {window}: {}",
                closing.open.len()
            );
        }
        assert!(closing.is_exact() && !closing.added_after_close());
        assert_eq!(closing.finish().finish(), whole.finish().finish());
    }
}
