use crate::Error;
use crate::clock::Anchor;
use crate::file;
use crate::handle::{Ring, SingleProducerRing};
use crate::policy::{Decision, Flush, KindSettings, Overflow, Policy};
use crate::sampler::{Classes, mix_seed_base};
use crate::shared::{Shared, SharedParts};
use ringlat_format::{
    ANCHOR_MONO_NS, ANCHOR_UNIX_NS, BREAKER_HIGH_WATER, BREAKER_LOW_WATER, CLASS_TABLE,
    CREATION_FLAGS, DECISION, DECISION_RANDOM, DECISION_TRACE_ID, DEGRADE_FACTOR, DEGRADE_FLOOR,
    DeltaUnit, FLAG_MULTI_PRODUCER, FLUSH_ASYNC, FLUSH_EVERY, FLUSH_INTERVAL_NS, FLUSH_MODE,
    Geometry, HEADER_SIZE, KEEP_IF_SLOW_NS, KIND_NAME_MAX, KindField, MAX_SKEW_NS, OVERFLOW_BREAK,
    OVERFLOW_OVERWRITE, OVERFLOW_POLICY, TICK_NS, VERSION, VERSION_FIELD, WRITER_PID,
};
use ringlat_ring::{RegionStorage, Storage};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Settings for a new ring file; [`Builder::create`] makes it.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// let ring = ringlat::Ring::builder(dir.path().join("x.ring"))
///     .capacity(1024)
///     .kind(0, "market")
///     .create()
///     .unwrap();
/// assert_eq!(ring.capacity(), 1024);
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    path: PathBuf,
    capacity: u64,
    kinds: Vec<(u8, String)>,
    unit: DeltaUnit,
    replace: bool,
    start_position: u32,
    settings: Vec<(u8, KindSetting)>,
    policy: Policy,
    seed: Option<u64>,
    histograms: bool,
}

/// One per-kind setting, applied in order at `create`.
#[derive(Debug, Clone, Copy)]
enum KindSetting {
    Rate(f64),
    DegradeAbove(u64),
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

impl Builder {
    pub(crate) fn new(path: impl AsRef<Path>) -> Self {
        Builder {
            path: path.as_ref().to_path_buf(),
            capacity: 1 << 16,
            kinds: Vec::new(),
            unit: DeltaUnit::Micros,
            replace: false,
            start_position: 0,
            settings: Vec::new(),
            policy: Policy::default(),
            seed: None,
            histograms: true,
        }
    }

    /// The trading-gateway preset: kinds 0 `market` (100%), 1 `limit` (10%, degraded above
    /// 2000 calls/s) and 2 `cancel` (50%, degraded above 1000 calls/s); calls slower than
    /// 1 ms are always kept. Every part can be overridden by later calls.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let ring = ringlat::Ring::builder(dir.path().join("gw.ring"))
    ///     .gateway_preset()
    ///     .rate(1, 0.2) // more limit orders than the preset keeps
    ///     .create().unwrap();
    /// # drop(ring);
    /// ```
    pub fn gateway_preset(self) -> Self {
        self.kind(0, "market")
            .kind(1, "limit")
            .rate(1, 0.1)
            .degrade_above(1, 2000)
            .kind(2, "cancel")
            .rate(2, 0.5)
            .degrade_above(2, 1000)
            .keep_if_slower_than(Duration::from_millis(1))
    }

    /// The base sampling rate of `kind`, in (0, 1] (default 1: keep every call).
    pub fn rate(mut self, kind: u8, rate: f64) -> Self {
        self.settings.push((kind, KindSetting::Rate(rate)));
        self
    }

    /// Degrade `kind`'s rate while it is called more than `calls_per_second` times a second:
    /// the background thread measures the load each rate window and multiplies the rate by
    /// the degradation factor once per doubling of the load above the threshold (never below
    /// the floor); the base rate returns when the load falls back.
    pub fn degrade_above(mut self, kind: u8, calls_per_second: u64) -> Self {
        self.settings
            .push((kind, KindSetting::DegradeAbove(calls_per_second)));
        self
    }

    /// The degradation factor (default 0.5: halve) and floor (default 0.001).
    pub fn degradation(mut self, factor: f64, floor: f64) -> Self {
        self.policy.degrade_factor = factor;
        self.policy.degrade_floor = floor;
        self
    }

    /// Calls at least this slow are always kept, whatever their kind's rate (inclusion
    /// probability 1): tail-based sampling keeps the requests an investigation needs.
    pub fn keep_if_slower_than(mut self, latency: Duration) -> Self {
        self.policy.keep_if_slower = Some(latency);
        self
    }

    /// Where the keep/drop decision comes from (default [`Decision::Random`]).
    pub fn decision(mut self, decision: Decision) -> Self {
        self.policy.decision = decision;
        self
    }

    /// What happens when the ring is nearly full (default [`Overflow::Break`]).
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.policy.overflow = overflow;
        self
    }

    /// The breaker trips when free slots fall below `low` and closes when they rise above
    /// `high` (defaults capacity/16 and capacity/2).
    pub fn breaker_water_marks(mut self, low: u32, high: u32) -> Self {
        self.policy.water_marks = Some((low, high));
        self
    }

    /// How the file is flushed (default [`Flush::Async`]).
    pub fn flush(mut self, flush: Flush) -> Self {
        self.policy.flush = flush;
        self
    }

    /// The background thread's period: heartbeat, counters, breaker (default 10 ms).
    pub fn tick(mut self, tick: Duration) -> Self {
        self.policy.tick = tick;
        self
    }

    /// The window over which call rates are measured for degradation (default 1 s).
    pub fn rate_window(mut self, window: Duration) -> Self {
        self.policy.rate_window = window;
        self
    }

    /// How far from now a `record_at` timestamp may be (default 50 ms).
    pub fn max_skew(mut self, skew: Duration) -> Self {
        self.policy.max_skew = skew;
        self
    }

    /// Mixes `seed` into the seed of the per-thread generators of threads that have not drawn
    /// yet ([`crate::seed_thread_rng`] seeds one thread exactly).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Population histograms (on by default): every call that is not rejected adds its
    /// latency to its kind's histogram in the file, whatever sampling or the breaker keep, so
    /// readers know the percentiles of every call. Off saves that work on every `record`.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let ring = ringlat::Ring::builder(dir.path().join("r.ring"))
    ///     .kind(0, "op")
    ///     .population_histograms(false)
    ///     .create()
    ///     .unwrap();
    /// # drop(ring);
    /// ```
    pub fn population_histograms(mut self, on: bool) -> Self {
        self.histograms = on;
        self
    }

    /// Number of slots, a power of two between 2 and 2^28 (default 65536).
    pub fn capacity(mut self, capacity: u64) -> Self {
        self.capacity = capacity;
        self
    }

    /// Declares operation kind `id` with a printable name: 1 to 32 bytes of UTF-8, no control
    /// characters, no comma (ringcat lists kinds with commas), unique within the ring. A ring
    /// needs at least one kind. Records of undeclared kinds are rejected and counted.
    pub fn kind(mut self, id: u8, name: &str) -> Self {
        self.kinds.push((id, name.to_owned()));
        self
    }

    /// The unit of the stored latency (default microseconds).
    pub fn delta_unit(mut self, unit: DeltaUnit) -> Self {
        self.unit = unit;
        self
    }

    /// Replace an existing file at the path (refused while a live writer holds it).
    pub fn replace(mut self, replace: bool) -> Self {
        self.replace = replace;
        self
    }

    /// The position head and tail start at (default 0). Tests start just below 2^32 to
    /// exercise the wrap of the 32-bit positions in milliseconds.
    pub fn start_position(mut self, position: u32) -> Self {
        self.start_position = position;
        self
    }

    /// Creates the file and returns the multi-producer handle (`Clone + Send + Sync`).
    pub fn create(self) -> Result<Ring, Error> {
        Ring::from_shared(self.create_shared(true)?)
    }

    /// Creates the file and returns the single-producer handle (`Send`, not `Clone`, not `Sync`).
    pub fn create_single_producer(self) -> Result<SingleProducerRing, Error> {
        SingleProducerRing::from_shared(self.create_shared(false)?)
    }

    /// Per-kind sampling settings, checked.
    fn kind_settings(
        &self,
        names: &[Option<&str>; 256],
    ) -> Result<Vec<Option<KindSettings>>, Error> {
        let mut kinds: Vec<Option<KindSettings>> = names
            .iter()
            .map(|name| name.map(|_| KindSettings::default()))
            .collect();
        for (kind, setting) in &self.settings {
            let Some(Some(entry)) = kinds.get_mut(*kind as usize) else {
                return Err(Error::BadKind {
                    kind: *kind,
                    reason: "sampling set for a kind that is not declared",
                });
            };
            match *setting {
                KindSetting::Rate(rate) if rate > 0.0 && rate <= 1.0 => entry.rate = rate,
                KindSetting::Rate(_) => {
                    return Err(Error::BadKind {
                        kind: *kind,
                        reason: "rate must be in (0, 1]",
                    });
                }
                KindSetting::DegradeAbove(0) => {
                    return Err(Error::BadKind {
                        kind: *kind,
                        reason: "degradation threshold must be above 0 calls/s",
                    });
                }
                KindSetting::DegradeAbove(limit) => entry.degrade_above = Some(limit),
            }
        }
        let policy = &self.policy;
        if !(policy.degrade_factor > 0.0 && policy.degrade_factor < 1.0) {
            return Err(Error::BadSampling {
                reason: format!(
                    "degradation factor {} is not in (0, 1)",
                    policy.degrade_factor
                ),
            });
        }
        if !(policy.degrade_floor > 0.0 && policy.degrade_floor <= 1.0) {
            return Err(Error::BadSampling {
                reason: format!(
                    "degradation floor {} is not in (0, 1]",
                    policy.degrade_floor
                ),
            });
        }
        if policy.tick.is_zero() || policy.rate_window.is_zero() {
            return Err(Error::BadSampling {
                reason: "tick and rate window must be longer than zero".into(),
            });
        }
        if let Flush::Every(interval) = policy.flush
            && interval.is_zero()
        {
            return Err(Error::BadSampling {
                reason: "Flush::Every needs an interval longer than zero".into(),
            });
        }
        Ok(kinds)
    }

    fn checked_kinds(&self) -> Result<[Option<&str>; 256], Error> {
        let mut names = [None; 256];
        for (id, name) in &self.kinds {
            let reason = if name.is_empty() {
                Some("name is empty")
            } else if name.len() > KIND_NAME_MAX {
                Some("name is longer than 32 bytes")
            } else if name.chars().any(char::is_control) {
                // Readers print names to terminals: an escape sequence in a file someone else
                // owns must not reach them.
                Some("name contains a control character")
            } else if name.contains(',') {
                // `ringcat --kind a,b` and `--fail-if 'kind=a,status=2:..'` list kinds with
                // commas: a name containing one could not be selected.
                Some("name contains a comma")
            } else if names[*id as usize].is_some() {
                Some("id declared twice")
            } else if names.iter().flatten().any(|other| *other == name.as_str()) {
                Some("name already used by another kind")
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(Error::BadKind { kind: *id, reason });
            }
            names[*id as usize] = Some(name.as_str());
        }
        if self.kinds.is_empty() {
            return Err(Error::NoKinds);
        }
        Ok(names)
    }

    fn create_shared(self, multi_producer: bool) -> Result<Shared, Error> {
        // The capacity is checked first: its error is the one a bad builder reports.
        let geometry = Geometry::for_capacity(self.capacity)?;
        let names = self.checked_kinds()?;
        let declared = names.iter().flatten().count() as u32;
        let geometry = geometry.with_histograms(if self.histograms { declared } else { 0 });
        let kind_settings = self.kind_settings(&names)?;
        let classes = Classes::build(&kind_settings, &self.policy)?;
        let (low_water, high_water) = self.policy.water_marks_for(geometry.capacity);
        if self.policy.overflow == Overflow::Break
            && (low_water > high_water || high_water >= geometry.capacity)
        {
            return Err(Error::BadSampling {
                reason: format!(
                    "breaker water marks {low_water}/{high_water} need low <= high < capacity {}",
                    geometry.capacity
                ),
            });
        }
        let file::CreatedFile {
            file: created_file,
            mut map,
            pending,
        } = file::create(&self.path, geometry, self.replace)?;
        let anchor = Anchor::now();
        let header = &mut map[..HEADER_SIZE as usize];
        geometry.write_fixed_fields(header, self.unit, self.start_position);
        let mut put = |offset: usize, bytes: &[u8]| {
            header[offset..offset + bytes.len()].copy_from_slice(bytes);
        };
        let mut flags = if multi_producer {
            FLAG_MULTI_PRODUCER
        } else {
            0
        };
        if crate::clock::source() == crate::clock::ClockSource::Tsc {
            flags |= ringlat_format::FLAG_TSC_CLOCK;
        }
        put(CREATION_FLAGS, &flags.to_le_bytes());
        put(WRITER_PID, &std::process::id().to_le_bytes());
        put(ANCHOR_UNIX_NS, &anchor.unix_ns.to_le_bytes());
        put(ANCHOR_MONO_NS, &anchor.mono_ns.to_le_bytes());
        let policy = self.policy;
        put(
            OVERFLOW_POLICY,
            &[match policy.overflow {
                Overflow::Break => OVERFLOW_BREAK,
                Overflow::Overwrite => OVERFLOW_OVERWRITE,
            }],
        );
        put(BREAKER_LOW_WATER, &low_water.to_le_bytes());
        put(BREAKER_HIGH_WATER, &high_water.to_le_bytes());
        let decision = match policy.decision {
            Decision::Random => DECISION_RANDOM,
            Decision::TraceId => DECISION_TRACE_ID,
        };
        put(DECISION, &decision.to_le_bytes());
        let (flush_mode, flush_interval) = match policy.flush {
            Flush::Async => (FLUSH_ASYNC, 0),
            Flush::Every(interval) => (FLUSH_EVERY, nanos(interval)),
        };
        put(FLUSH_MODE, &flush_mode.to_le_bytes());
        put(FLUSH_INTERVAL_NS, &flush_interval.to_le_bytes());
        put(
            KEEP_IF_SLOW_NS,
            &policy.keep_if_slower.map_or(0, nanos).to_le_bytes(),
        );
        put(MAX_SKEW_NS, &nanos(policy.max_skew).to_le_bytes());
        put(DEGRADE_FACTOR, &policy.degrade_factor.to_le_bytes());
        put(DEGRADE_FLOOR, &policy.degrade_floor.to_le_bytes());
        put(TICK_NS, &nanos(policy.tick).to_le_bytes());
        for (class, probability) in classes.probabilities.iter().enumerate() {
            put(CLASS_TABLE + 8 * class, &probability.to_le_bytes());
        }
        let mut configured = Vec::new();
        let mut load_thresholds = [0u64; 256];
        for (id, name) in names.iter().enumerate() {
            if let (Some(name), Some(Some(settings))) = (name, kind_settings.get(id)) {
                let kind = id as u8;
                configured.push(kind);
                put(KindField::Name.offset(kind), name.as_bytes());
                put(
                    KindField::Flags.offset(kind),
                    &KindField::CONFIGURED.to_le_bytes(),
                );
                put(
                    KindField::BaseProbability.offset(kind),
                    &settings.rate.to_le_bytes(),
                );
                let base_class = classes.levels[id].first().copied().unwrap_or(0);
                put(
                    KindField::CurrentClass.offset(kind),
                    &u32::from(base_class).to_le_bytes(),
                );
                let threshold = settings.degrade_above.unwrap_or(0);
                load_thresholds[id] = threshold;
                put(
                    KindField::LoadThreshold.offset(kind),
                    &threshold.to_le_bytes(),
                );
            }
        }
        for (index, kind) in configured.iter().enumerate() {
            if let Some(block) = geometry.hist_block_offset(index as u32) {
                let at = block as usize + ringlat_format::population::BLOCK_KIND;
                if let Some(cell) = map.get_mut(at..at + 4) {
                    cell.copy_from_slice(&u32::from(*kind).to_le_bytes());
                }
            }
        }
        // SAFETY: the mapping lives in `Shared` beside the ring and is dropped after it (field
        // order); it is file_size bytes long, page-aligned, and every other process touches
        // the ring word, metadata and records only atomically (FORMAT.md).
        let storage = unsafe { RegionStorage::new(map.as_mut_ptr(), map.len(), geometry) }
            .map_err(|_| {
                Error::Format(ringlat_format::FormatError::SizeMismatch {
                    actual: map.len() as u64,
                    expected: geometry.file_size,
                })
            })?;
        let ring = ringlat_ring::Ring::new(storage).map_err(|_| {
            Error::Format(ringlat_format::FormatError::CapacityOutOfRange(
                self.capacity,
            ))
        })?;
        ring.set_start_position(self.start_position);
        if let Some(version) = ring.storage().u32_at(VERSION_FIELD) {
            // Release: everything written above is visible to a reader whose Acquire load of
            // the version (ringlat-read's open) sees 1.
            version.store(VERSION, std::sync::atomic::Ordering::Release);
        }
        // The ring is complete: only now does it take the path (over an old ring with
        // `replace`), so a failure anywhere above leaves whatever was there untouched.
        pending.publish(&self.path, self.replace)?;
        debug_assert_eq!(ring.storage().capacity(), geometry.capacity);
        mix_seed_base(
            self.seed
                .unwrap_or(anchor.mono_ns ^ u64::from(std::process::id()).rotate_left(32)),
        );
        Ok(Shared::new(SharedParts {
            ring,
            configured,
            classes,
            load_thresholds,
            policy,
            unit: self.unit,
            anchor,
            map,
            file: created_file,
            path: self.path,
            histograms: self.histograms,
        }))
    }
}
