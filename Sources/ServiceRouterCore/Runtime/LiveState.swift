/// HAProxy's live server state, read back from `show servers state` (never assumed).
public struct LiveServer: Sendable, Equatable {
    public var backend: ProxyName
    public var name: ProxyName
    public var serverID: Int
    public var address: String
    public var port: Int
    /// 0 stopped, 1 starting, 2 running, 3 stopping.
    public var operationalState: Int
    /// Bit mask (see management.txt): 0x01 forced maint, 0x02 inherited maint, 0x04 maint from
    /// config, 0x08 forced drain, 0x10 inherited drain, 0x20 maint from DNS.
    public var adminFlags: Int
    public var userWeight: Int
    /// The weight the config gave the server (`srv_iweight`).
    public var initialWeight: Int
    public var checkStatus: Int
    /// `srv_check_port`: 0 when checks use the serving port.
    public var checkPort: Int

    public init(backend: ProxyName, name: ProxyName, serverID: Int = 0, address: String, port: Int,
                operationalState: Int = 2, adminFlags: Int = 0, userWeight: Int = 1, initialWeight: Int = 1,
                checkStatus: Int = 0, checkPort: Int = 0) {
        self.backend = backend
        self.name = name
        self.serverID = serverID
        self.address = address
        self.port = port
        self.operationalState = operationalState
        self.adminFlags = adminFlags
        self.userWeight = userWeight
        self.initialWeight = initialWeight
        self.checkStatus = checkStatus
        self.checkPort = checkPort
    }

    public enum Admin: String, Sendable, Equatable { case ready, drain, maint }

    /// The effective administrative state. The config-`disabled` bit (0x04) stays set after
    /// `set server .. state ready` on HAProxy 2.6 although the server serves, so it is ignored.
    public var admin: Admin {
        if adminFlags & (0x01 | 0x02 | 0x20) != 0 { return .maint }
        if adminFlags & (0x08 | 0x10) != 0 { return .drain }
        return .ready
    }

    /// The endpoint this slot points at, if it is a valid numeric address.
    public var endpoint: Endpoint? {
        guard let ip = try? IPAddress(address), let p = try? Port(port) else { return nil }
        return Endpoint(ip: ip, port: p)
    }

    public var operationalName: String {
        switch operationalState {
        case 0: "down"
        case 1: "starting"
        case 2: "up"
        case 3: "stopping"
        default: "op\(operationalState)"
        }
    }
}

/// All live servers, grouped by backend, in HAProxy's order.
public struct LiveState: Sendable, Equatable {
    public var backends: [ProxyName: [LiveServer]]
    /// Backend names in HAProxy's order.
    public var backendOrder: [ProxyName]

    public init(servers: [LiveServer] = []) {
        var backends: [ProxyName: [LiveServer]] = [:]
        var order: [ProxyName] = []
        for s in servers {
            if backends[s.backend] == nil { order.append(s.backend) }
            backends[s.backend, default: []].append(s)
        }
        self.backends = backends
        self.backendOrder = order
    }

    public var isEmpty: Bool { backends.isEmpty }
    public var serverCount: Int { backends.values.reduce(0) { $0 + $1.count } }

    /// Replaces the servers of the given backends (after a partial read).
    public mutating func replace(backends names: some Sequence<ProxyName>, with partial: LiveState) {
        for n in names {
            if let servers = partial.backends[n] {
                if backends[n] == nil { backendOrder.append(n) }
                backends[n] = servers
            } else {
                backends[n] = nil
                backendOrder.removeAll { $0 == n }
            }
        }
    }
}

public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public var what: String
    public var line: Int
    public var reason: String
    public init(what: String, line: Int, reason: String) {
        self.what = what
        self.line = line
        self.reason = reason
    }
    public var description: String { "cannot parse \(what) (line \(line)): \(reason)" }
}

/// Parsers for the runtime API's text replies.
public enum RuntimeReplyParsers {
    /// `show servers state [<backend>]`, format version 1.
    public static func serversState(_ text: String) throws -> LiveState {
        var servers: [LiveServer] = []
        var sawVersion = false
        var lineNo = 0
        // "\r\n" is one Character in Swift, so splitting on "\n" alone would not split CRLF lines.
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            lineNo += 1
            let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine
            if line.isEmpty || line.hasPrefix("#") { continue }
            if !sawVersion {
                guard line == "1" else {
                    throw ParseError(what: "show servers state", line: lineNo, reason: "expected format version 1, got \(ValidationError.quoted(String(line)))")
                }
                sawVersion = true
                continue
            }
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count >= 19 else {
                throw ParseError(what: "show servers state", line: lineNo, reason: "expected at least 19 fields, got \(f.count)")
            }
            guard let beName = try? ProxyName(String(f[1])), let srvName = try? ProxyName(String(f[3])),
                  let srvID = Int(f[2]), let op = Int(f[5]), let admin = Int(f[6]), let uweight = Int(f[7]), let iweight = Int(f[8]),
                  let check = Int(f[10]), let port = Int(f[18]) else {
                throw ParseError(what: "show servers state", line: lineNo, reason: "unexpected field value in \(ValidationError.quoted(String(line)))")
            }
            servers.append(LiveServer(backend: beName, name: srvName, serverID: srvID, address: String(f[4]), port: port,
                                      operationalState: op, adminFlags: admin, userWeight: uweight, initialWeight: iweight,
                                      checkStatus: check, checkPort: f.count > 21 ? Int(f[21]) ?? 0 : 0))
        }
        if !sawVersion && !text.trimmingSpaces.isEmpty {
            throw ParseError(what: "show servers state", line: 1, reason: "no format version line: \(ValidationError.quoted(String(text.prefix(80))))")
        }
        return LiveState(servers: servers)
    }

    /// `show info`: `Name: value` lines.
    public static func info(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            out[String(line[..<colon])] = String(line[line.index(after: colon)...]).trimmingSpaces
        }
        return out
    }

    /// `show env NAME` → the value, or nil for "Variable not found".
    public static func env(_ text: String, name: String) -> String? {
        for line in text.split(separator: "\n") where line.hasPrefix(name + "=") {
            return String(line.dropFirst(name.count + 1))
        }
        return nil
    }

    /// The master CLI's `show proc`: the master's reload count and the current workers' pids.
    public struct ProcessList: Sendable, Equatable {
        public var masterPid: Int
        public var reloads: Int
        public var failedReloads: Int
        public var workers: [Int]
        public var oldWorkers: [Int]
    }

    public static func processList(_ text: String) throws -> ProcessList {
        var section = "master"
        var list = ProcessList(masterPid: 0, reloads: 0, failedReloads: 0, workers: [], oldWorkers: [])
        var sawMaster = false
        for line in text.split(separator: "\n") {
            if line.hasPrefix("#") {
                if line.hasPrefix("# workers") { section = "workers" }
                else if line.hasPrefix("# old workers") { section = "old" }
                else if line.hasPrefix("# programs") { section = "programs" }
                continue
            }
            let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard f.count >= 3, let pid = Int(f[0]) else { continue }
            switch section {
            case "master" where f[1] == "master":
                sawMaster = true
                list.masterPid = pid
                list.reloads = Int(f[2]) ?? 0
                if let i = f.firstIndex(where: { $0 == "[failed:" }), i + 1 < f.count {
                    list.failedReloads = Int(f[i + 1].filter(\.isNumber)) ?? 0
                }
            case "workers": list.workers.append(pid)
            case "old": list.oldWorkers.append(pid)
            default: break
            }
        }
        guard sawMaster else {
            throw ParseError(what: "show proc", line: 1, reason: "no master line in \(ValidationError.quoted(String(text.prefix(80))))")
        }
        return list
    }
}
