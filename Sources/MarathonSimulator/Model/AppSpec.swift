import ServiceRouterCore

/// An app definition as a client gives it (POST/PUT /v2/apps, or `createApp` in tests).
/// Reads every Marathon 1.x input shape (1.5+ `networks` + `container.portMappings`, older
/// `container.docker.network` + `docker.portMappings`, `ports`, `ipAddress`); the simulator always
/// answers in the 1.5+ shape, as Marathon 1.5+ does.
public struct AppSpec: Sendable, Equatable {
    public enum NetworkMode: String, Sendable, Equatable {
        /// Tasks listen on 127.0.0.1 and an ephemeral host port per `portDefinitions` entry.
        case host
        /// Docker bridge: tasks listen on 127.0.0.1 and an ephemeral host port per port mapping.
        case bridge = "container/bridge"
        /// IP-per-task: each task gets its own 127.0.0.x and listens on the container ports.
        case container
    }

    public struct PortDefinition: Sendable, Equatable {
        /// The service port; 0 = allocate one from 10000–20000.
        public var port: Int
        public var name: String?
        public var `protocol`: String
        public var labels: [String: String]

        public init(port: Int = 0, name: String? = nil, protocol: String = "tcp", labels: [String: String] = [:]) {
            self.port = port
            self.name = name
            self.protocol = `protocol`
            self.labels = labels
        }
    }

    public struct PortMapping: Sendable, Equatable {
        public var containerPort: Int
        public var hostPort: Int
        /// 0 = allocate one from 10000–20000.
        public var servicePort: Int
        public var name: String?
        public var `protocol`: String
        public var labels: [String: String]

        public init(containerPort: Int, hostPort: Int = 0, servicePort: Int = 0, name: String? = nil,
                    protocol: String = "tcp", labels: [String: String] = [:]) {
            self.containerPort = containerPort
            self.hostPort = hostPort
            self.servicePort = servicePort
            self.name = name
            self.protocol = `protocol`
            self.labels = labels
        }
    }

    public struct HealthCheck: Sendable, Equatable {
        public var `protocol`: String
        public var path: String?
        public var portIndex: Int?
        public var port: Int?
        public var gracePeriodSeconds: Int
        public var intervalSeconds: Int
        public var timeoutSeconds: Int
        public var maxConsecutiveFailures: Int
        public var delaySeconds: Int
        public var ignoreHttp1xx: Bool

        public init(protocol: String = "HTTP", path: String? = "/health", portIndex: Int? = 0, port: Int? = nil,
                    gracePeriodSeconds: Int = 300, intervalSeconds: Int = 60, timeoutSeconds: Int = 20,
                    maxConsecutiveFailures: Int = 3, delaySeconds: Int = 15, ignoreHttp1xx: Bool = false) {
            self.protocol = `protocol`
            self.path = path
            self.portIndex = portIndex
            self.port = port
            self.gracePeriodSeconds = gracePeriodSeconds
            self.intervalSeconds = intervalSeconds
            self.timeoutSeconds = timeoutSeconds
            self.maxConsecutiveFailures = maxConsecutiveFailures
            self.delaySeconds = delaySeconds
            self.ignoreHttp1xx = ignoreHttp1xx
        }

        var isHTTP: Bool { ["HTTP", "HTTPS", "MESOS_HTTP", "MESOS_HTTPS"].contains(self.protocol) }
    }

    public struct UpgradeStrategy: Sendable, Equatable {
        public var minimumHealthCapacity: Double
        public var maximumOverCapacity: Double
        public init(minimumHealthCapacity: Double = 1, maximumOverCapacity: Double = 1) {
            self.minimumHealthCapacity = minimumHealthCapacity
            self.maximumOverCapacity = maximumOverCapacity
        }
    }

    public var id: String
    public var instances: Int
    public var labels: [String: String]
    public var cmd: String?
    public var cpus: Double
    public var mem: Double
    public var disk: Double
    public var env: [String: String]
    public var network: NetworkMode
    /// The named network for `.container` mode.
    public var networkName: String?
    /// Used in `.host` mode.
    public var portDefinitions: [PortDefinition]
    /// Used in `.bridge` and `.container` modes.
    public var portMappings: [PortMapping]
    /// Set: the app has a DOCKER container.
    public var dockerImage: String?
    public var healthChecks: [HealthCheck]
    public var upgradeStrategy: UpgradeStrategy
    /// nil: the simulator's default kill grace period.
    public var taskKillGracePeriodSeconds: Double?
    public var acceptedResourceRoles: [String]?
    /// IP-per-task in Marathon 1.4's shape (`ipAddress.discovery.ports`, set by `parse` when a
    /// definition uses it): the app is answered in that shape, and — Marathon issue 3636 — with no
    /// service ports at all.
    public var ipAddressDiscovery = false

    public init(id: String, instances: Int = 1, labels: [String: String] = [:], cmd: String? = nil,
                cpus: Double = 0.1, mem: Double = 32, disk: Double = 0, env: [String: String] = [:],
                network: NetworkMode = .host, networkName: String? = nil,
                portDefinitions: [PortDefinition] = [PortDefinition(name: "default")],
                portMappings: [PortMapping] = [], dockerImage: String? = nil, healthChecks: [HealthCheck] = [],
                upgradeStrategy: UpgradeStrategy = UpgradeStrategy(), taskKillGracePeriodSeconds: Double? = nil,
                acceptedResourceRoles: [String]? = nil) {
        self.id = id
        self.instances = instances
        self.labels = labels
        self.cmd = cmd
        self.cpus = cpus
        self.mem = mem
        self.disk = disk
        self.env = env
        self.network = network
        self.networkName = networkName
        self.portDefinitions = portDefinitions
        self.portMappings = portMappings
        self.dockerImage = dockerImage
        self.healthChecks = healthChecks
        self.upgradeStrategy = upgradeStrategy
        self.taskKillGracePeriodSeconds = taskKillGracePeriodSeconds
        self.acceptedResourceRoles = acceptedResourceRoles
    }

    /// How many ports each task has.
    var portCount: Int { network == .host ? portDefinitions.count : portMappings.count }

    /// The path a task's health endpoint answers on (503 while its health is failed).
    var healthPath: String { healthChecks.first(where: \.isHTTP)?.path ?? "/health" }

    /// Everything except `instances`: a change here is a config change (tasks are replaced),
    /// a change of `instances` alone is a scaling.
    func sameConfig(as other: AppSpec) -> Bool {
        var a = self
        a.instances = other.instances
        return a == other
    }
}

/// A definition that Marathon would reject with 422: where and why, in Marathon's words.
public struct AppValidationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var errors: [String]

    public init(path: String, _ errors: String...) {
        self.path = path
        self.errors = errors
    }

    public var description: String { "\(path): \(errors.joined(separator: ", "))" }
}

extension AppSpec {
    /// Normalizes an app id the way Marathon does: absolute, no empty or trailing segments.
    public static func normalize(id: String) -> String {
        "/" + id.split(separator: "/").joined(separator: "/")
    }

    /// Marathon's rule for each path segment: lowercase letters, digits, '-' and '.', starting
    /// and ending with a letter or digit.
    static func validate(id: String) throws {
        let segments = id.split(separator: "/")
        guard !segments.isEmpty else { throw AppValidationError(path: "/id", "error.path.missing") }
        for segment in segments {
            let bytes = Array(segment.utf8)
            let ok = bytes.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x2E }
            let edge: (UInt8) -> Bool = { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) }
            guard ok, let f = bytes.first, let l = bytes.last, edge(f), edge(l), segment != ".", segment != ".." else {
                throw AppValidationError(path: "/id", "must fully match regular expression '^(([a-z0-9]|[a-z0-9][a-z0-9\\-]*[a-z0-9])\\.)*([a-z0-9]|[a-z0-9][a-z0-9\\-]*[a-z0-9])|(\\.|\\.\\.)$'")
            }
        }
    }

    /// A new app from a Marathon app definition (POST /v2/apps).
    public static func parse(_ json: JSONValue, idOverride: String? = nil) throws -> AppSpec {
        guard case .object(let o) = json else { throw AppValidationError(path: "/", "error.expected.jsobject") }
        guard let rawId = idOverride ?? o["id"]?.stringValue, !rawId.isEmpty else {
            throw AppValidationError(path: "/id", "error.path.missing")
        }
        let id = normalize(id: rawId)
        try validate(id: id)
        var spec = AppSpec(id: id)
        try spec.apply(o, isCreation: true)
        return spec
    }

    /// Applies the fields present in `o` (PUT /v2/apps/<id> is a partial update in Marathon).
    public mutating func apply(_ o: JSONObject, isCreation: Bool = false) throws {
        func int(_ key: String, _ v: JSONValue) throws -> Int {
            guard let i = v.intValue else { throw AppValidationError(path: "/\(key)", "error.expected.jsnumber") }
            return i
        }
        func double(_ key: String, _ v: JSONValue) throws -> Double {
            guard let d = v.doubleValue else { throw AppValidationError(path: "/\(key)", "error.expected.jsnumber") }
            return d
        }
        func stringMap(_ key: String, _ v: JSONValue) throws -> [String: String] {
            if v.isNull { return [:] }
            guard let obj = v.objectValue else { throw AppValidationError(path: "/\(key)", "error.expected.jsobject") }
            var out: [String: String] = [:]
            for (k, value) in obj.pairs {
                // env values may be secret references ({"secret": ...}); they are not strings.
                if let s = value.stringValue { out[k] = s } else if key == "labels" {
                    throw AppValidationError(path: "/\(key)/\(k)", "error.expected.jsstring")
                }
            }
            return out
        }
        if let v = o["instances"] {
            instances = try int("instances", v)
            guard instances >= 0 else { throw AppValidationError(path: "/instances", "error.min") }
        }
        if let v = o["labels"] { labels = try stringMap("labels", v) }
        if let v = o["env"] { env = try stringMap("env", v) }
        if let v = o["cmd"] { cmd = v.stringValue }
        if let v = o["cpus"] { cpus = try double("cpus", v) }
        if let v = o["mem"] { mem = try double("mem", v) }
        if let v = o["disk"] { disk = try double("disk", v) }
        if let v = o["taskKillGracePeriodSeconds"] { taskKillGracePeriodSeconds = v.isNull ? nil : try double("taskKillGracePeriodSeconds", v) }
        if let v = o["acceptedResourceRoles"] { acceptedResourceRoles = v.arrayValue?.compactMap(\.stringValue) }
        if let v = o["upgradeStrategy"], let u = v.objectValue {
            if let m = u["minimumHealthCapacity"] { upgradeStrategy.minimumHealthCapacity = try double("upgradeStrategy/minimumHealthCapacity", m) }
            if let m = u["maximumOverCapacity"] { upgradeStrategy.maximumOverCapacity = try double("upgradeStrategy/maximumOverCapacity", m) }
            guard (0...1).contains(upgradeStrategy.minimumHealthCapacity), (0...1).contains(upgradeStrategy.maximumOverCapacity) else {
                throw AppValidationError(path: "/upgradeStrategy", "is not between 0 and 1")
            }
        }
        if let v = o["healthChecks"] {
            healthChecks = try (v.arrayValue ?? []).enumerated().map { i, hc in
                guard let h = hc.objectValue else { throw AppValidationError(path: "/healthChecks(\(i))", "error.expected.jsobject") }
                var c = HealthCheck()
                if let p = h["protocol"]?.stringValue { c.protocol = p.uppercased() }
                c.path = c.isHTTP ? (h["path"]?.stringValue ?? "/") : h["path"]?.stringValue
                if let p = h["portIndex"] { c.portIndex = p.intValue }
                if let p = h["port"] { c.port = p.intValue; if c.port != nil && h["portIndex"] == nil { c.portIndex = nil } }
                if let p = h["gracePeriodSeconds"]?.intValue { c.gracePeriodSeconds = p }
                if let p = h["intervalSeconds"]?.intValue { c.intervalSeconds = p }
                if let p = h["timeoutSeconds"]?.intValue { c.timeoutSeconds = p }
                if let p = h["maxConsecutiveFailures"]?.intValue { c.maxConsecutiveFailures = p }
                if let p = h["delaySeconds"]?.intValue { c.delaySeconds = p }
                if let p = h["ignoreHttp1xx"]?.boolValue { c.ignoreHttp1xx = p }
                return c
            }
        }
        try applyNetworking(o, isCreation: isCreation)
    }

    private mutating func applyNetworking(_ o: JSONObject, isCreation: Bool) throws {
        let container = o["container"]?.objectValue
        let docker = container?["docker"]?.objectValue
        if let image = docker?["image"]?.stringValue { dockerImage = image }
        if o["container"]?.isNull == true { dockerImage = nil }

        // Which network mode: 1.5+ `networks`, else pre-1.5 docker.network / ipAddress.
        var mode: NetworkMode?
        if let networks = o["networks"]?.arrayValue, let first = networks.first?.objectValue {
            switch first["mode"]?.stringValue ?? "container" {
            case "host": mode = .host
            case "container/bridge": mode = .bridge
            case "container": mode = .container; networkName = first["name"]?.stringValue
            case let other: throw AppValidationError(path: "/networks(0)/mode", "unknown network mode \(other)")
            }
        } else if let n = docker?["network"]?.stringValue?.uppercased() {
            mode = n == "BRIDGE" ? .bridge : n == "USER" ? .container : .host
        } else if let ip = o["ipAddress"], !ip.isNull {
            mode = .container
        }
        if let mode { network = mode }

        func mappings(_ list: [JSONValue]) throws -> [PortMapping] {
            try list.enumerated().map { i, m in
                guard let p = m.objectValue else { throw AppValidationError(path: "/container/portMappings(\(i))", "error.expected.jsobject") }
                return PortMapping(containerPort: p["containerPort"]?.intValue ?? 0, hostPort: p["hostPort"]?.intValue ?? 0,
                                   servicePort: p["servicePort"]?.intValue ?? 0, name: p["name"]?.stringValue,
                                   protocol: p["protocol"]?.stringValue ?? "tcp",
                                   labels: (p["labels"]?.objectValue?.pairs ?? []).reduce(into: [:]) { $0[$1.0] = $1.1.stringValue })
            }
        }
        if let list = container?["portMappings"]?.arrayValue ?? docker?["portMappings"]?.arrayValue {
            portMappings = try mappings(list)
        } else if network == .container, let discovery = o["ipAddress"]?["discovery"]?["ports"]?.arrayValue {
            ipAddressDiscovery = true
            networkName = networkName ?? o["ipAddress"]?["networkName"]?.stringValue
            portMappings = discovery.map {
                PortMapping(containerPort: $0["number"]?.intValue ?? 0, name: $0["name"]?.stringValue,
                            protocol: $0["protocol"]?.stringValue ?? "tcp")
            }
        }
        if let defs = o["portDefinitions"]?.arrayValue {
            portDefinitions = try defs.enumerated().map { i, d in
                guard let p = d.objectValue else { throw AppValidationError(path: "/portDefinitions(\(i))", "error.expected.jsobject") }
                return PortDefinition(port: p["port"]?.intValue ?? 0, name: p["name"]?.stringValue,
                                      protocol: p["protocol"]?.stringValue ?? "tcp",
                                      labels: (p["labels"]?.objectValue?.pairs ?? []).reduce(into: [:]) { $0[$1.0] = $1.1.stringValue })
            }
        } else if let ports = o["ports"]?.arrayValue {
            portDefinitions = ports.map { PortDefinition(port: $0.intValue ?? 0) }
        } else if isCreation && network != .host {
            portDefinitions = []
        }
        if network == .host { portMappings = [] } else { portDefinitions = [] }
        if network != .host && dockerImage == nil && isCreation && container == nil {
            throw AppValidationError(path: "/container", "must be defined for networks other than host")
        }
        for (i, pm) in portMappings.enumerated() where network == .container && pm.containerPort == 0 {
            throw AppValidationError(path: "/container/portMappings(\(i))/containerPort", "must be set with container networking")
        }
    }
}
