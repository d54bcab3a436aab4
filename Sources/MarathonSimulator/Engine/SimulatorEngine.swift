import Dispatch
import FoundationEssentials
import ServiceRouterCore
import ServiceRouterIO
import Synchronization

/// Marathon's scheduler, simulated: apps, deployments, task launches and kills, health, events.
/// All state sits behind one lock; events are published while it is held, so subscribers see
/// them in the order the changes happened. Task processes are real listeners in `pool`.
final class SimulatorEngine: Sendable {
    let options: MarathonSimulator.Options
    let bus: EventBus
    let pool: TaskServerPool
    let state = Mutex(EngineState())
    let clock = VersionClock()
    let slaveId: String
    private let timers = DispatchQueue(label: "marathon-simulator.timers")
    private let stopped = Atomic<Bool>(false)

    init(options: MarathonSimulator.Options, bus: EventBus) {
        self.options = options
        self.bus = bus
        self.pool = TaskServerPool(threads: options.taskServerThreads, logger: options.logger)
        self.slaveId = UUID().uuidString.lowercased() + "-S0"
    }

    var isStopped: Bool { stopped.load(ordering: .acquiring) }

    /// From now on timers do nothing and hanging requests return; the task listeners keep
    /// their state until `stopTasks`.
    func markStopped() {
        stopped.store(true, ordering: .releasing)
    }

    func stopTasks() {
        markStopped()
        pool.stop()
    }

    func snapshot() -> EngineState { state.withLock { $0 } }

    func now() -> String { VersionClock.timestamp() }

    func publish(_ type: String, _ data: () -> JSONValue) { bus.publish(type, data) }

    /// Runs `body` later on the timer queue, unless the simulator stopped meanwhile.
    func after(_ seconds: Double, _ body: @escaping @Sendable (SimulatorEngine) -> Void) {
        timers.asyncAfter(deadline: .now() + max(0, seconds)) { [weak self] in
            guard let self, !self.isStopped else { return }
            body(self)
        }
    }

    /// Applies a change under the lock, then settles every app it touched.
    func mutate<T>(_ body: (inout EngineState) throws -> T) rethrows -> T {
        try state.withLock { s in
            let result = try body(&s)
            settleDirtyApps(&s)
            return result
        }
    }

    // MARK: - App operations

    struct Change: Sendable {
        var version: String
        var deploymentId: String
    }

    func createApp(_ spec: AppSpec, clientIp: String = "127.0.0.1", uri: String = "/v2/apps") throws -> (AppRecord, Change) {
        try mutate { s in
            guard s.apps[spec.id] == nil else {
                throw SimulatorError(status: 409, message: "An app with id [\(spec.id)] already exists.")
            }
            if s.apps.keys.contains(where: { $0.hasPrefix(spec.id + "/") }) || isInsideApp(spec.id, s) {
                throw SimulatorError(status: 409, message: "A group with id [\(spec.id)] already exists.")
            }
            let servicePorts = try allocateServicePorts(spec, &s)
            let version = clock.next()
            var app = AppRecord(spec: spec, servicePorts: servicePorts, version: version, lastScalingAt: version,
                                lastConfigChangeAt: version)
            let deployment = newDeployment(for: &app, action: "StartApplication", &s)
            s.apps[spec.id] = app
            s.tasksByApp[spec.id] = s.tasksByApp[spec.id] ?? []
            let time = now()
            // The definition needs no tasks: render against an empty state, so no copy of the
            // whole state stays alive (that would make every later mutation copy 10,000 tasks).
            publish("api_post_event") {
                MarathonEvents.apiPost(clientIp: clientIp, uri: uri,
                                       app: Rendering.app(app, state: EngineState(), embed: .deprecatedPorts), at: time)
            }
            announce(deployment, &s)
            s.markDirty(spec.id)
            return (s.apps[spec.id]!, Change(version: version, deploymentId: deployment.id))
        }
    }

    /// PUT /v2/apps/<id>: a partial update; `instances` alone is a scaling, anything else a
    /// config change that replaces every task (Marathon restarts tasks even for label changes).
    func updateApp(_ id: String, force: Bool, clientIp: String = "127.0.0.1", uri: String? = nil,
                   _ change: (inout AppSpec) throws -> Void) throws -> Change {
        try mutate { s in
            guard var app = s.apps[id], !app.deleting else { throw SimulatorError.appNotFound(id) }
            try checkLock(app, force: force, &s)
            var spec = app.spec
            do { try change(&spec) } catch let e as AppValidationError { throw SimulatorError.invalid(e) }
            spec.id = id
            let version = clock.next()
            if !spec.sameConfig(as: app.spec) {
                app.lastConfigChangeAt = version
                if spec.portCount != app.spec.portCount || spec.network != app.spec.network
                    || spec.portDefinitions.map(\.port) != app.spec.portDefinitions.map(\.port)
                    || spec.portMappings.map(\.servicePort) != app.spec.portMappings.map(\.servicePort) {
                    s.usedServicePorts.subtract(app.servicePorts)
                    app.servicePorts = try allocateServicePorts(spec, &s)
                }
            } else {
                app.lastScalingAt = version
            }
            let action = spec.sameConfig(as: app.spec) ? "ScaleApplication" : "RestartApplication"
            app.spec = spec
            app.version = version
            let deployment = newDeployment(for: &app, action: action, &s)
            s.apps[id] = app
            let time = now()
            publish("api_post_event") {
                MarathonEvents.apiPost(clientIp: clientIp, uri: uri ?? "/v2/apps\(id)",
                                       app: Rendering.app(app, state: EngineState(), embed: .deprecatedPorts), at: time)
            }
            announce(deployment, &s)
            s.markDirty(id)
            return Change(version: version, deploymentId: deployment.id)
        }
    }

    /// POST /v2/apps/<id>/restart: a new version, every task replaced by a rolling upgrade.
    func restartApp(_ id: String, force: Bool) throws -> Change {
        try mutate { s in
            guard var app = s.apps[id], !app.deleting else { throw SimulatorError.appNotFound(id) }
            try checkLock(app, force: force, &s)
            let version = clock.next()
            app.version = version
            app.lastConfigChangeAt = version
            let deployment = newDeployment(for: &app, action: "RestartApplication", &s)
            s.apps[id] = app
            announce(deployment, &s)
            s.markDirty(id)
            return Change(version: version, deploymentId: deployment.id)
        }
    }

    func deleteApp(_ id: String, force: Bool) throws -> Change {
        try mutate { s in
            guard var app = s.apps[id], !app.deleting else { throw SimulatorError.appNotFound(id) }
            try checkLock(app, force: force, &s)
            let version = clock.next()
            app.deleting = true
            let deployment = newDeployment(for: &app, action: "StopApplication", &s)
            s.apps[id] = app
            announce(deployment, &s)
            for t in s.tasks(of: id) where t.state != .killing { beginKill(t.id, &s) }
            s.markDirty(id)
            return Change(version: version, deploymentId: deployment.id)
        }
    }

    // MARK: - Task operations

    /// DELETE /v2/apps/<id>/tasks/<taskId>: Marathon then launches a replacement unless `scale`
    /// (which lowers `instances` by one instead).
    func killTask(_ taskId: String, appId: String? = nil, scale: Bool) throws -> (TaskRecord, Change?) {
        try mutate { s in
            guard let t = s.tasks[taskId], appId == nil || t.appId == appId else { throw SimulatorError.taskNotFound(taskId) }
            var change: Change?
            if scale, var app = s.apps[t.appId], !app.deleting {
                let version = clock.next()
                app.spec.instances = max(0, app.spec.instances - 1)
                app.version = version
                app.lastScalingAt = version
                let deployment = newDeployment(for: &app, action: "ScaleApplication", &s)
                s.apps[t.appId] = app
                announce(deployment, &s)
                change = Change(version: version, deploymentId: deployment.id)
            }
            if t.state != .killing { beginKill(taskId, &s) }
            s.markDirty(t.appId)
            return (s.tasks[taskId] ?? t, change)
        }
    }

    /// Kills the oldest running task of `appId`; Marathon starts a replacement at once.
    func replaceTask(appId: String) throws -> String {
        try mutate { s in
            guard let app = s.apps[appId], !app.deleting else { throw SimulatorError.appNotFound(appId) }
            guard let victim = s.tasks(of: appId).first(where: { $0.state != .killing }) else {
                throw SimulatorError(status: 404, message: "App '\(appId)' has no task to replace")
            }
            beginKill(victim.id, &s)
            s.markDirty(appId)
            return victim.id
        }
    }

    /// The task's health endpoint starts answering 503 (or 200 again) and its health result
    /// turns (as if the next check ran now).
    func setHealth(_ taskId: String, alive: Bool) throws {
        try mutate { s in
            guard var t = s.tasks[taskId] else { throw SimulatorError.taskNotFound(taskId) }
            t.wantsHealthy = alive
            s.tasks[taskId] = t
            for token in t.endpoints { pool.setHealthy(token, alive) }
            if t.state == .running, s.apps[t.appId]?.hasHealthChecks == true, t.health != nil {
                recordHealth(taskId, &s)
            }
            s.markDirty(t.appId)
        }
    }

    /// The task's process crashes and Mesos reports TASK_FAILED; Marathon launches a replacement.
    func crashTask(_ taskId: String, message: String = "Command exited with status 137") throws {
        try mutate { s in
            guard let t = s.tasks[taskId] else { throw SimulatorError.taskNotFound(taskId) }
            finishTask(t.id, as: .failed, message: message, &s)
        }
    }

    /// The task's process exits but Marathon has not noticed: its listener closes, while the
    /// task stays TASK_RUNNING with its last health result (the window a health check covers).
    func killProcessSilently(_ taskId: String) throws {
        try state.withLock { s in
            guard var t = s.tasks[taskId] else { throw SimulatorError.taskNotFound(taskId) }
            for token in t.endpoints { pool.remove(token) }
            t.processAlive = false
            s.tasks[taskId] = t
        }
    }

    func setHealthResultsHidden(_ hidden: Bool) {
        state.withLock { $0.healthResultsHidden = hidden }
    }

    // MARK: - Internals: deployments

    private func isInsideApp(_ id: String, _ s: EngineState) -> Bool {
        var parent = id
        while let slash = parent.lastIndex(of: "/"), slash != parent.startIndex {
            parent = String(parent[..<slash])
            if s.apps[parent] != nil { return true }
        }
        return false
    }

    private func checkLock(_ app: AppRecord, force: Bool, _ s: inout EngineState) throws {
        guard !app.deploymentIDs.isEmpty else { return }
        guard force else {
            let first = app.deploymentIDs[0]
            throw SimulatorError(
                status: 409,
                message: "App is locked by one or more deployments. Override with the option '?force=true'. View details at '/v2/deployments/\(first)'.",
                extra: ["deployments": .array(app.deploymentIDs.map { ["id": .string($0)] })])
        }
        // Forced: the running deployments are cancelled (Marathon reports them as failed).
        var updated = app
        for id in app.deploymentIDs {
            if let d = s.deployments.removeValue(forKey: id) {
                s.deploymentOrder.removeAll { $0 == id }
                let time = now()
                publish("deployment_failed") { MarathonEvents.deploymentFailed(d, at: time) }
            }
        }
        updated.deploymentIDs = []
        s.apps[app.id] = updated
    }

    private func newDeployment(for app: inout AppRecord, action: String, _ s: inout EngineState) -> DeploymentRecord {
        let d = DeploymentRecord(id: UUID().uuidString.lowercased(), version: app.version, appId: app.id, action: action)
        s.deployments[d.id] = d
        s.deploymentOrder.append(d.id)
        app.deploymentIDs.append(d.id)
        return d
    }

    private func announce(_ d: DeploymentRecord, _ s: inout EngineState) {
        let time = now()
        publish("group_change_success") { MarathonEvents.groupChangeSuccess(version: d.version, at: time) }
        publish("deployment_info") { MarathonEvents.deploymentInfo(d, at: time) }
    }

    private func allocateServicePorts(_ spec: AppSpec, _ s: inout EngineState) throws -> [Int] {
        // Marathon 1.4 gave IP-per-task apps in the `ipAddress` shape no service ports (issue 3636).
        if spec.ipAddressDiscovery { return [] }
        let requested = spec.network == .host ? spec.portDefinitions.map(\.port) : spec.portMappings.map(\.servicePort)
        var out: [Int] = []
        for port in requested {
            if port != 0 {
                out.append(port)
                s.usedServicePorts.insert(port)
                continue
            }
            var found: Int?
            for _ in 0...10_000 {
                let candidate = s.nextServicePort
                s.nextServicePort = candidate >= 20000 ? 10000 : candidate + 1
                if !s.usedServicePorts.contains(candidate) {
                    found = candidate
                    break
                }
            }
            guard let found else { throw SimulatorError(status: 422, message: "No free service port in 10000-20000") }
            s.usedServicePorts.insert(found)
            out.append(found)
        }
        return out
    }
}
