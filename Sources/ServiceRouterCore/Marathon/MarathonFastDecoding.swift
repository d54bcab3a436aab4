/// `/v2/apps` payloads read straight from their UTF-8 bytes into the wire types of
/// `MarathonDecoding.swift`, which then build the models exactly as for JSONDecoder.
///
/// Why: at 10,000 tasks the payload is ~5 MB; JSONDecoder and the Decodable wire types took
/// ~150 ms and ~45 MB of transient memory to read it, on every full resync. This reader makes
/// no intermediate tree.
///
/// It is a fast path only. It accepts nothing it cannot treat exactly as JSONDecoder and the
/// lenient types do: any malformed JSON, wrong type, missing id, duplicate key, unusual number,
/// odd root shape or encoding makes it give up (nil), and the caller decodes the payload the
/// general way, which also produces the skip reasons for bad apps.
enum FastAppsDecoding {
    struct GiveUp: Error {}

    static func apps(_ data: some Sequence<UInt8>) -> (apps: [MarathonApp], skipped: [SkippedApp])? {
        if let result = data.withContiguousStorageIfAvailable({ apps(bytes: $0) }) { return result }
        return Array(data).withUnsafeBufferPointer { apps(bytes: $0) }
    }

    static func apps(bytes: UnsafeBufferPointer<UInt8>) -> (apps: [MarathonApp], skipped: [SkippedApp])? {
        var r = JSONBytes(bytes)
        do {
            return (try root(&r), [])
        } catch {
            return nil
        }
    }

    /// `{"apps": [...]}` (other keys skipped) or a bare array of apps. Each app becomes its model
    /// as soon as it is read, so only one app's wire form is alive at a time.
    static func root(_ r: inout JSONBytes) throws -> [MarathonApp] {
        r.skipSpace()
        var apps: [MarathonApp]?
        if r.peek == UInt8(ascii: "[") {
            apps = try array(&r) { try app(&$0).model() }
        } else {
            try r.object { r, key in
                switch key {
                case "apps":
                    guard apps == nil else { throw GiveUp() }
                    apps = try array(&r) { try app(&$0).model() }
                case "app":
                    throw GiveUp()  // `{"app": {...}}`: rare, left to the general path
                default:
                    try r.skipValue()
                }
            }
        }
        r.skipSpace()
        guard let apps, r.atEnd else { throw GiveUp() }
        return apps
    }

    static func app(_ r: inout JSONBytes) throws -> WireApp {
        var id: String?
        var w = WireApp(id: "")
        try fields(&r) { r, key in
            switch key {
            case "id": id = try r.string()
            case "labels":
                w.labels = try r.nullable { r in
                    var labels: [String: String] = [:]
                    try r.object { r, k in
                        guard labels.updateValue(try r.string(), forKey: k.string) == nil else { throw GiveUp() }
                    }
                    return labels
                }
            case "instances": w.instances = try r.nullable { try $0.flexibleInt() }
            case "version": w.version = try r.nullable { try $0.string() }
            case "versionInfo":
                w.versionInfo = try r.nullable { r in
                    var v = WireApp.VersionInfo(lastConfigChangeAt: nil)
                    try fields(&r) { r, k in
                        guard "lastConfigChangeAt" ~= k else { return false }
                        v.lastConfigChangeAt = try r.nullable { try $0.string() }
                        return true
                    }
                    return v
                }
            case "ports": w.ports = try r.nullable { r in try array(&r) { try $0.flexibleInt() } }
            case "portDefinitions":
                w.portDefinitions = try r.nullable { r in
                    try array(&r) { r in
                        var d = WireApp.PortDefinition(port: nil)
                        try fields(&r) { r, k in
                            guard "port" ~= k else { return false }
                            d.port = try r.nullable { try $0.flexibleInt() }
                            return true
                        }
                        return d
                    }
                }
            case "networks":
                w.networks = try r.nullable { r in
                    try array(&r) { r in
                        var n = WireApp.Network(mode: nil)
                        try fields(&r) { r, k in
                            guard "mode" ~= k else { return false }
                            n.mode = try r.nullable { try $0.string() }
                            return true
                        }
                        return n
                    }
                }
            case "container":
                w.container = try r.nullable { r in
                    var c = WireApp.Container(portMappings: nil, docker: nil)
                    try fields(&r) { r, k in
                        switch k {
                        case "portMappings": c.portMappings = try r.nullable { try portMappings(&$0) }
                        case "docker":
                            c.docker = try r.nullable { r in
                                var d = WireApp.Docker(network: nil, portMappings: nil)
                                try fields(&r) { r, k in
                                    switch k {
                                    case "network": d.network = try r.nullable { try $0.string() }
                                    case "portMappings": d.portMappings = try r.nullable { try portMappings(&$0) }
                                    default: return false
                                    }
                                    return true
                                }
                                return d
                            }
                        default: return false
                        }
                        return true
                    }
                    return c
                }
            case "ipAddress":
                w.ipAddress = try r.nullable { r in
                    var spec = WireApp.IPAddressSpec(discovery: nil)
                    try fields(&r) { r, k in
                        guard "discovery" ~= k else { return false }
                        spec.discovery = try r.nullable { r in
                            var d = WireApp.IPAddressSpec.Discovery(ports: nil)
                            try fields(&r) { r, k in
                                guard "ports" ~= k else { return false }
                                d.ports = try r.nullable { r in
                                    try array(&r) { r in
                                        var p = WireApp.IPAddressSpec.Discovery.Port(number: nil)
                                        try fields(&r) { r, k in
                                            guard "number" ~= k else { return false }
                                            p.number = try r.nullable { try $0.flexibleInt() }
                                            return true
                                        }
                                        return p
                                    }
                                }
                                return true
                            }
                            return d
                        }
                        return true
                    }
                    return spec
                }
            case "healthChecks": w.healthChecks = try r.nullable { r in try array(&r) { try healthCheck(&$0) } }
            case "upgradeStrategy":
                w.upgradeStrategy = try r.nullable { r in
                    var u = WireApp.UpgradeStrategy(maximumOverCapacity: nil)
                    try fields(&r) { r, k in
                        guard "maximumOverCapacity" ~= k else { return false }
                        u.maximumOverCapacity = try r.nullable { try $0.double() }
                        return true
                    }
                    return u
                }
            case "tasks": w.tasks = try r.nullable { r in try array(&r) { try task(&$0) } }
            default: return false
            }
            return true
        }
        guard let id else { throw GiveUp() }
        w.id = id
        return w
    }

    static func portMappings(_ r: inout JSONBytes) throws -> [WireApp.PortMapping] {
        try array(&r) { r in
            var m = WireApp.PortMapping(containerPort: nil, hostPort: nil, servicePort: nil)
            try fields(&r) { r, k in
                switch k {
                case "containerPort": m.containerPort = try r.nullable { try $0.flexibleInt() }
                case "hostPort": m.hostPort = try r.nullable { try $0.flexibleInt() }
                case "servicePort": m.servicePort = try r.nullable { try $0.flexibleInt() }
                default: return false
                }
                return true
            }
            return m
        }
    }

    static func healthCheck(_ r: inout JSONBytes) throws -> WireHealthCheck {
        var h = WireHealthCheck()
        try fields(&r) { r, k in
            switch k {
            case "protocol": h.protocol = try r.nullable { try $0.string() }
            case "path": h.path = try r.nullable { try $0.string() }
            case "portIndex": h.portIndex = try r.nullable { try $0.flexibleInt() }
            case "port": h.port = try r.nullable { try $0.flexibleInt() }
            case "intervalSeconds": h.intervalSeconds = try r.nullable { try $0.flexibleInt() }
            case "timeoutSeconds": h.timeoutSeconds = try r.nullable { try $0.flexibleInt() }
            case "maxConsecutiveFailures": h.maxConsecutiveFailures = try r.nullable { try $0.flexibleInt() }
            case "gracePeriodSeconds": h.gracePeriodSeconds = try r.nullable { try $0.flexibleInt() }
            default: return false
            }
            return true
        }
        return h
    }

    static func task(_ r: inout JSONBytes) throws -> WireTask {
        var id: String?
        var t = WireTask(id: "")
        try fields(&r) { r, k in
            switch k {
            case "id": id = try r.string()
            case "appId": t.appId = try r.nullable { try $0.string() }
            case "host": t.host = try r.nullable { try $0.string() }
            case "state": t.state = try r.nullable { try $0.string() }
            case "ports": t.ports = try r.nullable { r in try array(&r) { try $0.flexibleInt() } }
            case "ipAddresses":
                t.ipAddresses = try r.nullable { r in
                    try array(&r) { r in
                        var a = WireTask.IPAddress(ipAddress: nil)
                        try fields(&r) { r, k in
                            guard "ipAddress" ~= k else { return false }
                            a.ipAddress = try r.nullable { try $0.string() }
                            return true
                        }
                        return a
                    }
                }
            case "healthCheckResults":
                t.healthCheckResults = try r.nullable { r in
                    try array(&r) { r in
                        var h = WireTask.HealthResult(alive: nil)
                        try fields(&r) { r, k in
                            guard "alive" ~= k else { return false }
                            h.alive = try r.nullable { try $0.bool() }
                            return true
                        }
                        return h
                    }
                }
            default: return false
            }
            return true
        }
        guard let id else { throw GiveUp() }
        t.id = id
        return t
    }

    /// An object whose known keys `read` handles (returning true); other keys are skipped. A
    /// known key seen twice gives up (JSONDecoder keeps the first; rare enough to leave to it).
    static func fields(_ r: inout JSONBytes, _ read: (inout JSONBytes, JSONBytes.Key) throws -> Bool) throws {
        var seen: [JSONBytes.Key] = []
        try r.object { r, key in
            if try read(&r, key) {
                guard !seen.contains(key) else { throw GiveUp() }
                seen.append(key)
            } else {
                try r.skipValue()
            }
        }
    }

    static func array<T>(_ r: inout JSONBytes, _ element: (inout JSONBytes) throws -> T) throws -> [T] {
        var out: [T] = []
        try r.array { r in out.append(try element(&r)) }
        return out
    }
}

/// A strict JSON reader over bytes (RFC 8259, UTF-8 only). Every deviation throws `GiveUp`.
struct JSONBytes {
    typealias GiveUp = FastAppsDecoding.GiveUp
    private let b: UnsafeBufferPointer<UInt8>
    private var i = 0
    private var depth = 0
    /// JSONDecoder stops at 512 levels; well below that is enough for Marathon's answers.
    static let maxDepth = 100

    init(_ bytes: UnsafeBufferPointer<UInt8>) { b = bytes }

    var atEnd: Bool { i == b.count }
    var peek: UInt8? { i < b.count ? b[i] : nil }

    mutating func skipSpace() {
        while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 }
    }

    private mutating func expect(_ c: UInt8) throws {
        skipSpace()
        guard i < b.count, b[i] == c else { throw GiveUp() }
        i += 1
    }

    /// An object key: its bytes in the document (keys with escapes give up; Marathon writes none).
    struct Key: Equatable {
        let bytes: UnsafeBufferPointer<UInt8>
        var string: String { String(decoding: bytes, as: UTF8.self) }

        static func == (a: Key, b: Key) -> Bool { a.bytes.elementsEqual(b.bytes) }

        static func ~= (pattern: StaticString, key: Key) -> Bool {
            let n = pattern.utf8CodeUnitCount
            guard n == key.bytes.count else { return false }
            let p = pattern.utf8Start
            for k in 0..<n where p[k] != key.bytes[k] { return false }
            return true
        }
    }

    /// `{ "key": value, ... }`: `body` must consume each value.
    mutating func object(_ body: (inout JSONBytes, Key) throws -> Void) throws {
        try expect(UInt8(ascii: "{"))
        depth += 1
        guard depth <= Self.maxDepth else { throw GiveUp() }
        skipSpace()
        if peek == UInt8(ascii: "}") {
            i += 1
        } else {
            while true {
                let key = try keyBytes()
                try expect(UInt8(ascii: ":"))
                try body(&self, key)
                skipSpace()
                guard let c = peek else { throw GiveUp() }
                i += 1
                if c == UInt8(ascii: "}") { break }
                guard c == UInt8(ascii: ",") else { throw GiveUp() }
            }
        }
        depth -= 1
    }

    mutating func array(_ element: (inout JSONBytes) throws -> Void) throws {
        try expect(UInt8(ascii: "["))
        depth += 1
        guard depth <= Self.maxDepth else { throw GiveUp() }
        skipSpace()
        if peek == UInt8(ascii: "]") {
            i += 1
        } else {
            while true {
                try element(&self)
                skipSpace()
                guard let c = peek else { throw GiveUp() }
                i += 1
                if c == UInt8(ascii: "]") { break }
                guard c == UInt8(ascii: ",") else { throw GiveUp() }
            }
        }
        depth -= 1
    }

    /// `null` → nil; anything else is read by `value`.
    mutating func nullable<T>(_ value: (inout JSONBytes) throws -> T) throws -> T? {
        skipSpace()
        if literal("null") { return nil }
        return try value(&self)
    }

    private mutating func literal(_ word: StaticString) -> Bool {
        let n = word.utf8CodeUnitCount
        guard i + n <= b.count else { return false }
        for k in 0..<n where b[i + k] != word.utf8Start[k] { return false }
        i += n
        return true
    }

    mutating func bool() throws -> Bool {
        skipSpace()
        if literal("true") { return true }
        if literal("false") { return false }
        throw GiveUp()
    }

    private mutating func keyBytes() throws -> Key {
        skipSpace()
        guard peek == UInt8(ascii: "\"") else { throw GiveUp() }
        i += 1
        let start = i
        while true {
            guard i < b.count else { throw GiveUp() }
            let c = b[i]
            if c == UInt8(ascii: "\"") { break }
            guard c >= 0x20, c < 0x80, c != UInt8(ascii: "\\") else { throw GiveUp() }
            i += 1
        }
        i += 1
        return Key(bytes: UnsafeBufferPointer(rebasing: b[start..<(i - 1)]))
    }

    mutating func string() throws -> String {
        skipSpace()
        guard peek == UInt8(ascii: "\"") else { throw GiveUp() }
        i += 1
        let start = i
        var plain = true  // no escape, all ASCII
        while true {
            guard i < b.count else { throw GiveUp() }
            let c = b[i]
            if c == UInt8(ascii: "\"") { break }
            guard c >= 0x20 else { throw GiveUp() }  // control characters must be escaped
            if c == UInt8(ascii: "\\") {
                plain = false
                i += 2  // the escaped character, checked when decoding below
                continue
            }
            if c >= 0x80 { plain = false }
            i += 1
        }
        let raw = UnsafeBufferPointer(rebasing: b[start..<i])
        i += 1
        if plain { return String(decoding: raw, as: UTF8.self) }
        return try Self.decodeString(raw)
    }

    /// Escapes resolved, UTF-8 validated.
    private static func decodeString(_ raw: UnsafeBufferPointer<UInt8>) throws -> String {
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var k = 0
        func hex4(_ at: Int) throws -> UInt32 {
            guard at + 4 <= raw.count else { throw GiveUp() }
            var v: UInt32 = 0
            for j in at..<(at + 4) {
                let c = raw[j]
                let d: UInt8
                switch c {
                case 0x30...0x39: d = c - 0x30
                case 0x41...0x46: d = c - 0x41 + 10
                case 0x61...0x66: d = c - 0x61 + 10
                default: throw GiveUp()
                }
                v = v << 4 | UInt32(d)
            }
            return v
        }
        while k < raw.count {
            let c = raw[k]
            guard c == UInt8(ascii: "\\") else {
                out.append(c)
                k += 1
                continue
            }
            guard k + 1 < raw.count else { throw GiveUp() }
            let e = raw[k + 1]
            k += 2
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4(k)
                k += 4
                if (0xD800...0xDBFF).contains(scalar) {
                    // A surrogate pair; a lone surrogate gives up.
                    guard k + 6 <= raw.count, raw[k] == UInt8(ascii: "\\"), raw[k + 1] == UInt8(ascii: "u") else { throw GiveUp() }
                    let low = try hex4(k + 2)
                    guard (0xDC00...0xDFFF).contains(low) else { throw GiveUp() }
                    k += 6
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(scalar) {
                    throw GiveUp()
                }
                guard let u = Unicode.Scalar(scalar) else { throw GiveUp() }
                out.append(contentsOf: String(u).utf8)
            default: throw GiveUp()
            }
        }
        guard let s = String(validating: out, as: UTF8.self) else { throw GiveUp() }
        return s
    }

    /// The text of a JSON number (grammar checked) and whether it is a plain integer.
    private mutating func number() throws -> (text: UnsafeBufferPointer<UInt8>, integer: Bool) {
        skipSpace()
        let start = i
        if peek == UInt8(ascii: "-") { i += 1 }
        func digits(_ r: inout JSONBytes) -> Int {
            let s = r.i
            while r.i < r.b.count, r.b[r.i] >= 0x30, r.b[r.i] <= 0x39 { r.i += 1 }
            return r.i - s
        }
        let intStart = i
        let n = digits(&self)
        guard n > 0, !(n > 1 && b[intStart] == 0x30) else { throw GiveUp() }  // no leading zeros
        var integer = true
        if peek == UInt8(ascii: ".") {
            i += 1
            guard digits(&self) > 0 else { throw GiveUp() }
            integer = false
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            i += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { i += 1 }
            guard digits(&self) > 0 else { throw GiveUp() }
            integer = false
        }
        return (UnsafeBufferPointer(rebasing: b[start..<i]), integer)
    }

    /// What `FlexibleInt` decodes: an integer, or a float with an integral value below 1e12.
    /// Anything else gives up (the general path reports it).
    mutating func flexibleInt() throws -> FlexibleInt {
        let (text, integer) = try number()
        if integer {
            var v = 0
            let negative = text[0] == UInt8(ascii: "-")
            for c in text.dropFirst(negative ? 1 : 0) {
                let (m, o1) = v.multipliedReportingOverflow(by: 10)
                let (a, o2) = negative ? m.subtractingReportingOverflow(Int(c - 0x30)) : m.addingReportingOverflow(Int(c - 0x30))
                guard !o1, !o2 else { throw GiveUp() }
                v = a
            }
            return FlexibleInt(value: v)
        }
        guard let d = Double(String(decoding: text, as: UTF8.self)), d.isFinite, d == d.rounded(), abs(d) < 1e12 else {
            throw GiveUp()
        }
        return FlexibleInt(value: Int(d))
    }

    mutating func double() throws -> Double {
        let (text, _) = try number()
        guard let d = Double(String(decoding: text, as: UTF8.self)), d.isFinite else { throw GiveUp() }
        return d
    }

    /// Skips any value, checking its syntax.
    mutating func skipValue() throws {
        skipSpace()
        guard let c = peek else { throw GiveUp() }
        switch c {
        case UInt8(ascii: "{"): try object { r, _ in try r.skipValue() }
        case UInt8(ascii: "["): try array { try $0.skipValue() }
        case UInt8(ascii: "\""): _ = try string()
        case UInt8(ascii: "t"), UInt8(ascii: "f"): _ = try bool()
        case UInt8(ascii: "n"): guard literal("null") else { throw GiveUp() }
        default: _ = try number()
        }
    }
}
