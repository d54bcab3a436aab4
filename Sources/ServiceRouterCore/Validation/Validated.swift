/// Validated values: the only things that are ever interpolated into an HAProxy config line or a
/// runtime-socket command. Each type guarantees by construction that its text contains no space,
/// newline, `;`, `#`, quote, backslash or other CLI/config metacharacter.

public struct ValidationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var field: String
    public var value: String
    public var reason: String

    public init(field: String, value: String, reason: String) {
        self.field = field
        self.value = value
        self.reason = reason
    }

    public var description: String { "\(field)=\(Self.quoted(value)): \(reason)" }

    /// Shows a bad value safely in a log line (escapes control characters, truncates).
    public static func quoted(_ value: String) -> String {
        var out = ""
        for scalar in value.unicodeScalars.prefix(80) {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    out += "\\x" + String(scalar.value, radix: 16)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        if value.unicodeScalars.count > 80 { out += "…" }
        return "\"" + out + "\""
    }
}

/// An HAProxy proxy (frontend/backend) or server name: `[A-Za-z0-9_.:-]+`, at most 100 bytes.
public struct ProxyName: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let text: String

    /// The longest name accepted.
    public static let maxLength = 100

    public init(_ text: String) throws {
        guard !text.isEmpty, text.utf8.count <= Self.maxLength,
              text.utf8.allSatisfy({ Self.allowed($0) }) else {
            throw ValidationError(field: "name", value: text, reason: "HAProxy names may only contain letters, digits, '_', '.', ':' and '-' (1-100 characters)")
        }
        self.text = text
    }

    init(unchecked text: String) { self.text = text }

    static func allowed(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
            || b == 0x5F || b == 0x2E || b == 0x3A || b == 0x2D
    }

    public var description: String { text }
    public static func < (a: ProxyName, b: ProxyName) -> Bool { a.text < b.text }
}

/// A numeric IP address (v4 dotted quad or v6), normalised.
public struct IPAddress: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let text: String
    public let isV6: Bool

    public init(_ raw: String) throws {
        if let v4 = Self.parseV4(raw) {
            text = v4
            isV6 = false
        } else if Self.isValidV6(raw), let words = Self.v6Words(raw) {
            text = Self.v6Text(words)
            isV6 = true
        } else {
            throw ValidationError(field: "address", value: raw, reason: "not a numeric IPv4 or IPv6 address")
        }
    }

    public static func isNumeric(_ raw: String) -> Bool { parseV4(raw) != nil || isValidV6(raw) }

    public var isLoopback: Bool { isV6 ? text == "::1" : text.hasPrefix("127.") }

    public var description: String { text }
    public static func < (a: IPAddress, b: IPAddress) -> Bool { a.text < b.text }

    static func parseV4(_ s: String) -> String? {
        // Almost every address is already canonical (four 0-255 numbers, no leading zero): then
        // the text is the answer, without splitting or allocating (100,000 parses per full pass
        // at 10,000 tasks).
        if isCanonicalV4(s.utf8) { return s }
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [String] = []
        for p in parts {
            guard !p.isEmpty, p.count <= 3, p.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                  let v = Int(p), v <= 255 else { return nil }
            out.append(String(v))
        }
        return out.joined(separator: ".")
    }

    /// Four dot-separated decimal numbers 0-255 without leading zeros: what `parseV4` would
    /// return unchanged.
    static func isCanonicalV4(_ u: String.UTF8View) -> Bool {
        var dots = 0, digits = 0, value = 0, leadingZero = false
        for b in u {
            if b == 0x2E {
                guard digits > 0, !(leadingZero && digits > 1), value <= 255 else { return false }
                dots += 1
                digits = 0
                value = 0
                continue
            }
            guard b >= 0x30 && b <= 0x39, digits < 3 else { return false }
            if digits == 0 { leadingZero = b == 0x30 }
            value = value * 10 + Int(b - 0x30)
            digits += 1
        }
        return dots == 3 && digits > 0 && !(leadingZero && digits > 1) && value <= 255
    }

    static func isValidV6(_ s: String) -> Bool {
        guard s.contains(":"), s.utf8.count <= 45 else { return false }
        var body = s
        var groupsAllowed = 8
        // An embedded IPv4 tail counts as two groups.
        if let lastColon = s.lastIndex(of: ":"), s[s.index(after: lastColon)...].contains(".") {
            guard parseV4(String(s[s.index(after: lastColon)...])) != nil else { return false }
            let head = s[..<lastColon]
            body = head.hasSuffix(":") ? String(head) + ":" : String(head)
            groupsAllowed = 6
        }
        let halves = body.components(separatedBy: "::")
        guard halves.count <= 2 else { return false }
        func groups(_ h: String) -> [Substring]? {
            if h.isEmpty { return [] }
            let g = h.split(separator: ":", omittingEmptySubsequences: false)
            for x in g where x.isEmpty || x.count > 4 || !x.allSatisfy(\.isHexDigit) { return nil }
            return g
        }
        guard let first = groups(halves[0]) else { return false }
        if halves.count == 2 {
            guard let second = groups(halves[1]) else { return false }
            return first.count + second.count < groupsAllowed
        }
        return first.count == groupsAllowed
    }

    /// The eight 16-bit words of an address that passed `isValidV6`.
    static func v6Words(_ s: String) -> [UInt16]? {
        var body = s
        var tail: [UInt16] = []
        if let lastColon = s.lastIndex(of: ":"), s[s.index(after: lastColon)...].contains(".") {
            guard let v4 = parseV4(String(s[s.index(after: lastColon)...])) else { return nil }
            let b = v4.split(separator: ".").compactMap { UInt16($0) }
            tail = [b[0] << 8 | b[1], b[2] << 8 | b[3]]
            let head = s[..<lastColon]
            body = head.hasSuffix(":") ? String(head) + ":" : String(head)
        }
        func words(_ h: String) -> [UInt16]? {
            if h.isEmpty { return [] }
            var out: [UInt16] = []
            for g in h.split(separator: ":", omittingEmptySubsequences: false) {
                guard let v = UInt16(g, radix: 16) else { return nil }
                out.append(v)
            }
            return out
        }
        let halves = body.components(separatedBy: "::")
        guard let head = words(halves[0]) else { return nil }
        var all = head
        if halves.count == 2 {
            guard let rest = words(halves[1]) else { return nil }
            all += Array(repeating: 0, count: max(0, 8 - tail.count - head.count - rest.count)) + rest
        }
        all += tail
        return all.count == 8 ? all : nil
    }

    /// The text `inet_ntop` (glibc) gives, which is how HAProxy reports server addresses: lower-case
    /// hex without leading zeros, the first longest run of two or more zero words as `::`, and the
    /// IPv4-compatible and IPv4-mapped forms with a dotted quad.
    static func v6Text(_ w: [UInt16]) -> String {
        var best = (base: -1, len: 0), cur = (base: -1, len: 0)
        for i in 0...8 {
            if i < 8, w[i] == 0 {
                cur = cur.base == -1 ? (i, 1) : (cur.base, cur.len + 1)
            } else if cur.base != -1 {
                if cur.len > best.len { best = cur }
                cur = (-1, 0)
            }
        }
        if best.len < 2 { best = (-1, 0) }
        var out = ""
        var i = 0
        while i < 8 {
            if best.base != -1, i >= best.base, i < best.base + best.len {
                if i == best.base { out += ":" }
                i += 1
                continue
            }
            if i != 0 { out += ":" }
            if i == 6, best.base == 0, best.len == 6 || (best.len == 5 && w[5] == 0xFFFF) {
                out += "\(w[6] >> 8).\(w[6] & 0xFF).\(w[7] >> 8).\(w[7] & 0xFF)"
                break
            }
            out += String(w[i], radix: 16)
            i += 1
        }
        if best.base != -1, best.base + best.len == 8 { out += ":" }
        return out
    }
}

/// A TCP port, 1-65535.
public struct Port: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let value: Int
    public init(_ value: Int, field: String = "port") throws {
        guard (1...65535).contains(value) else {
            throw ValidationError(field: field, value: String(value), reason: "port must be 1-65535")
        }
        self.value = value
    }
    public init(text: String, field: String) throws {
        guard let v = Int(text.trimmingSpaces), String(v) == text.trimmingSpaces else {
            throw ValidationError(field: field, value: text, reason: "not a port number")
        }
        try self.init(v, field: field)
    }
    public var description: String { String(value) }
    public static func < (a: Port, b: Port) -> Bool { a.value < b.value }
}

/// An address and port a task serves on.
public struct Endpoint: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var ip: IPAddress
    public var port: Port
    public init(ip: IPAddress, port: Port) {
        self.ip = ip
        self.port = port
    }
    public var description: String { ip.isV6 ? "[\(ip)]:\(port)" : "\(ip):\(port)" }
    public static func < (a: Endpoint, b: Endpoint) -> Bool { (a.ip, a.port) < (b.ip, b.port) }
}

/// A DNS host name (RFC 1123 labels), lower-cased; optionally a leading `*.` wildcard.
public struct HostName: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let text: String

    public init(_ raw: String, field: String = "vhost", allowWildcard: Bool = false) throws {
        // ASCII-only lower-casing: `lowercased()` maps U+212A KELVIN SIGN to an ASCII "k", which let
        // a non-ASCII value pass as a host name.
        let s = String(decoding: raw.utf8.map { (0x41...0x5A).contains($0) ? $0 + 0x20 : $0 }, as: UTF8.self)
        var labels = s.split(separator: ".", omittingEmptySubsequences: false)
        if allowWildcard, labels.first == "*", labels.count > 2 { labels.removeFirst() }
        guard !s.isEmpty, s.utf8.count <= 253, !labels.isEmpty,
              labels.allSatisfy(Self.isLabel) else {
            throw ValidationError(field: field, value: raw, reason: "not a valid host name (letters, digits and '-' in dot-separated labels of 1-63 characters)")
        }
        text = s
    }

    static func isLabel(_ l: Substring) -> Bool {
        guard !l.isEmpty, l.utf8.count <= 63, l.first != "-", l.last != "-" else { return false }
        return l.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D }
    }

    public var isWildcard: Bool { text.hasPrefix("*.") }
    public var description: String { text }
    public static func < (a: HostName, b: HostName) -> Bool { a.text < b.text }
}

/// A URL path prefix: starts with `/`, only RFC 3986 path characters, and none of the characters
/// HAProxy's config or CLI treat specially (space, `#`, `;`, quotes, backslash).
public struct URLPath: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let text: String
    public init(_ raw: String, field: String = "path") throws {
        guard raw.hasPrefix("/"), raw.utf8.count <= 1024,
              raw.utf8.allSatisfy(Self.allowed) else {
            throw ValidationError(field: field, value: raw, reason: "a path must start with '/' and contain only letters, digits and -._~/!$&()*+,=:@%?")
        }
        text = raw
    }

    static func allowed(_ b: UInt8) -> Bool {
        if (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) { return true }
        return "-._~/!$&()*+,=:@%?".utf8.contains(b)
    }

    public var description: String { text }
    public static func < (a: URLPath, b: URLPath) -> Bool { a.text < b.text }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}
