import Foundation
import ServiceRouterIO
#if canImport(Glibc)
import Glibc
#endif

/// A distribution reduced to what the report prints: every figure is a median, with p99 (and the
/// extremes) where a tail matters. Values are in the unit the caller chose (milliseconds mostly).
public struct Summary: Sendable, Equatable, Codable {
    public var count: Int
    public var median: Double
    public var p99: Double
    public var min: Double
    public var max: Double

    public init(_ values: [Double]) {
        let sorted = values.filter(\.isFinite).sorted()
        count = sorted.count
        median = Self.percentile(sorted, 0.5)
        p99 = Self.percentile(sorted, 0.99)
        min = sorted.first ?? .nan
        max = sorted.last ?? .nan
    }

    /// Nearest-rank percentile (no interpolation: every figure is a value that was measured).
    static func percentile(_ sorted: [Double], _ p: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        let rank = Int((p * Double(sorted.count)).rounded(.up))
        return sorted[Swift.max(0, Swift.min(sorted.count - 1, rank - 1))]
    }

    public func encode(to encoder: Encoder) throws {
        // NaN is not JSON: an empty distribution encodes its figures as null.
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(count, forKey: .count)
        for (key, v) in [(CodingKeys.median, median), (.p99, p99), (.min, min), (.max, max)] {
            if v.isFinite { try c.encode(v, forKey: key) } else { try c.encodeNil(forKey: key) }
        }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        count = try c.decode(Int.self, forKey: .count)
        median = try c.decodeIfPresent(Double.self, forKey: .median) ?? .nan
        p99 = try c.decodeIfPresent(Double.self, forKey: .p99) ?? .nan
        min = try c.decodeIfPresent(Double.self, forKey: .min) ?? .nan
        max = try c.decodeIfPresent(Double.self, forKey: .max) ?? .nan
    }

    enum CodingKeys: String, CodingKey { case count, median, p99, min, max }
}

/// This process's memory (or another's, by pid), from /proc/<pid>/status (kB there; bytes here).
public enum ProcessMemory {
    /// Peak resident set size since start or since the last `resetPeak()`.
    public static var peakRSS: Int { field("VmHWM") }
    public static var currentRSS: Int { field("VmRSS") }

    /// Resets VmHWM to the current RSS (`echo 5 > /proc/self/clear_refs`, Linux 4.0+). Returns
    /// false when the kernel refused it: the peak then covers the whole process life.
    @discardableResult
    public static func resetPeak() -> Bool {
        guard let h = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        defer { try? h.close() }
        do {
            try h.write(contentsOf: Data("5".utf8))
            return true
        } catch {
            return false
        }
    }

    /// utime + stime of `pid` in seconds (/proc/PID/stat, clock ticks of 1/100 s on Linux).
    static func cpuSeconds(pid: Int32) -> Double {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return 0 }
        // Fields after the command name (which may contain spaces): state is field 3, utime 14, stime 15.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let utime = Double(fields[11]), let stime = Double(fields[12]) else { return 0 }
        return (utime + stime) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// `name` (VmHWM, VmRSS, …) of this process, or of `pid`; 0 when it cannot be read.
    static func field(_ name: String, pid: Int32? = nil) -> Int {
        let path = "/proc/\(pid.map(String.init) ?? "self")/status"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix(name + ":") {
            let digits = line.dropFirst(name.count + 1).filter(\.isNumber)
            return (Int(digits) ?? 0) * 1024
        }
        return 0
    }
}

/// Free TCP ports for service ports and the shared frontend. Service ports come from 61000–65535:
/// above Linux's ephemeral range (32768–60999), away from the simulator's task ports
/// (21000–32000), its default service ports (10000–20000) and the tests' ports (12000–19999), so
/// a benchmark and a test suite running beside it never share a port (HAProxy binds with
/// SO_REUSEPORT and would share one silently).
public enum BenchPorts {
    static let range = 61000...65535
    private static let cursor = Mutex(0)

    /// `count` distinct ports nothing listens on now.
    public static func free(_ count: Int) throws -> [Int] {
        var out: [Int] = []
        var tried = 0
        while out.count < count {
            guard tried < range.count else {
                throw BenchError("only \(out.count) of \(count) free ports in \(range.lowerBound)-\(range.upperBound)")
            }
            tried += 1
            let n = cursor.withLock { c -> Int in
                defer { c += 1 }
                return c
            }
            let port = range.lowerBound + n % range.count
            if (try? Listener.tcp(host: "0.0.0.0", port: port)) != nil { out.append(port) }
        }
        return out
    }
}

public struct BenchError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

import Synchronization

/// Waits (polling, bounded) until `condition` holds; returns the seconds it took.
@discardableResult
func waitUntil(_ what: String, timeout: Double, every interval: Double = 0.01,
               _ condition: () async throws -> Bool) async throws -> Double {
    let start = Monotonic.now()
    while Monotonic.now() - start < timeout {
        if (try? await condition()) == true { return Monotonic.now() - start }
        try await Task.sleep(nanoseconds: UInt64(interval * 1e9))
    }
    throw BenchError("timed out after \(timeout) s waiting for \(what)")
}

func ms(_ seconds: Double) -> Double { seconds * 1000 }
