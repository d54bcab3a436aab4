import Dispatch
import Foundation

/// Runs blocking system calls off Swift's cooperative thread pool (which has one thread per core:
/// a blocking `read` there would stall every task). Dispatch grows its pool for blocked work.
public enum Blocking {
    private static let queue = DispatchQueue(label: "servicerouter.blocking", attributes: .concurrent)

    public static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body() }) }
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
