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
            for (k, v) in r.fields { s += ",\(jsonString(k)):\(jsonString(v))" }
            return s + "}"
        }
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
