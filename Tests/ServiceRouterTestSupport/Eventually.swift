import Foundation
import ServiceRouterIO

/// A test's failure with a message (thrown by the helpers here).
public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Waits until `condition` holds, checking every 10 ms of real time, and throws with `what`
/// after `timeout` seconds (generous by default: a busy CI machine must never fail a condition
/// that holds). After the deadline the condition gets one last look. Never use it to assert that
/// something happened *quickly*: it only asserts that it happened.
@discardableResult
public func eventually(_ what: String, timeout: Double = 60, _ condition: () async throws -> Bool) async throws -> Double {
    let start = Monotonic.now()
    while Monotonic.now() - start < timeout {
        if (try? await condition()) == true { return Monotonic.now() - start }
        try await Task.sleep(nanoseconds: 10_000_000)
    }
    if (try? await condition()) == true { return Monotonic.now() - start }
    throw TestFailure("timed out after \(Int(timeout)) s waiting for \(what)")
}
