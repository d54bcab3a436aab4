#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// SIGINT, SIGTERM and SIGHUP delivered to async code. A plain handler only bumps a lock-free
/// counter (async-signal-safe); a watcher task polls the counters. libdispatch's signal sources
/// were seen to miss signals on Linux in processes with many threads, so they are not used.
public final class SignalWatcher: Sendable {
    private let task: Task<Void, Never>

    /// Installs the handlers and calls `handler` (from a task) once per delivered signal.
    public init(_ signals: [Int32] = [SIGINT, SIGTERM, SIGHUP], pollInterval: Double = 0.05,
                handler: @escaping @Sendable (Int32) -> Void) {
        for sig in signals {
            switch sig {
            case SIGINT: _ = signal(SIGINT) { _ in interruptCount.add(1, ordering: .releasing) }
            case SIGTERM: _ = signal(SIGTERM) { _ in terminateCount.add(1, ordering: .releasing) }
            case SIGHUP: _ = signal(SIGHUP) { _ in hangupCount.add(1, ordering: .releasing) }
            default: break
            }
        }
        task = Task {
            var seen = (interruptCount.load(ordering: .acquiring), terminateCount.load(ordering: .acquiring),
                        hangupCount.load(ordering: .acquiring))
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: UInt64(pollInterval * 1e9))
                let now = (interruptCount.load(ordering: .acquiring), terminateCount.load(ordering: .acquiring),
                           hangupCount.load(ordering: .acquiring))
                for _ in seen.0..<now.0 { handler(SIGINT) }
                for _ in seen.1..<now.1 { handler(SIGTERM) }
                for _ in seen.2..<now.2 { handler(SIGHUP) }
                seen = now
            }
        }
    }

    public func cancel() { task.cancel() }

    deinit { task.cancel() }

    public static func name(_ sig: Int32) -> String {
        switch sig {
        case SIGINT: "SIGINT"
        case SIGTERM: "SIGTERM"
        case SIGHUP: "SIGHUP"
        default: "signal \(sig)"
        }
    }
}

private let interruptCount = Atomic<Int>(0)
private let terminateCount = Atomic<Int>(0)
private let hangupCount = Atomic<Int>(0)
