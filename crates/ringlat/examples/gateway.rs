//! A small simulated gateway: three threads record market/limit/cancel latencies into a ring
//! for one second. Usage: `cargo run --release -p ringlat --example gateway -- PATH`.
//! Then look at it with `ringcat stat PATH` and `ringcat cat PATH`.

use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "gateway.ring".into());
    let ring = ringlat::Ring::builder(&path)
        .capacity(1 << 16)
        .gateway_preset() // market 100%, limit 10%, cancel 50%, > 1 ms always kept
        .delta_unit(ringlat::DeltaUnit::Micros)
        .replace(true)
        .create()?;
    let until = Instant::now() + Duration::from_secs(1);
    std::thread::scope(|scope| {
        for kind in 0..3u8 {
            let ring = ring.clone();
            scope.spawn(move || {
                let mut trace = u64::from(kind) << 48;
                while Instant::now() < until {
                    // A latency with a long tail: mostly tens of microseconds, sometimes ms.
                    let base = 20 + (trace * 7919) % 60;
                    let micros = if trace % 97 == 0 { base * 40 } else { base };
                    ring.record(
                        kind,
                        trace,
                        (trace % 50 == 0) as u8,
                        Duration::from_micros(micros),
                    );
                    trace += 1;
                    std::thread::sleep(Duration::from_micros(200));
                }
            });
        }
    });
    println!("wrote {path}");
    Ok(())
}
