import ServiceRouterCore
import ServiceRouterIO
import Synchronization

/// What the controller reacts to, whatever its source (event stream, timers, signals).
public enum ControllerInput: Sendable, Equatable {
    /// The event stream (re)connected: events may have been missed, resync.
    case connected(String)
    case disconnected(String)
    case statusUpdate(StatusUpdate)
    case healthChanged(HealthChange)
    /// An event that may change frontends (`api_post_event`, `deployment_*`, ...): debounced resync.
    case structureChanged(String)
    /// SIGHUP, the resync timer, or a fast-path miss: resync now.
    case resync(String)
    /// HAProxy restarted or changed behind our back: re-apply the current model (no fetch).
    case reapply(String)
}

/// A bounded, coalescing queue between the inputs and the controller's loop. A burst of events
/// becomes one batch; for each task only the event the model would keep survives (the newest,
/// by the model's ordering rule), for each instance the last health; memory is bounded whatever
/// the event rate: past `maxPending` distinct tasks the batch is dropped and replaced by a
/// resync, which is the truth anyway.
public final class InputQueue: Sendable {
    public struct Batch: Sendable, Equatable {
        /// Task and health events, in arrival order.
        public var events: [ClusterModel.Event] = []
        /// Resync now (reason).
        public var resync: String?
        /// Re-apply the model without fetching (reason).
        public var reapply: String?
        /// Inputs taken, the dropped ones of a flood included.
        public var inputs = 0
        /// When the oldest event of the batch arrived.
        public var oldestEventAt: Double?

        public var isEmpty: Bool { events.isEmpty && resync == nil && reapply == nil }
    }

    private struct State {
        var events: [ClusterModel.Event] = []
        /// Position in `events` of each task's (or instance's) event.
        var index: [String: Int] = [:]
        var resync: String?
        var reapply: String?
        /// A structural event asks for a resync at this time; more events in the window do not
        /// move it (debounce with a bounded delay).
        var resyncAt: Double?
        var resyncAtReason: String?
        var inputs = 0
        var oldest: Double?
    }

    private let state = Mutex(State())
    private let maxPending: Int
    public let debounce: Double
    private let time: any TimeSource
    let signal = WakeSignal()

    public init(maxPending: Int = 50_000, debounce: Double = 0.05, time: any TimeSource = SystemTime()) {
        self.maxPending = maxPending
        self.debounce = debounce
        self.time = time
    }

    public func push(_ input: ControllerInput) {
        let now = time.now()
        state.withLock { s in
            s.inputs += 1
            switch input {
            case .statusUpdate(let u): Self.append(.status(u), to: &s, now: now, max: maxPending)
            case .healthChanged(let h): Self.append(.health(h), to: &s, now: now, max: maxPending)
            case .structureChanged(let type):
                if s.resyncAt == nil {
                    s.resyncAt = now + debounce
                    s.resyncAtReason = "\(type) event"
                }
            case .connected(let url): s.resync = s.resync ?? "event stream connected to \(url)"
            case .resync(let reason): s.resync = s.resync ?? reason
            case .reapply(let reason): s.reapply = s.reapply ?? reason
            case .disconnected: break
            }
        }
        signal.fire()
    }

    private static func append(_ event: ClusterModel.Event, to s: inout State, now: Double, max: Int) {
        if s.oldest == nil { s.oldest = now }
        let key: String
        switch event {
        case .status(let u): key = u.taskId
        case .health(let h): key = "health " + h.appId + " " + h.instanceId
        }
        if let i = s.index[key] {
            if ClusterModel.supersedes(event, s.events[i]) { s.events[i] = event }
            return
        }
        guard s.events.count < max else {
            s.events = []
            s.index = [:]
            s.resync = s.resync ?? "event flood: more than \(max) tasks changed in one batch"
            return
        }
        s.index[key] = s.events.count
        s.events.append(event)
    }

    /// Takes everything due now. A debounced resync becomes due at its time.
    public func drain() -> Batch {
        let now = time.now()
        return state.withLock { s in
            var b = Batch()
            if let at = s.resyncAt, at <= now {
                s.resync = s.resync ?? s.resyncAtReason
                s.resyncAt = nil
                s.resyncAtReason = nil
            }
            b.events = s.events
            b.resync = s.resync
            b.reapply = s.reapply
            b.inputs = s.inputs
            b.oldestEventAt = s.oldest
            let resyncAt = s.resyncAt, reason = s.resyncAtReason
            s = State()
            s.resyncAt = resyncAt
            s.resyncAtReason = reason
            return b
        }
    }

    /// A snapshot fetch's answer, delivered by the task that fetched it.
    public enum Fetched: Sendable, Equatable {
        case snapshot(AppsSnapshot)
        case failed(String)
    }

    private let fetched = Mutex<Fetched?>(nil)

    func deliver(_ result: Fetched) {
        fetched.withLock { $0 = result }
        signal.fire()
    }

    func takeFetched() -> Fetched? { fetched.withLock { f in defer { f = nil }; return f } }

    /// When the next debounced resync is due, if any.
    public var nextDeadline: Double? { state.withLock { $0.resyncAt } }

    /// Nothing waits to be taken: no input, no fetch answer, no wake-up pending (tests use it to
    /// know the loop has seen everything pushed so far).
    public var isQuiet: Bool {
        let empty = state.withLock { $0.events.isEmpty && $0.resync == nil && $0.reapply == nil && $0.inputs == 0 }
        return empty && fetched.withLock { $0 == nil } && !signal.isPending
    }

    /// Wakes the loop without input.
    public func poke() { signal.fire() }
}

/// A wake-up the loop waits on: `fire` from any thread; one pending wake-up is kept when nobody
/// waits, so none is lost. Cancellable (the loop races it against its next deadline).
final class WakeSignal: Sendable {
    private struct State {
        var pending = false
        var waiter: (id: Int, continuation: CheckedContinuation<Void, Never>)?
        var nextID = 0
    }
    private let state = Mutex(State())

    var isPending: Bool { state.withLock { $0.pending } }

    func fire() {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            guard let w = s.waiter else {
                s.pending = true
                return nil
            }
            s.waiter = nil
            return w.continuation
        }
        waiter?.resume()
    }

    func wait() async {
        let id = state.withLock { s -> Int in
            s.nextID += 1
            return s.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { s -> Bool in
                    if s.pending || Task.isCancelled {
                        s.pending = false
                        return true
                    }
                    s.waiter = (id, c)
                    return false
                }
                if resumeNow { c.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
                guard let w = s.waiter, w.id == id else { return nil }
                s.waiter = nil
                return w.continuation
            }
            waiter?.resume()
        }
    }

    /// Waits for `fire` or until `deadline` on `time`, whichever comes first.
    func wait(until deadline: Double?, time: any TimeSource) async {
        guard let deadline else { return await wait() }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.wait() }
            group.addTask { try? await time.sleep(until: deadline) }
            await group.next()
            group.cancelAll()
        }
    }
}
