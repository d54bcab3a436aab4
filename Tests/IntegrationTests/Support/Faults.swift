import Foundation
import MarathonSimulator
import ServiceRouterCore
@testable import ServiceRouterIO
@testable import ServiceRouterController
@testable import ServiceRouterCLI
import ServiceRouterTestSupport
#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing

// Fault injection for the reliability, bad-input and security suites: wrappers around the real
// edges (`RuntimeAPI`, `ConfigFiles`, `HAProxyControl`, `HostResolving`) that record what crosses
// them and fail on demand, and a controller rig that runs `run`'s loop against any HAProxy and any
// Marathon URL (which may not answer yet).

/// The real runtime socket, with every command text recorded and faults on demand.
final class FaultyRuntime: RuntimeAPI, @unchecked Sendable {
    let inner: any RuntimeAPI
    var path: String { inner.path }
    private struct State {
        var commands: [String] = []
        var raw: [String] = []
        var rejectSetServer = 0
        var rejected: [String] = []
        var down: String?
    }
    private let state = Mutex(State())

    init(_ inner: any RuntimeAPI) { self.inner = inner }

    /// The next `count` `set server` commands get HAProxy's "No such server." instead of being sent.
    func rejectNextSetServer(_ count: Int) { state.withLock { $0.rejectSetServer = count } }
    /// Every call throws as if the socket refused connections (nil: heal).
    func setDown(_ reason: String?) { state.withLock { $0.down = reason } }

    var commands: [String] { state.withLock { $0.commands } }
    var mutations: [String] { commands.filter { $0.hasPrefix("set ") || $0.hasPrefix("add ") || $0.hasPrefix("prepare ") || $0.hasPrefix("commit ") } }
    var rejected: [String] { state.withLock { $0.rejected } }
    var rawLines: [String] { state.withLock { $0.raw } }

    func execute(_ commands: [RuntimeCommand]) async throws -> [RuntimeReply] {
        let (down, rejects): (String?, Set<Int>) = state.withLock { s in
            s.commands += commands.map(\.text)
            if let d = s.down { return (d, []) }
            var out = Set<Int>()
            for (i, c) in commands.enumerated() where s.rejectSetServer > 0 && c.text.hasPrefix("set server ") {
                s.rejectSetServer -= 1
                s.rejected.append(c.text)
                out.insert(i)
            }
            return (nil, out)
        }
        if let down { throw RuntimeSocketError(socket: path, reason: "cannot connect: \(down)") }
        guard !rejects.isEmpty else { return try await inner.execute(commands) }
        // Send the others for real, in order; the rejected ones never reach HAProxy.
        let passed = commands.enumerated().filter { !rejects.contains($0.offset) }.map(\.element)
        var real = try await inner.execute(passed).makeIterator()
        return commands.enumerated().map { i, c in
            rejects.contains(i) ? RuntimeReply(command: c, text: "No such server.\n", failure: "No such server.") : real.next()!
        }
    }

    func raw(_ line: String) async throws -> String {
        state.withLock { $0.raw.append(line) }
        return try await inner.raw(line)
    }
}

/// The real config store, failing every write with a file-system errno while `fault` is set.
final class FaultyFiles: ConfigFiles, @unchecked Sendable {
    let inner: ConfigStore
    private let fault = Mutex<Int32?>(nil)
    private let failures = Atomic<Int>(0)

    init(path: String) { inner = ConfigStore(path: path) }

    var path: String { inner.path }
    var rejectedPath: String { inner.rejectedPath }
    /// `EROFS` (a read-only config directory) or `ENOSPC` (a full disk); nil heals.
    func setFault(_ code: Int32?) { fault.withLock { $0 = code } }
    var failedWrites: Int { failures.load(ordering: .relaxed) }

    private func check(_ operation: String, _ target: String) throws {
        guard let code = fault.withLock({ $0 }) else { return }
        failures.add(1, ordering: .relaxed)
        let hint = code == ENOSPC ? " — the disk is full" : ConfigStore.directoryHint(for: target, code: code)
        throw ConfigFileError(path: target, operation: operation, reason: SystemError("open", target: target, code: code).description + hint)
    }

    func read() -> String? { inner.read() }
    func writeCandidate(_ text: String) throws -> String {
        try check("write", inner.candidatePath)
        return try inner.writeCandidate(text)
    }
    func installCandidate() throws {
        try check("rename \(inner.candidatePath) to", path)
        try inner.installCandidate()
    }
    func rejectCandidate() { inner.rejectCandidate() }
    func restoreLastGood() throws {
        try check("write", path)
        try inner.restoreLastGood()
    }
    func replace(with text: String) throws {
        try check("write", inner.candidatePath)
        try inner.replace(with: text)
    }
    func readFile(_ path: String) -> String? { inner.readFile(path) }
    func replaceFile(_ path: String, with text: String) throws {
        try check("write", path)
        try inner.replaceFile(path, with: text)
    }
}

/// The real HAProxy control, with what it was asked to validate recorded (the only process
/// arguments servicerouter builds).
final class RecordingControl: HAProxyControl, @unchecked Sendable {
    let inner: any HAProxyControl
    private let validated = Mutex<[String]>([])
    private let reloads = Atomic<Int>(0)
    init(_ inner: any HAProxyControl) { self.inner = inner }

    var validatedPaths: [String] { validated.withLock { $0 } }
    var reloadCount: Int { reloads.load(ordering: .relaxed) }

    func validate(configPath: String) async throws {
        validated.withLock { $0.append(configPath) }
        try await inner.validate(configPath: configPath)
    }
    func reload(runtime: any RuntimeAPI, timeout: Double) async throws -> ReloadResult {
        reloads.add(1, ordering: .relaxed)
        return try await inner.reload(runtime: runtime, timeout: timeout)
    }
    func processList() async throws -> RuntimeReplyParsers.ProcessList? { try await inner.processList() }
    func adminSockets() async -> [String]? { await inner.adminSockets() }
}

/// Resolves names from a fixed table only (nothing leaves the machine) and records every name it
/// was asked for.
final class RecordingResolver: HostResolving, @unchecked Sendable {
    let table: [String: String]
    private let asked = Mutex<Set<String>>([])
    init(_ table: [String: String] = [:]) { self.table = table }
    var names: Set<String> { asked.withLock { $0 } }
    func resolve(_ hosts: Set<String>) async -> [String: IPAddress] {
        asked.withLock { $0.formUnion(hosts) }
        var out: [String: IPAddress] = [:]
        for h in hosts { if let ip = table[h].flatMap({ try? IPAddress($0) }) { out[h] = ip } }
        return out
    }
}

/// Sleeps without holding a cooperative thread.
func pause(_ seconds: Double) async {
    try? await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
}

/// `run`'s controller wired like `Stack`'s, but against a given HAProxy and given Marathon URLs
/// (which need not answer yet) or another apps source, with optional fault-injecting edges.
final class ControllerRig: @unchecked Sendable {
    struct Options {
        var urls: [String] = []
        /// Instead of Marathon (no event stream): e.g. a `FileAppsSource`.
        var source: (any AppsSource)? = nil
        var credentials: BasicCredentials? = nil
        var healthCheck = false
        var minSlots = 8
        var requestTimeout = 5.0
        var streamTimeout = 30.0
        var maxBackoff = 1.0
        var httpPort: Int? = nil
        var runtime: FaultyRuntime? = nil
        var files: (any ConfigFiles)? = nil
        var logLevel = LogLevel.debug
    }

    let haproxy: HAProxyProcess
    let reconciler: Reconciler
    let controller: Controller
    let runtime: FaultyRuntime
    let logs = MemoryLogSink()
    let httpPort: Int
    private var runTask: Task<Void, Never>?
    private let inputs: AsyncStream<ControllerInput>

    init(haproxy: HAProxyProcess, _ o: Options) throws {
        self.haproxy = haproxy
        httpPort = try o.httpPort ?? freePort()
        let logger = Logger(minimum: o.logLevel, sink: logs)
        let render = RenderOptions(adminSocket: haproxy.socketPath, httpPort: httpPort, appIdPort: nil, stats: nil,
                                   mapDirectory: haproxy.directory, bindAddress: "127.0.0.1")
        var settings = ReconcilerSettings(pass: PassSettings(
            routing: RoutingOptions(groups: ["external"], healthCheck: o.healthCheck, minSlots: o.minSlots, reservedPorts: render.reservedPorts),
            render: render, templates: try TemplateSet()), configPath: haproxy.configPath)
        runtime = o.runtime ?? FaultyRuntime(haproxy.runtime)
        reconciler = Reconciler(settings: settings, runtime: runtime, control: haproxy.control(logger: logger),
                                resolver: CachingHostResolver(), logger: logger, files: o.files)
        var run = RunSettings()
        run.maxBackoff = o.maxBackoff
        run.haproxyCheckInterval = 0.3
        let source: any AppsSource
        if let given = o.source {
            source = given
            inputs = AsyncStream { _ in }
        } else {
            let client = MarathonClient(endpoints: try MarathonEndpoints(urls: o.urls.map { URL(string: $0)! }, credentials: o.credentials),
                                        requestTimeout: o.requestTimeout, streamTimeout: o.streamTimeout, maxBackoff: o.maxBackoff, logger: logger)
            source = MarathonAppsSource(client: client)
            inputs = EventMapping.inputs(client.events(), logger: logger)
        }
        controller = Controller(reconciler: reconciler, source: source, logger: logger, settings: run)
    }

    func start() {
        let c = controller, inputs = self.inputs
        runTask = Task { await c.run(inputs: inputs) }
    }

    func stop() async {
        controller.stop()
        await runTask?.value
        runTask = nil
    }

    /// Log lines whose message contains `fragment`.
    func count(_ fragment: String) -> Int { logs.all.filter { $0.message.contains(fragment) }.count }

    /// Every log record as one text line (for failure messages and secret scans).
    var logText: String {
        logs.all.map { r in "\(r.level.name) \(r.message) " + r.fields.map { "\($0.0)=\($0.1)" }.joined(separator: " ") }.joined(separator: "\n")
    }
}

/// Marathon's answer held in memory (no event stream): tests set what a resync returns.
final class MemoryAppsSource: AppsSource, @unchecked Sendable {
    private let lock = NSLock()
    private var apps: [MarathonApp]
    init(_ apps: [MarathonApp]) { self.apps = apps }
    func set(_ apps: [MarathonApp]) { lock.withLock { self.apps = apps } }
    func fetchApps() async throws -> AppsSnapshot { AppsSnapshot(apps: lock.withLock { apps }) }
}

/// The slot each address occupies, for the servers HAProxy has in the given admin states.
func slotsByAddress(_ live: LiveState, admin: Set<LiveServer.Admin> = [.ready]) -> [String: String] {
    var out: [String: String] = [:]
    for servers in live.backends.values {
        for s in servers where admin.contains(s.admin) && s.port != 1 {
            out["\(s.address):\(s.port)"] = "\(s.backend.text)/\(s.name.text)"
        }
    }
    return out
}

/// `haproxy -c -f path` off the cooperative pool: (passed, output).
func haproxyCheck(_ path: String) async throws -> (ok: Bool, output: String) {
    let r = try await Blocking.run { try ProcessRunner.run("haproxy", ["-c", "-f", path], timeout: 60) }
    return (r.status == 0, r.output)
}

/// The config file and every map file beside it, as one text (what HAProxy loads).
func configAndMaps(_ h: HAProxyProcess) -> String {
    var text = (try? String(contentsOfFile: h.configPath, encoding: .utf8)) ?? ""
    for f in ((try? FileManager.default.contentsOfDirectory(atPath: h.directory)) ?? []).sorted() where f.hasSuffix(".map") {
        text += "\n# \(f)\n" + ((try? String(contentsOfFile: h.directory + "/" + f, encoding: .utf8)) ?? "")
    }
    return text
}

// MARK: - Helpers shared by the suites

/// A box for values set inside a test body and read by its cleanup.
final class Holder<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: T?
    init(_ value: T? = nil) { stored = value }
    var value: T? {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}

/// Runs `body`, then `cleanup` whether it threw or not (async cleanup cannot go in a `defer`).
func withCleanup(_ body: () async throws -> Void, cleanup: () async -> Void) async throws {
    do { try await body() } catch {
        await cleanup()
        throw error
    }
    await cleanup()
}

/// What an earlier servicerouter left behind: HAProxy running its config for `appId` on
/// `servicePort`, with the same shared frontends a new controller (`ControllerRig`) renders.
func configureAsEarlierController(_ h: HAProxyProcess, httpPort: Int, appId: String, servicePort: Int, tasks: [TaskServer]) async throws {
    let render = RenderOptions(adminSocket: h.socketPath, httpPort: httpPort, appIdPort: nil, stats: nil, mapDirectory: h.directory, bindAddress: "127.0.0.1")
    let settings = ReconcilerSettings(pass: PassSettings(routing: RoutingOptions(groups: ["external"], minSlots: 8, reservedPorts: render.reservedPorts),
                                      render: render, templates: try TemplateSet()), configPath: h.configPath)
    let r = Reconciler(settings: settings, runtime: h.runtime, control: h.control(), resolver: CachingHostResolver(), logger: .silent)
    await r.replace(with: AppsSnapshot(apps: [testApp(appId, servicePort: servicePort, tasks: tasks.map { ($0.id, $0.port) })]))
    let report = await r.fullPass(reason: "earlier controller")
    if let e = report.error { throw RuntimeError("earlier controller: \(e)") }
}

/// An app whose tasks are the given listeners (one task port per service port).
func simpleApp(_ id: String, ports: [Int], _ tasks: [TaskServer], labels: [String: String],
               changedAt: String = "2026-01-01T00:00:00.000Z") -> MarathonApp {
    var l = ["HAPROXY_GROUP": "external"]
    l.merge(labels) { _, new in new }
    return MarathonApp(id: id, labels: l, instances: tasks.count, version: changedAt, configChangedAt: changedAt, servicePorts: ports,
                       tasks: tasks.map { t in MarathonTask(id: t.id, appId: id, host: "127.0.0.1", ports: ports.map { _ in t.port }) })
}

/// A Unix socket file nobody listens on: connecting to it is refused (ECONNREFUSED).
func makeStaleUnixSocket(at path: String) throws {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw RuntimeError("socket: errno \(errno)") }
    defer { close(fd) }
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { throw RuntimeError("path too long: \(path)") }
    withUnsafeMutableBytes(of: &addr.sun_path) { dst in
        for (i, b) in bytes.enumerated() { dst[i] = b }
    }
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard rc == 0 else { throw RuntimeError("bind \(path): errno \(errno)") }
}

/// A child process with its standard output and error in a file.
final class ChildProcess: @unchecked Sendable {
    let process: Subprocess
    let logPath: String

    private init(process: Subprocess, logPath: String) {
        self.process = process
        self.logPath = logPath
    }

    static func start(_ executable: String, _ arguments: [String], log: String) throws -> ChildProcess {
        // ServiceRouterIO's posix_spawn, not Foundation's Process (see Binary.run).
        let fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw RuntimeError("cannot open \(log): errno \(errno)") }
        defer { Glibc.close(fd) }
        let p = try Subprocess(executable: executable, arguments: arguments, standardOutput: fd, standardError: fd)
        return ChildProcess(process: p, logPath: log)
    }

    var output: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Sends `signal` and waits (bounded, off the cooperative pool) for the process to exit.
    func kill(_ signal: Int32, timeout: Double = 10) async {
        let p = process
        _ = try? await Blocking.run {
            guard p.isRunning else { return }
            Glibc.kill(p.processIdentifier, signal)
            let deadline = Monotonic.now() + timeout
            while p.isRunning && Monotonic.now() < deadline { usleep(10_000) }
            if p.isRunning { Glibc.kill(p.processIdentifier, SIGKILL) }
            p.waitUntilExit()
        }
    }

    /// Waits (bounded) for the process to exit by itself; its status, or nil if it did not.
    func wait(timeout: Double) async -> Int32? {
        let p = process
        return try? await Blocking.run { () -> Int32? in
            let deadline = Monotonic.now() + timeout
            while p.isRunning && Monotonic.now() < deadline { usleep(10_000) }
            guard !p.isRunning else { return nil }
            p.waitUntilExit()
            return p.terminationStatus
        }
    }
}
