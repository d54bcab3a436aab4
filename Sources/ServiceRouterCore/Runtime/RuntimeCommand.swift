/// A runtime-API command built only from validated values, so its text can never carry `;`,
/// a newline or extra arguments into the socket.
public enum RuntimeCommand: Sendable, Equatable, Hashable, CustomStringConvertible {
    case setAddress(backend: ProxyName, server: ProxyName, endpoint: Endpoint)
    case setState(backend: ProxyName, server: ProxyName, state: LiveServer.Admin)
    case setWeight(backend: ProxyName, server: ProxyName, weight: Int)
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
        case let .showServersState(b): b.map { "show servers state \($0)" } ?? "show servers state"
        case .showInfo: "show info"
        case let .showEnv(n): "show env \(n)"
        case .showStat: "show stat -1 4 -1"
        }
    }

    public var description: String { text }

    public var backend: ProxyName? {
        switch self {
        case let .setAddress(b, _, _), let .setState(b, _, _), let .setWeight(b, _, _): b
        case let .showServersState(b): b
        default: nil
        }
    }

    public var isMutation: Bool {
        switch self {
        case .setAddress, .setState, .setWeight: true
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
        case .setState, .setWeight:
            return r.isEmpty ? nil : r
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
                current.removeAll(keepingCapacity: true)
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
