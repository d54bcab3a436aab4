/// What the planner needs that does not come from Marathon or HAProxy.
public struct PassSettings: Sendable, Equatable {
    public var routing: RoutingOptions
    public var render: RenderOptions
    public var templates: TemplateSet
    /// Benchmark baseline: every slot change reloads, as reload-based controllers do.
    public var reloadAlways: Bool

    public init(routing: RoutingOptions, render: RenderOptions, templates: TemplateSet, reloadAlways: Bool = false) {
        self.routing = routing
        self.render = render
        self.templates = templates
        self.reloadAlways = reloadAlways
    }
}

/// One full pass's inputs, gathered by the I/O edge beforehand so planning stays pure.
public struct PassInput: Sendable {
    /// Marathon's apps, sorted by id.
    public var apps: [MarathonApp]
    public var health: [String: Bool]
    public var resolvedHosts: [String: IPAddress]
    /// HAProxy as read back; nil when its runtime socket did not answer (`socketProblem` says why).
    public var live: LiveView?
    public var socketProblem: String?
    public var ledger: SlotLedger
    public var now: Double

    public init(apps: [MarathonApp], health: [String: Bool] = [:], resolvedHosts: [String: IPAddress] = [:],
                live: LiveView?, socketProblem: String? = nil, ledger: SlotLedger = SlotLedger(), now: Double = 0) {
        self.apps = apps
        self.health = health
        self.resolvedHosts = resolvedHosts
        self.live = live
        self.socketProblem = socketProblem
        self.ledger = ledger
        self.now = now
    }
}

/// What a full pass should do: the runtime commands and map edits, the config to write, and
/// whether (and why) HAProxy must reload. A value: `plan`, `render` and `status` show it, the
/// applier performs it.
public struct PassPlan: Sendable {
    public var desired: DesiredState
    public var slots: ReconcilePlan
    public var config: RenderedConfig
    /// Vhost maps to replace at runtime (when no reload carries them).
    public var mapEdits: [MapEdit]
    /// Empty: everything goes through the runtime API.
    public var reload: [ReloadReason]
    /// Tasks this pass serves whose health was unknown: remembered as healthy, so the fast path
    /// keeps serving them while their results are missing.
    public var learnedHealth: [String: Bool]
    /// Where planning spent its time (when a clock was given).
    public var timings = PassTimings()

    public var commands: [RuntimeCommand] { slots.commands }
    public var needsReload: Bool { !reload.isEmpty }

    /// The map files' texts (map routing), by path.
    public var mapFiles: [String: String] { config.maps.mapValues(MapDiff.fileText) }
}

/// A render error: the config cannot be produced at all (a global template, an option).
public struct PassPlanError: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String
    public var description: String { "cannot render the config: \(reason)" }
}

/// Plans full passes: Marathon's apps + HAProxy's live state + the slot ledger → `PassPlan`.
/// Keeps between passes only what makes the next pass cheaper or decides it: the last
/// desired-state build (an idle resync reuses it), the incremental renderer, and the services
/// HAProxy refused (left out until their app changes).
public struct PassPlanner: Sendable {
    public let settings: PassSettings
    private var renderer: IncrementalRenderer
    private var lastBuild: (apps: [MarathonApp], context: BuildContext, desired: DesiredState)?
    /// Services left out because HAProxy refused their config, by `rejectionKey`, with why.
    public private(set) var rejected: [String: String] = [:]
    /// The labels each app last built with, for an app whose new labels are invalid.
    private var lastGoodLabels: [String: [String: String]] = [:]

    public init(settings: PassSettings) {
        self.settings = settings
        renderer = IncrementalRenderer(templates: settings.templates, options: settings.render)
    }

    /// `clock` (seconds), when given, times the phases into `PassPlan.timings`. `leavingOut` names
    /// backends this pass leaves out, with why (e.g. a port another process holds: decided anew
    /// by every pass, not remembered).
    public mutating func plan(_ input: PassInput, leavingOut: [ProxyName: String] = [:],
                              clock: (() -> Double)? = nil) throws -> PassPlan {
        var timings = PassTimings()
        var lap = clock?() ?? 0
        func phase(_ keyPath: WritableKeyPath<PassTimings, Double>) {
            guard let clock else { return }
            let now = clock()
            timings[keyPath: keyPath] = now - lap
            lap = now
        }
        let context = BuildContext(resolvedHosts: input.resolvedHosts, lastKnownHealth: input.health,
                                   incumbentBackends: Set(input.live?.servers.backendOrder ?? []),
                                   liveServing: input.live?.servingEndpoints ?? [], lastGoodLabels: lastGoodLabels)
        let built: DesiredState
        if let last = lastBuild, last.context == context, last.apps == input.apps {
            built = last.desired
        } else {
            lastBuild = nil
            built = DesiredStateBuilder.build(apps: input.apps, options: settings.routing, context: context)
        }
        // Keep the inputs just compared, not the older equal copies: the older model's storage is
        // freed instead of living on beside the current one.
        lastBuild = (input.apps, context, built)
        rememberGoodLabels(input.apps, built.diagnostics)

        var learned: [String: Bool] = [:]
        for s in built.services {
            for server in s.servers where server.routing == .serve && input.health[server.taskId] == nil {
                learned[server.taskId] = true
            }
        }
        var desired = withoutRejected(built)
        if !leavingOut.isEmpty {
            desired.services.removeAll { s in
                guard let why = leavingOut[s.backend] else { return false }
                desired.diagnostics.append(Diagnostic(.error, .conflict, appId: s.appId, "service port \(s.servicePort) left out: \(why)"))
                return true
            }
        }
        phase(\.build)
        var slots = SlotPlanner.plan(desired: desired, live: input.live?.servers ?? LiveState(), history: input.ledger.history, now: input.now)
        slots.shareSlots(with: input.ledger.assignment)
        phase(\.plan)
        let config: RenderedConfig
        do {
            config = try renderer.render(desired: desired, plan: slots)
        } catch {
            throw PassPlanError(reason: "\(error)")
        }
        let growth = Self.dynamicGrowth(slots, desired: desired, config: config)
        if !growth.commands.isEmpty {
            slots.commands = Self.ordered(slots.commands + growth.commands)
        }
        var reload = Self.reloadReasons(slots: slots, input: input, config: config, cannotGrow: growth.cannotGrow)
        if settings.reloadAlways, reload.isEmpty, !slots.commands.isEmpty {
            reload = [.reloadAlways(changes: slots.commands.count)]
        }
        let edits = reload.isEmpty ? ((try? MapDiff.edits(desired: config.maps, live: input.live?.maps ?? [:])) ?? []) : []
        phase(\.render)
        return PassPlan(desired: desired, slots: slots, config: config, mapEdits: edits, reload: reload, learnedHealth: learned,
                        timings: timings)
    }

    /// Why HAProxy cannot take this plan through the runtime API alone (empty: it can).
    /// Slot counts are not in the structure hash: a backend that outgrew its slots grows with
    /// dynamic servers, and reloads only when HAProxy cannot add them (`cannotGrow`).
    static func reloadReasons(slots: ReconcilePlan, input: PassInput, config: RenderedConfig,
                              cannotGrow: [ReloadReason] = []) -> [ReloadReason] {
        guard let live = input.live else { return [.socketUnusable(input.socketProblem ?? "no answer")] }
        guard let liveHash = live.identity.structureHash else { return [.foreignConfig] }
        var reasons = cannotGrow
        if liveHash != config.structureHash {
            let wanted = Set(slots.backends.map(\.backend))
            for b in slots.backends where b.liveSlotCount == nil { reasons.append(.newBackend(b.backend)) }
            for name in live.servers.backendOrder where !wanted.contains(name) {
                reasons.append(.backendRemoved(name))
            }
            if reasons.isEmpty { reasons.append(.frontendsChanged) }
        }
        return reasons
    }

    /// Runtime commands that add the slots live backends outgrew (HAProxy 2.6 dynamic servers:
    /// `add server` with the options of the slot's rendered line, `enable health` when it checks,
    /// then the slot's state), and the backends that cannot grow so (a sticky cookie, a static
    /// balance algorithm, a line the runtime API cannot take): those reload.
    static func dynamicGrowth(_ slots: ReconcilePlan, desired: DesiredState, config: RenderedConfig)
        -> (commands: [RuntimeCommand], cannotGrow: [ReloadReason]) {
        var commands: [RuntimeCommand] = []
        var cannot: [ReloadReason] = []
        let services = Dictionary(desired.services.map { ($0.backend, $0) }) { a, _ in a }
        for b in slots.backends where !b.addedSlots.isEmpty {
            let reason = ReloadReason.slotsGrew(b.backend, from: b.liveSlotCount ?? 0, to: b.slotCount)
            guard let service = services[b.backend], Self.canGrowAtRuntime(service),
                  let lines = config.serverLines(backend: b.backend, slots: b.addedSlots) else {
                cannot.append(reason)
                continue
            }
            var adds: [RuntimeCommand] = []
            for n in b.addedSlots {
                guard let line = lines[n], let options = try? ServerOptions(serverLine: line) else {
                    adds = []
                    break
                }
                let name = SlotPlanner.slotName(n)
                let task = b.slots[n - 1]
                adds.append(.addServer(backend: b.backend, server: name, endpoint: task?.endpoint ?? SlotPlanner.placeholder, options: options))
                if options.checks { adds.append(.enableHealth(backend: b.backend, server: name)) }
                if let task { adds.append(.setState(backend: b.backend, server: name, state: task.routing == .serve ? .ready : .drain)) }
            }
            if adds.isEmpty { cannot.append(reason) } else { commands += adds }
        }
        return (commands, cannot)
    }

    /// HAProxy refuses dynamic servers in backends with a static algorithm and with `cookie`.
    static func canGrowAtRuntime(_ s: Service) -> Bool {
        !s.labels.sticky && [.roundrobin, .leastconn, .first, .random].contains(s.labels.balance)
    }

    /// Commands in the order that keeps traffic off dead tasks longest: frees, new servers,
    /// new addresses, then the state changes that put slots into service.
    static func ordered(_ commands: [RuntimeCommand]) -> [RuntimeCommand] {
        func rank(_ c: RuntimeCommand) -> Int {
            switch c {
            case .setState(_, _, .maint): 0
            case .addServer, .enableHealth: 1
            case .setAddress: 2
            default: 3
            }
        }
        return commands.enumerated().sorted { (rank($0.element), $0.offset) < (rank($1.element), $1.offset) }.map(\.element)
    }

    /// Apps that built without an error of their own: their labels are the good ones now.
    private mutating func rememberGoodLabels(_ apps: [MarathonApp], _ diagnostics: [Diagnostic]) {
        var failed = Set<String>()
        for d in diagnostics where d.level == .error {
            if let id = d.appId, [.badLabel, .badApp, .staleLabels].contains(d.kind) { failed.insert(id) }
        }
        var good = [String: [String: String]](minimumCapacity: apps.count)
        for app in apps {
            if failed.contains(app.id) {
                if let kept = lastGoodLabels[app.id] { good[app.id] = kept }
            } else {
                good[app.id] = app.labels
            }
        }
        lastGoodLabels = good
    }

    // MARK: - Services HAProxy refused

    /// The services of `plan` that `haproxy -c`'s messages point at (their sections, or rules
    /// naming them). Empty when the messages point at nothing that could be left out alone.
    public static func offenders(of check: ConfigCheckOutput, in plan: PassPlan) -> [Service] {
        let names = Set(plan.desired.services.map(\.backend))
        let hit = plan.config.services(atLines: check.lines, proxies: check.proxies, among: names)
        guard hit.count < names.count else { return [] }
        return plan.desired.services.filter { hit.contains($0.backend) }
    }

    /// Leaves `services` out of the next plans until their app changes (a new
    /// `versionInfo.lastConfigChangeAt`).
    public mutating func reject(_ services: [Service], because message: String) {
        for s in services { rejected[Self.rejectionKey(s)] = message }
    }

    public static func rejectionKey(_ s: Service) -> String { "\(s.appId)|\(s.servicePort)|\(s.configChangedAt ?? "")" }

    private mutating func withoutRejected(_ desired: DesiredState) -> DesiredState {
        guard !rejected.isEmpty else { return desired }
        var out = desired
        let current = Set(desired.services.map(Self.rejectionKey))
        rejected = rejected.filter { current.contains($0.key) }
        out.services.removeAll { s in
            guard let message = rejected[Self.rejectionKey(s)] else { return false }
            out.diagnostics.append(Diagnostic(.error, .badApp, appId: s.appId,
                                              "service port \(s.servicePort) left out: \(message); it is tried again when the app changes"))
            return true
        }
        return out
    }

    // MARK: - After a reload

    /// The commands that bring the worker a reload started to the plan (normally none: the
    /// config carried every slot). Slots equal to the plan's keep the plan's arrays.
    public static func fixUp(_ plan: PassPlan, live: LiveState, ledger: SlotLedger, now: Double) -> ReconcilePlan {
        var fixed = SlotPlanner.plan(desired: plan.desired, live: live, history: ledger.history, now: now)
        fixed.shareSlots(with: Dictionary(plan.slots.backends.map { ($0.backend, $0) }) { a, _ in a })
        return fixed
    }

    /// The config for the assignment in force (a rewrite after runtime changes), if it can be
    /// rendered.
    public mutating func render(_ desired: DesiredState, ledger: SlotLedger) throws -> RenderedConfig {
        do {
            return try renderer.render(desired: desired, plan: ledger.plan(for: desired.services.map(\.backend)))
        } catch {
            throw PassPlanError(reason: "\(error)")
        }
    }
}

/// Wall-clock seconds per phase of a full pass (benchmarks, logs).
public struct PassTimings: Sendable, Equatable {
    /// `show info`, `show servers state` (every backend) and `show map`, host resolution.
    public var readLive = 0.0
    /// The desired state.
    public var build = 0.0
    /// Slot planning.
    public var plan = 0.0
    public var render = 0.0
    /// `haproxy -c` on the candidate (reloads only).
    public var validate = 0.0
    /// Installing the candidate, reloading, reading the new worker back (reloads only).
    public var reload = 0.0
    /// Runtime commands and map edits, the fix-up after a reload included.
    public var apply = 0.0
    /// Writing the map and config files (no reload).
    public var writeFile = 0.0
    public var total = 0.0
    public init() {}
}
