#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import ServiceRouterCore
import ServiceRouterIO
import Synchronization

/// One app as the simulator holds it.
struct AppRecord: Sendable, Equatable {
    var spec: AppSpec
    /// Service ports by port index (allocated where the spec said 0).
    var servicePorts: [Int]
    var version: String
    var lastScalingAt: String
    var lastConfigChangeAt: String
    /// DELETE was accepted: hidden from /v2/apps, its tasks are being killed.
    var deleting = false
    var deploymentIDs: [String] = []
    var lastTaskFailure: JSONValue?

    var id: String { spec.id }
    var hasHealthChecks: Bool { !spec.healthChecks.isEmpty }
}

struct HealthRecord: Sendable {
    var alive: Bool
    var consecutiveFailures: Int
    var firstSuccess: String?
    var lastSuccess: String?
    var lastFailure: String?
    var lastFailureCause: String?
}

/// One task (instance) as the simulator holds it.
struct TaskRecord: Sendable {
    let id: String
    let instanceId: String
    let appId: String
    let slaveId: String
    let host: String
    let ipAddress: String
    let ports: [Int]
    /// Where the task's process listens (host port, or container port on its own IP).
    let listenPorts: [Int]
    let servicePorts: [Int]
    var state: TaskState
    let stagedAt: String
    var startedAt: String?
    let version: String
    /// The app's `lastConfigChangeAt` when launched: tasks of an older config get replaced.
    let configVersion: String
    /// What the task's health endpoint answers (set on purpose by tests).
    var wantsHealthy = true
    /// nil until the first health check result.
    var health: HealthRecord?
    /// false once the process died without Marathon noticing.
    var processAlive = true
    var endpoints: [TaskServerPool.Token]
    let sequence: Int
    /// 127.0.0.x last octet for IP-per-task tasks (freed when the task ends).
    let containerIPOctet: Int?
}

struct DeploymentRecord: Sendable {
    let id: String
    let version: String
    let appId: String
    let action: String
}

/// Everything the simulator knows; a value, so readers copy it out of the lock cheaply.
struct EngineState: Sendable {
    var apps: [String: AppRecord] = [:]
    var tasks = TaskTable()
    /// Task ids of each app in launch order.
    var tasksByApp: [String: [String]] = [:]
    var deployments: [String: DeploymentRecord] = [:]
    var deploymentOrder: [String] = []
    var usedServicePorts: Set<Int> = []
    var nextServicePort = 10000
    var usedContainerOctets: Set<Int> = []
    var sequence = 0
    /// Marathon right after a leader failover: no health results for anyone.
    var healthResultsHidden = false
    /// Apps whose tasks or deployments must be looked at again.
    var dirtyApps: [String] = []

    func tasks(of appId: String) -> [TaskRecord] {
        (tasksByApp[appId] ?? []).compactMap { tasks[$0] }
    }

    mutating func markDirty(_ appId: String) {
        if !dirtyApps.contains(appId) { dirtyApps.append(appId) }
    }
}

/// The tasks by id, and a revision per app that every write of one of its tasks advances:
/// `AppListingCache` reuses an app's JSON while the revision (and the app record) stay the same,
/// without comparing 10,000 task records. The dictionary is private(set), so no write can miss
/// the revision.
struct TaskTable: Sendable {
    private(set) var byId: [String: TaskRecord] = [:]
    /// Taken from one counter, so a revision is never seen twice, even for an app id deleted
    /// and created again.
    private(set) var revisions: [String: UInt64] = [:]
    private var lastRevision: UInt64 = 0

    subscript(id: String) -> TaskRecord? {
        get { byId[id] }
        set {
            if let old = byId[id] { advance(old.appId) }
            if let newValue { advance(newValue.appId) }
            byId[id] = newValue
        }
    }

    @discardableResult
    mutating func removeValue(forKey id: String) -> TaskRecord? {
        guard let old = byId.removeValue(forKey: id) else { return nil }
        advance(old.appId)
        return old
    }

    var count: Int { byId.count }

    /// 0 for an app none of whose tasks was ever written.
    func revision(of appId: String) -> UInt64 { revisions[appId] ?? 0 }

    private mutating func advance(_ appId: String) {
        lastRevision += 1
        revisions[appId] = lastRevision
    }
}

/// A REST-level failure with Marathon's status and message.
public struct SimulatorError: Error, Sendable, CustomStringConvertible {
    public var status: Int
    public var message: String
    var extra: JSONObject = [:]

    public init(status: Int, message: String) {
        self.status = status
        self.message = message
    }

    init(status: Int, message: String, extra: JSONObject) {
        self.status = status
        self.message = message
        self.extra = extra
    }

    public var description: String { "\(status): \(message)" }

    var json: JSONValue {
        var o: JSONObject = ["message": .string(message)]
        for (k, v) in extra.pairs { o[k] = v }
        return .object(o)
    }

    static func appNotFound(_ id: String) -> SimulatorError {
        SimulatorError(status: 404, message: "App '\(id)' does not exist")
    }

    static func taskNotFound(_ id: String) -> SimulatorError {
        SimulatorError(status: 404, message: "Task '\(id)' does not exist")
    }

    static func invalid(_ e: AppValidationError) -> SimulatorError {
        SimulatorError(status: 422, message: "Object is not valid",
                       extra: ["details": [["path": .string(e.path), "errors": .strings(e.errors)]]])
    }
}

/// Timestamps as Marathon writes them (RFC 3339, milliseconds, Z). Versions are strictly
/// increasing: two changes in the same millisecond still get different versions, which the
/// simulator relies on to tell old tasks from new ones.
final class VersionClock: Sendable {
    private let last = Mutex<Int64>(0)

    static func nowMilliseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    static func timestamp() -> String { format(milliseconds: nowMilliseconds()) }

    /// Integer arithmetic only: going through a Double can turn .123 into .122 and give two
    /// different milliseconds the same text.
    static func format(milliseconds ms: Int64) -> String {
        var secs = time_t(ms / 1000)
        var t = tm()
        gmtime_r(&secs, &t)
        func pad(_ v: Int32, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(t.tm_year + 1900, 4))-\(pad(t.tm_mon + 1, 2))-\(pad(t.tm_mday, 2))T"
            + "\(pad(t.tm_hour, 2)):\(pad(t.tm_min, 2)):\(pad(t.tm_sec, 2)).\(pad(Int32(ms % 1000), 3))Z"
    }

    func next() -> String {
        let ms = last.withLock { last -> Int64 in
            last = max(Self.nowMilliseconds(), last + 1)
            return last
        }
        return Self.format(milliseconds: ms)
    }
}
