/// Time for everything that waits: the controller's deadlines, the input queue's debounce, the
/// retry back-off and the event stream's reconnect delay all read and wait on one injected time
/// source. The real one is the monotonic clock; tests drive a manual one by hand
/// (ServiceRouterTestSupport's `ManualTime`), so timing is tested without real time passing.
public protocol TimeSource: Sendable {
    /// Monotonic seconds.
    func now() -> Double
    /// Returns once `deadline` has come (at once when it has passed). Throws `CancellationError`
    /// when the waiting task is cancelled.
    func sleep(until deadline: Double) async throws
}

extension TimeSource {
    public func sleep(for seconds: Double) async throws { try await sleep(until: now() + seconds) }
}

/// The monotonic clock (`CLOCK_MONOTONIC`) and `Task.sleep`.
public struct SystemTime: TimeSource {
    public init() {}

    public func now() -> Double { Monotonic.now() }

    public func sleep(until deadline: Double) async throws {
        let remaining = deadline - now()
        guard remaining > 0 else { return try Task.checkCancellation() }
        // Bounded so the conversion cannot trap on an absurd deadline (a day is plenty: callers
        // wake on inputs long before).
        try await Task.sleep(nanoseconds: UInt64(min(remaining, 86_400) * 1e9))
    }
}
