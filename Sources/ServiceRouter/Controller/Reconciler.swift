import FoundationEssentials
import ServiceRouterCore
import ServiceRouterIO

/// Everything the reconciler needs to know that does not come from Marathon.
public struct ControllerSettings: Sendable {
    public var routing: RoutingOptions
    public var render: RenderOptions
    public var templates: TemplateSet
    public var configPath: String
    /// Print what would happen; change nothing.
    public var dryRun: Bool = false
    /// Benchmark baseline: rewrite and reload on every change, as reload-based controllers do.
    public var reloadAlways: Bool = false
    public var reloadTimeout: Double = 30
    /// When HAProxy's runtime socket does not answer: reload anyway (`once`, which may run before
    /// HAProxy), or only write the validated config and retry later (`run`).
    public var reloadWhenSocketDown = true

    public init(routing: RoutingOptions, render: RenderOptions, templates: TemplateSet, configPath: String) {
        self.routing = routing
        self.render = render
        self.templates = templates
        self.configPath = configPath
    }
}

/// The outcome of one pass, for logs, `plan`, `status` and tests.
public struct SyncReport: Sendable {
    public var desired: DesiredState
    public var plan: ReconcilePlan
    public var rendered: RenderedConfig?
    public var live: LiveState
    public var identity: HAProxyIdentity?
    /// Runtime commands sent (or, in a dry run, that would be sent).
    public var commands: [RuntimeCommand] = []
    public var failures: [RuntimeReply] = []
    /// Why a reload was (or would be) needed; empty: none.
    public var reloadReasons: [String] = []
    public var reloaded: Bool = false
    public var configWritten: Bool = false
    /// A problem that left HAProxy on its previous state (invalid candidate, unreachable socket...).
    public var error: String?
    /// The previous config text, for `plan`'s diff.
    public var previousConfig: String?
    /// Vhost map entries to add or remove through the runtime API.
    public var mapChanges: [MapChange] = []
    /// Where the pass spent its time (benchmarks, logs).
    public var timings = SyncTimings()
}

/// Wall-clock seconds per phase of a full pass.
public struct SyncTimings: Sendable, Equatable {
    /// `show info`, `show env`, `show servers state` (every backend), `show map`.
    public var readLive = 0.0
    /// Host resolution and the desired state.
    public var build = 0.0
    public var plan = 0.0
    public var render = 0.0
    /// `haproxy -c` on the candidate (reloads only).
    public var validate = 0.0
    /// Runtime commands, including the read-back and fix-up after a reload.
    public var apply = 0.0
    /// Reading the previous config and writing the new one when it changed (no reload).
    public var writeFile = 0.0
    /// Installing the candidate, reloading, waiting for the new worker (reloads only).
    public var reload = 0.0
    public var total = 0.0
    public init() {}
}

public struct MapChange: Sendable, Equatable {
    public var file: MapFile
    public var added: [MapKeyValue]
    public var removed: [MapKeyValue]
}

/// Turns Marathon's apps into HAProxy state: desired state → slot plan → runtime commands, and a
/// validated reload only when the structure changes. Owns the controller's memory (Marathon's
/// apps, last known health, slot history) so the event fast path can work without a full fetch.
public actor Reconciler {
    public let settings: ControllerSettings
    let runtime: any RuntimeAPI
    let control: any HAProxyControl
    let store: any ConfigFiles
    let resolver: any HostResolving
    let logger: Logger
    let clock: @Sendable () -> Double

    /// Marathon's apps by id, as last fetched and then updated by events.
    private(set) var apps: [String: MarathonApp] = [:]
    private var health: [String: Bool] = [:]
    private var desired = DesiredState()
    /// Positions in `desired.services` by app id, rebuilt when a full pass replaces `desired` (the
    /// fast path edits services in place, in the same order): the fast path looks up the services
    /// of one app among thousands on every batch.
    private var servicesByApp: [String: [Int]] = [:]
    /// The slot assignment in effect, by backend (from the last plans).
    private var assignment: [ProxyName: BackendPlan] = [:]
    private var history = SlotHistory()
    private(set) var identity: HAProxyIdentity?
    private var fileDirty = false
    /// Full passes begun, and fast-path batches that changed slots: a file rewrite rendered off
    /// the actor knows whether either happened meanwhile.
    private var passes = 0
    private var slotChanges = 0
    /// The last render and what it was rendered from, and each service's part of it.
    private var lastRender: RenderMemo?
    /// The last desired-state build and what it was built from: a resync that finds the same apps
    /// and the same context (an idle one) reuses it instead of rebuilding 10,000 servers.
    private var lastBuild: (apps: [MarathonApp], context: BuildContext, desired: DesiredState)?
    private var renderCache = RenderCache()
    /// A file rewrite is in flight (it awaits work done off the actor).
    private var rewriting = false
    /// A snapshot is being fetched for a full pass, or that pass runs; it writes the file itself.
    private var snapshotPass = false
    /// Counters, gauges and per-backend status for `--listen` (and tests, the demo, benchmarks).
    public nonisolated let metrics: ControllerMetrics

    public init(settings: ControllerSettings, runtime: any RuntimeAPI, control: any HAProxyControl,
                resolver: any HostResolving, logger: Logger, metrics: ControllerMetrics = ControllerMetrics(),
                files: (any ConfigFiles)? = nil, clock: @escaping @Sendable () -> Double = { Monotonic.now() }) {
        self.metrics = metrics
        self.settings = settings
        self.runtime = runtime
        self.control = control
        self.store = files ?? ConfigStore(path: settings.configPath)
        self.resolver = resolver
        self.logger = logger
        self.clock = clock
    }

    // MARK: - Marathon model

    /// Whether a snapshot from Marathon was ever loaded. Without one the model is empty, not
    /// "no apps": applying it would wipe HAProxy (e.g. a controller restarting while Marathon is down).
    public private(set) var hasSnapshot = false

    /// Replaces the model with a full snapshot from Marathon.
    public func replaceApps(_ list: [MarathonApp], skipped: [SkippedApp]) {
        hasSnapshot = true
        for s in skipped {
            logger.warning("app skipped: Marathon sent an app that cannot be decoded", [("app", s.appId ?? "#\(s.index)"), ("reason", s.reason)])
        }
        var byId: [String: MarathonApp] = [:]
        var duplicates = 0
        for app in list {
            guard byId[app.id] == nil else {
                duplicates += 1
                logger.warning("app skipped: duplicate app id in Marathon's answer; only the first is used", [("app", app.id)])
                continue
            }
            // An app that did not change keeps the model's copy: the snapshot's copy is freed
            // with the snapshot, and an idle resync holds one model, not two.
            if let current = apps[app.id], current == app {
                byId[app.id] = current
            } else {
                byId[app.id] = app
            }
        }
        metrics.skippedApps(skipped.count + duplicates)
        apps = byId
        let known = Set(list.flatMap { $0.tasks.map(\.id) })
        health = health.filter { known.contains($0.key) }
    }

    public var appCount: Int { apps.count }

    /// Applies one task status change to the model. Returns false when the app is unknown (the
    /// caller then schedules a full resync).
    public func applyStatusUpdate(_ u: TaskStatusUpdate) -> Bool {
        guard var app = apps[u.appId] else { return false }
        if let i = app.tasks.firstIndex(where: { $0.id == u.taskId }) {
            if u.state.isTerminal {
                app.tasks.remove(at: i)
                health[u.taskId] = nil
            } else {
                app.tasks[i].state = u.state
                if !u.host.isEmpty { app.tasks[i].host = u.host }
                if !u.ports.isEmpty { app.tasks[i].ports = u.ports }
                if !u.ipAddresses.isEmpty { app.tasks[i].ipAddresses = u.ipAddresses }
            }
        } else if !u.state.isTerminal {
            app.tasks.append(MarathonTask(id: u.taskId, appId: u.appId, host: u.host, ports: u.ports,
                                          ipAddresses: u.ipAddresses, state: u.state))
        }
        apps[u.appId] = app
        return true
    }

    /// Applies a health change; false when the app or instance is unknown.
    public func applyHealthChange(appId: String, instanceId: String, alive: Bool) -> Bool {
        guard var app = apps[appId] else { return false }
        let key = MarathonTask.instanceKey(of: instanceId)
        guard let i = app.tasks.firstIndex(where: { $0.instanceKey == key }) else { return false }
        app.tasks[i].healthAlive = [alive]
        health[app.tasks[i].id] = alive
        apps[appId] = app
        return true
    }

    // MARK: - Full pass

    /// One full pass over every app: read HAProxy back, plan, then runtime commands or one
    /// validated reload. Never throws: problems are in the report and the log.
    public func fullSync(reason: String) async -> SyncReport {
        guard hasSnapshot else {
            logger.info("full pass skipped: no snapshot from Marathon yet; HAProxy keeps its current state", [("reason", reason)])
            return SyncReport(desired: DesiredState(), plan: ReconcilePlan(backends: [], commands: []), rendered: nil,
                              live: LiveState(), identity: nil, error: "no snapshot from Marathon yet")
        }
        let started = clock()
        passes += 1
        metrics.fullPass()
        var timings = SyncTimings()
        var lapStart = started
        func lap() -> Double {
            let now = clock()
            defer { lapStart = now }
            return now - lapStart
        }
        var live = LiveState()
        var identity: HAProxyIdentity?
        var socketProblem: String?
        do {
            (identity, live) = try await runtime.identifiedLiveState()
        } catch {
            socketProblem = "\(error)"
        }
        self.identity = identity
        metrics.haproxy(reachable: socketProblem == nil)
        timings.readLive = lap()

        let appList = apps.values.sorted { $0.id < $1.id }
        for (id, alive) in DesiredStateBuilder.healthObservations(appList) { health[id] = alive }
        let resolved = await resolver.resolve(DesiredStateBuilder.hostsToResolve(appList))
        let context = BuildContext(resolvedHosts: resolved, lastKnownHealth: health, incumbentBackends: Set(live.backendOrder),
                                   liveServing: Self.servingEndpoints(live))
        let built: DesiredState
        if let last = lastBuild, last.context == context, last.apps == appList {
            built = last.desired
            // Keep the inputs just compared, not the older equal copies: the older model's
            // storage is freed instead of living on beside the current one.
            lastBuild = (appList, context, built)
        } else {
            lastBuild = nil
            built = DesiredStateBuilder.build(apps: appList, options: settings.routing, context: context)
            lastBuild = (appList, context, built)
        }
        // What the payload or the live state said healthy becomes the remembered health, so the
        // fast path keeps serving these tasks while their results are missing.
        for s in built.services {
            for server in s.servers where server.routing == .serve && health[server.taskId] == nil {
                health[server.taskId] = true
            }
        }
        var desired = withoutRejected(built)
        log(desired.diagnostics)
        timings.build = lap()

        // Plan and render; when a reload is needed, validate the candidate first. A candidate that
        // `haproxy -c` refuses because of some services leaves those out (and only those), so the
        // other apps keep updating; anything else leaves HAProxy on its current config.
        var report: SyncReport
        var round = 0
        while true {
            report = await prepare(desired, live: live, identity: identity, socketProblem: socketProblem)
            let prepared = lap()
            timings.plan += report.timings.plan
            timings.render += report.timings.render
            timings.readLive += prepared - report.timings.plan - report.timings.render
            // Dry runs show a diff against the file; otherwise it is only compared (streamed).
            if settings.dryRun { report.previousConfig = store.read() }
            timings.writeFile += lap()
            report.timings = timings
            guard let rendered = report.rendered, !settings.dryRun else { return report }
            guard !report.reloadReasons.isEmpty || socketProblem != nil else { break }
            // Map files first: the candidate refers to them, and a reload or restart loads them.
            if let problem = writeMapFiles(rendered.maps) {
                report.error = problem
                return report
            }
            let check = await validateCandidate(rendered)
            timings.validate += lap()
            switch check {
            case .valid:
                break
            case .failed(let problem):
                report.error = problem
                return report
            case .rejected(let rejection):
                metrics.invalidConfig()
                let names = Set(desired.services.map(\.backend))
                let offenders = rendered.services(atLines: rejection.check.lines, proxies: rejection.check.proxies, among: names)
                let message = rejection.check.alerts.first ?? rejection.output
                guard !offenders.isEmpty, offenders.count < names.count, round < 3 else {
                    report.error = "candidate config rejected: \(rejection)"
                    logger.error("candidate config rejected by haproxy -c; HAProxy keeps the last good config",
                                 [("reason", message), ("kept", store.rejectedPath)])
                    return report
                }
                for s in desired.services where offenders.contains(s.backend) {
                    rejected[Self.rejectionKey(s)] = message
                    logger.error("service left out: haproxy -c refused its config; the other apps go on",
                                 [("app", s.appId), ("backend", s.backend.text), ("reason", message)])
                }
                desired.services.removeAll { offenders.contains($0.backend) }
                round += 1
                continue
            }
            break
        }
        self.desired = desired
        indexServices()
        var plan = report.plan
        let rendered = report.rendered!
        let candidateValidated = !report.reloadReasons.isEmpty || socketProblem != nil

        if let socketProblem, !settings.reloadWhenSocketDown {
            // HAProxy is down or restarting: keep the desired state, install the validated config
            // so a restart loads it, and let the caller retry; never reload blind.
            report.configWritten = install()
            report.error = "HAProxy's runtime socket is not usable (\(socketProblem))"
            logger.warning("HAProxy not reachable; config written, will apply when it answers", [("reason", socketProblem)])
            return report
        }

        if report.reloadReasons.isEmpty, !plan.commands.isEmpty {
            let failures = await send(plan.commands)
            report.failures = failures
            if !failures.isEmpty {
                report.reloadReasons = ["runtime command rejected: \(failures[0].command) → \(failures[0].failure ?? "")"]
            }
        }
        if report.reloadReasons.isEmpty, !report.mapChanges.isEmpty {
            if let problem = await applyMapChanges(report.mapChanges, desired: rendered.maps) {
                report.reloadReasons = ["vhost map update failed: \(problem)"]
            }
        }
        timings.apply = lap()
        if report.reloadReasons.isEmpty {
            adopt(plan)
            if !store.holds(rendered.text) {
                do {
                    try store.replace(with: rendered.text)
                    report.configWritten = true
                    fileDirty = false
                } catch {
                    logger.error("config file not updated (HAProxy is up to date; a restart would lose the latest task changes)", [("reason", "\(error)")])
                    fileDirty = true
                }
            }
            timings.writeFile += lap()
        } else {
            let outcome = await reload(rendered, reasons: report.reloadReasons, validated: candidateValidated)
            timings.reload = lap()
            report.configWritten = outcome.written
            report.reloaded = outcome.reloaded
            report.error = outcome.error
            if outcome.reloaded {
                // Read the new worker back and fix whatever differs (normally nothing).
                if let after = await readBackNewWorker(replacing: outcome.oldPid) {
                    report.live = after.live
                    plan = SlotPlanner.plan(desired: desired, live: after.live, history: history, now: clock())
                    plan.shareSlots(with: Dictionary(report.plan.backends.map { ($0.backend, $0) }) { a, _ in a })
                    if !plan.commands.isEmpty {
                        report.failures += await send(plan.commands)
                        report.commands += plan.commands
                    }
                    adopt(plan)
                    self.identity = after.identity
                } else {
                    self.identity = try? await runtime.identity()
                }
            }
            timings.apply += lap()
        }
        timings.total = clock() - started
        report.timings = timings
        report.plan = plan
        metrics.backends(plan, live: report.live, replaceAll: true)
        if report.error == nil {
            metrics.synced(at: clock())
        }
        logger.info("sync done", [
            ("reason", reason), ("apps", String(appList.count)), ("services", String(desired.services.count)),
            ("servers", String(desired.serverCount)), ("commands", String(report.commands.count)),
            ("reload", report.reloaded ? "yes" : "no"), ("ms", ((clock() - started) * 1000).fixed(1)),
        ])
        return report
    }

    /// Why the running HAProxy cannot take this plan through the runtime API alone.
    static func reloadReasons(plan: ReconcilePlan, live: LiveState, identity: HAProxyIdentity?,
                              rendered: RenderedConfig, socketProblem: String?) -> [String] {
        if let socketProblem { return ["HAProxy's runtime socket is not usable (\(socketProblem))"] }
        guard let identity else { return ["HAProxy's identity is unknown"] }
        guard let liveHash = identity.structureHash else {
            return ["HAProxy runs a config not generated by servicerouter"]
        }
        if liveHash == rendered.structureHash { return [] }
        var reasons: [String] = []
        let wanted = Set(plan.backends.map(\.backend))
        for b in plan.backends where b.structureChanged {
            if let l = live.backends[b.backend] {
                reasons.append("backend \(b.backend): \(l.count) → \(b.slotCount) slots")
            } else {
                reasons.append("new backend \(b.backend)")
            }
        }
        for name in live.backendOrder where !wanted.contains(name) {
            reasons.append("backend \(name) removed")
        }
        if reasons.isEmpty { reasons.append("frontends, routing rules or templates changed") }
        return reasons
    }

    static func servingEndpoints(_ live: LiveState) -> Set<Endpoint> {
        var out = Set<Endpoint>()
        for servers in live.backends.values {
            for s in servers where s.admin == .ready { if let e = s.endpoint { out.insert(e) } }
        }
        return out
    }

    /// Checks whether the HAProxy behind the socket is still the one we last applied to. Returns a
    /// reason when it is not: restarted, reloaded by someone else, running another config, or
    /// answering again after we last saw it unreachable.
    public func haproxyChanged() async -> String? {
        let answer = try? await runtime.identity()
        metrics.haproxy(reachable: answer != nil)
        // Without a snapshot from Marathon there is nothing to re-apply (the pass that follows the
        // first successful fetch reads HAProxy back anyway).
        guard let now = answer, hasSnapshot else { return nil }
        guard now != identity else { return nil }
        guard let before = identity else { return "HAProxy answers on its runtime socket (pid \(now.pid))" }
        return "HAProxy changed behind our back (pid \(before.pid) → \(now.pid), structure \(now.structureHash ?? "not ours"))"
    }

    // MARK: - Fast path

    /// Pushes the current model of the given apps to HAProxy through the runtime API only: reads
    /// those backends back, plans, sends. Returns false when that is not enough (unknown app,
    /// structure change, HAProxy restarted, rejected command): the caller then runs `fullSync`.
    public func flush(appIds: Set<String>) async -> FastPathResult {
        var services: [Service] = []
        var backends: [ProxyName] = []
        for id in appIds.sorted() {
            guard let app = apps[id] else { return .needsFullSync("app \(id) is not known yet") }
            let old = (servicesByApp[id] ?? []).map { desired.services[$0] }
            let hosts = DesiredStateBuilder.hostsToResolve([app])
            let resolved = hosts.isEmpty ? [:] : await resolver.resolve(hosts)
            let rebuilt = DesiredStateBuilder.build(apps: [app], options: settings.routing, context: BuildContext(
                resolvedHosts: resolved, lastKnownHealth: health, incumbentBackends: Set(old.map(\.backend))))
            // Only task changes are handled here; conflict decisions stay those of the last full pass.
            for var s in old {
                guard let fresh = rebuilt.services.first(where: { $0.backend == s.backend }) else {
                    return .needsFullSync("backend \(s.backend) changed shape")
                }
                s.servers = fresh.servers
                services.append(s)
                backends.append(s.backend)
            }
        }
        guard !services.isEmpty else { return .done(commands: 0) }

        let live: LiveState
        do {
            let read = try await runtime.identifiedLiveState(backends: backends)
            if read.identity != identity {
                return .needsFullSync("HAProxy changed behind our back (pid \(identity?.pid ?? 0) → \(read.identity.pid))")
            }
            live = read.live
        } catch {
            return .needsFullSync("cannot read HAProxy back: \(error)")
        }

        let partial = DesiredState(services: services, diagnostics: [])
        let plan = SlotPlanner.plan(desired: partial, live: live, history: history, now: clock())
        if let grown = plan.backends.first(where: \.structureChanged) {
            return .needsSnapshot("backend \(grown.backend) needs \(grown.slotCount) slots")
        }
        for s in services {
            if let i = servicesByApp[s.appId]?.first(where: { desired.services[$0].backend == s.backend }) { desired.services[i] = s }
        }
        if settings.reloadAlways, !plan.commands.isEmpty {
            return .needsFullSync("reload-always mode")
        }
        let failures = await send(plan.commands)
        if !failures.isEmpty {
            return .needsFullSync("runtime command rejected: \(failures[0].command) → \(failures[0].failure ?? "")")
        }
        adopt(plan)
        metrics.backends(plan, live: live, replaceAll: false)
        if !plan.commands.isEmpty {
            fileDirty = true
            slotChanges += 1
        }
        return .done(commands: plan.commands.count)
    }

    public enum FastPathResult: Sendable, Equatable {
        case done(commands: Int)
        case needsFullSync(String)
        /// A backend outgrew its slots: usually a scale-up, whose new instance count task events do
        /// not carry. The full pass should size it from a fresh snapshot.
        case needsSnapshot(String)
    }

    /// Called around fetching a snapshot and the full pass on it. Meanwhile the file rewrite
    /// leaves the file to that pass (which writes it itself); a rewrite already running is waited
    /// for first. Nothing is done twice, and at 10,000 tasks the rewrite's render and the 5 MB
    /// payload's decode are never held in memory at the same time.
    public func snapshotPass(running: Bool) async {
        snapshotPass = running
        guard running else { return }
        let deadline = clock() + 5
        while rewriting && clock() < deadline { try? await Task.sleep(nanoseconds: 5_000_000) }
    }

    /// Writes the config file when slot contents changed since it was last written, so an HAProxy
    /// restart or reload keeps every task. Called on a timer (off the hot path).
    public func writeConfigIfDirty() async {
        guard fileDirty, !settings.dryRun, !rewriting, !snapshotPass else { return }
        rewriting = true
        defer { rewriting = false }
        let desired = self.desired
        let plan = ReconcilePlan(backends: desired.services.compactMap { assignment[$0.backend] }, commands: [])
        let passesBefore = passes, changesBefore = slotChanges
        let settings = self.settings, store = self.store, memo = lastRender, cache = renderCache
        let liveHash = identity?.structureHash
        // Render, compare and write off the actor: at 10,000 tasks that is a 1.2 MB config and an
        // fsync, which fast-path batches would otherwise wait for. Only the rename happens here.
        let outcome: (rendered: RenderedConfig, cache: RenderCache?, staged: StagedConfig?)
        do {
            outcome = try await Task.detached(priority: .utility) {
                var cache = cache
                var rendered: RenderedConfig
                var fresh: RenderCache?
                if let memo, memo.matches(desired, plan) {
                    rendered = memo.config
                } else {
                    rendered = try ConfigRenderer.render(desired: desired, plan: plan, templates: settings.templates,
                                                         options: settings.render, cache: &cache)
                    fresh = cache
                }
                // A changed structure means a reload is pending: the full pass writes the file.
                guard rendered.structureHash == liveHash else { return (rendered, fresh, nil) }
                return (rendered, fresh, try store.stageReplacement(rendered.text))
            }.value
        } catch {
            logger.error("config file not updated; will retry", [("reason", "\(error)")])
            return
        }
        // A full pass began meanwhile: it decides the file itself.
        guard passes == passesBefore, outcome.rendered.structureHash == identity?.structureHash else {
            if let staged = outcome.staged { store.discardStaged(staged) }
            return
        }
        if let fresh = outcome.cache {
            renderCache = fresh
            lastRender = RenderMemo(desired, plan, outcome.rendered)
        }
        if let staged = outcome.staged {
            do {
                try store.commitReplacement(staged)
            } catch {
                store.discardStaged(staged)
                logger.error("config file not updated; will retry", [("reason", "\(error)")])
                return
            }
        }
        // Slot changes made meanwhile are written on the next tick.
        fileDirty = slotChanges != changesBefore
    }

    /// Renders, unless the desired state and the slots are those of the last render: the render
    /// is a function of them and the settings only, and an idle full pass at 10,000 tasks spent
    /// most of its time rendering the config it already had.
    private func renderMemoized(_ desired: DesiredState, _ plan: ReconcilePlan) throws -> RenderedConfig {
        if let memo = lastRender, memo.matches(desired, plan) { return memo.config }
        let config = try ConfigRenderer.render(desired: desired, plan: plan, templates: settings.templates, options: settings.render,
                                               cache: &renderCache)
        lastRender = RenderMemo(desired, plan, config)
        return config
    }

    // MARK: - Vhost maps

    /// Per map file, what differs between the live map and the desired one.
    func mapChanges(_ maps: [String: [MapEntry]]) async -> [MapChange] {
        var out: [MapChange] = []
        for (path, entries) in maps.sorted(by: { $0.key < $1.key }) {
            guard let file = try? MapFile(path) else { continue }
            guard let reply = try? await runtime.execute([.showMap(file: file)]).first, reply.failure == nil,
                  let live = RuntimeCommand.mapEntries(reply.text) else {
                // Not loaded by this HAProxy (its config is older): the reload carries the file.
                continue
            }
            let want = Set(entries.map { MapKeyValue(unchecked: $0.key, $0.value) })
            let have = Set(live)
            if want != have {
                out.append(MapChange(file: file, added: want.subtracting(have).sorted(), removed: have.subtracting(want).sorted()))
            }
        }
        return out
    }

    /// Replaces each changed map atomically: a new version filled with every desired entry, then
    /// committed (HAProxy 2.4+ `prepare map` / `add map @N` / `commit map @N`).
    private func applyMapChanges(_ changes: [MapChange], desired: [String: [MapEntry]]) async -> String? {
        for change in changes {
            do {
                let prepared = try await runtime.execute([.prepareMap(file: change.file)])
                guard prepared[0].failure == nil, let version = RuntimeCommand.preparedVersion(prepared[0].text) else {
                    return "prepare map \(change.file): \(prepared[0].failure ?? prepared[0].text)"
                }
                var commands: [RuntimeCommand] = []
                for e in desired[change.file.path] ?? [] {
                    commands.append(.addMap(version: version, file: change.file, entry: try MapKeyValue(key: e.key, value: e.value)))
                }
                commands.append(.commitMap(version: version, file: change.file))
                let failures = await send(commands)
                if let f = failures.first { return "\(f.command): \(f.failure ?? "")" }
                logger.info("vhost map updated without reload", [("map", change.file.path), ("added", String(change.added.count)),
                                                                  ("removed", String(change.removed.count))])
            } catch {
                return "\(change.file): \(error)"
            }
        }
        return nil
    }

    /// Writes map files whose content changed (atomic), so a reload or restart loads the current
    /// vhosts. Returns a problem, if any.
    private func writeMapFiles(_ maps: [String: [MapEntry]]) -> String? {
        for (path, entries) in maps {
            let text = entries.map { "\($0.key) \($0.value)\n" }.joined()
            if store.readFile(path) == text { continue }
            do { try store.replaceFile(path, with: text) } catch {
                logger.error("vhost map file not written; HAProxy untouched", [("map", path), ("reason", "\(error)")])
                return "\(error)"
            }
        }
        return nil
    }

    // MARK: - Applying

    /// Sends commands; returns the rejected ones.
    private func send(_ commands: [RuntimeCommand]) async -> [RuntimeReply] {
        guard !commands.isEmpty else { return [] }
        do {
            let replies = try await runtime.execute(commands)
            let failed = replies.filter { $0.failure != nil }
            metrics.commands(sent: commands.count, failed: failed.count)
            if logger.isDebug {
                for c in commands { logger.debug("runtime command", [("cmd", c.text)]) }
            }
            logger.info("runtime commands applied", [("count", String(commands.count)), ("failed", String(failed.count))])
            for f in failed.prefix(5) {
                logger.error("runtime command rejected", [("cmd", f.command.text), ("reply", f.failure ?? "")])
            }
            return failed
        } catch {
            metrics.commands(sent: 0, failed: commands.count)
            logger.error("runtime commands not applied", [("count", String(commands.count)), ("reason", "\(error)")])
            return [RuntimeReply(command: commands[0], text: "", failure: "\(error)")]
        }
    }

    private func adopt(_ plan: ReconcilePlan) {
        history.record(plan, at: clock())
        for b in plan.backends { assignment[b.backend] = b }
        // Backends gone from the desired state are dropped now and then (not on every batch).
        if assignment.count > desired.services.count * 2 + 16 {
            let names = Set(desired.services.map(\.backend))
            assignment = assignment.filter { names.contains($0.key) }
            history.forget(backendsNotIn: names)
        }
    }

    private func indexServices() {
        var index = [String: [Int]](minimumCapacity: desired.services.count)
        for (i, s) in desired.services.enumerated() { index[s.appId, default: []].append(i) }
        servicesByApp = index
    }

    private struct ReloadOutcome {
        var written = false
        var reloaded = false
        var error: String?
        /// The worker the reload replaced, when known.
        var oldPid: Int?
    }

    enum CandidateCheck {
        case valid
        case rejected(ConfigRejected)
        case failed(String)
    }

    /// Writes the candidate next to the live config and checks it with `haproxy -c`. Nothing is
    /// installed here; a refused candidate is kept as `<config>.rejected`.
    private func validateCandidate(_ rendered: RenderedConfig) async -> CandidateCheck {
        let candidate: String
        do {
            candidate = try store.writeCandidate(rendered.text)
        } catch {
            logger.error("config not written; HAProxy untouched", [("reason", "\(error)")])
            return .failed("\(error)")
        }
        do {
            try await control.validate(configPath: candidate)
            return .valid
        } catch let e as ConfigRejected {
            store.rejectCandidate()
            return .rejected(e)
        } catch {
            store.rejectCandidate()
            logger.error("config not validated; HAProxy untouched", [("reason", "\(error)")])
            return .failed("\(error)")
        }
    }

    /// Renames the validated candidate over the live config; true when done.
    private func install() -> Bool {
        do {
            try store.installCandidate()
            return true
        } catch {
            logger.error("config not installed; HAProxy untouched", [("reason", "\(error)")])
            return false
        }
    }

    /// Plans and renders `desired` against the live state and says whether a reload is needed.
    private func prepare(_ desired: DesiredState, live: LiveState, identity: HAProxyIdentity?, socketProblem: String?) async -> SyncReport {
        let planStart = clock()
        var plan = SlotPlanner.plan(desired: desired, live: live, history: history, now: clock())
        plan.shareSlots(with: assignment)
        var report = SyncReport(desired: desired, plan: plan, rendered: nil, live: live, identity: identity)
        let renderStart = clock()
        report.timings.plan = renderStart - planStart
        let rendered: RenderedConfig
        do {
            rendered = try renderMemoized(desired, plan)
            report.timings.render = clock() - renderStart
        } catch {
            report.error = "cannot render the config: \(error)"
            logger.error("config not rendered; HAProxy keeps its current config", [("reason", "\(error)")])
            return report
        }
        report.rendered = rendered
        report.commands = plan.commands
        report.reloadReasons = Self.reloadReasons(plan: plan, live: live, identity: identity, rendered: rendered, socketProblem: socketProblem)
        if settings.reloadAlways, report.reloadReasons.isEmpty, !plan.commands.isEmpty {
            report.reloadReasons = ["reload-always mode: \(plan.commands.count) slot change(s)"]
        }
        for d in rendered.diagnostics { logger.error(d.message, [("app", d.appId ?? "-"), ("kind", d.kind.rawValue)]) }
        if socketProblem == nil, !rendered.maps.isEmpty {
            report.mapChanges = await mapChanges(rendered.maps)
        }
        return report
    }

    /// Services whose config `haproxy -c` refused, by app id and config version: they stay out
    /// until the app changes (a new `versionInfo.lastConfigChangeAt`).
    private var rejected: [String: String] = [:]

    static func rejectionKey(_ s: Service) -> String { "\(s.appId)|\(s.servicePort)|\(s.configChangedAt ?? "")" }

    private func withoutRejected(_ desired: DesiredState) -> DesiredState {
        guard !rejected.isEmpty else { return desired }
        var out = desired
        let current = Set(desired.services.map(Self.rejectionKey))
        rejected = rejected.filter { current.contains($0.key) }
        out.services.removeAll { s in
            guard let message = rejected[Self.rejectionKey(s)] else { return false }
            out.diagnostics.append(Diagnostic(.error, .badApp, appId: s.appId,
                                              "service port \(s.servicePort) left out: haproxy -c refused its config (\(message)); it is tried again when the app changes"))
            return true
        }
        return out
    }

    /// Installs the candidate (validating it first unless that was done) and reloads HAProxy.
    private func reload(_ rendered: RenderedConfig, reasons: [String], validated: Bool) async -> ReloadOutcome {
        var outcome = ReloadOutcome()
        if !validated {
            if let problem = writeMapFiles(rendered.maps) {
                outcome.error = problem
                return outcome
            }
            switch await validateCandidate(rendered) {
            case .valid: break
            case .failed(let problem):
                outcome.error = problem
                return outcome
            case .rejected(let r):
                metrics.invalidConfig()
                outcome.error = "candidate config rejected: \(r)"
                logger.error("candidate config rejected by haproxy -c; HAProxy keeps the last good config",
                             [("reason", r.check.alerts.first ?? r.output), ("kept", store.rejectedPath)])
                return outcome
            }
        }
        outcome.written = install()
        guard outcome.written else {
            outcome.error = "the validated config could not be installed"
            return outcome
        }
        let reasonText = reasons.joined(separator: "; ")
        do {
            let result = try await control.reload(runtime: runtime, timeout: settings.reloadTimeout)
            outcome.reloaded = true
            outcome.oldPid = result.oldPid
            let key = reasons.first.map(Self.reasonKey) ?? "other"
            metrics.reload(reason: key)
            logger.info("HAProxy reloaded", [("reason", reasonText), ("old_pid", result.oldPid.map(String.init) ?? "-"),
                                             ("new_pid", String(result.newPid)), ("ms", (result.seconds * 1000).fixed(0))])
        } catch {
            metrics.reloadFailed()
            outcome.error = "reload failed: \(error)"
            logger.error("reload failed", [("reason", reasonText), ("error", "\(error)")])
            do {
                try store.restoreLastGood()
                outcome.written = false
            } catch {
                logger.error("could not restore the last good config file", [("reason", "\(error)")])
            }
        }
        return outcome
    }

    /// The new worker's live state and identity after a reload. For a moment the replaced worker
    /// may still accept connections on the shared runtime socket; a read it answered (its pid is
    /// in the answer) is retried, briefly and bounded, instead of being planned against.
    private func readBackNewWorker(replacing oldPid: Int?) async -> (identity: HAProxyIdentity, live: LiveState)? {
        for _ in 0..<50 {
            guard let read = try? await runtime.identifiedLiveState() else { return nil }
            if read.identity.pid != oldPid { return read }
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        logger.warning("the replaced HAProxy worker still answers on the runtime socket after 1 s", [("pid", String(oldPid ?? 0))])
        return nil
    }

    /// A short label for the reload-reason metric.
    static func reasonKey(_ reason: String) -> String {
        if reason.hasPrefix("new backend") { return "new_backend" }
        if reason.hasPrefix("backend") && reason.contains("slots") { return "slots" }
        if reason.hasPrefix("backend") && reason.hasSuffix("removed") { return "backend_removed" }
        if reason.hasPrefix("frontends") { return "frontends" }
        if reason.hasPrefix("runtime command") { return "runtime_fallback" }
        if reason.hasPrefix("reload-always") { return "reload_always" }
        if reason.contains("not generated by servicerouter") { return "foreign_config" }
        if reason.contains("socket") { return "socket_unusable" }
        return "other"
    }

    private func log(_ diagnostics: [Diagnostic]) {
        for d in diagnostics {
            let fields = [("app", d.appId ?? "-"), ("kind", d.kind.rawValue)]
            switch d.level {
            case .error: logger.error(d.message, fields)
            case .warning: logger.warning(d.message, fields)
            case .info: logger.info(d.message, fields)
            }
        }
    }
}

/// One task's status change, from `status_update_event`.
public struct TaskStatusUpdate: Sendable, Equatable {
    public var appId: String
    public var taskId: String
    public var state: TaskState
    public var host: String
    public var ports: [Int]
    public var ipAddresses: [String]
    public var version: String?

    public init(appId: String, taskId: String, state: TaskState, host: String, ports: [Int],
                ipAddresses: [String] = [], version: String? = nil) {
        self.appId = appId
        self.taskId = taskId
        self.state = state
        self.host = host
        self.ports = ports
        self.ipAddresses = ipAddresses
        self.version = version
    }
}

/// A rendered config and what the renderer read to make it: the services, and for each the slot
/// count and slot contents of its backend plan.
struct RenderMemo {
    struct Slots: Equatable {
        var slotCount: Int
        var slots: [DesiredServer?]
    }
    var services: [Service]
    var slots: [Slots?]
    var config: RenderedConfig

    init(_ desired: DesiredState, _ plan: ReconcilePlan, _ config: RenderedConfig) {
        services = desired.services
        slots = Self.slots(desired, plan)
        self.config = config
    }

    static func slots(_ desired: DesiredState, _ plan: ReconcilePlan) -> [Slots?] {
        desired.services.map { s in plan.backend(s.backend).map { Slots(slotCount: $0.slotCount, slots: $0.slots) } }
    }

    func matches(_ desired: DesiredState, _ plan: ReconcilePlan) -> Bool {
        services == desired.services && slots == Self.slots(desired, plan)
    }
}
