import Foundation

/// Runs blocking system calls off Swift's cooperative thread pool (which has one thread per core:
/// a blocking `read` there would stall every task).
///
/// Each call gets its own thread. Dispatch's concurrent queues were measured here to run about two
/// blocked jobs at once on a 2-core machine and to add threads only about once a second, so a slow
/// DNS lookup or `haproxy -c` would delay an unrelated runtime-socket exchange. A thread costs tens
/// of microseconds, far less than any exchange it carries.
public enum Blocking {
    public static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread { continuation.resume(with: Result { try body() }) }
            thread.name = "servicerouter.blocking"
            thread.stackSize = 512 << 10
            thread.start()
        }
    }

    /// Starts `body` on its own thread, for loops that block for a long time (accept, stream reads).
    public static func detach(name: String, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread { body() }
        thread.name = name
        thread.stackSize = 1 << 20
        thread.start()
    }
}

import Synchronization

/// A flag one thread sets and others poll (stop signals for blocking loops).
public final class StopFlag: Sendable {
    private let value = Mutex(false)
    public init() {}
    public func set() { value.withLock { $0 = true } }
    public var isSet: Bool { value.withLock { $0 } }
}
