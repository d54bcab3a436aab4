/// Marathon's view of an application, reduced to what routing needs. Decoded leniently from every
/// Marathon 1.x shape (see `MarathonDecoding.swift`); unknown fields are ignored.
public struct MarathonApp: Sendable, Equatable {
    public var id: String
    public var labels: [String: String]
    public var instances: Int
    public var version: String?
    /// `versionInfo.lastConfigChangeAt`, else `version`: used to order apps that claim the same port.
    public var configChangedAt: String?
    /// Service ports by port index, from `container.portMappings[].servicePort` (bridge),
    /// `portDefinitions[].port`, or the deprecated `ports`.
    public var servicePorts: [Int]
    /// Container ports by port index, for IP-per-task networking.
    public var containerPorts: [Int]
    public var networking: Networking
    public var healthChecks: [MarathonHealthCheck]
    public var maximumOverCapacity: Double
    public var tasks: [MarathonTask]

    public enum Networking: String, Sendable, Equatable {
        /// Tasks are reached on their agent's host and host ports (`host` or `container/bridge`).
        case host
        /// IP-per-task: tasks are reached on their own IP and the container ports.
        case ipPerTask
    }

    public init(id: String, labels: [String: String] = [:], instances: Int = 1, version: String? = nil,
                configChangedAt: String? = nil, servicePorts: [Int] = [], containerPorts: [Int] = [],
                networking: Networking = .host, healthChecks: [MarathonHealthCheck] = [],
                maximumOverCapacity: Double = 1, tasks: [MarathonTask] = []) {
        self.id = id
        self.labels = labels
        self.instances = instances
        self.version = version
        self.configChangedAt = configChangedAt
        self.servicePorts = servicePorts
        self.containerPorts = containerPorts
        self.networking = networking
        self.healthChecks = healthChecks
        self.maximumOverCapacity = maximumOverCapacity
        self.tasks = tasks
    }
}

public struct MarathonTask: Sendable, Equatable {
    public var id: String
    public var appId: String
    public var host: String
    /// Host ports by port index.
    public var ports: [Int]
    public var ipAddresses: [String]
    /// nil when the payload has no `state` (Marathon before 1.0 did not report it).
    public var state: TaskState?
    // Marathon's `startedAt` and `version` are not read: nothing here depends on them, and at
    // 10,000 tasks two timestamps per task held in every model cost megabytes.
    /// nil when the payload has no `healthCheckResults` (or an empty list): "unknown", not "unhealthy".
    public var healthAlive: [Bool]?

    public init(id: String, appId: String, host: String, ports: [Int] = [], ipAddresses: [String] = [],
                state: TaskState? = .running, healthAlive: [Bool]? = nil) {
        self.id = id
        self.appId = appId
        self.host = host
        self.ports = ports
        self.ipAddresses = ipAddresses
        self.state = state
        self.healthAlive = healthAlive
    }

    /// Marathon 1.5+ task ids are `<app>.instance-<uuid>._app.<n>`; health events name the instance
    /// (`<app>.marathon-<uuid>` in results, `<app>.instance-<uuid>` in events). This returns the uuid
    /// part both share, so a health event can find its task whatever the id generation.
    public var instanceKey: String { Self.instanceKey(of: id) }

    public static func instanceKey(of id: String) -> String {
        var s = Substring(id)
        if let r = s.range(ofLiteral: "._app.") { s = s[..<r.lowerBound] }
        guard let dot = s.lastIndex(of: ".") else { return String(s) }
        var tail = s[s.index(after: dot)...]
        for prefix in ["instance-", "marathon-"] where tail.hasPrefix(prefix) {
            tail = tail.dropFirst(prefix.count)
        }
        return String(s[..<dot]) + "." + tail
    }
}

public enum TaskState: String, Sendable, Equatable, CaseIterable {
    case staging = "TASK_STAGING"
    case starting = "TASK_STARTING"
    case running = "TASK_RUNNING"
    case killing = "TASK_KILLING"
    case finished = "TASK_FINISHED"
    case failed = "TASK_FAILED"
    case killed = "TASK_KILLED"
    case lost = "TASK_LOST"
    case error = "TASK_ERROR"
    case dropped = "TASK_DROPPED"
    case gone = "TASK_GONE"
    case goneByOperator = "TASK_GONE_BY_OPERATOR"
    case unreachable = "TASK_UNREACHABLE"
    case unknown = "TASK_UNKNOWN"

    /// What a task in this state gets from the load balancer. This is the documented rule
    /// (docs/architecture.md, "Which tasks get traffic"):
    public var routing: TaskRouting {
        switch self {
        case .running: .serve
        // Marathon's signal that the task still serves for its kill grace period.
        case .killing: .drain
        // The agent is partitioned (LOST is what Marathon before 1.4 called it): the task may
        // still be alive but new requests would likely fail; existing connections finish.
        case .unreachable, .lost: .drain
        // Not started yet: no traffic until TASK_RUNNING.
        case .staging, .starting: .none
        // Terminal, or unknown to Mesos: the slot is freed.
        case .finished, .failed, .killed, .error, .dropped, .gone, .goneByOperator, .unknown: .none
        }
    }

    public var isTerminal: Bool {
        switch self {
        case .finished, .failed, .killed, .error, .dropped, .gone, .goneByOperator, .unknown: true
        default: false
        }
    }
}

public enum TaskRouting: Sendable, Equatable {
    /// Receives new requests.
    case serve
    /// Keeps its slot for connections in flight; no new requests.
    case drain
    /// No slot.
    case none
}

public struct MarathonHealthCheck: Sendable, Equatable {
    public enum CheckProtocol: String, Sendable, Equatable {
        case http = "HTTP", https = "HTTPS", tcp = "TCP", command = "COMMAND"
        case mesosHTTP = "MESOS_HTTP", mesosHTTPS = "MESOS_HTTPS", mesosTCP = "MESOS_TCP"
        case other = "OTHER"

        public var isHTTP: Bool { self == .http || self == .mesosHTTP }
        public var isTCP: Bool { self == .tcp || self == .mesosTCP }
    }

    public var proto: CheckProtocol
    public var path: String?
    public var portIndex: Int?
    public var port: Int?
    public var intervalSeconds: Int
    public var timeoutSeconds: Int
    public var maxConsecutiveFailures: Int
    public var gracePeriodSeconds: Int

    public init(proto: CheckProtocol, path: String? = nil, portIndex: Int? = 0, port: Int? = nil,
                intervalSeconds: Int = 60, timeoutSeconds: Int = 20, maxConsecutiveFailures: Int = 3,
                gracePeriodSeconds: Int = 300) {
        self.proto = proto
        self.path = path
        self.portIndex = portIndex
        self.port = port
        self.intervalSeconds = intervalSeconds
        self.timeoutSeconds = timeoutSeconds
        self.maxConsecutiveFailures = maxConsecutiveFailures
        self.gracePeriodSeconds = gracePeriodSeconds
    }
}
