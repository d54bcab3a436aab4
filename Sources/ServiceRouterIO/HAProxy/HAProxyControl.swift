import FoundationEssentials
import ServiceRouterCore
#if canImport(Glibc)
import Glibc
#endif

public struct HAProxyControlError: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var reason: String
    public var hint: String?
    public init(operation: String, reason: String, hint: String?) {
        self.operation = operation
        self.reason = reason
        self.hint = hint
    }
    public var description: String { "\(operation): \(reason)" + (hint.map { " (\($0))" } ?? "") }
}

/// Validating configs and reloading HAProxy: the process-control edge.
public protocol HAProxyControl: Sendable {
    /// `haproxy -c -f <path>`; throws with HAProxy's own messages when the config is invalid.
    func validate(configPath: String) async throws
    /// Reloads HAProxy (which re-reads its config file) and returns once the new worker answers.
    func reload(runtime: any RuntimeAPI, timeout: Double) async throws -> ReloadResult
    /// The master's reload counters, when a master socket is known.
    func processList() async throws -> RuntimeReplyParsers.ProcessList?
    /// The CLI (stats) sockets the current worker listens on, asked through the master (`@1 show
    /// cli sockets`): nil when there is no master socket or it does not answer.
    func adminSockets() async -> [String]?
}

/// `haproxy -c` refused a config; `check` says what and where.
public struct ConfigRejected: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var check: ConfigCheckOutput
    public var output: String
    public init(path: String, check: ConfigCheckOutput, output: String) {
        self.path = path
        self.check = check
        self.output = output
    }
    public var description: String {
        "haproxy -c rejected \(path): " + (check.alerts.isEmpty ? output.trimmingWhitespaceAndNewlines() : check.alerts.prefix(6).joined(separator: " | "))
    }
}

public struct ReloadResult: Sendable, Equatable {
    public var oldPid: Int?
    public var newPid: Int
    public var seconds: Double
    /// Reloads someone else made while this one ran (from the master's counter, when known): the
    /// worker found may then come from theirs.
    public var otherReloads: Int
    public init(oldPid: Int?, newPid: Int, seconds: Double, otherReloads: Int = 0) {
        self.oldPid = oldPid
        self.newPid = newPid
        self.seconds = seconds
        self.otherReloads = otherReloads
    }
}

/// Runs a program and collects its exit status and output (blocking; call through `Blocking.run`).
public enum ProcessRunner {
    public struct Result: Sendable {
        public var status: Int32
        public var output: String
    }

    public static func run(_ executable: String, _ arguments: [String], timeout: Double = 60) throws -> Result {
        let pipe = try PipeDescriptors()
        let p: Subprocess
        do {
            p = executable.contains("/")
                ? try Subprocess(executable: executable, arguments: arguments, standardOutput: pipe.write, standardError: pipe.write)
                : try Subprocess(executable: "/usr/bin/env", arguments: [executable] + arguments, standardOutput: pipe.write, standardError: pipe.write)
        } catch {
            close(pipe.read)
            close(pipe.write)
            throw error
        }
        close(pipe.write)
        defer { close(pipe.read) }
        let deadline = Monotonic.now() + timeout
        // Drain the pipe while waiting so a chatty child never blocks on a full pipe.
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(pipe.read, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            if n <= 0 { break }
            data.append(contentsOf: chunk[..<n])
            if data.count > 1 << 20 { data = Array(data.suffix(1 << 20)) }
            if Monotonic.now() > deadline { p.terminate(); break }
        }
        p.waitUntilExit()
        return Result(status: p.terminationStatus, output: String(decoding: data, as: UTF8.self))
    }
}

/// The real HAProxy: validation with the `haproxy` binary, reloads through the master CLI
/// (`--master-socket`, master-worker mode) or an operator-given shell command (`--command`).
public struct HAProxyProcessControl: HAProxyControl {
    public enum ReloadMethod: Sendable, Equatable {
        case masterSocket(String)
        case command(String)
        case none
    }

    public var binary: String
    public var method: ReloadMethod
    public var logger: Logger

    public init(binary: String = "haproxy", method: ReloadMethod, logger: Logger) {
        self.binary = binary
        self.method = method
        self.logger = logger
    }

    public func validate(configPath: String) async throws {
        let binary = self.binary
        let result: ProcessRunner.Result
        do {
            // No `-q`: HAProxy 2.6 then prints nothing at all, not even its [ALERT] lines, and the
            // services at fault (ConfigCheckOutput) could not be found.
            result = try await Blocking.run { try ProcessRunner.run(binary, ["-c", "-f", configPath], timeout: 120) }
        } catch {
            throw HAProxyControlError(operation: "validate \(configPath)", reason: "cannot run \(binary): \(error)", hint: "install HAProxy or pass --haproxy-bin")
        }
        guard result.status == 0 else {
            throw ConfigRejected(path: configPath, check: ConfigCheckOutput.parse(result.output), output: String(result.output.prefix(4000)))
        }
    }

    public func processList() async throws -> RuntimeReplyParsers.ProcessList? {
        guard case .masterSocket(let path) = method else { return nil }
        // Right after a reload the master re-executes itself: its socket refuses connections, or
        // accepts one it never answers, for a moment. Retry briefly.
        var lastError: Error?
        for attempt in 0..<10 {
            do {
                let text = try await UnixRuntimeSocket(path: path, timeout: 1).raw("show proc")
                return try RuntimeReplyParsers.processList(text)
            } catch {
                lastError = error
                try await Task.sleep(nanoseconds: UInt64(50_000_000 * (attempt + 1)))
            }
        }
        throw lastError!
    }

    public func adminSockets() async -> [String]? {
        guard case .masterSocket(let path) = method,
              let text = try? await UnixRuntimeSocket(path: path, timeout: 2).raw("@1 show cli sockets") else { return nil }
        return RuntimeReplyParsers.cliSockets(text)
    }

    /// What answers on the master socket, when it is not HAProxy's master CLI (e.g. the admin
    /// socket given as `--master-socket`): a problem to report before anything is done.
    public func masterSocketProblem() async -> String? {
        guard case .masterSocket(let path) = method else { return nil }
        let text: String
        do { text = try await UnixRuntimeSocket(path: path, timeout: 5).raw("show proc") } catch {
            return "--master-socket \(path) does not answer (\(error)): is HAProxy running in master-worker mode (haproxy -W -S \(path))?"
        }
        if (try? RuntimeReplyParsers.processList(text)) != nil { return nil }
        if text.contains("Unknown command") {
            return "--master-socket \(path) answers like HAProxy's admin (stats) socket, not its master CLI: give the path of -S (haproxy -W -S PATH), and the stats socket as --haproxy-socket"
        }
        return "--master-socket \(path) does not answer like HAProxy's master CLI (\(ValidationError.quoted(String(text.prefix(80)))))"
    }

    public func reload(runtime: any RuntimeAPI, timeout: Double) async throws -> ReloadResult {
        let started = Monotonic.now()
        let old = try? await runtime.identity()
        let before = try? await processList()
        let failedBefore = before?.failedReloads
        switch method {
        case .none:
            throw HAProxyControlError(operation: "reload", reason: "no reload method configured", hint: "pass --master-socket (HAProxy in master-worker mode) or --command")
        case .masterSocket(let path):
            do {
                try await Blocking.run {
                    // HAProxy 2.6 answers nothing to `reload`; the re-executed master may keep the
                    // connection open, so do not wait for it to close.
                    let conn = try Connection.unix(path: path, timeout: 5)
                    defer { conn.close() }
                    try conn.write("reload\n")
                    conn.shutdownWrite()
                    _ = try? conn.read(timeout: 0.2)
                }
            } catch {
                throw HAProxyControlError(operation: "reload", reason: "master socket \(path): \(error)", hint: "is HAProxy running with -W -S \(path)?")
            }
        case .command(let command):
            let result = try await Blocking.run { try ProcessRunner.run("/bin/sh", ["-c", command], timeout: timeout) }
            guard result.status == 0 else {
                throw HAProxyControlError(operation: "reload", reason: "reload command exited with \(result.status): \(result.output.prefix(500))", hint: nil)
            }
        }
        // The reload is done when a new worker answers on the runtime socket.
        let deadline = Monotonic.now() + timeout
        var delay = 0.005
        while Monotonic.now() < deadline {
            if let now = try? await runtime.identity(), now.pid != old?.pid || now.startTime != old?.startTime {
                var others = 0
                if let before, let after = try? await processList() { others = max(0, after.reloads - before.reloads - 1) }
                return ReloadResult(oldPid: old?.pid, newPid: now.pid, seconds: Monotonic.now() - started, otherReloads: others)
            }
            // In master-worker mode a config that passed `haproxy -c` can still fail to load
            // (e.g. "Cannot raise FD limit"); the master counts it, and keeps the old worker.
            if let failedBefore, let now = try? await processList(), now.failedReloads > failedBefore {
                throw HAProxyControlError(operation: "reload", reason: "HAProxy's master reports the new config failed to load (the previous worker keeps serving)",
                                          hint: "see HAProxy's own log for the [ALERT] line")
            }
            try await Task.sleep(nanoseconds: UInt64(delay * 1e9))
            delay = min(delay * 2, 0.1)
        }
        throw HAProxyControlError(operation: "reload", reason: "no new HAProxy worker answered on \(runtime.path) within \(Int(timeout)) s",
                                  hint: "check HAProxy's own log; the previous worker keeps serving the last good config")
    }
}
