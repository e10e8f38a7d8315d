//! A reader's mapping of a ring file, guarded against the file shrinking under it.
//!
//! When someone truncates a mapped file, touching a page past the new end raises `SIGBUS`,
//! which kills the process. Readers check the file's length before every follow iteration,
//! but a truncation can still land between the check and the access. For that race, the
//! first mapping installs (once per process) a `SIGBUS` handler that looks the fault address
//! up in a table of registered reader mappings: inside one, it replaces the whole mapping
//! with anonymous zero pages (`MAP_FIXED`, same address and length) and raises the
//! mapping's `truncated` flag, so the faulting access completes (reading zeros) and the
//! reader reports the truncation at its next check. A fault anywhere else goes to the
//! handler that was installed before (Rust's stack-overflow handler, or the default action),
//! so a writer whose own file is truncated still dies of `SIGBUS`, as before.
//!
//! Zeros never turn into records: a zero metadata word is "empty", and every reader
//! re-checks the flag before handing on what it decoded.

use memmap2::{MmapMut, MmapOptions, MmapRaw};
use std::fs::File;
use std::io;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

/// How many reader mappings can be guarded at once; further ones are still checked by
/// length before every follow iteration, only the race is unguarded.
const GUARDED: usize = 256;

const FREE: u8 = 0;
const CLAIMED: u8 = 1;
const ACTIVE: u8 = 2;

struct Region {
    state: AtomicU8,
    start: AtomicUsize,
    len: AtomicUsize,
    truncated: AtomicBool,
}

static REGIONS: [Region; GUARDED] = [const {
    Region {
        state: AtomicU8::new(FREE),
        start: AtomicUsize::new(0),
        len: AtomicUsize::new(0),
        truncated: AtomicBool::new(false),
    }
}; GUARDED];

/// The `SIGBUS` action in force before ours, to which faults outside reader mappings go.
struct Previous(libc::sigaction);
// SAFETY: a plain C struct of a function pointer, flags and a signal mask; it is written
// once (before the OnceLock publishes it) and only read afterwards.
unsafe impl Sync for Previous {}
// SAFETY: as above.
unsafe impl Send for Previous {}

static PREVIOUS: OnceLock<Previous> = OnceLock::new();

/// The page size, read once before the handler is installed (sysconf is not
/// async-signal-safe; a load is).
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(4096);

fn page_size() -> usize {
    // Relaxed: stored before sigaction installs the handler (a system call, which orders it
    // before any fault the handler sees); never changes afterwards.
    PAGE_SIZE.load(Ordering::Relaxed)
}

extern "C" fn on_sigbus(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    // SAFETY: the kernel passes a valid siginfo_t to an SA_SIGINFO handler.
    let address = unsafe { (*info).si_addr() } as usize;
    for region in &REGIONS {
        // Acquire: pairs with the Release store of ACTIVE in `guard`, after start and len.
        if region.state.load(Ordering::Acquire) != ACTIVE {
            continue;
        }
        let start = region.start.load(Ordering::Relaxed);
        let len = region.len.load(Ordering::Relaxed);
        if address < start || address - start >= len {
            continue;
        }
        // Only the page that faulted: the region's start and len are two loads, and a slot
        // freed and claimed again between them could pair one mapping's start with another's
        // length; the faulting page, a file page past the end of its file, is the one page
        // that is certainly a reader's and certainly dead. Later pages past the end fault
        // and come here one by one.
        let page = address & !(page_size() - 1);
        // SAFETY: replaces the faulting page, which lies in a registered reader mapping
        // (still mapped: it is unregistered before it is unmapped), with an anonymous zero
        // page; mmap is a plain system call, safe to make in a signal handler.
        let replaced = unsafe {
            libc::mmap(
                page as *mut libc::c_void,
                page_size(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if replaced != libc::MAP_FAILED {
            // Relaxed: the flag is read by the same thread after the access completes, or by
            // others after they synchronised with it.
            region.truncated.store(true, Ordering::Relaxed);
            return;
        }
    }
    chain(signal, info, context);
}

/// Hands a fault that is not ours to the previous action.
fn chain(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let previous = PREVIOUS.get().map(|p| p.0.sa_sigaction);
    match previous {
        Some(handler) if handler != libc::SIG_DFL && handler != libc::SIG_IGN => {
            let flags = PREVIOUS.get().map_or(0, |p| p.0.sa_flags);
            if flags & libc::SA_SIGINFO != 0 {
                // SAFETY: the previous action was installed with SA_SIGINFO, so its handler
                // has this signature; we pass it what the kernel passed us.
                let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    unsafe { std::mem::transmute(handler) };
                handler(signal, info, context);
            } else {
                // SAFETY: without SA_SIGINFO the handler takes only the signal number.
                let handler: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
                handler(signal);
            }
        }
        _ => {
            // Back to the default action: returning re-executes the access, which faults
            // again and ends the process with SIGBUS, as it would have without us.
            // SAFETY: an all-zero sigaction with SIG_DFL is valid; sigaction is async-signal-safe.
            unsafe {
                let mut default: libc::sigaction = std::mem::zeroed();
                default.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(libc::SIGBUS, &default, std::ptr::null_mut());
            }
        }
    }
}

fn install_handler() {
    PREVIOUS.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if let Ok(size) = usize::try_from(size)
            && size.is_power_of_two()
        {
            // Relaxed: see `page_size`.
            PAGE_SIZE.store(size, Ordering::Relaxed);
        }
        // SAFETY: zeroed sigaction structs are valid values; we install a handler with the
        // SA_SIGINFO signature and keep the previous action for chaining.
        unsafe {
            let mut previous: libc::sigaction = std::mem::zeroed();
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigbus as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGBUS, &action, &mut previous);
            Previous(previous)
        }
    });
}

/// A reader's mapping of a ring file: private (peeking) or shared (draining), registered
/// with the `SIGBUS` guard for as long as it lives.
pub(crate) struct GuardedMapping {
    map: MmapMut,
    slot: Option<usize>,
}

impl GuardedMapping {
    /// Maps `len` bytes of `file`: a private copy-on-write mapping for a reader that never
    /// writes (it keeps showing the page cache the writer updates), a shared one otherwise.
    pub(crate) fn map(file: &File, len: usize, shared: bool) -> io::Result<Self> {
        install_handler();
        let options = {
            let mut options = MmapOptions::new();
            options.len(len);
            options
        };
        let mut map = if shared {
            // SAFETY: a shared mapping of a validated ring file of this length; every access
            // to its live parts goes through atomics (RegionStorage); truncation is guarded.
            unsafe { options.map_mut(file) }?
        } else {
            // SAFETY: a private mapping that is never written through except by atomics of
            // this process; truncation under it is guarded (see the module docs).
            unsafe { options.map_copy(file) }?
        };
        let slot = guard(map.as_mut_ptr() as usize, map.len());
        Ok(GuardedMapping { map, slot })
    }

    /// Base address and length.
    pub(crate) fn base(&mut self) -> (*mut u8, usize) {
        (self.map.as_mut_ptr(), self.map.len())
    }

    /// True once a `SIGBUS` in this mapping was turned into zero pages: the file shrank.
    pub(crate) fn truncated(&self) -> bool {
        self.slot
            .is_some_and(|slot| REGIONS[slot].truncated.load(Ordering::Relaxed))
    }
}

impl Drop for GuardedMapping {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            // Release: the handler stops matching this range before memmap2 unmaps it.
            REGIONS[slot].state.store(FREE, Ordering::Release);
        }
    }
}

/// A read-only mapping of a piece of a file, populated up front (no page fault per page, no
/// copy: the page cache's own pages), registered with the `SIGBUS` guard for as long as it
/// lives: for a scan that reads a piece of an archive once.
///
/// The mapping itself reaches out to the 2 MiB boundaries around the piece, and only the
/// piece's pages are populated (`MADV_POPULATE_READ`): where the page cache holds the file in
/// 2 MiB folios (as readahead leaves a file read from disk), each is then mapped by one
/// page-table entry instead of 512, and a pass's system time almost vanishes (3.2 GB: 0.11 s
/// -> 0.025 s on this machine's kernel, 6.18; no change where the folios are small). The rest
/// of the mapping (the archive's header, entries of other pieces, pages past the file's end)
/// is never read, nor referred to: [`bytes`](Self::bytes) covers the piece alone. A kernel
/// without `MADV_POPULATE_READ` (before 5.14) gets the piece alone, populated by `mmap`.
pub(crate) struct GuardedPiece {
    map: MmapRaw,
    slot: Option<usize>,
    /// The piece: bytes `at..at + len` of the mapping.
    at: usize,
    len: usize,
}

/// The size of a huge page (x86-64, arm64 with 4 KiB pages): mappings of pieces are aligned
/// to it.
const HUGE_PAGE: u64 = 2 << 20;

/// The smallest page size of the platforms we run on: mappings start at a multiple of it.
const PAGE: u64 = 4_096;

/// Set once `MADV_POPULATE_READ` was refused (a kernel before 5.14): pieces are then mapped
/// alone and populated by `mmap` (`MAP_POPULATE`).
static NO_POPULATE_READ: AtomicBool = AtomicBool::new(false);

impl GuardedPiece {
    /// Maps `len` bytes of `file` from `offset`.
    pub(crate) fn map(file: &File, offset: u64, len: usize) -> io::Result<Self> {
        install_handler();
        // Relaxed: a hint; either way maps the same bytes.
        let by_mmap = NO_POPULATE_READ.load(Ordering::Relaxed);
        let round = if by_mmap { PAGE } else { HUGE_PAGE };
        let start = offset - offset % round;
        let end = offset
            .checked_add(len as u64)
            .and_then(|end| {
                if by_mmap {
                    Some(end)
                } else {
                    end.checked_next_multiple_of(round)
                }
            })
            .ok_or(io::ErrorKind::InvalidInput)?;
        let whole = usize::try_from(end - start).map_err(|_| io::ErrorKind::InvalidInput)?;
        let at = (offset - start) as usize;
        let mut options = MmapOptions::new();
        options.offset(start).len(whole);
        if by_mmap {
            options.populate();
        }
        // A raw mapping: nothing refers to its bytes but `bytes()` (see there).
        let map = options.map_raw_read_only(file)?;
        let slot = guard(map.as_ptr() as usize, map.len());
        if !by_mmap && !populate_read(&map, at, len) {
            // Relaxed: a hint. This piece's pages fault in as they are read (the guard still
            // covers them); later pieces are mapped populated.
            NO_POPULATE_READ.store(true, Ordering::Relaxed);
        }
        Ok(GuardedPiece { map, slot, at, len })
    }

    /// True when the `SIGBUS` guard covers this mapping (false when all its slots are taken:
    /// then a truncation under it would kill the process, so read another way).
    pub(crate) fn guarded(&self) -> bool {
        self.slot.is_some()
    }

    /// The piece's bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: `at + len <= map.len()` (`map` made the mapping so), so the bytes are
        // mapped, readable, for as long as `self` lives; they are whole entries of an
        // append-only archive, which nobody rewrites; a truncation under them is turned into
        // zero pages by the guard (when `guarded()`) and reported by `truncated()`, which the
        // caller checks.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(self.at), self.len) }
    }

    /// True once a `SIGBUS` in this mapping was turned into zero pages: the file shrank.
    pub(crate) fn truncated(&self) -> bool {
        self.slot
            .is_some_and(|slot| REGIONS[slot].truncated.load(Ordering::Relaxed))
    }
}

impl Drop for GuardedPiece {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            // Release: the handler stops matching this range before memmap2 unmaps it.
            REGIONS[slot].state.store(FREE, Ordering::Release);
        }
    }
}

/// Populates bytes `at..at + len` of `map` in one call; false when the kernel does not know
/// how (`MADV_POPULATE_READ`, Linux 5.14). Another failure (a page past a new end of the
/// file) leaves the pages to fault in as they are read.
#[cfg(target_os = "linux")]
fn populate_read(map: &MmapRaw, at: usize, len: usize) -> bool {
    match map.advise_range(memmap2::Advice::PopulateRead, at, len) {
        Err(error) => error.raw_os_error() != Some(libc::EINVAL),
        Ok(()) => true,
    }
}

#[cfg(not(target_os = "linux"))]
fn populate_read(_map: &MmapRaw, _at: usize, _len: usize) -> bool {
    false
}

fn guard(start: usize, len: usize) -> Option<usize> {
    for (index, region) in REGIONS.iter().enumerate() {
        if region
            .state
            .compare_exchange(FREE, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            region.start.store(start, Ordering::Relaxed);
            region.len.store(len, Ordering::Relaxed);
            region.truncated.store(false, Ordering::Relaxed);
            // Release: pairs with the handler's Acquire load; start and len are visible first.
            region.state.store(ACTIVE, Ordering::Release);
            return Some(index);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A piece's bytes are the file's, wherever it lies: inside one huge page, across one or
    /// two boundaries, at the start, and up to the file's end (the mapping then reaches past
    /// it); mapped out to huge pages or, as on a kernel before 5.14, alone.
    #[test]
    fn a_piece_is_the_files_bytes_wherever_it_lies() {
        let mut file = tempfile::tempfile().unwrap();
        let len = 5 * HUGE_PAGE as usize + 12_345;
        let bytes: Vec<u8> = (0..len).map(|i| (i * 7 + i / 4096) as u8).collect();
        file.write_all(&bytes).unwrap();
        let huge = HUGE_PAGE as usize;
        // As on a kernel without MADV_POPULATE_READ too (the piece alone, populated by mmap);
        // other tests' pieces read the same bytes either way.
        for by_mmap in [false, true, false] {
            NO_POPULATE_READ.store(by_mmap, Ordering::Relaxed);
            for (offset, size) in [
                (0, 32),
                (16_384, 4 << 20),
                (huge - 32, 64),
                (huge - 1, 2 * huge + 2),
                (3 * huge, huge),
                (len - 32, 32),
                (len - (4 << 20) - 7, (4 << 20) + 7),
            ] {
                let piece = GuardedPiece::map(&file, offset as u64, size).unwrap();
                assert!(
                    piece.bytes() == &bytes[offset..offset + size],
                    "offset {offset} len {size}"
                );
                assert!(!piece.truncated());
            }
        }
    }
}
