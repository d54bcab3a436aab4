/// Marathon's apps as the controller knows them: the last snapshot from `/v2/apps`, with the task
/// and health events of the stream applied on top. Pure: the controller feeds it events and
/// snapshots, the planners read it.
///
/// Event order (Marathon does not guarantee it): an event never undoes a newer one.
/// - A task that reached a terminal state stays gone: Mesos never reuses a task id, so a later
///   `TASK_RUNNING` for it is a stale event. The tombstone also drops the task from a snapshot that
///   was taken before Marathon knew (bounded in number and age).
/// - Between two events of the same task that both carry a timestamp, the older is ignored.
/// - Without timestamps, a task's state only moves forward: staging → starting → running ⇄
///   unreachable/lost → killing → terminal.
///
/// A snapshot fetched while events keep arriving (`beginSnapshot` … `replace`) is taken as the
/// base, and every event that arrived meanwhile is applied on top of it again, in order: the
/// answer may predate them, and nothing is lost or reordered.
public struct ClusterModel: Sendable {
    public private(set) var apps: [String: MarathonApp] = [:]
    /// Whether a snapshot was ever loaded. Without one the model is empty, not "no apps":
    /// applying it would empty HAProxy (e.g. a controller restarting while Marathon is down).
    public private(set) var hasSnapshot = false
    /// Last known health by task id: Marathon leader failover empties `healthCheckResults` for a
    /// while, and that must not empty a backend.
    public private(set) var health: [String: Bool] = [:]

    /// Newest event time applied per task (milliseconds since the epoch).
    private var eventTimes: [String: Int64] = [:]
    /// Tasks seen terminating, with the sequence number of that event (for eviction by age).
    private var tombstones: [String: Int] = [:]
    private var sequence = 0
    /// Events applied since `beginSnapshot`, to replay over its answer; nil: not recording.
    private var journal: [Event]?
    private var journalOverflowed = false

    public let maxTombstones: Int
    public let maxJournal: Int

    public init(maxTombstones: Int = 100_000, maxJournal: Int = 200_000) {
        self.maxTombstones = maxTombstones
        self.maxJournal = maxJournal
    }

    public enum Event: Sendable, Equatable {
        case status(StatusUpdate)
        case health(HealthChange)
    }

    /// What applying an event did.
    public enum Outcome: Sendable, Equatable {
        /// The app's tasks changed: its backends need the fast path.
        case changed(appId: String)
        /// Nothing to do (the same state again).
        case unchanged
        /// Older than what the model has for this task; ignored.
        case stale(String)
        /// The app (or, for health, the instance) is not in the model: a snapshot is needed.
        case unknown(appId: String)
    }

    /// The apps by id order (what a full pass builds from).
    public var sortedApps: [MarathonApp] { apps.values.sorted { $0.id < $1.id } }

    // MARK: - Snapshots

    /// Starts recording events: the snapshot being fetched may not reflect them.
    public mutating func beginSnapshot() {
        journal = []
        journalOverflowed = false
    }

    /// Stops recording after a fetch failed (the model keeps its state).
    public mutating func abandonSnapshot() {
        journal = nil
        journalOverflowed = false
    }

    /// Replaces the model with a snapshot and re-applies the events recorded since
    /// `beginSnapshot`. Returns the duplicate app ids that were dropped (the first wins), and
    /// whether another snapshot should follow: the journal overflowed, or a replayed event names
    /// an app the snapshot does not have yet (created after it was taken).
    @discardableResult
    public mutating func replace(with snapshot: [MarathonApp]) -> (duplicates: [String], needsAnotherSnapshot: Bool) {
        let replay = journal ?? []
        let overflowed = journalOverflowed
        journal = nil
        journalOverflowed = false
        hasSnapshot = true
        var byId = [String: MarathonApp](minimumCapacity: snapshot.count)
        var duplicates: [String] = []
        for var app in snapshot {
            guard byId[app.id] == nil else {
                duplicates.append(app.id)
                continue
            }
            if !tombstones.isEmpty, app.tasks.contains(where: { tombstones[$0.id] != nil }) {
                app.tasks.removeAll { tombstones[$0.id] != nil }
            }
            // An unchanged app keeps the model's copy: the snapshot's is freed with it, and an
            // idle resync holds one model, not two.
            if let current = apps[app.id], current == app { byId[app.id] = current } else { byId[app.id] = app }
        }
        apps = byId
        var unknown = false
        for event in replay {
            if case .unknown = apply(event, recording: false) { unknown = true }
        }
        // Memory is bounded by what the model holds: forget tasks that are gone.
        var known = Set<String>(minimumCapacity: health.count)
        for app in apps.values { for t in app.tasks { known.insert(t.id) } }
        health = health.filter { known.contains($0.key) }
        eventTimes = eventTimes.filter { known.contains($0.key) }
        return (duplicates, overflowed || unknown)
    }

    // MARK: - Events

    public mutating func apply(_ event: Event) -> Outcome { apply(event, recording: true) }

    private mutating func apply(_ event: Event, recording: Bool) -> Outcome {
        if recording, journal != nil {
            if journal!.count < maxJournal { journal!.append(event) } else { journalOverflowed = true }
        }
        switch event {
        case .status(let u): return apply(u)
        case .health(let h): return apply(h)
        }
    }

    private mutating func apply(_ u: StatusUpdate) -> Outcome {
        if tombstones[u.taskId] != nil {
            return u.taskStatus.isTerminal ? .unchanged : .stale("task \(u.taskId) already terminated; \(u.taskStatus.rawValue) ignored")
        }
        let time = u.timestamp.flatMap(Self.milliseconds)
        if let time, let newest = eventTimes[u.taskId], time < newest {
            return .stale("\(u.taskStatus.rawValue) for task \(u.taskId) is older than the last event applied")
        }
        if u.taskStatus.isTerminal { tombstone(u.taskId) }
        guard var app = apps[u.appId] else { return .unknown(appId: u.appId) }
        if let time { eventTimes[u.taskId] = time }
        if let i = app.tasks.firstIndex(where: { $0.id == u.taskId }) {
            if u.taskStatus.isTerminal {
                app.tasks.remove(at: i)
                health[u.taskId] = nil
                eventTimes[u.taskId] = nil
            } else {
                if time == nil, let current = app.tasks[i].state, u.taskStatus.progress < current.progress {
                    return .stale("\(u.taskStatus.rawValue) for task \(u.taskId) would move it back from \(current.rawValue)")
                }
                var task = app.tasks[i]
                task.state = u.taskStatus
                if !u.host.isEmpty { task.host = u.host }
                if !u.ports.isEmpty { task.ports = u.ports }
                if !u.ipAddresses.isEmpty { task.ipAddresses = u.ipAddresses }
                guard task != app.tasks[i] else { return .unchanged }
                app.tasks[i] = task
            }
        } else if !u.taskStatus.isTerminal {
            app.tasks.append(MarathonTask(id: u.taskId, appId: u.appId, host: u.host, ports: u.ports,
                                          ipAddresses: u.ipAddresses, state: u.taskStatus))
        } else {
            return .unchanged
        }
        apps[u.appId] = app
        return .changed(appId: u.appId)
    }

    private mutating func apply(_ h: HealthChange) -> Outcome {
        guard var app = apps[h.appId] else { return .unknown(appId: h.appId) }
        let key = MarathonTask.instanceKey(of: h.instanceId)
        guard let i = app.tasks.firstIndex(where: { $0.instanceKey == key }) else { return .unknown(appId: h.appId) }
        let id = app.tasks[i].id
        health[id] = h.alive
        guard app.tasks[i].healthAlive != [h.alive] else { return .unchanged }
        app.tasks[i].healthAlive = [h.alive]
        apps[h.appId] = app
        return .changed(appId: h.appId)
    }

    private mutating func tombstone(_ taskId: String) {
        sequence += 1
        tombstones[taskId] = sequence
        if tombstones.count > maxTombstones {
            // Drop the older half: by then every snapshot has long stopped listing them.
            let cutoff = sequence - maxTombstones / 2
            tombstones = tombstones.filter { $0.value > cutoff }
        }
    }

    // MARK: - Health memory

    /// Remembers health observed in a payload or inferred by a pass (tasks it serves).
    public mutating func learn(health observations: [String: Bool], overwrite: Bool = true) {
        for (id, alive) in observations where overwrite || health[id] == nil { health[id] = alive }
    }

    /// An ISO-8601 UTC timestamp as Marathon writes it (`2014-03-01T23:29:30.158Z`, fraction and
    /// `Z` optional) in milliseconds since the epoch; nil for anything else.
    public static func milliseconds(_ text: String) -> Int64? {
        let b = Array(text.utf8)
        func number(_ from: Int, _ count: Int) -> Int64? {
            guard from + count <= b.count else { return nil }
            var v: Int64 = 0
            for i in from..<(from + count) {
                guard b[i] >= 0x30 && b[i] <= 0x39 else { return nil }
                v = v * 10 + Int64(b[i] - 0x30)
            }
            return v
        }
        guard b.count >= 19, b[4] == 0x2D, b[7] == 0x2D, b[10] == 0x54 || b[10] == 0x20, b[13] == 0x3A, b[16] == 0x3A,
              let year = number(0, 4), let month = number(5, 2), let day = number(8, 2),
              let hour = number(11, 2), let minute = number(14, 2), let second = number(17, 2),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61 else { return nil }
        var i = 19
        var millis: Int64 = 0
        if i < b.count, b[i] == 0x2E {
            i += 1
            var digits = 0
            while i < b.count, b[i] >= 0x30 && b[i] <= 0x39 {
                if digits < 3 { millis = millis * 10 + Int64(b[i] - 0x30) }
                digits += 1
                i += 1
            }
            guard digits > 0 else { return nil }
            if digits < 3 { for _ in digits..<3 { millis *= 10 } }
        }
        if i < b.count, b[i] == 0x5A { i += 1 }
        guard i == b.count else { return nil }
        // Days from the civil date (Howard Hinnant's algorithm).
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis
    }
}

extension TaskState {
    /// How far along its life a task is, for ordering events without timestamps. Running,
    /// unreachable and lost are one rank: an unreachable agent can come back.
    public var progress: Int {
        switch self {
        case .staging: 0
        case .starting: 1
        case .running, .unreachable, .lost: 2
        case .killing: 3
        case .finished, .failed, .killed, .error, .dropped, .gone, .goneByOperator, .unknown: 4
        }
    }
}

extension ClusterModel {
    /// Whether `new` replaces `old` (same task, or same instance's health) when a burst is
    /// coalesced: by the same rule the model applies, so coalescing never keeps an event the
    /// model would have ignored.
    public static func supersedes(_ new: Event, _ old: Event) -> Bool {
        guard case .status(let n) = new, case .status(let o) = old else { return true }
        if o.taskStatus.isTerminal { return false }
        if let nt = n.timestamp.flatMap(milliseconds), let ot = o.timestamp.flatMap(milliseconds) { return nt >= ot }
        if n.timestamp == nil, n.taskStatus.progress < o.taskStatus.progress { return false }
        return true
    }
}
