//! Criterion benches live in `benches/`; run them with `cargo bench -p ringlat-benches`.
