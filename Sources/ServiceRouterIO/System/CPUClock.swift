#if canImport(Glibc)
import Glibc
#endif

/// CPU time consumed, in seconds (for benchmarks and the controller's own statistics).
public enum CPUClock {
    /// Every thread of this process (`CLOCK_PROCESS_CPUTIME_ID`: the scheduler's nanosecond
    /// accounting, not tick-sampled like `getrusage` on some kernels).
    public static func process() -> Double { read(CLOCK_PROCESS_CPUTIME_ID) }

    /// The calling thread only.
    public static func thread() -> Double { read(CLOCK_THREAD_CPUTIME_ID) }

    private static func read(_ clock: clockid_t) -> Double {
        var ts = timespec()
        clock_gettime(clock, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
