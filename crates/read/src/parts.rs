//! One pass over a ring's positions split into consecutive parts, one per core.

use std::ops::Range;

/// Fewest positions worth splitting: below this a thread costs more than it saves.
const MIN_SPLIT: u32 = 1 << 16;

/// `work` over `0..len` cut into one consecutive part per core, the parts run on scoped
/// threads, their results in order; `None` when there is one core or fewer than
/// [`MIN_SPLIT`] positions (the caller then does the work on its own thread). A panic in a
/// part is raised again here.
pub(crate) fn on_every_core<T: Send>(
    len: u32,
    work: impl Fn(Range<u32>) -> T + Sync,
) -> Option<Vec<T>> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from) as u32;
    in_parts(cores, len, work)
}

/// [`on_every_core`] with `threads` parts.
fn in_parts<T: Send>(
    threads: u32,
    len: u32,
    work: impl Fn(Range<u32>) -> T + Sync,
) -> Option<Vec<T>> {
    if threads < 2 || len < MIN_SPLIT {
        return None;
    }
    let part = len.div_ceil(threads);
    let work = &work;
    Some(std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|index| {
                let start = (index * part).min(len);
                let end = start.saturating_add(part).min(len);
                scope.spawn(move || work(start..end))
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_parts_cover_every_position_once_in_order() {
        for threads in [2, 3, 7] {
            let len = MIN_SPLIT * 3 + 7;
            let parts = in_parts(threads, len, |range| range).unwrap();
            assert_eq!(parts.len(), threads as usize);
            let mut next = 0;
            for range in parts {
                assert_eq!(range.start, next);
                next = range.end;
            }
            assert_eq!(next, len);
        }
        assert!(in_parts(1, MIN_SPLIT * 2, |range| range).is_none());
        assert!(in_parts(2, MIN_SPLIT - 1, |range| range).is_none());
    }
}
