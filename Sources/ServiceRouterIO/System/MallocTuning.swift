import Glibc

/// glibc's allocator gives each thread that allocates concurrently its own arena (up to 8 per
/// core), and freed memory stays in the arena that allocated it. The controller's full passes
/// allocate tens of megabytes at 10,000 tasks on whichever cooperative thread runs them, so every
/// arena ends up holding its own copy of that peak: measured at 10,000 tasks, 109 MB of peak RSS
/// with the default, 73 MB with one arena (docs/benchmarks.md). Two arenas keep that gain and
/// leave the event stream's and the HTTP server's threads an arena of their own.
public enum MallocTuning {
    /// Limits glibc to `arenas` malloc arenas; an explicit `MALLOC_ARENA_MAX` in the environment
    /// wins. Call once, first thing in `main`, before other threads start.
    public static func limitArenas(_ arenas: Int32 = 2) {
        guard getenv("MALLOC_ARENA_MAX") == nil else { return }
        // <malloc.h> is not part of Swift's Glibc module: `mallopt` is looked up by name, and
        // M_ARENA_MAX is glibc's -8 (a stable ABI constant).
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
        _ = unsafeBitCast(symbol, to: Mallopt.self)(-8, arenas)
    }
}
