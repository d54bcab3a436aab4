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
    /// `HAPROXY_{n}_BIND_OPTIONS`: appended to the service port's bind line (validated tokens).
    public var bindOptions: String?
    /// `HAPROXY_{n}_SSL_CERT`: terminate TLS on the service port with this certificate file.
    public var sslCert: String?
    /// `HAPROXY_{n}_STICKY`: cookie stickiness (the cookie names the slot, which keeps its task
    /// for the task's whole life).
    public var sticky = false
    /// `HAPROXY_{n}_REDIRECT_TO_HTTPS`: plain-HTTP requests to the vhosts get a 301 to https.
    public var redirectToHTTPS = false
    /// `HAPROXY_{n}_USE_HSTS`: add Strict-Transport-Security to responses.
    public var useHSTS = false
    /// `HAPROXY_{n}_AUTH`: `realm:user:password-hash` basic auth on the vhosts.
    public var auth: BasicAuth?
    /// `HAPROXY_{n}_BACKEND_HEALTHCHECK_PORT_INDEX`: health-check the task on this port index.
    public var healthCheckPortIndex: Int?
    /// `HAPROXY_{n}_BACKEND_NETWORK_ALLOWED_ACL`: only these networks may use the backend.
    public var networkAllowed: [String] = []
    /// `HAPROXY_{n}_HTTP_BACKEND_PROXYPASS_PATH`: strip this prefix before forwarding.
    public var proxyPassPath: URLPath?
    /// `HAPROXY_{n}_HTTP_BACKEND_REVPROXY_PATH`: prefix the backend's redirects with this path.
    public var revProxyPath: URLPath?
    /// `HAPROXY_{n}_HTTP_BACKEND_REDIR`: redirect the vhost's root (`/`) here.
    public var redirectRoot: String?
    /// `HAPROXY_{n}_<TEMPLATE>` overrides (used only with `--enable-label-templates`).
    public var templateOverrides: [String: String] = [:]

    public struct BasicAuth: Sendable, Equatable {
        public var realm: String
        public var user: String
        /// A crypt(3) hash, as HAProxy's `userlist ... password` takes it.
        public var passwordHash: String
    }

    public init() {}

    /// Whether this service's vhost routing needs explicit rules in the config (auth, redirects
    /// or per-app rule templates) rather than the runtime-updatable vhost maps.
    public var needsExplicitRules: Bool {
        auth != nil || redirectToHTTPS || templateOverrides.keys.contains { $0.contains("FRONTEND_ACL") || $0.contains("ROUTING_ONLY") || $0.contains("REDIRECT") }
    }
}

public enum LabelParser {
    /// The label keys this version understands for port index `n` (others are ignored, as in
    /// marathon-lb, apart from template overrides which are handled by the renderer).
    public static func key(_ name: String, _ index: Int) -> String { "HAPROXY_\(index)_\(name)" }

    /// Parses the labels of service port `index`. Throws the first invalid value; the caller
    /// disables the whole app, as the issue and marathon-lb's users expect ("one bad label never
    /// breaks the other apps").
    public static func parse(labels: [String: String], index: Int) throws -> ServiceLabels {
        // Keys are matched exactly; values are validated one by one below.
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
        if let (k, v) = value("BIND_OPTIONS") { s.bindOptions = try tokens(v, field: k, extra: ",=:/@+") }
        if let (k, v) = value("SSL_CERT") { s.sslCert = try filePath(v, field: k) }
        if let (k, v) = value("STICKY") { s.sticky = try bool(v, field: k) }
        if let (k, v) = value("REDIRECT_TO_HTTPS") { s.redirectToHTTPS = try bool(v, field: k) }
        if let (k, v) = value("USE_HSTS") { s.useHSTS = try bool(v, field: k) }
        if let (k, v) = value("AUTH") { s.auth = try auth(v, field: k) }
        if let (k, v) = value("BACKEND_HEALTHCHECK_PORT_INDEX") {
            guard let i = Int(v.trimmingSpaces), (0...1000).contains(i) else {
                throw ValidationError(field: k, value: v, reason: "expected a port index (0, 1, ...)")
            }
            s.healthCheckPortIndex = i
        }
        if let (k, v) = value("BACKEND_NETWORK_ALLOWED_ACL") {
            s.networkAllowed = try v.split(whereSeparator: { $0 == " " || $0 == "\t" }).map { try network(String($0), field: k) }
            if s.networkAllowed.isEmpty { throw ValidationError(field: k, value: v, reason: "expected one or more networks (CIDR or IP)") }
        }
        if let (k, v) = value("HTTP_BACKEND_PROXYPASS_PATH") { s.proxyPassPath = try URLPath(v.trimmingSpaces, field: k) }
        if let (k, v) = value("HTTP_BACKEND_REVPROXY_PATH") { s.revProxyPath = try URLPath(v.trimmingSpaces, field: k) }
        if let (k, v) = value("HTTP_BACKEND_REDIR") { s.redirectRoot = try redirectTarget(v, field: k) }
        let prefix = "HAPROXY_\(index)_"
        for (k, v) in labels where k.hasPrefix(prefix) {
            let name = "HAPROXY_" + k.dropFirst(prefix.count)
            if LabelParser.overridableTemplates.contains(name) {
                s.templateOverrides[name] = v.replacingAll("\r\n", with: "\n")
            }
        }
        return s
    }

    /// Every per-port label name this version reads (`HAPROXY_{n}_<NAME>`), plus `HAPROXY_GROUP`
    /// at app level. docs/labels.md documents each (a test checks).
    public static let knownLabels = [
        "GROUP", "VHOST", "PATH", "PORT", "MODE", "BALANCE", "BIND_ADDR", "BIND_OPTIONS", "SSL_CERT", "STICKY",
        "REDIRECT_TO_HTTPS", "USE_HSTS", "AUTH", "BACKEND_WEIGHT", "BACKEND_HEALTHCHECK_PORT_INDEX",
        "BACKEND_NETWORK_ALLOWED_ACL", "HTTP_BACKEND_PROXYPASS_PATH", "HTTP_BACKEND_REVPROXY_PATH", "HTTP_BACKEND_REDIR",
        "ENABLED",
    ]

    /// Templates an app may override per port with `HAPROXY_{n}_<TEMPLATE>` (marathon-lb's list;
    /// the global ones — HEAD, the shared frontend heads, the allow/deny blocks — cannot be).
    public static let overridableTemplates: Set<String> = [
        "HAPROXY_FRONTEND_HEAD", "HAPROXY_FRONTEND_BACKEND_GLUE", "HAPROXY_BACKEND_HEAD", "HAPROXY_BACKEND_HTTP_OPTIONS",
        "HAPROXY_BACKEND_HTTP_HEALTHCHECK_OPTIONS", "HAPROXY_BACKEND_TCP_HEALTHCHECK_OPTIONS",
        "HAPROXY_BACKEND_SERVER_OPTIONS", "HAPROXY_BACKEND_SERVER_HTTP_HEALTHCHECK_OPTIONS",
        "HAPROXY_BACKEND_SERVER_TCP_HEALTHCHECK_OPTIONS", "HAPROXY_BACKEND_STICKY_OPTIONS", "HAPROXY_BACKEND_HSTS_OPTIONS",
        "HAPROXY_HTTP_BACKEND_PROXYPASS_GLUE", "HAPROXY_HTTP_BACKEND_REVPROXY_GLUE", "HAPROXY_HTTP_BACKEND_REDIR",
        "HAPROXY_HTTP_BACKEND_NETWORK_ALLOWED_ACL", "HAPROXY_TCP_BACKEND_NETWORK_ALLOWED_ACL", "HAPROXY_USERLIST_HEAD",
        "HAPROXY_HTTP_FRONTEND_ACL", "HAPROXY_HTTP_FRONTEND_ACL_ONLY", "HAPROXY_HTTP_FRONTEND_ROUTING_ONLY",
        "HAPROXY_HTTP_FRONTEND_ACL_WITH_AUTH", "HAPROXY_HTTP_FRONTEND_ROUTING_ONLY_WITH_AUTH",
        "HAPROXY_HTTP_FRONTEND_ACL_WITH_PATH", "HAPROXY_HTTP_FRONTEND_ACL_WITH_AUTH_AND_PATH",
        "HAPROXY_HTTP_FRONTEND_ACL_ONLY_WITH_PATH", "HAPROXY_HTTP_FRONTEND_ACL_ONLY_WITH_PATH_AND_AUTH",
        "HAPROXY_HTTP_FRONTEND_ROUTING_ONLY_WITH_PATH", "HAPROXY_HTTP_FRONTEND_ROUTING_ONLY_WITH_PATH_AND_AUTH",
        "HAPROXY_HTTPS_FRONTEND_ACL", "HAPROXY_HTTPS_FRONTEND_ACL_WITH_AUTH", "HAPROXY_HTTPS_FRONTEND_ACL_WITH_PATH",
        "HAPROXY_HTTPS_FRONTEND_ACL_WITH_AUTH_AND_PATH", "HAPROXY_HTTPS_FRONTEND_ACL_ONLY_WITH_PATH",
        "HAPROXY_BACKEND_REDIRECT_HTTP_TO_HTTPS", "HAPROXY_BACKEND_REDIRECT_HTTP_TO_HTTPS_WITH_PATH",
        "HAPROXY_HTTP_FRONTEND_APPID_ACL",
    ]

    /// Space-separated tokens of letters, digits, `_.-` and `extra`: nothing that could end a config
    /// line, start a comment, quote, or escape.
    static func tokens(_ raw: String, field: String, extra: String) throws -> String {
        let t = raw.trimmingSpaces
        let allowed = Set(("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.- " + extra).unicodeScalars)
        guard !t.isEmpty, t.utf8.count <= 512, t.unicodeScalars.allSatisfy({ allowed.contains($0) }) else {
            throw ValidationError(field: field, value: raw, reason: "only letters, digits, spaces and _.-\(extra) are allowed")
        }
        return t.split(separator: " ").joined(separator: " ")
    }

    /// A file path for a config line (certificate files).
    public static func filePath(_ raw: String, field: String) throws -> String {
        let t = raw.trimmingSpaces
        guard t.hasPrefix("/"), t.utf8.count <= 1024,
              t.utf8.allSatisfy({ ProxyName.allowed($0) || $0 == 0x2F || $0 == 0x40 || $0 == 0x2B }) else {
            throw ValidationError(field: field, value: raw, reason: "an absolute file path of letters, digits and _ . : - / @ + is expected")
        }
        return t
    }

    /// `realm:user:password-hash`, each part restricted so it fits `userlist` and a quoted realm.
    static func auth(_ raw: String, field: String) throws -> ServiceLabels.BasicAuth {
        let parts = raw.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3 else {
            throw ValidationError(field: field, value: raw, reason: "expected realm:user:password-hash (exactly two colons)")
        }
        let realmOK = !parts[0].isEmpty && parts[0].count <= 128 && parts[0].unicodeScalars.allSatisfy {
            $0.isASCII && ($0.properties.isAlphabetic || $0.properties.numericType != nil || " _.-".unicodeScalars.contains($0))
        }
        let userOK = !parts[1].isEmpty && parts[1].utf8.count <= 128 && parts[1].utf8.allSatisfy { ProxyName.allowed($0) || $0 == 0x40 }
        let hashOK = !parts[2].isEmpty && parts[2].utf8.count <= 512 && parts[2].utf8.allSatisfy {
            ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || "./$=+-".utf8.contains($0)
        }
        guard realmOK, userOK, hashOK else {
            throw ValidationError(field: field, value: raw, reason: "realm: letters, digits, spaces, _.-; user: letters, digits, _.:-@; hash: a crypt(3) hash")
        }
        return .init(realm: parts[0], user: parts[1], passwordHash: parts[2])
    }

    /// An IP or a CIDR network (v4 or v6).
    static func network(_ raw: String, field: String) throws -> String {
        let pieces = raw.split(separator: "/", omittingEmptySubsequences: false)
        guard pieces.count <= 2, let ip = try? IPAddress(String(pieces[0])) else {
            throw ValidationError(field: field, value: raw, reason: "expected an IP address or a CIDR network")
        }
        if pieces.count == 2 {
            guard let bits = Int(pieces[1]), (0...(ip.isV6 ? 128 : 32)).contains(bits), String(bits) == pieces[1] else {
                throw ValidationError(field: field, value: raw, reason: "bad prefix length")
            }
            return "\(ip.text)/\(bits)"
        }
        return ip.text
    }

    /// A path (`/new`) or an absolute http(s) URL with URL-safe characters.
    static func redirectTarget(_ raw: String, field: String) throws -> String {
        let t = raw.trimmingSpaces
        if t.hasPrefix("/") { return try URLPath(t, field: field).text }
        for scheme in ["http://", "https://"] where t.lowercased().hasPrefix(scheme) {
            let rest = t.dropFirst(scheme.count)
            let hostEnd = rest.firstIndex(where: { $0 == "/" || $0 == ":" }) ?? rest.endIndex
            _ = try HostName(String(rest[..<hostEnd]), field: field)
            if rest[hostEnd...].allSatisfy({ $0.isASCII }), rest[hostEnd...].utf8.allSatisfy(URLPath.allowed) {
                return String(t.prefix(scheme.count)).lowercased() + rest
            }
        }
        throw ValidationError(field: field, value: raw, reason: "expected a path (/x) or an http(s) URL")
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
