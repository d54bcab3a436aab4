import ServiceRouterCore
import ServiceRouterIO

/// Orchestrates the controller's memory and one pass at a time: Marathon's model, the planner,
/// the slot ledger and the applier. The decisions are the pure planners'; the doing is the
/// applier's; this actor only sequences them and remembers what was adopted.
public actor Reconciler {
    public nonisolated let settings: ReconcilerSettings
    public nonisolated let metrics: ControllerMetrics
    private let applier: Applier
    private let resolver: any HostResolving
    private let logger: Logger
    private let time: any TimeSource
    public private(set) var model = ClusterModel()
    private var planner: PassPlanner
    private var ledger = SlotLedger()
    /// The desired state in force, and the positions of each app's services in it.
    private var desired = DesiredState()
    private var servicesByApp: [String: [Int]] = [:]
    public private(set) var identity: HAProxyIdentity?
    /// Runtime changes since the config file was last written.
    public private(set) var fileDirty = false
    /// A reload onto this structure that the worker did not take (it runs another file), the
    /// worker it left, and why: not reloaded again until one of them changes.
    private var reloadDidNotTake: (hash: String, identity: HAProxyIdentity, message: String)?

    public init(settings: ReconcilerSettings, runtime: any RuntimeAPI, control: any HAProxyControl, resolver: any HostResolving,
                logger: Logger, metrics: ControllerMetrics = ControllerMetrics(), files: (any ConfigFiles)? = nil,
                ports: any PortProbing = SystemPortProbe(), time: any TimeSource = SystemTime()) {
        self.settings = settings
        self.metrics = metrics
        self.resolver = resolver
        self.logger = logger
        self.time = time
        planner = PassPlanner(settings: settings.pass)
        applier = Applier(runtime: runtime, control: control, files: files ?? ConfigStore(path: settings.configPath), ports: ports, logger: logger,
                          metrics: metrics, time: time, reloadTimeout: settings.reloadTimeout, mapFiles: settings.mapFiles)
    }

    // MARK: - Marathon's model

    public var hasSnapshot: Bool { model.hasSnapshot }

    /// Events from now on are replayed over the snapshot being fetched.
    public func beginSnapshot() { model.beginSnapshot() }

    /// The fetch failed: stop recording events for it.
    public func abandonSnapshot() { model.abandonSnapshot() }

    /// Replaces the model with a snapshot (events since `beginSnapshot` applied on top). True when
    /// the event journal overflowed meanwhile and another snapshot should follow.
    @discardableResult
    public func replace(with snapshot: AppsSnapshot) -> Bool {
        for s in snapshot.skipped {
            logger.warning("app skipped: Marathon sent an app that cannot be decoded", [("app", s.appId ?? "#\(s.index)"), ("reason", s.reason)])
        }
        let (duplicates, again) = model.replace(with: snapshot.apps)
        for id in duplicates { logger.warning("app skipped: duplicate app id in Marathon's answer; only the first is used", [("app", id)]) }
        metrics.skippedApps(snapshot.skipped.count + duplicates.count)
        return again
    }

    public func apply(_ event: ClusterModel.Event) -> ClusterModel.Outcome {
        let outcome = model.apply(event)
        if case .stale(let why) = outcome { logger.info("stale event ignored", [("why", why)]) }
        return outcome
    }

    // MARK: - Full pass

    /// Reads HAProxy back, plans every app, and applies: runtime commands, or one validated
    /// reload. A candidate `haproxy -c` refuses because of some services leaves those out (and
    /// only those) for a new round. Never throws: problems are in the report and the log.
    public func fullPass(reason: String) async -> PassReport {
        var report = PassReport()
        guard model.hasSnapshot else {
            logger.info("full pass skipped: no snapshot from Marathon yet; HAProxy keeps its current state", [("reason", reason)])
            report.error = .noSnapshot
            return report
        }
        let started = time.now()
        metrics.fullPass()
        // Services left out by this pass only: their port is held by another process (probed
        // anew by every pass, so they come back when the port is free).
        var leftOut: [ProxyName: String] = [:]
        rounds: for round in 0..<4 {
            let readStart = time.now()
            let input = await passInput()
            report.timings.readLive += time.now() - readStart
            report.live = input.live
            let plan: PassPlan
            do { plan = try planner.plan(input, leavingOut: leftOut, clock: { [time] in time.now() }) } catch {
                logger.error("config not rendered; HAProxy keeps its current config", [("reason", "\(error)")])
                report.error = .render("\(error)")
                break rounds
            }
            report.plan = plan
            if round == 0 { logNew(plan.desired.diagnostics + plan.config.diagnostics) }
            report.timings.build += plan.timings.build
            report.timings.plan += plan.timings.plan
            report.timings.render += plan.timings.render
            model.learn(health: plan.learnedHealth, overwrite: false)
            if plan.needsReload, let stop = leaveOutBindConflicts(plan, round: round, &leftOut) {
                if case .some(let error) = stop { report.error = error; break rounds }
                continue
            }
            if plan.needsReload, let stuck = reloadDidNotTake, stuck.hash == plan.config.structureHash,
               stuck.identity == input.live?.identity {
                // The last reload onto this structure did not take and nothing changed since:
                // reloading again would loop.
                report.error = .configNotLoaded(stuck.message)
                break rounds
            }
            let outcome = await applier.apply(plan, timings: &report.timings)
            if case .failed(.reloadFailed, _) = outcome, let stop = leaveOutBindConflicts(plan, round: round, &leftOut) {
                // A port taken between the check and the reload: found now, left out, tried again.
                if case .some(let error) = stop { report.error = error; break rounds }
                continue
            }
            if case .candidateRejected(let rejection, let reasons) = outcome {
                report.reloadReasons = reasons
                let offenders = PassPlanner.offenders(of: rejection.check, in: plan)
                let message = rejection.check.alerts.first ?? rejection.output
                guard !offenders.isEmpty, round < 3 else {
                    logger.error("candidate config rejected by haproxy -c; HAProxy keeps the last good config", [("reason", message)])
                    report.error = .candidateRejected("\(rejection)")
                    break rounds
                }
                for s in offenders {
                    logger.error("service left out: haproxy -c refused its config; the other apps go on",
                                 [("app", s.appId), ("backend", s.backend.text), ("reason", message)])
                }
                planner.reject(offenders, because: "haproxy -c refused its config (\(message))")
                continue
            }
            let fixStart = time.now()
            await adopt(plan, outcome: outcome, into: &report)
            report.timings.apply += time.now() - fixStart
            break
        }
        metrics.leftOut(bindConflicts: leftOut.count, rejected: planner.rejected.count)
        report.timings.total = time.now() - started
        switch report.error {
        case nil: metrics.synced(at: time.now())
        case .reloadFailed(let why), .bindConflict(let why), .candidateRejected(let why), .installFailed(let why),
             .validationFailed(let why), .render(let why), .socketMismatch(let why), .configNotLoaded(let why):
            metrics.degraded(why)
        default: break
        }
        logger.info("sync done", [
            ("reason", reason), ("apps", String(model.apps.count)), ("services", String(desired.services.count)),
            ("servers", String(desired.serverCount)), ("commands", String(report.commands.count)),
            ("reload", report.reloaded ? "yes" : "no"), ("ms", (report.seconds * 1000).fixed(1)),
        ])
        return report
    }

    /// Diagnostics logged by the last pass: a pass logs only those that are new, so a warning
    /// shows once when it appears, not again at every resync.
    private var loggedDiagnostics: Set<String> = []

    private func logNew(_ diagnostics: [Diagnostic]) {
        let current = Set(diagnostics.map(\.description))
        logger.log(diagnostics.filter { !loggedDiagnostics.contains($0.description) })
        loggedDiagnostics = current
    }

    /// Binds of `plan` another process holds: each service that binds one is left out of this
    /// pass (nil: no conflict, go on; `.some(nil)`: left out, plan again; `.some(error)`: a
    /// conflict on servicerouter's own frontends, which nothing can isolate).
    private func leaveOutBindConflicts(_ plan: PassPlan, round: Int, _ leftOut: inout [ProxyName: String]) -> PassError?? {
        let problems = applier.bindProblems(plan.config)
        guard !problems.isEmpty else { return nil }
        metrics.bindConflicts(problems.count)
        var shared: [String] = []
        for (bind, problem) in problems {
            guard let s = plan.desired.services.first(where: { $0.backend.text == bind.section }), round < 3 else {
                shared.append("frontend \(bind.section): \(problem)")
                continue
            }
            logger.error("service left out: its port is in use by another process; the other apps go on",
                         [("app", s.appId), ("backend", s.backend.text), ("bind", bind.description), ("reason", problem)])
            leftOut[s.backend] = "\(problem) (tried again at the next full pass)"
        }
        guard shared.isEmpty else {
            let text = shared.joined(separator: "; ")
            logger.error("cannot reload: a port of servicerouter's own frontends is in use; HAProxy keeps its current config",
                         [("reason", text), ("hint", "free the port or choose another with --http-port, --https-port, --appid-port or --haproxy-stats")])
            return .some(.bindConflict(text))
        }
        return .some(nil)
    }

    /// Takes in what the applier did: the desired state and slots in force, the worker's identity.
    private func adopt(_ plan: PassPlan, outcome: ApplyOutcome, into report: inout PassReport) async {
        desired = plan.desired
        servicesByApp = [:]
        for (i, s) in desired.services.enumerated() {
            // A deployment group's service is found through each of its colours' apps.
            for id in s.deploymentMembers.isEmpty ? [s.appId] : s.deploymentMembers { servicesByApp[id, default: []].append(i) }
        }
        report.reloadReasons = plan.reload
        var adopted = plan.slots
        switch outcome {
        case .runtime(let written):
            report.commands = plan.commands
            report.configWritten = written
            fileDirty = false
            identity = report.live?.identity
        case .reloaded(let result, let reasons, let readBack):
            report.reloadReasons = reasons
            report.reloaded = true
            report.configWritten = true
            fileDirty = false
            if let readBack, readBack.identity.pid != result.newPid || result.otherReloads > 0
                || (readBack.identity.structureHash != plan.config.structureHash && !applier.files.holds(plan.config.text)) {
                // Someone reloaded HAProxy again right after this reload, or replaced the config file:
                // whatever runs now is not what this pass planned for. Forget the identity: the next
                // check re-applies.
                logger.warning("HAProxy was reloaded or its config replaced by someone else right after this reload; re-applying", [
                    ("worker", String(readBack.identity.pid)), ("other_reloads", String(result.otherReloads))])
                identity = nil
                return
            }
            if let readBack, readBack.identity.structureHash != plan.config.structureHash {
                // Reloaded, yet the new worker runs something else: HAProxy was started on another
                // file than --haproxy-config.
                let message = "HAProxy reloaded but does not run the config servicerouter wrote to \(settings.configPath) "
                    + "(its worker reports \(readBack.identity.structureHash.map { "structure \($0)" } ?? "no servicerouter structure")): "
                    + "is --haproxy-config the file HAProxy was started with (haproxy -f)?"
                logger.error("HAProxy does not run the written config; no further reload until HAProxy or the config changes", [("reason", message)])
                reloadDidNotTake = (plan.config.structureHash, readBack.identity, message)
                report.live = readBack
                report.error = .configNotLoaded(message)
                identity = readBack.identity
                return
            }
            reloadDidNotTake = nil
            if let readBack {
                report.live = readBack
                identity = readBack.identity
                // Normally nothing: the config carried every slot.
                adopted = PassPlanner.fixUp(plan, live: readBack.servers, ledger: ledger, now: time.now())
                report.commands = adopted.commands
                _ = await applier.send(adopted.commands)
            } else {
                identity = try? await applier.runtime.identity()
            }
        case .installedOnly(let e):
            report.configWritten = true
            report.error = e
            return
        case .failed(let e, let reasons):
            report.reloadReasons = reasons
            report.error = e
            return
        case .candidateRejected:
            return
        }
        ledger.adopt(adopted, at: time.now(), replacingAll: true)
        metrics.backends(adopted, live: report.live?.servers ?? LiveState(), replaceAll: true)
    }

    /// HAProxy read back, hosts resolved: everything a plan needs.
    private func passInput() async -> PassInput {
        let apps = model.sortedApps
        model.learn(health: DesiredStateBuilder.healthObservations(apps))
        var live: LiveView?
        var problem: String?
        do { live = try await applier.runtime.liveView(maps: settings.mapFiles) } catch { problem = "\(error)" }
        metrics.haproxy(reachable: live != nil)
        let resolved = await resolver.resolve(DesiredStateBuilder.hostsToResolve(apps))
        return PassInput(apps: apps, health: model.health, resolvedHosts: resolved, live: live, socketProblem: problem,
                         ledger: ledger, now: time.now())
    }

    /// What a full pass would do now, changing nothing (`plan`, `render`, `status`).
    public func preview() async throws -> (plan: PassPlan, input: PassInput) {
        guard model.hasSnapshot else { throw PassError.noSnapshot }
        let input = await passInput()
        var planner = self.planner
        do { return (try planner.plan(input), input) } catch { throw PassError.render("\(error)") }
    }

    // MARK: - Fast path

    /// Pushes the model of the given apps to HAProxy through the runtime API only: reads those
    /// backends back, plans, sends. Anything more is a `FullPassReason` for the caller.
    public func fastPath(appIds: Set<String>) async -> FastPathOutcome {
        // The services the events touch, grouped by the apps they are built from (an app, or the
        // colours of a deployment group).
        var touched: [[String]: [Int]] = [:]
        for id in appIds.sorted() {
            guard model.apps[id] != nil else { return .needsFullPass(.unknownApp(id)) }
            for i in servicesByApp[id] ?? [] {
                let s = desired.services[i]
                let members = s.deploymentMembers.isEmpty ? [s.appId] : s.deploymentMembers
                if touched[members]?.contains(i) != true { touched[members, default: []].append(i) }
            }
        }
        var services: [Service] = []
        for (members, indexes) in touched.sorted(by: { $0.key.joined() < $1.key.joined() }) {
            var apps: [MarathonApp] = []
            for id in members {
                guard let app = model.apps[id] else { return .needsFullPass(.unknownApp(id)) }
                apps.append(app)
            }
            let hosts = DesiredStateBuilder.hostsToResolve(apps)
            let resolved = hosts.isEmpty ? [:] : await resolver.resolve(hosts)
            switch FastPath.rebuild(apps, current: indexes.map { desired.services[$0] }, routing: settings.pass.routing,
                                    health: model.health, resolvedHosts: resolved) {
            case .success(let rebuilt): services += rebuilt
            case .failure(let reason): return .needsFullPass(reason)
            }
        }
        guard !services.isEmpty else { return .done(commands: 0) }
        let live: LiveView
        do { live = try await applier.runtime.liveView(backends: services.map(\.backend)) } catch {
            return .needsFullPass(.cannotReadHAProxy("\(error)"))
        }
        switch FastPath.plan(services, live: live, expected: identity, ledger: ledger, now: time.now(), reloadAlways: settings.pass.reloadAlways) {
        case .fullPass(let reason):
            return .needsFullPass(reason)
        case .apply(let plan):
            for s in services {
                if let i = servicesByApp[s.deploymentMembers.first ?? s.appId]?.first(where: { desired.services[$0].backend == s.backend }) {
                    desired.services[i] = s
                }
            }
            if case .rejected(let c, let reply) = await applier.send(plan.commands) {
                return .needsFullPass(.runtimeCommandRejected(command: c.text, reply: reply))
            }
            ledger.adopt(plan, at: time.now(), replacingAll: false)
            metrics.backends(plan, live: live.servers, replaceAll: false)
            if !plan.commands.isEmpty { fileDirty = true }
            return .done(commands: plan.commands.count)
        }
    }

    // MARK: - Files and HAProxy's identity

    /// When HAProxy's socket stopped answering, and when that was last logged.
    private var unreachableSince: Double?
    private var unreachableLogged = -Double.infinity
    /// How often "still not answering" is logged while HAProxy stays unreachable.
    static let unreachableLogInterval = 30.0

    /// Logs the first failure at once, then every `unreachableLogInterval` seconds: an operator
    /// sees that HAProxy is gone, and the log is not flooded while it stays gone.
    private func noteUnreachable(_ error: any Error) {
        let now = time.now()
        if unreachableSince == nil {
            unreachableSince = now
            unreachableLogged = now
            logger.warning("HAProxy's runtime socket does not answer; HAProxy keeps its state, changes wait",
                           [("socket", applier.runtime.path), ("reason", "\(error)"), ("hint", "is HAProxy running, and is --haproxy-socket its stats socket?")])
        } else if now - unreachableLogged >= Self.unreachableLogInterval {
            unreachableLogged = now
            logger.warning("HAProxy's runtime socket still does not answer", [("socket", applier.runtime.path), ("for_s", (now - unreachableSince!).fixed(0)),
                                                                            ("reason", "\(error)")])
        }
    }

    /// Writes the config when runtime changes made it stale, so a reload or restart keeps every
    /// task. Skipped while a reload is pending (the structure changed): the full pass writes it.
    public func rewriteConfigIfDirty() async {
        guard fileDirty else { return }
        do {
            let config = try planner.render(desired, ledger: ledger)
            guard config.structureHash == identity?.structureHash else { return }
            if case .failure = applier.writeConfig(config.text) { return }
            fileDirty = false
        } catch {
            logger.error("config file not updated; will retry", [("reason", "\(error)")])
        }
    }

    /// Whether the HAProxy behind the socket is still the one last applied to: a reason when it
    /// was restarted, reloaded by someone else, runs another config, or answers again.
    public func haproxyChanged() async -> String? {
        let answer: HAProxyIdentity?
        do {
            answer = try await applier.runtime.identity()
            if let since = unreachableSince {
                logger.info("HAProxy's runtime socket answers again", [("after_s", (time.now() - since).fixed(1))])
                unreachableSince = nil
            }
        } catch {
            answer = nil
            noteUnreachable(error)
        }
        metrics.haproxy(reachable: answer != nil)
        // Without a snapshot there is nothing to re-apply (the first pass reads HAProxy anyway).
        guard let now = answer, model.hasSnapshot, now != identity else { return nil }
        guard let before = identity else { return "HAProxy answers on its runtime socket (pid \(now.pid))" }
        return "HAProxy changed behind our back (pid \(before.pid) → \(now.pid), structure \(now.structureHash ?? "not ours"))"
    }
}
