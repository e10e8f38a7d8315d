//! Any bytes, as a ring file or an archive (told apart by magic, as `ringcat` does), through
//! every decoding path a reader has: open and validate, snapshot, counters, policy, liveness,
//! per-kind rates, a drain on the file; every sample must carry 0 < p <= 1.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringlat_read::{Drainer, Source};
use std::path::PathBuf;
use std::sync::OnceLock;

fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        dir.join(format!("ringlat-fuzz-{}", std::process::id()))
    })
}

fn check_probability(p: f64) {
    assert!(p > 0.0 && p <= 1.0, "a sample with p = {p}");
}

fuzz_target!(|data: &[u8]| {
    let path = scratch();
    if std::fs::write(path, data).is_err() {
        return;
    }
    if let Ok(source) = Source::open(path) {
        let _ = source.len_hint();
        let _ = source.for_each(|sample| check_probability(sample.probability));
        for kind in 0..=255u8 {
            let _ = source.kind_label(kind);
        }
        if let Some(ring) = source.ring() {
            let _ = ring.counters();
            let _ = ring.policy();
            let _ = ring.breaker();
            let _ = ring.liveness();
            let _ = ring.durable_position();
            let _ = ring.check_intact();
            for kind in ring.configured_kinds() {
                let rates = ring.kind_rates(kind);
                check_probability(rates.base);
                check_probability(rates.current);
            }
            let (head, tail) = ring.positions();
            assert!(tail.wrapping_sub(head) <= ring.geometry().capacity);
        }
    }
    if let Ok(mut drainer) = Drainer::open(path) {
        let _ = drainer.drain(usize::MAX, |decoded| {
            check_probability(decoded.probability);
            Ok::<(), ()>(())
        });
    }
});
