import FoundationEssentials
import ServiceRouterCore
import ServiceRouterIO
import Synchronization

/// A wire-exact Marathon 1.x simulator: REST API, `/v2/events`, and a real HTTP listener per
/// task on 127.0.0.1, all in-process. Start one per test:
///
/// ```swift
/// let sim = try await MarathonSimulator.start(.init(heartbeatInterval: nil))
/// defer { sim.stop() }
/// try await sim.createApp(AppSpec(id: "/web", instances: 3, labels: ["HAPROXY_GROUP": "external"]))
/// let tasks = await sim.tasks("/web")   // each answers GET on 127.0.0.1:tasks[i].ports[0]
/// ```
///
/// The programmatic operations act like the REST ones with `force=true` (they never get a 409
/// because a deployment is still running).
public final class MarathonSimulator: Sendable {
    public struct Credentials: Sendable, Equatable {
        public var user: String
        public var password: String
        public init(user: String, password: String) {
            self.user = user
            self.password = password
        }
    }

    public struct Options: Sendable {
        /// Loopback only: the simulator never binds anything else.
        public var host: String
        /// 0: an ephemeral port (read it back from `url` / `port`).
        public var port: Int
        /// HTTP basic auth on every endpoint (401 with `WWW-Authenticate: Basic realm="Mesosphere"`).
        public var credentials: Credentials?
        /// Seconds between bare-CRLF heartbeats on idle event streams; nil disables them.
        public var heartbeatInterval: Double?
        /// How long a killed task stays TASK_KILLING (still serving) before TASK_KILLED, when
        /// the app has no `taskKillGracePeriodSeconds`.
        public var killGracePeriod: Double
        /// TASK_STAGING → TASK_RUNNING delay (0: at once).
        public var taskStartDelay: Double
        /// TASK_RUNNING → first health result delay, for apps with health checks (0: at once).
        public var healthCheckDelay: Double
        /// Start as a standby that redirects every /v2 request to this leader URL.
        public var standbyLeaderURL: String?
        /// 307 (default) or 302 (Marathon 1.7+).
        public var redirectStatus: Int
        /// A consumer more than this many events behind is disconnected (Marathon 1.8+: 1024).
        public var eventBacklogLimit: Int
        /// Threads serving all task listeners.
        public var taskServerThreads: Int
        /// Host ports for task listeners (like a Mesos agent's `ports` resource); nil: kernel-chosen
        /// ephemeral ports. A port in use is skipped; when the range is exhausted, ephemeral ports.
        public var hostPortRange: ClosedRange<Int>?
        /// Kill (and replace) tasks whose health fails, as Marathon does after maxConsecutiveFailures.
        public var killUnhealthyTasks: Bool
        /// The `host` tasks report (the agent). Task listeners are always on loopback.
        public var taskHost: String
        public var marathonVersion: String
        public var maxConnections: Int
        public var logger: Logger

        public init(host: String = "127.0.0.1", port: Int = 0, credentials: Credentials? = nil,
                    heartbeatInterval: Double? = 10, killGracePeriod: Double = 0.5, taskStartDelay: Double = 0,
                    healthCheckDelay: Double = 0, standbyLeaderURL: String? = nil, redirectStatus: Int = 307,
                    eventBacklogLimit: Int = 1024, taskServerThreads: Int = 4,
                    hostPortRange: ClosedRange<Int>? = 21000...32000, killUnhealthyTasks: Bool = false,
                    taskHost: String = "127.0.0.1", marathonVersion: String = "1.8.222", maxConnections: Int = 512,
                    logger: Logger = .silent) {
            self.host = host
            self.port = port
            self.credentials = credentials
            self.heartbeatInterval = heartbeatInterval
            self.killGracePeriod = killGracePeriod
            self.taskStartDelay = taskStartDelay
            self.healthCheckDelay = healthCheckDelay
            self.standbyLeaderURL = standbyLeaderURL
            self.redirectStatus = redirectStatus
            self.eventBacklogLimit = eventBacklogLimit
            self.taskServerThreads = taskServerThreads
            self.hostPortRange = hostPortRange
            self.killUnhealthyTasks = killUnhealthyTasks
            self.taskHost = taskHost
            self.marathonVersion = marathonVersion
            self.maxConnections = maxConnections
            self.logger = logger
        }
    }

    /// `http://127.0.0.1:<port>`
    public let url: String
    public let port: Int
    public let options: Options
    let engine: SimulatorEngine
    let bus: EventBus
    let control: ControlState
    let api: MarathonAPI
    private let server: HTTPServer

    private init(options: Options, server: HTTPServer, engine: SimulatorEngine, bus: EventBus, control: ControlState,
                 api: MarathonAPI) {
        self.options = options
        self.server = server
        self.url = server.url
        self.port = server.port
        self.engine = engine
        self.bus = bus
        self.control = control
        self.api = api
    }

    public static func start(_ options: Options = Options()) async throws -> MarathonSimulator {
        try startNow(options)
    }

    /// The synchronous form of `start`, for code outside async contexts.
    public static func startNow(_ options: Options = Options()) throws -> MarathonSimulator {
        // Traffic stays on loopback: the simulator refuses to bind anything else.
        guard options.host.hasPrefix("127.") || options.host == "localhost" else {
            throw SimulatorError(status: 400, message: "the simulator binds loopback addresses only, not \(options.host)")
        }
        let bus = EventBus(backlogLimit: options.eventBacklogLimit)
        let engine = SimulatorEngine(options: options, bus: bus)
        let control = ControlState(leaderURL: options.standbyLeaderURL, redirectStatus: options.redirectStatus)
        let apiBox = APIBox()
        let server: HTTPServer
        do {
            server = try HTTPServer.start(
                host: options.host, port: options.port,
                options: .init(maxConnections: options.maxConnections, name: "marathon-sim", logger: options.logger)
            ) { request in
                guard let api = apiBox.api else { return .text("starting\n", status: 503) }
                return api.handle(request)
            }
        } catch {
            engine.stopTasks()
            throw error
        }
        let api = MarathonAPI(engine: engine, bus: bus, control: control, options: options, selfURL: server.url)
        apiBox.set(api)
        return MarathonSimulator(options: options, server: server, engine: engine, bus: bus, control: control, api: api)
    }

    /// Stops everything: the REST server, every event stream, every task listener, pending
    /// timers. Returns within about a second; afterwards no port of this simulator accepts.
    public func stop() {
        // Order matters: flag first (hanging requests and timers give up), then no more REST
        // requests or streams, then the task listeners (no request can start a task after that).
        engine.markStopped()
        bus.dropAll()
        server.stop()
        engine.stopTasks()
    }

    // MARK: - Apps

    @discardableResult
    public func createApp(_ spec: AppSpec) async throws -> SimApp {
        var spec = spec
        spec.id = AppSpec.normalize(id: spec.id)
        do { try AppSpec.validate(id: spec.id) } catch let e as AppValidationError { throw SimulatorError.invalid(e) }
        let (app, _) = try engine.createApp(spec)
        return SimApp(app, tasks: [])
    }

    /// Creates many apps in one go (1,000 demo apps start in well under a second).
    public func createApps(_ specs: [AppSpec]) async throws {
        for spec in specs { try await createApp(spec) }
    }

    /// Creates an app from a Marathon JSON app definition, as POST /v2/apps would.
    @discardableResult
    public func createApp(json: String) async throws -> SimApp {
        let spec: AppSpec
        do { spec = try AppSpec.parse(try JSONValue.parse(json)) } catch let e as AppValidationError {
            throw SimulatorError.invalid(e)
        }
        return try await createApp(spec)
    }

    public func scale(_ appId: String, instances: Int) async throws {
        _ = try engine.updateApp(AppSpec.normalize(id: appId), force: true) { $0.instances = instances }
    }

    /// A label change is a config change: Marathon replaces every task (rolling, per upgradeStrategy).
    public func updateLabels(_ appId: String, _ labels: [String: String]) async throws {
        _ = try engine.updateApp(AppSpec.normalize(id: appId), force: true) { $0.labels = labels }
    }

    /// Any change to the definition, as PUT /v2/apps/<id> would make it.
    public func updateApp(_ appId: String, _ change: @Sendable (inout AppSpec) -> Void) async throws {
        _ = try engine.updateApp(AppSpec.normalize(id: appId), force: true) { change(&$0) }
    }

    /// POST /v2/apps/<id>/restart: every task replaced, respecting upgradeStrategy.
    public func restartApp(_ appId: String) async throws {
        _ = try engine.restartApp(AppSpec.normalize(id: appId), force: true)
    }

    public func deleteApp(_ appId: String) async throws {
        _ = try engine.deleteApp(AppSpec.normalize(id: appId), force: true)
    }

    public func apps() async -> [SimApp] {
        let s = engine.snapshot()
        return s.apps.values.filter { !$0.deleting }.sorted { $0.id < $1.id }.map { SimApp($0, tasks: s.tasks(of: $0.id)) }
    }

    public func app(_ appId: String) async -> SimApp? {
        let s = engine.snapshot()
        guard let app = s.apps[AppSpec.normalize(id: appId)], !app.deleting else { return nil }
        return SimApp(app, tasks: s.tasks(of: app.id))
    }

    // MARK: - Tasks

    /// The app's tasks in launch order, with the ports they really listen on.
    public func tasks(_ appId: String) async -> [SimTask] {
        let s = engine.snapshot()
        return s.tasks(of: AppSpec.normalize(id: appId)).map { SimTask($0, healthHidden: false) }
    }

    public func allTasks() async -> [SimTask] {
        let s = engine.snapshot()
        return s.apps.keys.sorted().flatMap { s.tasks(of: $0) }.map { SimTask($0, healthHidden: false) }
    }

    /// Kills one task (TASK_KILLING, serving through the kill grace period, then TASK_KILLED and
    /// its port refuses connections). Marathon starts a replacement unless `scale`.
    public func killTask(_ taskId: String, scale: Bool = false) async throws {
        _ = try engine.killTask(taskId, scale: scale)
    }

    /// Kills the oldest task of the app; a replacement starts at once. Returns the killed id.
    @discardableResult
    public func replaceTask(_ appId: String) async throws -> String {
        try engine.replaceTask(appId: AppSpec.normalize(id: appId))
    }

    /// Fails (or restores) a task's health: its health path answers 503 and its
    /// `healthCheckResults` turn `alive: false`, with a health_status_changed_event.
    public func setHealth(_ taskId: String, alive: Bool) async throws {
        try engine.setHealth(taskId, alive: alive)
    }

    /// The task crashes: its listener closes, TASK_FAILED, and Marathon launches a replacement.
    public func crashTask(_ taskId: String) async throws {
        try engine.crashTask(taskId)
    }

    /// The task's process dies without Marathon noticing: its port refuses connections while the
    /// task stays TASK_RUNNING and healthy in the API, and no event is sent.
    public func killTaskProcessSilently(_ taskId: String) async throws {
        try engine.killProcessSilently(taskId)
    }

    // MARK: - Deployments and waiting

    public var deploymentCount: Int { engine.snapshot().deployments.count }

    /// Waits until no deployment is running (every app at its target, tasks running and healthy).
    public func waitForDeployments(timeout: Double = 10) async throws {
        try await waitUntil(timeout: timeout, "deployments to finish") { $0.engine.snapshot().deployments.isEmpty }
    }

    /// Polls `condition` every 10 ms until it holds or `timeout` passes.
    public func waitUntil(timeout: Double = 10, _ what: String = "condition",
                          _ condition: @Sendable (MarathonSimulator) async -> Bool) async throws {
        let deadline = Monotonic.now() + timeout
        while Monotonic.now() < deadline {
            if await condition(self) { return }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        if await condition(self) { return }
        throw SimulatorError(status: 504, message: "timed out after \(timeout) s waiting for \(what)")
    }

    // MARK: - Faults

    /// The next `count` Marathon requests answer `status` (500 or 503) with a JSON message.
    public func failNextRequests(_ count: Int, status: Int = 503) { control.failNext(count, status: status) }

    /// The next `count` Marathon requests wait `seconds` before being answered.
    public func hangNextRequests(_ count: Int, seconds: Double) { control.hangNext(count, seconds: seconds) }

    public func clearRequestFaults() { control.clearFaults() }

    /// Closes every /v2/events connection.
    public func dropEventStreams() { bus.dropAll() }

    /// Streams stay connected but get no events and no heartbeats (events meanwhile are lost).
    public func silenceEventStreams(_ silent: Bool = true) { bus.setSilent(silent) }

    /// Each open stream writes only the first half of its next event, then closes.
    public func cutEventStreamsMidEvent() { bus.cutAllMidEvent() }

    /// `healthCheckResults` become `[]` for every task (Marathon just after a leader failover).
    public func hideHealthResults(_ hidden: Bool = true) { engine.setHealthResultsHidden(hidden) }

    /// Become a standby: every /v2 request gets a redirect (307 or 302) to `leaderURL`.
    public func becomeStandby(leaderURL: String, redirectStatus: Int = 307) {
        control.becomeStandby(leaderURL: leaderURL, redirectStatus: redirectStatus)
    }

    public func becomeLeader() { control.becomeLeader() }

    // MARK: - Introspection

    public var eventStreamCount: Int { bus.subscriberCount }
    public var taskListenerCount: Int { engine.pool.listenerCount }
    public var openRESTConnectionCount: Int { server.openConnectionCount }
}

/// An app as the simulator holds it (for tests; the REST API is the wire form).
public struct SimApp: Sendable, Equatable {
    public var id: String
    public var instances: Int
    public var labels: [String: String]
    public var servicePorts: [Int]
    public var version: String
    public var deploymentIds: [String]
    public var spec: AppSpec
    public var taskIds: [String]

    init(_ app: AppRecord, tasks: [TaskRecord]) {
        id = app.id
        instances = app.spec.instances
        labels = app.spec.labels
        servicePorts = app.servicePorts
        version = app.version
        deploymentIds = app.deploymentIDs
        spec = app.spec
        taskIds = tasks.map(\.id)
    }
}

/// A task as the simulator holds it. Connect to `ipAddress:listenPorts[i]` to reach its process.
public struct SimTask: Sendable, Equatable {
    public var id: String
    public var appId: String
    public var instanceId: String
    public var host: String
    public var ipAddress: String
    /// Host ports as Marathon reports them (empty for IP-per-task).
    public var ports: [Int]
    /// Where the process listens on `ipAddress` (host ports, or container ports for IP-per-task).
    public var listenPorts: [Int]
    public var servicePorts: [Int]
    public var state: TaskState
    /// nil: no health result (yet, or the app has no health checks).
    public var healthy: Bool?
    public var version: String
    public var processAlive: Bool

    init(_ t: TaskRecord, healthHidden: Bool) {
        id = t.id
        appId = t.appId
        instanceId = t.instanceId
        host = t.host
        ipAddress = t.ipAddress
        ports = t.ports
        listenPorts = t.listenPorts
        servicePorts = t.servicePorts
        state = t.state
        healthy = healthHidden ? nil : t.health?.alive
        version = t.version
        processAlive = t.processAlive
    }
}

/// The API object exists only after the server is bound (it needs the URL); the handler
/// closure is created before. Set once, read by every request.
private final class APIBox: Sendable {
    private let value = Mutex<MarathonAPI?>(nil)
    var api: MarathonAPI? { value.withLock { $0 } }
    func set(_ api: MarathonAPI) { value.withLock { $0 = api } }
}
