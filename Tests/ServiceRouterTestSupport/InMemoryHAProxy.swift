import ServiceRouterCore
import ServiceRouterIO
import Synchronization

/// HAProxy's runtime socket and process control in memory, for controller decisions (fast path
/// or full pass, rejection rounds, retries, "changed behind our back"): it answers the runtime
/// commands servicerouter sends in HAProxy 2.6's words (so the real reply parsers run), and a
/// reload loads the backends, slots, structure description and vhost maps of the config in
/// `files`. It knows nothing of HAProxy's config language beyond that: what only HAProxy can
/// show is tested against the real one.
public final class InMemoryHAProxy: RuntimeAPI, HAProxyControl {
    public let path = "/in-memory/admin.sock"
    public let files: InMemoryConfigFiles

    public struct Server: Sendable, Equatable {
        public var name: String
        public var address: String
        public var port: Int
        public var adminFlags: Int
        public var userWeight = 1
        public var initialWeight = 1
        public var checkPort = 0
    }

    private struct State {
        var pid = 100
        var startTime = 1_700_000_000
        var description: String?
        var backends: [(name: String, servers: [Server])] = []
        /// `balance` of each backend, as loaded.
        var balance: [String: String] = [:]
        var maps: [String: [MapKeyValue]] = [:]
        var pendingMaps: [String: (version: Int, entries: [MapKeyValue])] = [:]
        var nextMapVersion = 1
        var down: String?
        var rejectCommands: (@Sendable (RuntimeCommand) -> String?)?
        var rejectValidation: (@Sendable (String) -> ConfigCheckOutput?)?
        var failReloads = 0
        var reloads = 0
        var failedReloads = 0
        var validations = 0
        var log: [String] = []
        var masterAnswers = true
        /// The file reloads read (HAProxy started with `-f` on another path than the controller's).
        var loadsFrom: String?
        var sockets: [String]?
    }
    private let state = Mutex(State())

    /// Starts as operators start HAProxy: a minimal config of its own (no backends, no
    /// description of ours).
    public init(files: InMemoryConfigFiles = InMemoryConfigFiles()) {
        self.files = files
    }

    // MARK: - Faults and inspection

    /// Every runtime call throws as if the socket refused connections (nil: heal).
    public func setDown(_ reason: String?) { state.withLock { $0.down = reason } }
    /// A runtime command for which `reject` returns a text is refused with it.
    public func rejectCommands(_ reject: (@Sendable (RuntimeCommand) -> String?)?) { state.withLock { $0.rejectCommands = reject } }
    /// A candidate for which `reject` returns messages fails `haproxy -c` with them.
    public func rejectValidation(_ reject: (@Sendable (String) -> ConfigCheckOutput?)?) { state.withLock { $0.rejectValidation = reject } }
    /// The next `count` reloads fail as a config that does not load would.
    public func failNextReloads(_ count: Int) { state.withLock { $0.failReloads = count } }

    public var reloads: Int { state.withLock { $0.reloads } }
    public var validations: Int { state.withLock { $0.validations } }
    public var pid: Int { state.withLock { $0.pid } }
    /// Every command line received, in order.
    public var commandLog: [String] { state.withLock { $0.log } }
    public var mutations: [String] { commandLog.filter { $0.hasPrefix("set ") || $0.hasPrefix("add ") || $0.hasPrefix("commit ") } }
    public func servers(_ backend: String) -> [Server] { state.withLock { s in s.backends.first { $0.name == backend }?.servers ?? [] } }
    public var backendNames: [String] { state.withLock { $0.backends.map(\.name) } }
    public func map(_ path: String) -> [MapKeyValue]? { state.withLock { $0.maps[path] } }
    /// Addresses in service (`ip:port`) per backend.
    public func serving(_ backend: String) -> Set<String> {
        Set(servers(backend).filter { LiveServer.admin(flags: $0.adminFlags) == .ready }.map { "\($0.address):\($0.port)" })
    }

    /// HAProxy restarted by someone else, from the files on disk: a new pid, runtime state lost.
    public func restartFromFiles() { state.withLock { s in load(files.config ?? "", into: &s, newWorker: true) } }

    /// HAProxy reloaded by someone else onto `config` (not ours).
    public func reloadForeign(_ config: String) { state.withLock { s in load(config, into: &s, newWorker: true) } }

    // MARK: - HAProxyControl

    public func validate(configPath: String) async throws {
        let (text, reject) = state.withLock { s -> (String?, (@Sendable (String) -> ConfigCheckOutput?)?) in
            s.validations += 1
            return (files.file(configPath), s.rejectValidation)
        }
        guard let text else { throw HAProxyControlError(operation: "validate \(configPath)", reason: "no such file", hint: nil) }
        if let check = reject?(text) {
            throw ConfigRejected(path: configPath, check: check, output: check.alerts.joined(separator: "\n"))
        }
    }

    public func reload(runtime: any RuntimeAPI, timeout: Double) async throws -> ReloadResult {
        try state.withLock { s in
            if s.failReloads > 0 {
                s.failReloads -= 1
                s.failedReloads += 1
                throw HAProxyControlError(operation: "reload", reason: "HAProxy's master reports the new config failed to load (the previous worker keeps serving)", hint: nil)
            }
            let old = s.pid
            load(s.loadsFrom.map { files.file($0) ?? "" } ?? files.config ?? "", into: &s, newWorker: true)
            s.reloads += 1
            return ReloadResult(oldPid: old, newPid: s.pid, seconds: 0)
        }
    }

    public func adminSockets() async -> [String]? {
        state.withLock { $0.masterAnswers ? ($0.sockets ?? [path]) : nil }
    }

    /// Reloads read `path` instead of the controller's config file.
    public func loadFrom(_ path: String?) { state.withLock { $0.loadsFrom = path } }

    /// Whether the master CLI answers (a running HAProxy), and the stats sockets it reports
    /// (nil: `path`).
    public func setMaster(answers: Bool, sockets: [String]? = nil) {
        state.withLock { s in
            s.masterAnswers = answers
            s.sockets = sockets
        }
    }

    public func processList() async throws -> RuntimeReplyParsers.ProcessList? {
        state.withLock { s in
            RuntimeReplyParsers.ProcessList(masterPid: 1, reloads: s.reloads, failedReloads: s.failedReloads, workers: [s.pid], oldWorkers: [])
        }
    }

    /// Loads what a worker would from `config`: backends and `server sN ip:port … [disabled]`
    /// lines, the `description` line, and the map files the config names.
    private func load(_ config: String, into s: inout State, newWorker: Bool) {
        if newWorker {
            s.pid += 1
            s.startTime += 1
        }
        s.description = nil
        s.backends = []
        s.balance = [:]
        s.maps = [:]
        s.pendingMaps = [:]
        var current: String?
        for raw in config.split(separator: "\n") {
            let line = raw.trimmingPrefix(while: { $0 == " " || $0 == "\t" })
            let words = line.split(separator: " ")
            if raw.first != " " && raw.first != "\t" {
                current = nil
                if words.count == 2, words[0] == "backend" {
                    current = String(words[1])
                    s.backends.append((String(words[1]), []))
                }
                continue
            }
            if let current, words.first == "balance", words.count >= 2 { s.balance[current] = String(words[1]) }
            if words.first == "description", words.count >= 2 {
                s.description = words.dropFirst().joined(separator: " ")
            }
            for marker in ["map_beg(", "map_str(", "map("] {
                var rest = Substring(line)
                while let r = rest.firstRange(of: marker) {
                    let after = rest[r.upperBound...]
                    let end = after.firstIndex { $0 == ")" || $0 == "," } ?? after.endIndex
                    let file = String(after[..<end])
                    if s.maps[file] == nil { s.maps[file] = Self.mapEntries(files.file(file) ?? "") }
                    rest = after[end...]
                }
            }
            if let current, words.count >= 3, words[0] == "server", let colon = words[2].lastIndex(of: ":"),
               let port = Int(words[2][words[2].index(after: colon)...]) {
                let disabled = words.contains("disabled")
                let server = Server(name: String(words[1]), address: String(words[2][..<colon]), port: port,
                                    adminFlags: disabled ? 0x05 : 0)
                s.backends[s.backends.count - 1].servers.append(server)
            }
        }
    }

    static func mapEntries(_ text: String) -> [MapKeyValue] {
        text.split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ", maxSplits: 1)
            return f.count == 2 ? MapKeyValue(unchecked: String(f[0]), String(f[1])) : nil
        }
    }

    // MARK: - RuntimeAPI

    public func execute(_ commands: [RuntimeCommand]) async throws -> [RuntimeReply] {
        try state.withLock { s in
            if let down = s.down { throw RuntimeSocketError(socket: path, reason: "cannot connect: \(down)") }
            return commands.map { c in
                s.log.append(c.text)
                let text: String
                if let refusal = s.rejectCommands?(c) { text = refusal } else { text = Self.answer(c, &s) }
                return RuntimeReply(command: c, text: text, failure: c.failure(in: text))
            }
        }
    }

    public func raw(_ line: String) async throws -> String {
        throw RuntimeSocketError(socket: path, reason: "raw lines are not supported by the in-memory HAProxy")
    }

    private static func answer(_ c: RuntimeCommand, _ s: inout State) -> String {
        func server(_ b: ProxyName, _ name: ProxyName, _ body: (inout Server) -> String) -> String {
            guard let bi = s.backends.firstIndex(where: { $0.name == b.text }) else { return "No such backend." }
            guard let si = s.backends[bi].servers.firstIndex(where: { $0.name == name.text }) else { return "No such server." }
            return body(&s.backends[bi].servers[si])
        }
        switch c {
        case .showInfo:
            var text = "Name: HAProxy\nVersion: 2.6.12\nPid: \(s.pid)\nStart_time_sec: \(s.startTime)\n"
            if let d = s.description { text += "description: \(d)\n" }
            return text
        case .showServersState(let backend):
            var rows: [String] = []
            for (i, b) in s.backends.enumerated() where backend == nil || backend?.text == b.name {
                for (j, v) in b.servers.enumerated() {
                    let op = v.adminFlags & 0x05 != 0 ? 0 : 2
                    rows.append("\(i + 1) \(b.name) \(j + 1) \(v.name) \(v.address) \(op) \(v.adminFlags) \(v.userWeight) \(v.initialWeight) 0 1 0 0 0 0 0 0 - \(v.port) - 0 \(v.checkPort) - - 0")
                }
            }
            if let backend, !s.backends.contains(where: { $0.name == backend.text }) { return "Can't find backend." }
            return "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n"
                + rows.map { $0 + "\n" }.joined()
        case let .setAddress(b, name, endpoint):
            return server(b, name) { v in
                let same = v.address == endpoint.ip.text && v.port == endpoint.port.value
                defer { v.address = endpoint.ip.text; v.port = endpoint.port.value }
                return same ? "no need to change the addr, no need to change the port by 'stats socket command'"
                    : "IP changed from '\(v.address)' to '\(endpoint.ip.text)', port changed from '\(v.port)' to '\(endpoint.port.value)' by 'stats socket command'"
            }
        case let .setState(b, name, st):
            return server(b, name) { v in
                switch st {
                case .ready: v.adminFlags &= ~(0x01 | 0x08)
                case .drain: v.adminFlags = (v.adminFlags & ~0x01) | 0x08
                case .maint: v.adminFlags = (v.adminFlags & ~0x08) | 0x01
                }
                return ""
            }
        case let .setWeight(b, name, w):
            return server(b, name) { v in v.userWeight = w; return "" }
        case let .setCheckPort(b, name, p):
            return server(b, name) { v in v.checkPort = p.value; return "" }
        case let .addServer(b, name, endpoint, options):
            guard let bi = s.backends.firstIndex(where: { $0.name == b.text }) else { return "No such backend." }
            if ["static-rr", "source", "uri"].contains(s.balance[b.text] ?? "roundrobin") {
                return "Backend must use a dynamic load balancing to support dynamic servers."
            }
            if options.tokens.contains("cookie") { return "'cookie' option is not accepted for dynamic server" }
            if s.backends[bi].servers.contains(where: { $0.name == name.text }) { return "Already exists a server with the same name in backend." }
            s.backends[bi].servers.append(Server(name: name.text, address: endpoint.ip.text, port: endpoint.port.value, adminFlags: 0x01))
            return "New server registered."
        case let .enableHealth(b, name):
            return server(b, name) { _ in "" }
        case .showMap(let file):
            guard let entries = s.maps[file.path] else { return "Unknown map identifier. Please use #<id> or <file>." }
            return entries.enumerated().map { "0x\(String($0.offset + 0x1000, radix: 16)) \($0.element.key) \($0.element.value)\n" }.joined()
        case .prepareMap(let file):
            guard s.maps[file.path] != nil else { return "Unknown map identifier. Please use #<id> or <file>." }
            let v = s.nextMapVersion
            s.nextMapVersion += 1
            s.pendingMaps[file.path] = (v, [])
            return "New version created: \(v)"
        case let .addMap(version, file, entry):
            guard s.pendingMaps[file.path]?.version == version else { return "Unknown map version." }
            s.pendingMaps[file.path]!.entries.append(entry)
            return ""
        case let .commitMap(version, file):
            guard let pending = s.pendingMaps[file.path], pending.version == version else { return "Unknown map version." }
            s.maps[file.path] = pending.entries
            s.pendingMaps[file.path] = nil
            return ""
        case .showEnv:
            return ""
        case .showStat:
            return "# pxname,svname\n"
        }
    }
}
