/// HAProxy routing settings of one service port of an app, parsed and validated from Marathon labels
/// (`HAPROXY_GROUP`, `HAPROXY_{n}_*`), with marathon-lb's names and defaults.
/// Every value here is safe to interpolate into an HAProxy config line.
public struct ServiceLabels: Sendable, Equatable {
    public enum Mode: String, Sendable, Equatable { case http, tcp }

    public enum Balance: String, Sendable, Equatable, CaseIterable {
        case roundrobin, staticRR = "static-rr", leastconn, first, source, uri, random
    }

    /// From `HAPROXY_{n}_GROUP`, else the app's `HAPROXY_GROUP` (marathon-lb: the per-port list
    /// replaces the app's list, it does not add to it).
    public var groups: [String] = []
    /// `HAPROXY_{n}_ENABLED`; nil when the label is absent (then `--strict-mode` decides).
    public var enabled: Bool?
    public var vhosts: [HostName] = []
    public var path: URLPath?
    /// `HAPROXY_{n}_PORT`: replaces Marathon's service port.
    public var port: Port?
    /// nil: resolved later (HTTP health check → http; vhost → http; else tcp), as marathon-lb does.
    public var mode: Mode?
    public var balance: Balance = .roundrobin
    /// `*` or a numeric IP.
    public var bindAddress: String = "*"
    /// Order of the vhost rules in the shared HTTP frontend: higher first. marathon-lb's default is
    /// 0, or 1 when a path is set (so path rules come before plain host rules).
    public var backendWeight: Int = 0

    public init() {}
}

public enum LabelParser {
    /// The label keys this version understands for port index `n` (others are ignored, as in
    /// marathon-lb, apart from template overrides which are handled by the renderer).
    public static func key(_ name: String, _ index: Int) -> String { "HAPROXY_\(index)_\(name)" }

    /// Parses the labels of service port `index`. Throws the first invalid value; the caller
    /// disables the whole app, as the issue and marathon-lb's users expect ("one bad label never
    /// breaks the other apps").
    public static func parse(labels: [String: String], index: Int) throws -> ServiceLabels {
        var s = ServiceLabels()
        func value(_ name: String) -> (key: String, value: String)? {
            let k = key(name, index)
            return labels[k].map { (k, $0) }
        }

        let appGroups = try labels["HAPROXY_GROUP"].map { try groupList($0, field: "HAPROXY_GROUP") } ?? []
        if let (k, v) = value("GROUP") {
            let list = try groupList(v, field: k)
            s.groups = list.isEmpty ? appGroups : list
        } else {
            s.groups = appGroups
        }
        if let (k, v) = value("ENABLED") { s.enabled = try bool(v, field: k) }
        if let (k, v) = value("VHOST") {
            var seen = Set<HostName>()
            for part in v.split(separator: ",", omittingEmptySubsequences: false) {
                let trimmed = String(part).trimmingSpaces
                guard !trimmed.isEmpty else {
                    throw ValidationError(field: k, value: v, reason: "empty host name in the comma-separated list")
                }
                let host = try HostName(trimmed, field: k)
                if seen.insert(host).inserted { s.vhosts.append(host) }
            }
        }
        if let (k, v) = value("PATH") { s.path = try URLPath(v, field: k) }
        if let (k, v) = value("PORT") { s.port = try Port(text: v, field: k) }
        if let (k, v) = value("MODE") {
            guard let m = ServiceLabels.Mode(rawValue: v.trimmingSpaces.lowercased()) else {
                throw ValidationError(field: k, value: v, reason: "mode must be http or tcp")
            }
            s.mode = m
        }
        if let (k, v) = value("BALANCE") {
            guard let b = ServiceLabels.Balance(rawValue: v.trimmingSpaces.lowercased()) else {
                throw ValidationError(field: k, value: v, reason: "balance must be one of \(ServiceLabels.Balance.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            s.balance = b
        }
        if let (k, v) = value("BIND_ADDR") {
            let t = v.trimmingSpaces
            if t == "*" {
                s.bindAddress = "*"
            } else {
                do { s.bindAddress = try IPAddress(t).text } catch {
                    throw ValidationError(field: k, value: v, reason: "bind address must be * or a numeric IP address")
                }
            }
        }
        if let (k, v) = value("BACKEND_WEIGHT") {
            guard let w = Int(v.trimmingSpaces), (-1_000_000...1_000_000).contains(w) else {
                throw ValidationError(field: k, value: v, reason: "backend weight must be an integer between -1000000 and 1000000")
            }
            s.backendWeight = w
        } else if s.path != nil {
            s.backendWeight = 1
        }
        return s
    }

    /// Comma-separated group names; spaces around names are trimmed (marathon-lb did not trim,
    /// which silently broke `"internal, external"`).
    static func groupList(_ raw: String, field: String) throws -> [String] {
        let names = raw.split(separator: ",").map { String($0).trimmingSpaces }.filter { !$0.isEmpty }
        for n in names where !n.utf8.allSatisfy({ ProxyName.allowed($0) || $0 == 0x2A }) {
            throw ValidationError(field: field, value: raw, reason: "group names may only contain letters, digits, '_', '.', ':', '-' and '*'")
        }
        return names
    }

    /// marathon-lb's truth values: true/t/yes/y (any case) are true. We also accept the usual
    /// false spellings and reject anything else instead of silently reading it as false.
    static func bool(_ raw: String, field: String) throws -> Bool {
        switch raw.trimmingSpaces.lowercased() {
        case "true", "t", "yes", "y", "1", "on": return true
        case "false", "f", "no", "n", "0", "off", "": return false
        default: throw ValidationError(field: field, value: raw, reason: "expected true or false")
        }
    }
}
