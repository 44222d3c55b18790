//! Block memory straight from the kernel (an anonymous `mmap`), given back with `munmap` when
//! it is dropped: a hashing thread that ends returns its 7 MiB to the OS at once. From the
//! global allocator a freed 7 MiB block is only marked free (mimalloc purges it after a delay,
//! on a later allocation; glibc keeps it in the thread's arena), so after a login burst the
//! process stayed at its peak RSS (issue 21: 27 → 98 MiB, and it stayed there).

use std::marker::PhantomData;
use std::ptr::NonNull;

/// `len` initialised values of `T` at the start of `bytes` of page-aligned anonymous memory.
pub struct Region<T: Copy> {
    ptr: NonNull<T>,
    bytes: usize,
    len: usize,
    _owns: PhantomData<T>,
}

// SAFETY: the region owns its mapping exclusively (like a `Vec<T>`); `T: Copy + Send` values
// may move between threads with it.
unsafe impl<T: Copy + Send> Send for Region<T> {}

impl<T: Copy> Region<T> {
    /// No memory yet.
    pub const fn new() -> Self {
        Region {
            ptr: NonNull::dangling(),
            bytes: 0,
            len: 0,
            _owns: PhantomData,
        }
    }

    /// Bytes mapped (0 when none).
    pub fn mapped_bytes(&self) -> usize {
        self.bytes
    }

    /// The first `n` values, grown with `init` (a fresh mapping when the current one is too
    /// small). `None` when the kernel refuses the memory or `n` overflows.
    pub fn get(&mut self, n: usize, init: T) -> Option<&mut [T]> {
        if n > self.len {
            let need = n.checked_mul(size_of::<T>())?;
            if need > self.bytes {
                self.release();
                self.map(need)?;
            }
            for i in self.len..n {
                // SAFETY: `i < n` and `n * size_of::<T>() <= self.bytes`, so the slot lies in
                // the mapping, which is page-aligned (≥ align_of::<T>() for the block types
                // this is used with, checked in `map`).
                unsafe { self.ptr.as_ptr().add(i).write(init) };
            }
            self.len = n;
        }
        // SAFETY: the first `self.len ≥ n` slots are initialised and owned by `self`, which
        // is borrowed mutably for the slice's life.
        Some(unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), n) })
    }

    fn map(&mut self, need: usize) -> Option<()> {
        let page = 4096usize.max(align_of::<T>());
        let bytes = need.checked_next_multiple_of(page)?;
        // SAFETY: a fresh private anonymous mapping; nothing else refers to it.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED || !(p as usize).is_multiple_of(align_of::<T>()) {
            return None;
        }
        self.ptr = NonNull::new(p.cast::<T>())?;
        self.bytes = bytes;
        self.len = 0;
        Some(())
    }

    /// Unmaps the memory (a no-op when there is none).
    pub fn release(&mut self) {
        if self.bytes != 0 {
            // SAFETY: `ptr`/`bytes` are exactly the mapping made in `map`, and no slice into
            // it outlives the `&mut self` that handed it out.
            unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.bytes) };
        }
        // Fields reset one by one: assigning a new `Region` would drop (and unmap) this one.
        self.ptr = NonNull::dangling();
        self.bytes = 0;
        self.len = 0;
    }
}

impl<T: Copy> Default for Region<T> {
    fn default() -> Self {
        Region::new()
    }
}

impl<T: Copy> Drop for Region<T> {
    fn drop(&mut self) {
        self.release();
    }
}
