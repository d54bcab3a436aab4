/// marathon-lb's blue/green labels (`HAPROXY_DEPLOYMENT_*`), as `zdd.py` (and `servicerouter zdd`)
/// writes them on each colour of an app. The load balancer reads the group, the start time and the
/// instance counts; the colour and the alternate port only matter to `zdd`.
public struct DeploymentLabels: Sendable, Equatable {
    /// `HAPROXY_DEPLOYMENT_GROUP` as written (trimmed).
    public var group: String
    /// The id the merged service is known by: the group with a leading `/` (marathon-lb's rule).
    public var serviceId: String
    /// `HAPROXY_DEPLOYMENT_STARTED_AT`; nil when absent (such an app counts as the oldest).
    public var startedAt: DeploymentTimestamp?
    /// `HAPROXY_DEPLOYMENT_TARGET_INSTANCES`: how many instances the colour is deployed to reach.
    public var targetInstances: Int?
    /// `HAPROXY_DEPLOYMENT_NEW_INSTANCES`: `zdd` writes it on every colour it creates; marathon-lb
    /// uses the target only when it is present (else a target of 1).
    public var newInstances: Int?

    public static let groupKey = "HAPROXY_DEPLOYMENT_GROUP"
    public static let startedAtKey = "HAPROXY_DEPLOYMENT_STARTED_AT"
    public static let targetInstancesKey = "HAPROXY_DEPLOYMENT_TARGET_INSTANCES"
    public static let newInstancesKey = "HAPROXY_DEPLOYMENT_NEW_INSTANCES"
    public static let altPortKey = "HAPROXY_DEPLOYMENT_ALT_PORT"
    public static let colourKey = "HAPROXY_DEPLOYMENT_COLOUR"
    /// The app id the operator gave `zdd` (before `-blue`/`-green` was appended).
    public static let appIdKey = "HAPROXY_APP_ID"

    /// Whether the app belongs to a deployment group at all (the label is present, valid or not).
    public static func isMember(_ labels: [String: String]) -> Bool { labels[groupKey] != nil }

    /// The app's deployment labels; nil when it has no `HAPROXY_DEPLOYMENT_GROUP`. Throws the first
    /// invalid value (the caller leaves the app out, as with any invalid label).
    public static func parse(_ labels: [String: String]) throws -> DeploymentLabels? {
        guard let raw = labels[groupKey] else { return nil }
        let group = raw.trimmingSpaces
        let allowed = group.utf8.allSatisfy {
            ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A)
                || $0 == 0x2D || $0 == 0x2E || $0 == 0x5F || $0 == 0x2F
        }
        guard !group.isEmpty, group.utf8.count <= 200, allowed, group.contains(where: { $0 != "/" }) else {
            throw ValidationError(field: groupKey, value: raw,
                                  reason: "a deployment group is an app id: letters, digits, '-', '.', '_' and '/' (1-200 characters)")
        }
        var out = DeploymentLabels(group: group, serviceId: group.hasPrefix("/") ? group : "/" + group)
        if let v = labels[startedAtKey] {
            guard let t = DeploymentTimestamp(v.trimmingSpaces) else {
                throw ValidationError(field: startedAtKey, value: v,
                                      reason: "expected an ISO 8601 time such as 2016-02-01T14:13:42.499089 (zdd writes it)")
            }
            out.startedAt = t
        }
        func count(_ key: String) throws -> Int? {
            guard let v = labels[key] else { return nil }
            guard let n = Int(v.trimmingSpaces), (0...100_000).contains(n) else {
                throw ValidationError(field: key, value: v, reason: "expected an instance count (0-100000)")
            }
            return n
        }
        out.targetInstances = try count(targetInstancesKey)
        out.newInstances = try count(newInstancesKey)
        return out
    }
}

/// A point in time from `HAPROXY_DEPLOYMENT_STARTED_AT`: `YYYY-MM-DDTHH:MM:SS`, optional fraction,
/// optional `Z` or `±HH:MM` (Python's `datetime.isoformat()`, which zdd.py wrote in local time
/// without a zone). A time without a zone is read as UTC. Ordered by the instant it names.
public struct DeploymentTimestamp: Sendable, Equatable, Comparable, CustomStringConvertible {
    /// Seconds since 1970-01-01T00:00:00Z.
    public var seconds: Int64
    public var nanoseconds: Int32
    public var description: String { "\(seconds).\(nanoseconds)" }

    public init?(_ text: String) {
        let b = Array(text.utf8)
        var i = 0
        func digits(_ n: Int) -> Int? {
            guard i + n <= b.count else { return nil }
            var v = 0
            for k in i..<(i + n) {
                guard b[k] >= 0x30, b[k] <= 0x39 else { return nil }
                v = v * 10 + Int(b[k] - 0x30)
            }
            i += n
            return v
        }
        func take(_ c: UInt8) -> Bool {
            guard i < b.count, b[i] == c else { return false }
            i += 1
            return true
        }
        guard let year = digits(4), take(0x2D), let month = digits(2), take(0x2D), let day = digits(2),
              (1...12).contains(month), (1...Self.daysIn(month, year)).contains(day) else { return nil }
        guard take(0x54) || take(0x74) || take(0x20), let hour = digits(2), take(0x3A), let minute = digits(2),
              hour < 24, minute < 60 else { return nil }
        var second = 0
        if take(0x3A) {
            guard let s = digits(2), s < 61 else { return nil }
            second = s
        }
        var nanos = 0
        if take(0x2E) {
            var n = 0, scale = 100_000_000
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 {
                if n < 9 { nanos += Int(b[i] - 0x30) * scale; scale /= 10 }
                n += 1
                i += 1
            }
            guard n > 0 else { return nil }
        }
        var offset = 0
        if take(0x5A) || take(0x7A) {
            offset = 0
        } else if i < b.count, b[i] == 0x2B || b[i] == 0x2D {
            let sign = b[i] == 0x2D ? -1 : 1
            i += 1
            guard let h = digits(2), h < 24 else { return nil }
            _ = take(0x3A)
            guard let m = digits(2), m < 60 else { return nil }
            offset = sign * (h * 3600 + m * 60)
        }
        guard i == b.count else { return nil }
        let days = Self.daysFromCivil(year, month, day)
        seconds = Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second - offset)
        nanoseconds = Int32(nanos)
    }

    public static func < (a: DeploymentTimestamp, b: DeploymentTimestamp) -> Bool {
        (a.seconds, a.nanoseconds) < (b.seconds, b.nanoseconds)
    }

    static func daysIn(_ month: Int, _ year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysFromCivil(_ y0: Int, _ m: Int, _ d: Int) -> Int {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// `YYYY-MM-DDTHH:MM:SS.ffffff` in UTC without a zone: the form zdd.py wrote (it used local
    /// time), which marathon-lb's and servicerouter's parsers both read.
    public static func text(secondsSince1970 t: Double) -> String {
        let whole = Int64(t.rounded(.down))
        let micros = Int(((t - Double(whole)) * 1_000_000).rounded(.down))
        var days = Int(whole / 86_400)
        var rest = Int(whole % 86_400)
        if rest < 0 { rest += 86_400; days -= 1 }
        // civil from days (Hinnant)
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        func pad(_ v: Int, _ n: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, n - s.count)) + s
        }
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))T\(pad(rest / 3600, 2)):\(pad(rest / 60 % 60, 2)):\(pad(rest % 60, 2)).\(pad(micros, 6))"
    }
}
