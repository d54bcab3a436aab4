import ServiceRouterController
import ServiceRouterCore
import ServiceRouterIO
import Synchronization

/// `run`'s controller on in-memory edges and a manual time source: Marathon's `/v2/apps`
/// (`source`), HAProxy (`haproxy`, with its files in `files`), task events pushed by the test
/// (`push`). Nothing waits on real time except `eventually`'s bounded polling.
public final class ControllerHarness: Sendable {
    public let time: ManualTime
    public let source: InMemoryAppsSource
    public let files: InMemoryConfigFiles
    public let haproxy: InMemoryHAProxy
    public let ports = InMemoryPorts()
    public let logs = MemoryLogSink()
    public let reconciler: Reconciler
    public let controller: Controller
    public let settings: RunSettings
    private let inputs: AsyncStream<ControllerInput>
    private let feed: AsyncStream<ControllerInput>.Continuation
    private let task = Mutex<Task<Void, Never>?>(nil)

    public struct Options: Sendable {
        public var groups = ["external"]
        public var healthCheck = false
        public var minSlots = 4
        public var httpPort: Int? = 18080
        public var vhostRouting = RenderOptions.VhostRouting.map
        public var reloadAlways = false
        public var run = RunSettings()
        public var debounce = 0.05
        public var maxPending = 50_000
        public init() {}
    }

    public init(apps: [MarathonApp] = [], _ o: Options = Options()) throws {
        time = ManualTime()
        source = InMemoryAppsSource(apps)
        files = InMemoryConfigFiles(path: "/in-memory/haproxy.cfg",
                                    config: "global\n  stats socket /in-memory/admin.sock mode 600 level admin\n")
        haproxy = InMemoryHAProxy(files: files)
        let render = RenderOptions(adminSocket: "/in-memory/admin.sock", httpPort: o.httpPort, appIdPort: nil, stats: nil,
                                   vhostRouting: o.vhostRouting, mapDirectory: "/in-memory")
        var settings = ReconcilerSettings(
            pass: PassSettings(routing: RoutingOptions(groups: o.groups, healthCheck: o.healthCheck, minSlots: o.minSlots,
                                                       reservedPorts: render.reservedPorts),
                               render: render, templates: try TemplateSet(), reloadAlways: o.reloadAlways),
            configPath: files.path)
        let logger = Logger(minimum: .debug, sink: logs)
        reconciler = Reconciler(settings: settings, runtime: haproxy, control: haproxy, resolver: StaticResolver(),
                                logger: logger, files: files, ports: ports, time: time)
        self.settings = o.run
        controller = Controller(reconciler: reconciler, source: source, logger: logger, settings: o.run,
                                queue: InputQueue(maxPending: o.maxPending, debounce: o.debounce, time: time), time: time,
                                random: { 0.5 })
        (inputs, feed) = AsyncStream.makeStream(of: ControllerInput.self)
    }

    /// Starts the loop (its start-up resync is the first thing it does).
    public func start() {
        let controller = self.controller, inputs = self.inputs
        task.withLock { $0 = Task { await controller.run(inputs: inputs) } }
    }

    /// An input as the event stream delivers it (straight into the queue, so `waitUntilIdle`
    /// afterwards knows the loop has seen it).
    public func push(_ input: ControllerInput) {
        reconciler.metrics.input(input)
        controller.queue.push(input)
    }

    public func stop() async {
        controller.stop()
        feed.finish()
        let running = task.withLock { t -> Task<Void, Never>? in defer { t = nil }; return t }
        await running?.value
    }

    /// Waits until the loop is asleep with nothing to do but wait for `deadline` (or input): then
    /// a test may assert that nothing else happened, and advance time.
    public func waitUntilIdle(_ what: String = "the controller to wait") async throws {
        try await eventually(what) {
            guard case .waiting = controller.activity.last, controller.queue.isQuiet else { return false }
            return !time.sleepers.isEmpty && (controller.queue.nextDeadline.map { $0 > time.now() } ?? true)
        }
    }

    /// Full passes so far, by reason.
    public var fullPasses: [String] {
        controller.activity.all.compactMap { if case .fullPass(let r, _, _) = $0 { r } else { nil } }
    }

    public var fastPaths: Int {
        controller.activity.all.filter { if case .fastPath = $0 { true } else { false } }.count
    }

    public func logged(_ level: LogLevel, _ fragment: String) -> Bool { logs.contains(level, fragment) }
}

/// Marathon models for controller tests: a host-networked app on 127.0.0.1.
public func harnessApp(_ id: String, port: Int, tasks: [(id: String, port: Int)], labels: [String: String] = [:],
                       instances: Int? = nil, changedAt: String = "2026-01-01T00:00:00.000Z") -> MarathonApp {
    var l = ["HAPROXY_GROUP": "external"]
    l.merge(labels) { _, new in new }
    return MarathonApp(id: id, labels: l, instances: instances ?? tasks.count, version: changedAt, configChangedAt: changedAt,
                       servicePorts: [port],
                       tasks: tasks.map { MarathonTask(id: $0.id, appId: id, host: "127.0.0.1", ports: [$0.port], state: .running) })
}

public func statusUpdate(_ app: String, _ task: String, _ state: TaskState, port: Int, at timestamp: String? = nil) -> ControllerInput {
    .statusUpdate(StatusUpdate(taskId: task, appId: app, taskStatus: state, host: "127.0.0.1", ports: [port], timestamp: timestamp))
}
