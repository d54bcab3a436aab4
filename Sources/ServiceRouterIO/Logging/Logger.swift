import FoundationEssentials
import ServiceRouterCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

public enum LogLevel: Int, Comparable, Sendable, CaseIterable {
    case debug = 0, info, warning, error

    public init?(name: String) {
        switch name.lowercased() {
        case "debug": self = .debug
        case "info": self = .info
        case "warning", "warn": self = .warning
        case "error": self = .error
        default: return nil
        }
    }

    public var name: String {
        switch self {
        case .debug: "debug"
        case .info: "info"
        case .warning: "warning"
        case .error: "error"
        }
    }

    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rawValue < b.rawValue }
}

public enum LogFormat: String, Sendable { case text, json }

/// One log record: a message plus key/value fields (never secrets: callers pass redacted values).
public struct LogRecord: Sendable, Equatable {
    public var level: LogLevel
    public var message: String
    public var fields: [(String, String)]

    public static func == (a: LogRecord, b: LogRecord) -> Bool {
        a.level == b.level && a.message == b.message && a.fields.elementsEqual(b.fields, by: { $0 == $1 })
    }

    public init(level: LogLevel, message: String, fields: [(String, String)] = []) {
        self.level = level
        self.message = message
        self.fields = fields
    }

    public func field(_ key: String) -> String? { fields.first { $0.0 == key }?.1 }
}

public protocol LogSink: Sendable {
    func write(_ record: LogRecord)
}

/// The project's logger: a small value passed to whoever logs. Tests use `MemoryLogSink` to
/// assert that something was logged with its reason.
public struct Logger: Sendable {
    public var minimum: LogLevel
    public var sink: any LogSink

    public init(minimum: LogLevel = .info, sink: any LogSink) {
        self.minimum = minimum
        self.sink = sink
    }

    public static func stderr(level: LogLevel = .info, format: LogFormat = .text) -> Logger {
        Logger(minimum: level, sink: StreamLogSink(format: format))
    }

    public static var silent: Logger { Logger(minimum: .error, sink: DiscardLogSink()) }

    public func log(_ level: LogLevel, _ message: String, _ fields: [(String, String)] = []) {
        guard level >= minimum else { return }
        sink.write(LogRecord(level: level, message: message, fields: fields))
    }

    public func debug(_ m: String, _ f: [(String, String)] = []) { log(.debug, m, f) }
    public func info(_ m: String, _ f: [(String, String)] = []) { log(.info, m, f) }
    public func warning(_ m: String, _ f: [(String, String)] = []) { log(.warning, m, f) }
    public func error(_ m: String, _ f: [(String, String)] = []) { log(.error, m, f) }

    public var isDebug: Bool { minimum <= .debug }
}

public struct DiscardLogSink: LogSink {
    public init() {}
    public func write(_ record: LogRecord) {}
}

/// Collects records in memory (tests).
public final class MemoryLogSink: LogSink {
    private let records = Mutex<[LogRecord]>([])
    public init() {}
    public func write(_ record: LogRecord) { records.withLock { $0.append(record) } }
    public var all: [LogRecord] { records.withLock { $0 } }
    public func contains(_ level: LogLevel, _ fragment: String) -> Bool {
        all.contains { $0.level == level && ($0.message.contains(fragment) || $0.fields.contains { $0.1.contains(fragment) }) }
    }
}

/// Writes one line per record to standard error: `text` (logfmt-like) or `json`.
public final class StreamLogSink: LogSink {
    public let format: LogFormat
    private let lock = Mutex<Void>(())

    public init(format: LogFormat) { self.format = format }

    public func write(_ record: LogRecord) {
        let line = Self.format(record, as: format, time: Date())
        lock.withLock { _ in
            Console.standardError(line + "\n")
        }
    }

    /// RFC 3339 UTC with milliseconds, e.g. 2026-11-25T09:46:00.123Z.
    public static func timestamp(_ date: Date) -> String {
        let t = date.timeIntervalSince1970
        var secs = time_t(t.rounded(.down))
        var tmv = tm()
        gmtime_r(&secs, &tmv)
        let ms = Int((t - t.rounded(.down)) * 1000)
        return (Int(tmv.tm_year) + 1900).zeroPadded(4) + "-" + (Int(tmv.tm_mon) + 1).zeroPadded(2) + "-" + Int(tmv.tm_mday).zeroPadded(2)
            + "T" + Int(tmv.tm_hour).zeroPadded(2) + ":" + Int(tmv.tm_min).zeroPadded(2) + ":" + Int(tmv.tm_sec).zeroPadded(2)
            + "." + ms.zeroPadded(3) + "Z"
    }

    public static func format(_ r: LogRecord, as format: LogFormat, time: Date) -> String {
        let ts = timestamp(time)
        switch format {
        case .text:
            // One record, one line: a message can carry text from Marathon (a task id), whose
            // newlines would otherwise start a forged record.
            var s = "\(ts) \(r.level.name.uppercased()) \(escapingControls(r.message))"
            for (k, v) in r.fields { s += " \(k)=\(quoteIfNeeded(v))" }
            return s
        case .json:
            var s = "{\"time\":\(jsonString(ts)),\"level\":\(jsonString(r.level.name)),\"msg\":\(jsonString(r.message))"
            for (k, v) in r.fields { s += ",\(jsonString(k)):\(jsonValue(v, key: k))" }
            return s + "}"
        }
    }

    /// Fields whose values are numbers (counts, durations, pids): in JSON they are written as
    /// numbers, and `-` (not known) as `null`, so a log pipeline can compare and sum them. By name,
    /// not by look: a field is a number in every record or in none (a task id or a reply that
    /// happens to be all digits stays a string). Keys ending in `_s`, `_ms` or `_pid` are numbers too.
    public static let numericFields: Set<String> = [
        "count", "failed", "added", "removed", "ms", "apps", "services", "servers", "commands", "tasks", "pid",
        "errno", "fd", "instances", "requests", "reloads", "seconds",
    ]

    public static func isNumericField(_ key: String) -> Bool {
        numericFields.contains(key) || key.hasSuffix("_s") || key.hasSuffix("_ms") || key.hasSuffix("_pid")
    }

    /// A field's JSON value: a number for a numeric field holding a plain decimal number, `null`
    /// for a numeric field holding `-` or nothing, a string otherwise (a numeric field with any
    /// other text keeps it, as a string: nothing is lost).
    static func jsonValue(_ v: String, key: String) -> String {
        guard isNumericField(key) else { return jsonString(v) }
        if v.isEmpty || v == "-" { return "null" }
        return isJSONNumber(v) ? v : jsonString(v)
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?`, at most 20 characters: a decimal JSON number.
    static func isJSONNumber(_ v: String) -> Bool {
        var u = Substring(v).utf8[...]
        guard !u.isEmpty, u.count <= 20 else { return false }
        if u.first == 0x2D { u = u.dropFirst() }
        let isDigit: (UInt8) -> Bool = { $0 >= 0x30 && $0 <= 0x39 }
        let integer = u.prefix(while: isDigit)
        guard !integer.isEmpty, integer.first != 0x30 || integer.count == 1 else { return false }
        var rest = u.dropFirst(integer.count)
        if rest.isEmpty { return true }
        guard rest.first == 0x2E else { return false }
        rest = rest.dropFirst()
        return !rest.isEmpty && rest.allSatisfy(isDigit)
    }

    static func quoteIfNeeded(_ v: String) -> String {
        if v.isEmpty || v.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" || $0.isNewline })
            || v.unicodeScalars.contains(where: isControl) {
            return jsonString(v)
        }
        return v
    }

    static func isControl(_ scalar: Unicode.Scalar) -> Bool { scalar.value < 0x20 }

    /// `text` with its control characters (newlines, escape sequences) written as `\n`, `\r`,
    /// `\t` or `\u00XX`; unchanged when it has none.
    static func escapingControls(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if isControl(scalar) {
                    out += "\\u" + scalar.value.hexZeroPadded(4)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    public static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    out += "\\u" + scalar.value.hexZeroPadded(4)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}

/// Appends text lines to a file (the demo keeps the controller's log out of its live view).
public final class FileLogSink: LogSink {
    /// The open file, or -1 when it could not be opened (records are then dropped).
    private let descriptor: Mutex<Int32>
    public let format: LogFormat

    public init(path: String, format: LogFormat = .text) {
        if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        if fd >= 0 { lseek(fd, 0, SEEK_END) }
        descriptor = Mutex(fd)
        self.format = format
    }

    public func write(_ record: LogRecord) {
        let line = StreamLogSink.format(record, as: format, time: Date()) + "\n"
        descriptor.withLock { fd in if fd >= 0 { Console.write(line, to: fd) } }
    }

    deinit {
        descriptor.withLock { fd in if fd >= 0 { close(fd) } }
    }
}
