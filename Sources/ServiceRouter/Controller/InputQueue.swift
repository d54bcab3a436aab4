import ServiceRouterCore
import ServiceRouterIO
import Synchronization

/// What the controller reacts to, whatever its source (event stream, timers, signals).
public enum ControllerInput: Sendable, Equatable {
    /// The event stream (re)connected: events may have been missed, resync.
    case connected(String)
    case disconnected(String)
    case statusUpdate(TaskStatusUpdate)
    case healthChanged(appId: String, instanceId: String, alive: Bool)
    /// An event that may change frontends (`api_post_event`, `deployment_*`, ...): debounced resync.
    case structureChanged(String)
    /// SIGHUP, the resync timer, or a fast-path miss: resync now.
    case resync(String)
    /// HAProxy restarted or changed behind our back: re-apply the current model (no fetch).
    case reapply(String)
}

/// A bounded, coalescing queue between the event stream and the applier. A burst of events becomes
/// one batch; for each task only its last status survives (the last state wins); memory is bounded
/// whatever the event rate: past `maxPending` distinct tasks the batch is dropped and replaced by a
/// full resync, which is the truth anyway.
public final class InputQueue: Sendable {
    public struct Batch: Sendable, Equatable {
        /// By task id, in arrival order of each task's first update in the batch.
        public var statusUpdates: [TaskStatusUpdate] = []
        public var healthChanges: [(appId: String, instanceId: String, alive: Bool)] = []
        /// Resync now (reason).
        public var resync: String?
        /// Re-apply the model without fetching (reason).
        public var reapply: String?
        public var events = 0
        /// When the oldest event of the batch arrived (monotonic seconds).
        public var oldestEventAt: Double?

        public var isEmpty: Bool { statusUpdates.isEmpty && healthChanges.isEmpty && resync == nil && reapply == nil }

        public static func == (a: Batch, b: Batch) -> Bool {
            a.statusUpdates == b.statusUpdates && a.resync == b.resync && a.reapply == b.reapply && a.events == b.events
                && a.healthChanges.elementsEqual(b.healthChanges, by: { $0 == $1 })
        }
    }

    private struct State {
        var statusIndex: [String: Int] = [:]
        var statuses: [TaskStatusUpdate] = []
        var health: [String: (appId: String, instanceId: String, alive: Bool)] = [:]
        var healthOrder: [String] = []
        var resync: String?
        var reapply: String?
        /// A structural event asks for a resync at this (monotonic) time; more events in the
        /// window do not move it (debounce with a bounded delay).
        var resyncAt: Double?
        var resyncAtReason: String?
        var events = 0
        var oldest: Double?
        var dropped = 0
    }

    private let state = Mutex(State())
    private let maxPending: Int
    private let debounce: Double
    private let wakeup: AsyncStream<Void>.Continuation
    public let wakeups: AsyncStream<Void>

    public init(maxPending: Int = 50_000, debounce: Double = 0.5) {
        self.maxPending = maxPending
        self.debounce = debounce
        (wakeups, wakeup) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    public func push(_ input: ControllerInput, now: Double = Monotonic.now()) {
        state.withLock { s in
            s.events += 1
            if s.oldest == nil { s.oldest = now }
            switch input {
            case .statusUpdate(let u):
                if let i = s.statusIndex[u.taskId] {
                    s.statuses[i] = u
                } else if s.statuses.count < maxPending {
                    s.statusIndex[u.taskId] = s.statuses.count
                    s.statuses.append(u)
                } else {
                    s.dropped += s.statuses.count
                    s.statuses.removeAll()
                    s.statusIndex.removeAll()
                    s.resync = s.resync ?? "event flood: more than \(maxPending) tasks changed in one batch"
                }
            case let .healthChanged(appId, instanceId, alive):
                let key = appId + " " + instanceId
                if s.health[key] == nil {
                    guard s.healthOrder.count < maxPending else {
                        s.resync = s.resync ?? "event flood: more than \(maxPending) health changes in one batch"
                        break
                    }
                    s.healthOrder.append(key)
                }
                s.health[key] = (appId, instanceId, alive)
            case .structureChanged(let type):
                if s.resyncAt == nil {
                    s.resyncAt = now + debounce
                    s.resyncAtReason = "\(type) event"
                }
            case .connected(let url):
                s.resync = s.resync ?? "event stream connected to \(url)"
            case .resync(let reason):
                s.resync = s.resync ?? reason
            case .reapply(let reason):
                s.reapply = s.reapply ?? reason
            case .disconnected:
                break
            }
        }
        wakeup.yield()
    }

    /// Takes everything due now. A debounced resync becomes due at its time.
    public func drain(now: Double = Monotonic.now()) -> Batch {
        state.withLock { s in
            var b = Batch()
            if let at = s.resyncAt, at <= now {
                s.resync = s.resync ?? s.resyncAtReason
                s.resyncAt = nil
                s.resyncAtReason = nil
            }
            b.statusUpdates = s.statuses
            b.healthChanges = s.healthOrder.compactMap { s.health[$0] }
            b.resync = s.resync
            b.reapply = s.reapply
            b.events = s.events
            b.oldestEventAt = s.oldest
            s.statuses.removeAll(keepingCapacity: false)
            s.statusIndex.removeAll(keepingCapacity: false)
            s.health.removeAll(keepingCapacity: false)
            s.healthOrder.removeAll(keepingCapacity: false)
            s.resync = nil
            s.reapply = nil
            s.events = 0
            s.oldest = nil
            return b
        }
    }

    /// When the next debounced resync is due, if any.
    public var nextDeadline: Double? { state.withLock { $0.resyncAt } }

    /// Wakes the applier without input (timers).
    public func poke() { wakeup.yield() }

    public func finish() { wakeup.finish() }
}
