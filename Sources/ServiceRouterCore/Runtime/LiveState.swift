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
    public var admin: Admin { Self.admin(flags: adminFlags) }

    public static func admin(flags: Int) -> Admin {
        if flags & (0x01 | 0x02 | 0x20) != 0 { return .maint }
        if flags & (0x08 | 0x10) != 0 { return .drain }
        return .ready
    }

    /// The endpoint this slot points at, if it is a valid numeric address.
    public var endpoint: Endpoint? {
        guard let ip = try? IPAddress(address), let p = try? Port(port) else { return nil }
        return Endpoint(ip: ip, port: p)
    }

    public var operationalName: String { Self.operationalName(operationalState) }

    public static func operationalName(_ state: Int) -> String {
        switch state {
        case 0: "down"
        case 1: "starting"
        case 2: "up"
        case 3: "stopping"
        default: "op\(state)"
        }
    }
}

/// All live servers, grouped by backend, in HAProxy's order.
public struct LiveState: Sendable, Equatable {
    public var backends: [ProxyName: [LiveServer]]
    /// Backend names in HAProxy's order.
    public var backendOrder: [ProxyName]

    init(grouped backends: [ProxyName: [LiveServer]], order: [ProxyName]) {
        self.backends = backends
        self.backendOrder = order
    }

    public init(servers: [LiveServer] = []) {
        var builder = RuntimeReplyParsers.LiveStateBuilder()
        for s in servers { builder.append(s) }
        self = builder.state()
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
        // HAProxy writes ASCII: parse its bytes (25,000 rows in ~1/10 of the time the
        // Character-based reading took). Anything else takes the Character-based path, whose
        // grapheme rules the byte parser only matches on ASCII.
        var text = text
        if let state = try text.withUTF8({ try serversStateASCII($0) }) { return state }
        return try serversStateCharacters(text)
    }

    /// nil when the text is not all ASCII.
    static func serversStateASCII(_ bytes: UnsafeBufferPointer<UInt8>) throws -> LiveState? {
        guard !bytes.contains(where: { $0 >= 0x80 }) else { return nil }
        // Grouped as it is read (HAProxy lists a backend's servers together), so the servers are
        // held once, not once in a flat list and again by backend: 25,000 rows at 10,000 tasks.
        var grouped = LiveStateBuilder()
        var sawVersion = false
        var lineNo = 0
        var lastBackend: (bytes: Slice<UnsafeBufferPointer<UInt8>>, name: ProxyName)?
        var fields: [Slice<UnsafeBufferPointer<UInt8>>] = []
        fields.reserveCapacity(32)
        var start = 0
        // As the Character-based split: lines end with "\n" or "\r\n" (one Character), and then
        // one more trailing "\r" is dropped.
        while start <= bytes.count {
            let end = bytes[start...].firstIndex(of: 0x0A) ?? bytes.count
            defer { start = end + 1 }
            lineNo += 1
            var line = bytes[start..<end]
            if end < bytes.count, line.last == 0x0D { line = line.dropLast() }
            if line.last == 0x0D { line = line.dropLast() }
            if line.isEmpty || line.first == 0x23 { continue }  // "#"
            if !sawVersion {
                guard line.count == 1, line.first == 0x31 else {  // "1"
                    throw ParseError(what: "show servers state", line: lineNo, reason: "expected format version 1, got \(ValidationError.quoted(String(decoding: line, as: UTF8.self)))")
                }
                sawVersion = true
                continue
            }
            fields.removeAll(keepingCapacity: true)
            var i = line.startIndex
            while i < line.endIndex {
                while i < line.endIndex && line[i] == 0x20 { i += 1 }
                let fieldStart = i
                while i < line.endIndex && line[i] != 0x20 { i += 1 }
                if i > fieldStart { fields.append(line[fieldStart..<i]) }
            }
            guard fields.count >= 19 else {
                throw ParseError(what: "show servers state", line: lineNo, reason: "expected at least 19 fields, got \(fields.count)")
            }
            let beName: ProxyName?
            if let last = lastBackend, last.bytes.elementsEqual(fields[1]) {
                beName = last.name
            } else {
                beName = try? ProxyName(String(decoding: fields[1], as: UTF8.self))
                if let beName { lastBackend = (fields[1], beName) }
            }
            guard let beName, let srvName = try? ProxyName(String(decoding: fields[3], as: UTF8.self)),
                  let srvID = int(fields[2]), let op = int(fields[5]), let admin = int(fields[6]), let uweight = int(fields[7]),
                  let iweight = int(fields[8]), let check = int(fields[10]), let port = int(fields[18]) else {
                throw ParseError(what: "show servers state", line: lineNo, reason: "unexpected field value in \(ValidationError.quoted(String(decoding: line, as: UTF8.self)))")
            }
            grouped.append(LiveServer(backend: beName, name: srvName, serverID: srvID, address: String(decoding: fields[4], as: UTF8.self),
                                      port: port, operationalState: op, adminFlags: admin, userWeight: uweight, initialWeight: iweight,
                                      checkStatus: check, checkPort: fields.count > 21 ? int(fields[21]) ?? 0 : 0))
        }
        if !sawVersion && bytes.contains(where: { $0 != 0x20 && $0 != 0x09 }) {
            let text = String(decoding: bytes, as: UTF8.self)
            throw ParseError(what: "show servers state", line: 1, reason: "no format version line: \(ValidationError.quoted(String(text.prefix(80))))")
        }
        return grouped.state()
    }

    /// Groups servers given in HAProxy's order by backend (backends in first-seen order), without
    /// a flat list: HAProxy lists a backend's servers together, so each run of one backend's
    /// servers goes into its group, one dictionary access per run, when the run ends.
    struct LiveStateBuilder {
        private var backends: [ProxyName: [LiveServer]] = [:]
        private var order: [ProxyName] = []
        private var run: [LiveServer] = []

        mutating func append(_ server: LiveServer) {
            if let last = run.last, last.backend != server.backend { flush() }
            run.append(server)
        }

        private mutating func flush() {
            guard let name = run.first?.backend else { return }
            if backends[name] == nil {
                order.append(name)
                backends[name] = run
            } else {
                backends[name]!.append(contentsOf: run)
            }
            run = []
        }

        mutating func state() -> LiveState {
            flush()
            return LiveState(grouped: backends, order: order)
        }
    }

    /// `Int(_: Substring)` on ASCII bytes: an optional sign, then decimal digits; nil on overflow.
    static func int(_ b: Slice<UnsafeBufferPointer<UInt8>>) -> Int? {
        var i = b.startIndex
        var negative = false
        if i < b.endIndex, b[i] == 0x2B || b[i] == 0x2D {  // "+", "-"
            negative = b[i] == 0x2D
            i += 1
        }
        guard i < b.endIndex else { return nil }
        var value = 0
        while i < b.endIndex {
            let d = b[i] &- 0x30
            guard d <= 9 else { return nil }
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (a, o2) = negative ? m.subtractingReportingOverflow(Int(d)) : m.addingReportingOverflow(Int(d))
            guard !o1, !o2 else { return nil }
            value = a
            i += 1
        }
        return value
    }

    static func serversStateCharacters(_ text: String) throws -> LiveState {
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

    /// `show cli sockets`: the Unix socket paths (`unix@/path`), in order.
    public static func cliSockets(_ text: String) -> [String] {
        text.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("unix@"), let path = line.dropFirst(5).split(separator: " ").first else { return nil }
            return String(path)
        }
    }

    /// The master CLI's `show proc`: the master's reload count and the current workers' pids.
    public struct ProcessList: Sendable, Equatable {
        public var masterPid: Int
        public var reloads: Int
        public var failedReloads: Int
        public var workers: [Int]
        public var oldWorkers: [Int]
        public init(masterPid: Int, reloads: Int, failedReloads: Int, workers: [Int], oldWorkers: [Int]) {
            self.masterPid = masterPid
            self.reloads = reloads
            self.failedReloads = failedReloads
            self.workers = workers
            self.oldWorkers = oldWorkers
        }
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
