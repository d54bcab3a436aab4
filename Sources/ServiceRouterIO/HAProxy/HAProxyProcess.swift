import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// An HAProxy that servicerouter itself starts and stops (the demo, the benchmarks, the tests):
/// master-worker mode, `haproxy -W -S <dir>/master.sock -f <dir>/haproxy.cfg`, beginning with a
/// minimal config (the admin socket, no frontends) exactly as operators start it.
/// `@unchecked Sendable`: the process handle is only touched by `start`/`stop`, which callers
/// serialise.
public final class HAProxyProcess: @unchecked Sendable {
    public let directory: String
    public let configPath: String
    public let socketPath: String
    public let masterSocketPath: String
    public let binary: String
    private var process: Subprocess?
    private let removeDirectory: Bool

    /// Whether `binary -v` runs.
    public static func isInstalled(binary: String = "haproxy") -> Bool {
        (try? ProcessRunner.run(binary, ["-v"], timeout: 10).status) == 0
    }

    /// Creates `directory` (or a fresh temporary one) with a minimal config.
    public init(directory: String? = nil, binary: String = "haproxy") throws {
        let dir = directory ?? (FileManager.default.temporaryDirectory.path() + "servicerouter-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        chmod(dir, 0o700)
        self.directory = dir
        self.removeDirectory = directory == nil
        self.binary = binary
        configPath = dir + "/haproxy.cfg"
        socketPath = dir + "/admin.sock"
        masterSocketPath = dir + "/master.sock"
        try Self.minimalConfig(socket: socketPath).write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    public static func minimalConfig(socket: String) -> String {
        """
        global
          stats socket \(socket) mode 600 level admin expose-fd listeners
        defaults
          mode http
          timeout connect 3s
          timeout client 30s
          timeout server 30s

        """
    }

    public var runtime: UnixRuntimeSocket { UnixRuntimeSocket(path: socketPath) }

    public func control(logger: Logger = .silent) -> HAProxyProcessControl {
        HAProxyProcessControl(binary: binary, method: .masterSocket(masterSocketPath), logger: logger)
    }

    public var isRunning: Bool { process?.isRunning ?? false }

    /// Starts HAProxy on whatever config file is there and waits until the runtime socket answers.
    public func start(timeout: Double = 30) async throws {
        let p = try Subprocess(executable: "/usr/bin/env", arguments: [binary, "-W", "-S", masterSocketPath, "-f", configPath])
        process = p
        let deadline = Monotonic.now() + timeout
        while Monotonic.now() < deadline {
            if (try? await runtime.identity()) != nil { return }
            if !p.isRunning {
                throw HAProxyControlError(operation: "start HAProxy", reason: "haproxy exited with status \(p.terminationStatus)",
                                          hint: "check \(configPath) with `haproxy -c -f`")
            }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        // One last look: a caller whose task could not run for a while (a busy cooperative pool)
        // reaches the deadline without having asked again; HAProxy may have answered long ago.
        if (try? await runtime.identity()) != nil { return }
        throw HAProxyControlError(operation: "start HAProxy", reason: "no answer on \(socketPath) within \(Int(timeout)) s", hint: nil)
    }

    /// Stops the master and its workers: SIGTERM, then SIGKILL after `grace` seconds.
    public func stop(grace: Double = 5) {
        guard let p = process else { return }
        process = nil
        guard p.isRunning else { return }
        kill(p.processIdentifier, SIGTERM)
        let deadline = Monotonic.now() + grace
        while p.isRunning && Monotonic.now() < deadline { usleep(10_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
    }

    /// `stop` without blocking the caller's thread.
    public func shutdown(grace: Double = 5) async {
        _ = try? await Blocking.run { [self] in self.stop(grace: grace) }
    }

    /// Kills HAProxy and starts it again on the last written config.
    public func restart() async throws {
        await shutdown()
        try await start()
    }

    /// The master's reload counter (HAProxy's own count).
    public func reloadCount() async throws -> Int {
        try await control().processList()?.reloads ?? 0
    }

    /// Old workers still alive (draining) plus the current one.
    public func workerCount() async throws -> Int {
        guard let list = try await control().processList() else { return 0 }
        return list.workers.count + list.oldWorkers.count
    }

    deinit {
        stop()
        if removeDirectory { try? FileManager.default.removeItem(atPath: directory) }
    }
}
