import ServiceRouterIO
import Synchronization

/// A time source that moves only when the test says so (the model: swift-nio's
/// `EmbeddedEventLoop.advanceTime`). Sleepers wake when `advance` reaches their deadline, never
/// because the machine was slow; a test that wants the code under test to be waiting first waits
/// for `sleepers` (a condition, not a delay).
public final class ManualTime: TimeSource {
    private struct Sleeper {
        var deadline: Double
        var continuation: CheckedContinuation<Void, any Error>
    }
    private struct State {
        var now: Double
        var sleepers: [Int: Sleeper] = [:]
        var cancelled: Set<Int> = []
        var nextID = 0
    }
    private let state: Mutex<State>

    public init(now: Double = 1_000) { state = Mutex(State(now: now)) }

    public func now() -> Double { state.withLock { $0.now } }

    public func sleep(until deadline: Double) async throws {
        let id = state.withLock { s -> Int in
            s.nextID += 1
            return s.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
                let resume: Result<Void, any Error>? = state.withLock { s in
                    if s.cancelled.remove(id) != nil || Task.isCancelled { return .failure(CancellationError()) }
                    if deadline <= s.now { return .success(()) }
                    s.sleepers[id] = Sleeper(deadline: deadline, continuation: c)
                    return nil
                }
                if let resume { c.resume(with: resume) }
            }
        } onCancel: {
            let sleeper = state.withLock { s -> Sleeper? in
                guard let found = s.sleepers.removeValue(forKey: id) else {
                    s.cancelled.insert(id)
                    return nil
                }
                return found
            }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Moves time forward and wakes every sleeper whose deadline has come.
    public func advance(by seconds: Double) { advance(to: now() + seconds) }

    public func advance(to time: Double) {
        let due = state.withLock { s -> [Sleeper] in
            s.now = max(s.now, time)
            let ready = s.sleepers.filter { $0.value.deadline <= s.now }
            for id in ready.keys { s.sleepers[id] = nil }
            return ready.values.sorted { $0.deadline < $1.deadline }
        }
        for s in due { s.continuation.resume() }
    }

    /// The deadlines sleepers wait for, earliest first.
    public var sleepers: [Double] { state.withLock { $0.sleepers.values.map(\.deadline).sorted() } }
}
