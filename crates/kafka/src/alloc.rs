//! The global allocator a process that decodes Kafka answers should install:
//! `#[global_allocator] static ALLOC: watchpost_kafka::alloc::Lazy = watchpost_kafka::alloc::Lazy;`
//!
//! Why: `kafka-protocol` (0.18) reserves an array's capacity from the length it reads
//! (`Vec::with_capacity(n)`) before it reads a single element. A peer that passes for a broker
//! and then sends `i32::MAX` as a length — hostile, or a broken proxy — makes that one
//! reservation hundreds of gigabytes; the system allocator refuses it and Rust aborts the
//! process (an allocation failure is not a panic, so it can't be caught). Upstream fixes that
//! bound the capacity by the bytes left are proposed but not released.
//!
//! What it does: a request of [`HUGE`] bytes or more is served by an anonymous `mmap` with
//! `MAP_NORESERVE` — address space, whose pages the kernel only provides when touched — so
//! the reservation succeeds, the decoder fails on the missing elements with an error, and
//! the mapping is returned whole. Everything smaller goes to the system allocator unchanged.
//! A real allocation that large still works (its pages are used as they are written).
//!
//! Limit: with `vm.overcommit_memory = 2` (strict accounting) the kernel ignores
//! `MAP_NORESERVE` and refuses the mapping as it would the `malloc`: the abort remains there.

use std::alloc::{GlobalAlloc, Layout, System};

/// Requests of this many bytes or more are mapped lazily (1 GiB).
pub const HUGE: usize = 1 << 30;

/// Page alignment, all an anonymous mapping guarantees.
const PAGE: usize = 4096;

/// The allocator: [`System`] below [`HUGE`], a lazily backed mapping above (see the module
/// docs).
pub struct Lazy;

fn lazy(layout: Layout) -> bool {
    layout.size() >= HUGE && layout.align() <= PAGE
}

fn map(size: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping touches no existing memory; failure is reported
    // as MAP_FAILED, turned into null (the allocator's "no").
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        p.cast()
    }
}

// SAFETY: every block is released the way it was obtained: `lazy(layout)` decides both, and
// Rust passes `dealloc` the layout `alloc` was given. Anonymous mappings are page aligned
// (≥ every alignment routed to them) and zero-filled.
unsafe impl GlobalAlloc for Lazy {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if lazy(layout) {
            map(layout.size())
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if lazy(layout) {
            map(layout.size())
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if lazy(layout) {
            // SAFETY: `ptr` is a mapping of exactly `layout.size()` bytes made by `map`.
            unsafe { libc::munmap(ptr.cast(), layout.size()) };
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size`, rounded to the alignment, doesn't overflow.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if !lazy(layout) && !lazy(new_layout) {
            // SAFETY: forwarded with the caller's guarantees.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // Into or out of a mapping: a new block, the contents copied, the old one released.
        // SAFETY: `new_layout` is non-zero-sized (the caller's guarantee).
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are valid for the smaller size and don't overlap.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_reservation_is_address_space_and_small_ones_are_the_system_allocator() {
        // 256 GiB: more than any test machine has.
        let layout = Layout::from_size_align(256 << 30, 8).unwrap();
        // SAFETY: the layout is non-zero; the block is written within bounds and released
        // with the same layout.
        unsafe {
            let p = Lazy.alloc(layout);
            assert!(!p.is_null());
            *p = 7;
            *p.add(layout.size() - 1) = 9;
            assert_eq!(*p, 7);
            Lazy.dealloc(p, layout);
        }
        let small = Layout::from_size_align(64, 8).unwrap();
        // SAFETY: as above.
        unsafe {
            let p = Lazy.alloc(small);
            assert!(!p.is_null());
            let p = Lazy.realloc(p, small, 128);
            assert!(!p.is_null());
            Lazy.dealloc(p, Layout::from_size_align(128, 8).unwrap());
        }
    }

    #[test]
    fn growing_across_the_threshold_keeps_the_contents() {
        let small = Layout::from_size_align(16, 8).unwrap();
        // SAFETY: blocks used within their sizes and released with their layouts.
        unsafe {
            let p = Lazy.alloc(small);
            std::ptr::copy_nonoverlapping(b"kafka-protocol!!".as_ptr(), p, 16);
            let big = Lazy.realloc(p, small, HUGE);
            assert_eq!(std::slice::from_raw_parts(big, 16), b"kafka-protocol!!");
            let back = Lazy.realloc(big, Layout::from_size_align(HUGE, 8).unwrap(), 16);
            assert_eq!(std::slice::from_raw_parts(back, 16), b"kafka-protocol!!");
            Lazy.dealloc(back, small);
        }
    }
}
