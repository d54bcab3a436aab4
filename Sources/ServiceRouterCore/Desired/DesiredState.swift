/// What HAProxy should look like: one `Service` (frontend + backend) per routed service port, each
/// with the tasks that should receive traffic. Built from Marathon's apps by `DesiredStateBuilder`.
public struct DesiredState: Sendable, Equatable {
    /// Sorted by backend name.
    public var services: [Service]
    /// Why apps, ports or tasks were left out (bad labels, conflicts, unresolvable hosts...).
    public var diagnostics: [Diagnostic]

    public init(services: [Service] = [], diagnostics: [Diagnostic] = []) {
        self.services = services
        self.diagnostics = diagnostics
    }

    public func service(named backend: ProxyName) -> Service? {
        services.first { $0.backend == backend }
    }

    public var serverCount: Int { services.reduce(0) { $0 + $1.servers.count } }
}

public struct Service: Sendable, Equatable {
    public var appId: String
    public var portIndex: Int
    public var servicePort: Port
    /// Backend and frontend name, marathon-lb compatible: `<app id without leading />, / → _>_<port>`.
    public var backend: ProxyName
    public var mode: ServiceLabels.Mode
    public var labels: ServiceLabels
    public var healthCheck: HealthCheckSpec?
    /// The slot count this service needs at least: `max(--min-slots, peak + max(2, peak / 4))` with
    /// `peak = ceil(instances × (1 + maximumOverCapacity))`, so a rolling deploy, with tasks draining
    /// while their replacements start, fits without a reload.
    public var minimumSlots: Int
    /// Sorted by task id.
    public var servers: [DesiredServer]
    /// The raw app labels (template overrides read them).
    public var appLabels: [String: String]
    /// For the "oldest claim wins" conflict rule.
    public var configChangedAt: String?
    /// A deployment group's apps (`HAPROXY_DEPLOYMENT_GROUP`), oldest first, whose tasks this
    /// service holds; empty for an app of its own (`appId` is then the Marathon app).
    public var deploymentMembers: [String] = []

    public var vhosts: [HostName] { labels.vhosts }
}

/// HAProxy health checking derived from the app's Marathon health check for this port.
public struct HealthCheckSpec: Sendable, Equatable {
    public enum Kind: Sendable, Equatable { case http(path: String), tcp }
    public var kind: Kind
    public var intervalSeconds: Int
    public var timeoutSeconds: Int
    /// marathon-lb: `maxConsecutiveFailures + 1`.
    public var fall: Int
    /// An explicit check port (Marathon `port` field), if any.
    public var port: Port?
    public var source: MarathonHealthCheck
}

public struct DesiredServer: Sendable, Equatable, Hashable {
    public var taskId: String
    public var endpoint: Endpoint
    public var routing: Routing
    /// The port HAProxy health-checks (`HAPROXY_{n}_BACKEND_HEALTHCHECK_PORT_INDEX`), when it is
    /// not the serving port.
    public var checkPort: Port?

    public enum Routing: Sendable, Equatable, Hashable {
        /// Receives new requests.
        case serve
        /// Keeps serving connections in flight, gets no new ones (`TASK_KILLING`, unreachable).
        case drain
    }

    public init(taskId: String, endpoint: Endpoint, routing: Routing = .serve, checkPort: Port? = nil) {
        self.taskId = taskId
        self.endpoint = endpoint
        self.routing = routing
        self.checkPort = checkPort
    }
}

public struct Diagnostic: Sendable, Equatable, CustomStringConvertible {
    public enum Level: Sendable, Equatable { case info, warning, error }
    public enum Kind: String, Sendable, Equatable {
        case badApp = "bad_app", badLabel = "bad_label", conflict, unresolvable, skippedTask = "skipped_task", notInGroup = "not_in_group", disabled
        /// New labels are invalid; the app runs on its last good ones.
        case staleLabels = "stale_labels"
    }
    public var level: Level
    public var kind: Kind
    public var appId: String?
    public var message: String

    public init(_ level: Level, _ kind: Kind, appId: String?, _ message: String) {
        self.level = level
        self.kind = kind
        self.appId = appId
        self.message = message
    }

    public var description: String { (appId.map { "\($0): " } ?? "") + message }
}
