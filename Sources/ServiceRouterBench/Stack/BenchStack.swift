import Foundation
import Synchronization
import MarathonSimulator
import ServiceRouterController
import ServiceRouterCLI
import ServiceRouterCore
import ServiceRouterIO

/// HAProxy (master-worker, started from a minimal config as operators start it), the Marathon
/// simulator with real task listeners, and the controller on the simulator's event stream — wired
/// exactly as `servicerouter demo` and `run` wire them.
final class BenchStack: @unchecked Sendable {
    struct Config: Sendable {
        var apps: [BenchApp]
        var killGrace: Double
        var reloadAlways = false
        var placement: SimulatorPlacement
        var haproxyBinary = "haproxy"
        /// HAProxy's stats page on 127.0.0.1 (the blue/green deploy watches it); nil: none.
        var statsPort: Int? = nil
    }

    let directory: String
    let haproxy: HAProxyProcess
    let sim: SimulatorHost
    let apps: [BenchApp]
    let httpPort: Int
    let reconciler: Reconciler
    let client: MarathonClient
    let logPath: String
    let logger: Logger
    private(set) var controller: Controller?
    private var runTask: Task<Void, Never>?

    private init(directory: String, haproxy: HAProxyProcess, sim: SimulatorHost, apps: [BenchApp], httpPort: Int,
                 reconciler: Reconciler, client: MarathonClient, logPath: String, logger: Logger) {
        self.directory = directory
        self.haproxy = haproxy
        self.sim = sim
        self.apps = apps
        self.httpPort = httpPort
        self.reconciler = reconciler
        self.client = client
        self.logPath = logPath
        self.logger = logger
    }

    private static let counter = Mutex(0)

    static func start(_ c: Config) async throws -> BenchStack {
        let n = counter.withLock { v -> Int in v += 1; return v }
        let dir = NSTemporaryDirectory() + "servicerouter-bench-\(getpid())-\(n)"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let logPath = dir + "/controller.log"
        let logger = Logger(minimum: .info, sink: FileLogSink(path: logPath))

        let haproxy = try HAProxyProcess(directory: dir + "/haproxy", binary: c.haproxyBinary)
        try await haproxy.start()
        let sim: SimulatorHost
        do {
            sim = try await SimulatorHost.start(c.placement, apps: c.apps, killGrace: c.killGrace, directory: dir)
        } catch {
            await haproxy.shutdown()
            throw error
        }
        let httpPort = try BenchPorts.free(1)[0]
        let render = RenderOptions(adminSocket: haproxy.socketPath, httpPort: httpPort, appIdPort: nil,
                                   stats: c.statsPort.map { .init(address: "127.0.0.1", port: $0) }, bindAddress: "127.0.0.1")
        var settings = ReconcilerSettings(pass: PassSettings(routing: RoutingOptions(groups: ["external"], healthCheck: false,
                                                                                     reservedPorts: render.reservedPorts),
                                                             render: render, templates: try TemplateSet(), reloadAlways: c.reloadAlways),
                                          configPath: haproxy.configPath)
        let reconciler = Reconciler(settings: settings, runtime: haproxy.runtime, control: haproxy.control(logger: logger),
                                    resolver: CachingHostResolver(), logger: logger)
        let client = MarathonClient(endpoints: try MarathonEndpoints(urls: [URL(string: sim.url)!]), requestTimeout: 60,
                                    streamTimeout: 30, maxBackoff: 2, logger: logger)
        return BenchStack(directory: dir, haproxy: haproxy, sim: sim, apps: c.apps, httpPort: httpPort,
                          reconciler: reconciler, client: client, logPath: logPath, logger: logger)
    }

    /// Starts the long-running controller (`run`): a full pass at start-up, then the event stream.
    func startController(_ settings: RunSettings = RunSettings()) {
        guard controller == nil else { return }
        let controller = Controller(reconciler: reconciler, source: MarathonAppsSource(client: client), logger: logger,
                                    settings: settings)
        self.controller = controller
        let inputs = EventMapping.inputs(client.events(), logger: logger)
        runTask = Task { await controller.run(inputs: inputs) }
    }

    /// Stops the controller (its event stream closes); `startController` starts a new one.
    func stopController() async {
        controller?.stop()
        await runTask?.value
        controller = nil
        runTask = nil
    }

    /// Stops everything this stack started. The temporary directory (logs, configs) is removed
    /// unless `keep`.
    func stop(keep: Bool = false) async {
        controller?.stop()
        await runTask?.value
        await sim.stop()
        await haproxy.shutdown()
        if !keep { try? FileManager.default.removeItem(atPath: directory) }
    }

    /// Waits until HAProxy serves exactly the running tasks of every app named (via `show servers
    /// state`: ready slots and their addresses).
    func waitConverged(_ appIds: [String], timeout: Double) async throws {
        try await waitUntil("HAProxy to serve the running tasks of \(appIds.joined(separator: ", "))", timeout: timeout, every: 0.05) {
            for id in appIds {
                guard let app = apps.first(where: { $0.id == id }) else { return false }
                let backend = try DesiredStateBuilder.backendName(appId: id, servicePort: app.servicePort)
                let live = try await haproxy.runtime.liveState(backends: [backend])
                let serving = Set((live.backends[backend] ?? []).filter { $0.admin == .ready }.map { "\($0.address):\($0.port)" })
                let running = Set(try await sim.tasks(id).filter { $0.state == .running }.compactMap { t in
                    t.ports.first.map { "\(t.host):\($0)" }
                })
                if running.isEmpty || serving != running { return false }
            }
            return true
        }
    }

    /// HAProxy's own reload counter (the master's `show proc`).
    func reloadCount() async throws -> Int { try await haproxy.reloadCount() }

    /// The master, its current worker and old workers still alive.
    func haproxyProcesses() async throws -> Int { try await haproxy.workerCount() + 1 }
}
