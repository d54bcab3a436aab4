import Glibc

/// glibc allocator settings for a process whose full passes allocate and free tens of megabytes
/// at 10,000 tasks (figures in docs/benchmarks.md):
///
/// - **One arena.** glibc gives each thread that allocates concurrently its own arena (up to 8
///   per core), and freed memory stays in the arena that allocated it, so every arena ends up
///   holding its own copy of a full pass's peak (109 MB of peak RSS with the default). The
///   controller allocates from a handful of threads that rarely contend.
/// - **A fixed mmap threshold (256 KiB).** glibc raises its threshold to the size of any large
///   block it frees, after which the next Marathon payload (~5 MB at 10,000 tasks) and the big
///   arrays of a pass come from the heap, where they fragment it and are never given back.
///   With a fixed threshold they are mapped and unmapped whole.
public enum MallocTuning {
    /// Applies both settings; an explicit `MALLOC_ARENA_MAX` or `MALLOC_MMAP_THRESHOLD_` in the
    /// environment wins for its setting. Call once, first thing in `main`, before other threads start.
    public static func apply(arenas: Int32 = 1, mmapThreshold: Int32 = 256 << 10) {
        // <malloc.h> is not part of Swift's Glibc module: `mallopt` is looked up by name.
        // M_ARENA_MAX (-8) and M_MMAP_THRESHOLD (-3) are stable glibc ABI constants.
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
        let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
        if getenv("MALLOC_ARENA_MAX") == nil { _ = mallopt(-8, arenas) }
        if getenv("MALLOC_MMAP_THRESHOLD_") == nil { _ = mallopt(-3, mmapThreshold) }
    }
}
