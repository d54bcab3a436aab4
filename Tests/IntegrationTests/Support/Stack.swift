import Foundation
import MarathonSimulator
import ServiceRouterCore
import ServiceRouterIO
@testable import ServiceRouterController
@testable import ServiceRouterCLI
import ServiceRouterTestSupport

/// The whole thing for end-to-end tests: a real HAProxy (master-worker), the Marathon simulator with
/// real task listeners, and the controller on the simulator's event stream, in this process.
final class Stack: @unchecked Sendable {
    let haproxy: HAProxyProcess
    let sim: MarathonSimulator
    let controller: Controller
    let reconciler: Reconciler
    let httpPort: Int
    let logs = MemoryLogSink()
    private var runTask: Task<Void, Never>?

    struct Options {
        var healthCheck = false
        var streamTimeout = 30.0
        var resyncInterval = 300.0
        var heartbeat: Double? = 1
        var killGrace = 0.3
        var marathonURLs: [String]? = nil
        var simulator: MarathonSimulator? = nil
        var minSlots = 8
        var requestTimeout = 5.0
        /// HAProxy's stats page (`--haproxy-stats 127.0.0.1:PORT`); nil: none.
        var statsPort: Int? = nil
        /// `--vhost-routing`.
        var vhostRouting: RenderOptions.VhostRouting = .map
        /// `--min-serv-port-ip-per-task`..`--max-serv-port-ip-per-task`.
        var ipPerTaskServicePorts: ClosedRange<Int>? = nil
        /// Fault-injecting edges (`Support/Faults.swift`), given the HAProxy's paths.
        var runtime: ((HAProxyProcess) -> any RuntimeAPI)? = nil
        var files: ((HAProxyProcess) -> any ConfigFiles)? = nil
    }

    static func start(_ apps: [AppSpec], _ o: Options = Options()) async throws -> Stack {
        let haproxy = try HAProxyProcess()
        try await haproxy.start()
        let sim: MarathonSimulator
        if let given = o.simulator {
            sim = given
        } else {
            sim = try await MarathonSimulator.start(.init(heartbeatInterval: o.heartbeat, killGracePeriod: o.killGrace))
        }
        for app in apps { _ = try await sim.createApp(app) }
        if !apps.isEmpty { try await sim.waitForDeployments(timeout: 10) }
        let stack = try Stack(haproxy: haproxy, sim: sim, options: o)
        return stack
    }

    private init(haproxy: HAProxyProcess, sim: MarathonSimulator, options o: Options) throws {
        self.haproxy = haproxy
        self.sim = sim
        httpPort = try freePort()
        let logger = Logger(minimum: .debug, sink: logs)
        let render = RenderOptions(adminSocket: haproxy.socketPath, httpPort: httpPort, appIdPort: nil,
                                   stats: o.statsPort.map { .init(address: "127.0.0.1", port: $0) }, vhostRouting: o.vhostRouting,
                                   bindAddress: "127.0.0.1")
        var settings = ReconcilerSettings(pass: PassSettings(
            routing: RoutingOptions(groups: ["external"], healthCheck: o.healthCheck, minSlots: o.minSlots, reservedPorts: render.reservedPorts,
                                    ipPerTaskServicePorts: o.ipPerTaskServicePorts),
            render: render, templates: try TemplateSet()), configPath: haproxy.configPath)
        reconciler = Reconciler(settings: settings, runtime: o.runtime?(haproxy) ?? haproxy.runtime, control: haproxy.control(logger: logger),
                                resolver: CachingHostResolver(), logger: logger, files: o.files?(haproxy))
        let urls = (o.marathonURLs ?? [sim.url]).map { URL(string: $0)! }
        let client = MarathonClient(endpoints: try MarathonEndpoints(urls: urls), requestTimeout: o.requestTimeout,
                                    streamTimeout: o.streamTimeout, maxBackoff: 1, logger: logger)
        var run = RunSettings()
        run.resyncInterval = o.resyncInterval
        run.maxBackoff = 1
        run.haproxyCheckInterval = 0.3
        controller = Controller(reconciler: reconciler, source: MarathonAppsSource(client: client), logger: logger, settings: run)
        let c = controller
        runTask = Task { await c.run(inputs: EventMapping.inputs(client.events(), logger: logger)) }
    }

    /// Starts a stack, runs `body` with it, and always stops it.
    static func with(_ apps: [AppSpec], _ o: Options = Options(), _ body: (Stack) async throws -> Void) async throws {
        let s = try await start(apps, o)
        do { try await body(s) } catch {
            await s.stop()
            throw error
        }
        await s.stop()
    }

    /// Stops the controller only (HAProxy and the simulator keep running), as a crash or a
    /// restart of servicerouter would.
    func stopController() async {
        controller.stop()
        await runTask?.value
        runTask = nil
    }

    func stop() async {
        await stopController()
        sim.stop()
        await haproxy.shutdown()
    }

    /// The task ids HAProxy routes `port` (with `host`) to, over `count` new connections.
    func routed(port: Int, host: String? = nil, count: Int = 12) async -> Set<String> {
        await responses(port: port, host: host, count: count)
    }

    /// What the controller logged about reloads and full passes (for failure messages).
    var reloadLog: String {
        logs.all.filter { $0.message.contains("reload") || $0.message.contains("sync done") || $0.message.contains("fast path") }
            .map { "\($0.message) \($0.fields.map { "\($0.0)=\($0.1)" }.joined(separator: " "))" }.joined(separator: "\n")
    }

    func taskIds(_ appId: String) async -> Set<String> {
        Set(await sim.tasks(appId).filter { $0.state == .running }.map(\.id))
    }

    func servicePort(_ appId: String) async throws -> Int {
        guard let p = await sim.app(appId)?.servicePorts.first else { throw RuntimeError("no app \(appId)") }
        return p
    }

    /// Waits until the first full pass configured HAProxy (one reload from the minimal config) and
    /// `appId`'s running tasks are exactly what HAProxy routes to.
    func waitConverged(_ appId: String, timeout: Double = 15) async throws {
        let port = try await servicePort(appId)
        try await eventually("\(appId) routed to its running tasks", timeout: timeout) {
            let want = await taskIds(appId)
            guard !want.isEmpty else { return false }
            return await routed(port: port, count: max(8, want.count * 4)) == want
        }
    }
}

func webApp(_ id: String, instances: Int = 2, labels: [String: String] = [:], healthChecks: Bool = false) -> AppSpec {
    var l = ["HAPROXY_GROUP": "external"]
    l.merge(labels) { _, new in new }
    return AppSpec(id: id, instances: instances, labels: l,
                   portDefinitions: [.init(port: (try? freePort()) ?? 0)],
                   healthChecks: healthChecks ? [.init(protocol: "HTTP", path: "/health", intervalSeconds: 1, timeoutSeconds: 1,
                                                       maxConsecutiveFailures: 1)] : [])
}
