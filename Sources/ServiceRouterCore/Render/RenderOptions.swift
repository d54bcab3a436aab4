/// Settings of the generated config that do not come from Marathon.
public struct RenderOptions: Sendable, Equatable {
    /// The admin stats socket servicerouter drives (`--haproxy-socket`).
    public var adminSocket: String
    /// The shared HTTP (vhost) frontend's port; nil: not bound (`--dont-bind-http-https`).
    public var httpPort: Int?
    /// The `X-Marathon-App-Id` frontend's port; nil: not bound.
    public var appIdPort: Int?
    /// HAProxy's own stats page and Prometheus exporter; nil: none.
    public var stats: StatsListener?
    /// The shared HTTPS frontend (`--ssl-certs`): port and certificate files; nil: not bound.
    public var https: HTTPS?
    /// How vhosts are routed: runtime-updatable maps (default) or marathon-lb's ACL rules.
    public var vhostRouting: VhostRouting
    /// Where the vhost map files live (the config's directory).
    public var mapDirectory: String
    /// Per-app `HAPROXY_{n}_<TEMPLATE>` labels are honoured only when the operator enables them:
    /// they let whoever deploys an app write arbitrary HAProxy config.
    public var labelTemplates: Bool
    /// `--bind-address`: the address of every frontend servicerouter writes (`*` or a numeric
    /// IP): the shared HTTP and HTTPS frontends, the app-id frontend and each service port's
    /// frontend, where `HAPROXY_{n}_BIND_ADDR` still wins. Templates see it as `{bindAddr}`.
    public var bindAddress = "*"
    /// The user and group HAProxy's workers run as (`user`/`group` in a `global` section of
    /// their own); nil: HAProxy's own choice (the user that started it).
    public var workerIdentity: WorkerIdentity?
    /// `--group-https-by-vhost`: the HTTPS port passes each connection, by SNI, to a TLS frontend
    /// of its own per virtual host (that host's apps' certificates and bind options), as
    /// marathon-lb's grouped HTTPS frontend does. Needs `https`.
    public var groupHTTPSByVhost = false

    public enum VhostRouting: String, Sendable, Equatable {
        /// Vhosts (and vhost + path) in map files updated through the runtime API: adding, moving
        /// or removing a vhost needs no reload.
        case map
        /// marathon-lb's `acl`/`use_backend` rules in the config: every vhost change reloads.
        case acl
    }

    public struct HTTPS: Sendable, Equatable {
        public var port: Int
        public var certificates: [String]
        public init(port: Int = 443, certificates: [String]) {
            self.port = port
            self.certificates = certificates
        }
    }

    public var vhostMapPath: String { mapDirectory + "/servicerouter-vhost.map" }
    public var vhostPathMapPath: String { mapDirectory + "/servicerouter-vhost-path.map" }

    public struct StatsListener: Sendable, Equatable {
        public var address: String
        public var port: Int
        public init(address: String, port: Int) {
            self.address = address
            self.port = port
        }
    }

    public init(adminSocket: String, httpPort: Int? = 80, appIdPort: Int? = 9091, stats: StatsListener? = nil,
                https: HTTPS? = nil, vhostRouting: VhostRouting = .map, mapDirectory: String? = nil, labelTemplates: Bool = false,
                bindAddress: String = "*", workerIdentity: WorkerIdentity? = nil) {
        self.bindAddress = bindAddress
        self.workerIdentity = workerIdentity
        self.adminSocket = adminSocket
        self.httpPort = httpPort
        self.appIdPort = appIdPort
        self.stats = stats
        self.https = https
        self.vhostRouting = vhostRouting
        self.mapDirectory = mapDirectory ?? Self.directory(of: adminSocket)
        self.labelTemplates = labelTemplates
    }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// Ports this config binds besides the service ports.
    public var reservedPorts: Set<Int> {
        Set([httpPort, appIdPort, stats?.port, https?.port].compactMap { $0 })
    }

    /// `--bind-address`: `*` or a numeric IP address (it goes into `bind` lines).
    public static func validateBindAddress(_ raw: String, field: String = "--bind-address") throws -> String {
        let t = raw.trimmingSpaces
        if t == "*" { return t }
        do { return try IPAddress(t).text } catch {
            throw ValidationError(field: field, value: raw, reason: "a bind address must be * or a numeric IP address (e.g. 127.0.0.1)")
        }
    }

    /// A socket path goes into a config line: only plain path characters.
    public static func validateSocketPath(_ p: String) throws -> String {
        guard !p.isEmpty, p.utf8.count < 108, p.utf8.allSatisfy({ ProxyName.allowed($0) || $0 == 0x2F || $0 == 0x40 }) else {
            throw ValidationError(field: "--haproxy-socket", value: p, reason: "a socket path may contain only letters, digits and _ . : - / @ (at most 107 bytes)")
        }
        return p
    }
}

/// The rendered config and the fingerprint of its structure (everything but slot contents).
public struct RenderedConfig: Sendable, Equatable {
    public var text: String
    /// Changes exactly when a reload is needed: frontends, backends, binds, ACLs, slot counts,
    /// templates. Written into the config's `global` section as `description servicerouter
    /// structure <hash>`, so the running worker says which structure it loaded in `show info`.
    /// (Not an environment variable: `setenv` from a config stays in the master's environment
    /// across reloads, so a worker reloaded onto another config would still claim our hash.)
    public var structureHash: String
    /// The vhost map files' contents (map routing), by file path, sorted by key.
    public var maps: [String: [MapEntry]] = [:]
    /// Services left out because a template (a per-app override) could not be rendered.
    public var diagnostics: [Diagnostic] = []

    /// `show info`'s `description:` value in a generated config: this prefix, then the hash.
    public static let structureDescriptionPrefix = "servicerouter structure "

    /// The structure hash a worker reports in `show info` (its parsed fields), or nil when its
    /// config is not one of ours.
    public static func structureHash(info fields: [String: String]) -> String? {
        guard let d = fields["description"], d.hasPrefix(structureDescriptionPrefix) else { return nil }
        let hash = d.dropFirst(structureDescriptionPrefix.count)
        guard hash.utf8.count == 16, hash.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else { return nil }
        return String(hash)
    }
}


extension RenderedConfig {
    /// The `server sN …` lines of `slots` in `backend`'s section, by slot number (nil when the
    /// backend is not in the config).
    public func serverLines(backend: ProxyName, slots: [Int]) -> [Int: String]? {
        let header = "\nbackend \(backend.text)\n"
        guard let start = text.range(ofLiteral: header)?.upperBound else { return nil }
        let wanted = Set(slots)
        var out: [Int: String] = [:]
        for line in text[start...].split(separator: "\n", omittingEmptySubsequences: false) {
            guard line.first == " " || line.first == "\t" else { break }  // the next section
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard words.count >= 2, words[0] == "server", let n = SlotPlanner.slotNumber(ProxyName(unchecked: String(words[1]))),
                  wanted.contains(n) else { continue }
            out[n] = String(line)
        }
        return out
    }
}

/// One line of a map file: `key value`.
public struct MapEntry: Sendable, Equatable, Hashable, Comparable {
    public var key: String
    public var value: String
    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }
    public static func < (a: MapEntry, b: MapEntry) -> Bool { (a.key, a.value) < (b.key, b.value) }
}
