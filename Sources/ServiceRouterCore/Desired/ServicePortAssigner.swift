/// Service ports for IP-per-task apps that Marathon gives none (marathon-lb's
/// `--min-serv-port-ip-per-task` / `--max-serv-port-ip-per-task`, its `ServicePortAssigner`): each
/// container port of such an app gets a port from the range, derived from the app id and the
/// container port, so every servicerouter (and marathon-lb) instance picks the same one.
///
/// marathon-lb's algorithm, exactly: for `i` in 0..<50, the port is `min + (h mod size)` where `h`
/// is the first 8 hex digits of SHA-1 of `"<app id>-<container port>-<i>"`; the first port not
/// already given out in this pass wins; after 50 clashes, the lowest free port of the range; when
/// every port of the range is given out, none (the port index is left out with a warning). The
/// same (app id, container port) always gets the same port within a pass. Apps are taken in app-id
/// order (marathon-lb: Marathon's listing order), which only matters when two of them clash.
public struct ServicePortAssigner: Sendable {
    public let range: ClosedRange<Int>
    private var given: [Key: Int?] = [:]
    private var taken = Set<Int>()

    private struct Key: Hashable {
        var appId: String
        var containerPort: Int
    }

    static let maxClashes = 50

    public init(range: ClosedRange<Int>) { self.range = range }

    /// Whether the app needs ports from the range: IP-per-task, no service port from Marathon.
    public static func needsPorts(_ app: MarathonApp) -> Bool {
        app.networking == .ipPerTask && app.servicePorts.allSatisfy { $0 == 0 } && !app.containerPorts.isEmpty
    }

    /// The app with its service ports filled in when it needs them (0 where the range is exhausted).
    public mutating func assign(_ app: MarathonApp) -> MarathonApp {
        guard Self.needsPorts(app) else { return app }
        var out = app
        out.servicePorts = app.containerPorts.map { port(appId: app.id, containerPort: $0) ?? 0 }
        return out
    }

    public mutating func port(appId: String, containerPort: Int) -> Int? {
        let key = Key(appId: appId, containerPort: containerPort)
        if let known = given[key] { return known }
        let size = range.count
        var chosen: Int?
        if given.count < size {
            for i in 0..<Self.maxClashes {
                let digest = SHA1.hash(Array("\(appId)-\(containerPort)-\(i)".utf8))
                let h = UInt32(digest[0]) << 24 | UInt32(digest[1]) << 16 | UInt32(digest[2]) << 8 | UInt32(digest[3])
                let trial = range.lowerBound + Int(h % UInt32(size))
                if !taken.contains(trial) {
                    chosen = trial
                    break
                }
            }
            if chosen == nil { chosen = range.first { !taken.contains($0) } }
        }
        given[key] = chosen
        if let chosen { taken.insert(chosen) }
        return chosen
    }
}

/// SHA-1 (FIPS 180-4), for marathon-lb's port derivation only: not used for anything secret.
enum SHA1 {
    static func hash(_ message: [UInt8]) -> [UInt8] {
        var h: (UInt32, UInt32, UInt32, UInt32, UInt32) = (0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0)
        var data = message
        let bitLength = UInt64(message.count) * 8
        data.append(0x80)
        while data.count % 64 != 56 { data.append(0) }
        for i in (0..<8).reversed() { data.append(UInt8(truncatingIfNeeded: bitLength >> (8 * UInt64(i)))) }
        var w = [UInt32](repeating: 0, count: 80)
        for chunk in stride(from: 0, to: data.count, by: 64) {
            for t in 0..<16 {
                let b = chunk + 4 * t
                w[t] = UInt32(data[b]) << 24 | UInt32(data[b + 1]) << 16 | UInt32(data[b + 2]) << 8 | UInt32(data[b + 3])
            }
            for t in 16..<80 {
                let x = w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16]
                w[t] = x << 1 | x >> 31
            }
            var (a, b, c, d, e) = h
            for t in 0..<80 {
                let f: UInt32, k: UInt32
                switch t {
                case 0..<20: f = (b & c) | (~b & d); k = 0x5A82_7999
                case 20..<40: f = b ^ c ^ d; k = 0x6ED9_EBA1
                case 40..<60: f = (b & c) | (b & d) | (c & d); k = 0x8F1B_BCDC
                default: f = b ^ c ^ d; k = 0xCA62_C1D6
                }
                let temp = (a << 5 | a >> 27) &+ f &+ e &+ k &+ w[t]
                e = d
                d = c
                c = b << 30 | b >> 2
                b = a
                a = temp
            }
            h = (h.0 &+ a, h.1 &+ b, h.2 &+ c, h.3 &+ d, h.4 &+ e)
        }
        var out: [UInt8] = []
        for v in [h.0, h.1, h.2, h.3, h.4] {
            out += [UInt8(v >> 24), UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)]
        }
        return out
    }
}
