/// One server line of HAProxy's stats CSV (`/haproxy?stats;csv`, or `show stat` on the socket).
public struct StatsServer: Sendable, Equatable {
    public var backend: String
    public var name: String
    /// `UP`, `UP 1/3`, `DOWN`, `NOLB`, `MAINT`, `MAINT (via …)`, `DRAIN`, `no check`, …
    public var status: String
    /// Sessions on the server now, and requests queued for it.
    public var sessions: Int
    public var queued: Int
    /// `ip:port` (HAProxy's `addr` column).
    public var address: String

    public init(backend: String, name: String, status: String, sessions: Int = 0, queued: Int = 0, address: String) {
        self.backend = backend
        self.name = name
        self.status = status
        self.sessions = sessions
        self.queued = queued
        self.address = address
    }

    /// Takes new requests: up (checked or not checked).
    public var isUp: Bool { status.hasPrefix("UP") || status == "no check" }
    /// Set aside by its admin state (`drain` or `maint`): no new requests.
    public var isSetAside: Bool { status.hasPrefix("DRAIN") || status.hasPrefix("MAINT") }
    /// Set aside and idle: nothing in flight, nothing queued (zdd.py's "drained listener").
    public var isDrained: Bool { isSetAside && sessions == 0 && queued == 0 }
}

public struct StatsCSVError: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String
    public var description: String { "HAProxy stats CSV: \(reason)" }
}

public enum StatsCSV {
    /// The server rows (not FRONTEND/BACKEND) of a stats CSV document, in order. Needs the header
    /// line (`# pxname,svname,…`) with at least `pxname`, `svname`, `status`, `scur`, `qcur` and
    /// `addr` (HAProxy 1.9+). Fields may be double-quoted (`"a,b"`, `""` for a quote).
    public static func servers(_ text: String) throws -> [StatsServer] {
        var lines = text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }).map(String.init)
        guard let header = lines.first, header.hasPrefix("#") else {
            throw StatsCSVError(reason: "no header line starting with '#' (is this the stats page with ';csv'?)")
        }
        lines.removeFirst()
        let names = fields(String(header.dropFirst()).trimmingSpaces)
        var column: [String: Int] = [:]
        for (i, n) in names.enumerated() where column[n] == nil { column[n] = i }
        let required = ["pxname", "svname", "status", "scur", "qcur", "addr"]
        for r in required where column[r] == nil {
            throw StatsCSVError(reason: "no '\(r)' column in the header")
        }
        var out: [StatsServer] = []
        for line in lines where !line.hasPrefix("#") && !line.isEmpty {
            let f = fields(line)
            func value(_ name: String) -> String {
                guard let i = column[name], i < f.count else { return "" }
                return f[i]
            }
            let sv = value("svname")
            guard sv != "FRONTEND", sv != "BACKEND", !sv.isEmpty else { continue }
            out.append(StatsServer(backend: value("pxname"), name: sv, status: value("status"),
                                   sessions: Int(value("scur")) ?? 0, queued: Int(value("qcur")) ?? 0, address: value("addr")))
        }
        return out
    }

    static func fields(_ line: String) -> [String] {
        var out: [String] = []
        var field = ""
        var quoted = false
        var chars = Array(line)
        if chars.last == "," { chars.removeLast() }
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if quoted {
                if c == "\"" {
                    if i + 1 < chars.count, chars[i + 1] == "\"" { field.append("\""); i += 1 } else { quoted = false }
                } else {
                    field.append(c)
                }
            } else if c == "\"" && field.isEmpty {
                quoted = true
            } else if c == "," {
                out.append(field)
                field = ""
            } else {
                field.append(c)
            }
            i += 1
        }
        out.append(field)
        return out
    }
}
