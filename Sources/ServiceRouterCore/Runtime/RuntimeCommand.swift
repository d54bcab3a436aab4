/// A runtime-API command built only from validated values, so its text can never carry `;`,
/// a newline or extra arguments into the socket.
public enum RuntimeCommand: Sendable, Equatable, Hashable, CustomStringConvertible {
    case setAddress(backend: ProxyName, server: ProxyName, endpoint: Endpoint)
    case setState(backend: ProxyName, server: ProxyName, state: LiveServer.Admin)
    case setWeight(backend: ProxyName, server: ProxyName, weight: Int)
    case setCheckPort(backend: ProxyName, server: ProxyName, port: Port)
    /// A dynamic server (HAProxy 2.6 `add server`): a slot added at runtime when a backend
    /// outgrows its slots. It starts in maintenance, its checks disabled.
    case addServer(backend: ProxyName, server: ProxyName, endpoint: Endpoint, options: ServerOptions)
    case enableHealth(backend: ProxyName, server: ProxyName)
    /// Vhost maps: `show map <file>`, and an atomic replacement (`prepare map` → version N,
    /// `add map @N` per entry, `commit map @N`).
    case showMap(file: MapFile)
    case prepareMap(file: MapFile)
    case addMap(version: Int, file: MapFile, entry: MapKeyValue)
    case commitMap(version: Int, file: MapFile)
    case showServersState(backend: ProxyName?)
    case showInfo
    case showEnv(name: ProxyName)
    case showStat

    /// The command line (without separator).
    public var text: String {
        switch self {
        case let .setAddress(b, s, e): "set server \(b)/\(s) addr \(e.ip) port \(e.port)"
        case let .setState(b, s, st): "set server \(b)/\(s) state \(st.rawValue)"
        case let .setWeight(b, s, w): "set server \(b)/\(s) weight \(min(max(w, 0), 256))"
        case let .setCheckPort(b, s, p): "set server \(b)/\(s) check-port \(p)"
        case let .addServer(b, s, e, o): "add server \(b)/\(s) \(e)" + o.tokens.map { " " + $0 }.joined()
        case let .enableHealth(b, s): "enable health \(b)/\(s)"
        case let .showMap(f): "show map \(f.path)"
        case let .prepareMap(f): "prepare map \(f.path)"
        case let .addMap(v, f, e): "add map @\(v) \(f.path) \(e.key) \(e.value)"
        case let .commitMap(v, f): "commit map @\(v) \(f.path)"
        case let .showServersState(b): b.map { "show servers state \($0)" } ?? "show servers state"
        case .showInfo: "show info"
        case let .showEnv(n): "show env \(n)"
        case .showStat: "show stat -1 4 -1"
        }
    }

    public var description: String { text }

    public var backend: ProxyName? {
        switch self {
        case let .setAddress(b, _, _), let .setState(b, _, _), let .setWeight(b, _, _), let .setCheckPort(b, _, _),
             let .addServer(b, _, _, _), let .enableHealth(b, _): b
        case let .showServersState(b): b
        default: nil
        }
    }

    public var isMutation: Bool {
        switch self {
        case .setAddress, .setState, .setWeight, .setCheckPort, .addServer, .enableHealth, .prepareMap, .addMap, .commitMap: true
        default: false
        }
    }

    /// Decides whether HAProxy's reply means success. Replies seen on 2.6 (see
    /// shared notes): `set server .. addr` confirms with "IP changed from ..." or "no need to
    /// change ..."; `state` and `weight` answer nothing on success.
    public func failure(in reply: String) -> String? {
        let r = reply.trimmingSpaces
        switch self {
        case .setAddress:
            if r.contains("changed from") || r.contains("no need to change") { return nil }
            return r.isEmpty ? "no confirmation" : r
        case .setState, .setWeight, .addMap, .commitMap, .enableHealth:
            return r.isEmpty ? nil : r
        case .addServer:
            return r.hasPrefix("New server registered") ? nil : (r.isEmpty ? "no confirmation" : r)
        case .setCheckPort:
            return r.isEmpty || r.contains("changed from") || r.contains("no need to change") ? nil : r
        case .prepareMap:
            return Self.preparedVersion(r) != nil ? nil : (r.isEmpty ? "no version" : r)
        case .showMap:
            return r.isEmpty || r.hasPrefix("0x") ? nil : r
        case .showServersState:
            if r.hasPrefix("1") || r.isEmpty { return nil }
            return r
        case .showInfo:
            return r.contains("Pid:") ? nil : (r.isEmpty ? "empty reply" : r)
        case .showEnv:
            return nil
        case .showStat:
            return r.hasPrefix("#") ? nil : r
        }
    }
}

extension RuntimeCommand {
    /// The version number in `prepare map`'s reply ("New version created: 3").
    public static func preparedVersion(_ reply: String) -> Int? {
        guard let r = reply.range(ofLiteral: "New version created:") else { return nil }
        let rest = String(reply[r.upperBound...]).trimmingSpaces
        return Int(rest.split(separator: "\n").first.map(String.init) ?? "")
    }

    /// `show map <file>` lines (`0x55d… key value`).
    public static func mapEntries(_ reply: String) -> [MapKeyValue]? {
        var out: [MapKeyValue] = []
        for line in reply.split(separator: "\n") where !line.isEmpty {
            let f = line.split(separator: " ", maxSplits: 2)
            guard f.count == 3, f[0].hasPrefix("0x") else { return nil }
            out.append(MapKeyValue(unchecked: String(f[1]), String(f[2])))
        }
        return out
    }
}

/// The options of a dynamic server, taken from the slot's rendered `server` line: tokens that
/// are safe CLI arguments (printable ASCII, no `;`, `#`, quotes or backslash), 60 at most
/// (HAProxy's CLI takes 64 arguments).
public struct ServerOptions: Hashable, Sendable {
    public let tokens: [String]

    public init(tokens: [String]) throws {
        guard tokens.count <= 60 else {
            throw ValidationError(field: "server options", value: tokens.joined(separator: " "), reason: "more than 60 words")
        }
        for t in tokens {
            guard !t.isEmpty, t.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != 0x3B && $0 != 0x23 && $0 != 0x22 && $0 != 0x27 && $0 != 0x5C }) else {
                throw ValidationError(field: "server options", value: t, reason: "not a plain runtime-API argument")
            }
        }
        self.tokens = tokens
    }

    /// The options of a rendered slot line (`server sN ADDR:PORT opt…`), without `disabled` and
    /// `enabled` (a dynamic server starts in maintenance; its state is set afterwards).
    public init(serverLine line: String) throws {
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).map(String.init)
        guard words.count >= 3, words[0] == "server" else {
            throw ValidationError(field: "server line", value: line, reason: "not a server line")
        }
        try self.init(tokens: words.dropFirst(3).filter { $0 != "disabled" && $0 != "enabled" })
    }

    /// Whether the options turn health checks on (they then need `enable health`).
    public var checks: Bool { tokens.contains("check") }
}

/// A map file path, safe in a CLI command.
public struct MapFile: Hashable, Sendable, CustomStringConvertible {
    public let path: String
    public init(_ path: String) throws { self.path = try RenderOptions.validateSocketPath(path) }
    public var description: String { path }
}

/// A map entry whose key and value are safe CLI arguments (no spaces, `;`, `#`, quotes, backslash,
/// control characters).
public struct MapKeyValue: Hashable, Sendable, Comparable {
    public let key: String
    public let value: String

    public init(key: String, value: String) throws {
        for (field, text) in [("map key", key), ("map value", value)] {
            guard !text.isEmpty, text.utf8.count <= 1024, text.utf8.allSatisfy({ URLPath.allowed($0) && $0 != 0x23 }) else {
                throw ValidationError(field: field, value: text, reason: "map keys and values may only contain URL path characters")
            }
        }
        self.key = key
        self.value = value
    }

    public init(unchecked key: String, _ value: String) {
        self.key = key
        self.value = value
    }

    public static func < (a: MapKeyValue, b: MapKeyValue) -> Bool { (a.key, a.value) < (b.key, b.value) }
}

/// Splits the runtime socket's output into one reply per command. HAProxy ends each command's
/// reply with an empty line (an empty reply is just that line). A state machine fed with bytes
/// as they arrive, so it works on partial reads at any boundary.
public struct RuntimeReplySplitter: Sendable {
    public private(set) var replies: [String] = []
    private var current: [UInt8] = []
    private var lineStart = 0

    public init() {}

    public mutating func feed(_ bytes: some Sequence<UInt8>) {
        // Runs of bytes between newlines are copied at once: a `show servers state` of 25,000
        // servers is 2 MB, which byte-by-byte appends took ~85 ms to split.
        if bytes.withContiguousStorageIfAvailable({ feed(buffer: $0) }) == nil {
            Array(bytes).withUnsafeBufferPointer { feed(buffer: $0) }
        }
    }

    private mutating func feed(buffer: UnsafeBufferPointer<UInt8>) {
        var start = 0
        while start < buffer.count {
            guard let newline = buffer[start...].firstIndex(of: 0x0A) else {
                current.append(contentsOf: buffer[start...])
                return
            }
            if newline > start { current.append(contentsOf: buffer[start..<newline]) }
            if current.count == lineStart {
                // An empty line: the reply ends here (without the newline before it).
                let end = current.last == 0x0A ? current.count - 1 : current.count
                replies.append(String(decoding: current[..<end], as: UTF8.self))
                // A large reply's buffer (2 MB for 25,000 servers) is released at once rather
                // than kept beside the text while the caller parses it.
                if current.capacity > 64 << 10 { current = [] } else { current.removeAll(keepingCapacity: true) }
                lineStart = 0
            } else {
                current.append(0x0A)
                lineStart = current.count
            }
            start = newline + 1
        }
    }

    /// Text received after the last complete reply (an unterminated reply).
    public var pending: String { String(decoding: current, as: UTF8.self) }
}
