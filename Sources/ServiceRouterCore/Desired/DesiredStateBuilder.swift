/// Options that decide which apps and tasks are routed.
public struct RoutingOptions: Sendable, Equatable {
    /// `--group` values; `*` matches every app, including apps without a group label.
    public var groups: [String]
    /// `--health-check`: only tasks whose Marathon health results are all alive get traffic.
    public var healthCheck: Bool
    /// `--strict-mode`: a service port is routed only with `HAPROXY_{n}_ENABLED=true`.
    public var strictMode: Bool
    /// `--min-slots`: the smallest slot pool of a backend.
    public var minSlots: Int
    /// Ports the shared frontends and the stats listener bind; a service port may not take them.
    public var reservedPorts: Set<Int>
    /// `--enable-label-templates` (as `RenderOptions.labelTemplates`): without it, per-app
    /// template labels are reported as ignored (`LabelWarnings`).
    public var labelTemplates = false
    /// `--min-serv-port-ip-per-task`..`--max-serv-port-ip-per-task`: service ports for IP-per-task
    /// apps Marathon gives none (`ServicePortAssigner`); nil: such apps have no service port.
    public var ipPerTaskServicePorts: ClosedRange<Int>?

    public init(groups: [String] = ["*"], healthCheck: Bool = false, strictMode: Bool = false,
                minSlots: Int = 8, reservedPorts: Set<Int> = [], ipPerTaskServicePorts: ClosedRange<Int>? = nil) {
        self.groups = groups
        self.healthCheck = healthCheck
        self.strictMode = strictMode
        self.minSlots = minSlots
        self.reservedPorts = reservedPorts
        self.ipPerTaskServicePorts = ipPerTaskServicePorts
    }
}

/// What the builder needs besides Marathon's apps; gathered by the I/O edge beforehand so the
/// builder stays pure.
public struct BuildContext: Sendable, Equatable {
    /// Task host name → IP (numeric hosts need no entry). Missing: the task is skipped.
    public var resolvedHosts: [String: IPAddress]
    /// Task id → last known health, for tasks whose health results are missing (Marathon leader
    /// failover empties `healthCheckResults` for a while: that must not empty a backend).
    public var lastKnownHealth: [String: Bool]
    /// Backends HAProxy serves now: in a service-port conflict the incumbent keeps the port.
    public var incumbentBackends: Set<ProxyName>
    /// Addresses HAProxy has in service now. A task without health results and without a
    /// remembered health that HAProxy already serves keeps serving: after a controller restart
    /// during a Marathon failover, "unknown" must not empty a backend either.
    public var liveServing: Set<Endpoint>
    /// App id → the labels it last built with. An app whose new labels are invalid keeps these
    /// (a typo in a live app's label must not unbind its port) until its labels are fixed.
    public var lastGoodLabels: [String: [String: String]]

    public init(resolvedHosts: [String: IPAddress] = [:], lastKnownHealth: [String: Bool] = [:],
                incumbentBackends: Set<ProxyName> = [], liveServing: Set<Endpoint> = [],
                lastGoodLabels: [String: [String: String]] = [:]) {
        self.resolvedHosts = resolvedHosts
        self.lastKnownHealth = lastKnownHealth
        self.incumbentBackends = incumbentBackends
        self.liveServing = liveServing
        self.lastGoodLabels = lastGoodLabels
    }
}

public enum DesiredStateBuilder {
    /// Host names that must be resolved before `build` (task hosts of host-networked apps).
    public static func hostsToResolve(_ apps: [MarathonApp]) -> Set<String> {
        var out = Set<String>()
        for app in apps where app.networking == .host {
            for t in app.tasks where !IPAddress.isNumeric(t.host) && isHostName(t.host) { out.insert(t.host) }
        }
        return out
    }

    /// Whether `host` can be a host name at all: dot-separated labels of 1-63 letters, digits,
    /// `-` and `_` (not starting with `-`), 253 characters at most, one trailing dot allowed.
    /// Anything else is never looked up: it would only turn Marathon's text into DNS queries,
    /// each of which can hold the pass until it times out.
    public static func isHostName(_ host: String) -> Bool {
        var name = Substring(host)
        if name.hasSuffix(".") { name = name.dropLast() }
        guard (1...253).contains(name.utf8.count) else { return false }
        return name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            (1...63).contains(label.utf8.count) && label.first != "-"
                && label.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D || $0 == 0x5F }
        }
    }

    /// Health observed in this payload: task id → all results alive. Tasks without results are
    /// absent (unknown), never "unhealthy".
    public static func healthObservations(_ apps: [MarathonApp]) -> [String: Bool] {
        var out: [String: Bool] = [:]
        for app in apps {
            for t in app.tasks {
                if let alive = t.healthAlive { out[t.id] = alive.allSatisfy { $0 } }
            }
        }
        return out
    }

    public static func build(apps: [MarathonApp], options: RoutingOptions, context: BuildContext = BuildContext()) -> DesiredState {
        var diagnostics: [Diagnostic] = []
        var candidates: [Service] = []
        var seenIds = Set<String>()
        var unique: [MarathonApp] = []
        for app in apps.sorted(by: { $0.id < $1.id }) {
            guard seenIds.insert(app.id).inserted else {
                diagnostics.append(Diagnostic(.warning, .badApp, appId: app.id, "duplicate app id in Marathon's answer; only the first is used"))
                continue
            }
            diagnostics += LabelWarnings.diagnostics(for: app, options: options)
            unique.append(app)
        }
        // The colours of a blue/green deploy (HAPROXY_DEPLOYMENT_GROUP) are one service, known by
        // the group's id and labelled by the oldest colour.
        let (plain, groups) = DeploymentGroups.partition(unique, lastKnownHealth: context.lastKnownHealth, diagnostics: &diagnostics)
        var units: [(app: MarathonApp, group: DeploymentGroups.Group?)] = plain.map { ($0, nil) }
        for g in groups {
            var owner = g.old
            owner.id = g.id
            units.append((owner, g))
        }
        units.sort { $0.app.id < $1.app.id }
        var assigner = options.ipPerTaskServicePorts.map(ServicePortAssigner.init(range:))

        for (given, group) in units {
            var app = given
            if assigner != nil {
                app = assigner!.assign(app)
                if ServicePortAssigner.needsPorts(given), app.servicePorts.contains(0), let range = options.ipPerTaskServicePorts {
                    diagnostics.append(Diagnostic(.warning, .badApp, appId: app.id, "every port of --min-serv-port-ip-per-task..--max-serv-port-ip-per-task (\(range.lowerBound)-\(range.upperBound)) is given out; widen the range"))
                }
            }
            do {
                candidates += try services(of: app, group: group, options: options, context: context, diagnostics: &diagnostics)
            } catch let e as ValidationError {
                if let good = context.lastGoodLabels[app.id], good != app.labels {
                    var previous = app
                    previous.labels = good
                    var quiet: [Diagnostic] = []
                    if let kept = try? services(of: previous, group: group, options: options, context: context, diagnostics: &quiet) {
                        candidates += kept
                        diagnostics += quiet
                        diagnostics.append(Diagnostic(.error, .staleLabels, appId: app.id,
                                                      "new labels invalid (\(e)): the app keeps its last good labels until they are fixed"))
                        continue
                    }
                }
                diagnostics.append(Diagnostic(.error, .badLabel, appId: app.id, "app skipped: invalid \(e)"))
            } catch {
                diagnostics.append(Diagnostic(.error, .badApp, appId: app.id, "app skipped: \(error)"))
            }
        }
        if candidates.isEmpty, !apps.isEmpty, !options.groups.contains("*") {
            diagnostics.append(groupMismatch(apps, groups: options.groups))
        }
        let resolved = resolveConflicts(candidates, options: options, context: context, diagnostics: &diagnostics)
        return DesiredState(services: resolved.sorted { $0.backend < $1.backend }, diagnostics: diagnostics)
    }

    /// Marathon has apps, none in the groups asked for: most likely a `--group` typo, which would
    /// otherwise empty HAProxy without a word.
    static func groupMismatch(_ apps: [MarathonApp], groups: [String]) -> Diagnostic {
        var seen = Set<String>()
        for app in apps {
            for (key, value) in app.labels where key == "HAPROXY_GROUP" || (key.hasPrefix("HAPROXY_") && key.hasSuffix("_GROUP")) {
                for g in value.split(separator: ",") { seen.insert(g.trimmingWhitespace()) }
            }
        }
        seen.remove("")
        let listed = seen.sorted().prefix(10).map { ValidationError.quoted($0) }.joined(separator: ", ")
        return Diagnostic(.warning, .notInGroup, appId: nil,
                          "none of Marathon's \(apps.count) app(s) is in --group \(groups.map { ValidationError.quoted($0) }.joined(separator: ", ")): nothing is routed; "
                          + (seen.isEmpty ? "no app has a HAPROXY_GROUP label" : "groups the apps have: \(listed)\(seen.count > 10 ? ", …" : "")"))
    }

    /// Name of the backend (and frontend) of an app's service port, as marathon-lb names it.
    public static func backendName(appId: String, servicePort: Int) throws -> ProxyName {
        var id = Substring(appId)
        if id.hasPrefix("/") { id = id.dropFirst() }
        let name = String(id.map { $0 == "/" ? "_" : $0 }) + "_\(servicePort)"
        if name.utf8.count > ProxyName.maxLength {
            throw ValidationError(field: "id", value: appId,
                                  reason: "app id too long to name an HAProxy backend (\(id.utf8.count) characters; with the service port the name may have at most \(ProxyName.maxLength))")
        }
        do {
            return try ProxyName(name)
        } catch {
            throw ValidationError(field: "id", value: appId, reason: "app id cannot name an HAProxy backend (letters, digits, '.', '-', '_' and '/' only)")
        }
    }

    /// The services of one app, or of a deployment group (`app` is then its oldest colour under
    /// the group's id, and the servers come from every colour).
    static func services(of app: MarathonApp, group: DeploymentGroups.Group? = nil, options: RoutingOptions, context: BuildContext,
                         diagnostics: inout [Diagnostic]) throws -> [Service] {
        guard app.id.hasPrefix("/") || !app.id.isEmpty else {
            throw ValidationError(field: "id", value: app.id, reason: "empty app id")
        }
        // Parse every port's labels first: one invalid value disables the whole app.
        let labelsByIndex = try app.servicePorts.indices.map { try LabelParser.parse(labels: app.labels, index: $0) }
        var out: [Service] = []
        for (index, labels) in labelsByIndex.enumerated() {
            guard inGroups(labels.groups, options.groups) else { continue }
            if let enabled = labels.enabled {
                if !enabled { continue }
            } else if options.strictMode {
                continue
            }
            let portValue = labels.port?.value ?? app.servicePorts[index]
            guard let servicePort = try? Port(portValue) else {
                diagnostics.append(Diagnostic(.warning, .badApp, appId: app.id, "port index \(index) has no service port (\(portValue)); set HAPROXY_\(index)_PORT or let Marathon assign one"))
                continue
            }
            let backend = try backendName(appId: app.id, servicePort: servicePort.value)
            var check = healthCheck(for: app, index: index)
            if let other = labels.healthCheckPortIndex, other >= app.servicePorts.count {
                throw ValidationError(field: LabelParser.key("BACKEND_HEALTHCHECK_PORT_INDEX", index), value: String(other),
                                      reason: "the app has \(app.servicePorts.count) port(s)")
            }
            // marathon-lb's order: the MODE label, else an HTTP health check means http, else a
            // vhost means http, else tcp; but a check borrowed from another port index
            // (HAPROXY_{n}_BACKEND_HEALTHCHECK_PORT_INDEX) that speaks HTTP forces http.
            var mode: ServiceLabels.Mode = labels.mode ?? (check?.proto == .http || !labels.vhosts.isEmpty ? .http : .tcp)
            if check == nil, let other = labels.healthCheckPortIndex {
                check = healthCheck(for: app, index: other)
                if let c = check, c.proto.isHTTP || c.proto == .https || c.proto == .mesosHTTPS { mode = .http }
            }
            var serviceLabels = labels
            if mode == .tcp, !labels.vhosts.isEmpty {
                diagnostics.append(Diagnostic(.warning, .badLabel, appId: app.id, "HAPROXY_\(index)_VHOST ignored: virtual hosts need mode http, this port is tcp"))
                serviceLabels.vhosts = []
                serviceLabels.path = nil
            }
            let spec = try check.map { try healthSpec($0, mode: mode, appId: app.id) } ?? nil
            let overCapacity = max(0, app.maximumOverCapacity.isFinite ? app.maximumOverCapacity : 1)
            // The product is rounded up, less a tolerance for binary floating point (100 × 1.1 is
            // 110.00000000000001 and must not round up to 111), and capped before it becomes an Int
            // (a huge `instances` or `maximumOverCapacity` would trap the conversion).
            let rollingPeak = Int(min((Double(max(0, app.instances)) * (1 + overCapacity) - 1e-9).rounded(.up), 100_000))
            // Headroom on top: tasks that drain (TASK_KILLING) while their replacements start, and
            // free slots that can rest before reuse.
            // A deployment group holds both colours at full size for the whole deploy.
            let peak = max(rollingPeak, group?.peak ?? 0)
            let headroom = peak == 0 ? 0 : max(2, peak / 4)
            let taskServers: [DesiredServer]
            if let group {
                taskServers = groupServers(group, index: index, checkIndex: labels.healthCheckPortIndex, options: options,
                                           context: context, diagnostics: &diagnostics)
            } else {
                taskServers = servers(of: app, index: index, checkIndex: labels.healthCheckPortIndex, options: options,
                                      context: context, diagnostics: &diagnostics)
            }
            out.append(Service(
                appId: app.id, portIndex: index, servicePort: servicePort, backend: backend, mode: mode,
                labels: serviceLabels, healthCheck: spec,
                minimumSlots: max(options.minSlots, min(peak + headroom, 100_000)),
                servers: taskServers,
                appLabels: app.labels, configChangedAt: app.configChangedAt,
                deploymentMembers: group?.members.map(\.id) ?? []))
        }
        return out
    }

    static func inGroups(_ appGroups: [String], _ wanted: [String]) -> Bool {
        if wanted.contains("*") { return true }
        return appGroups.contains { wanted.contains($0) }
    }

    /// marathon-lb's choice: the first check that names an explicit `port`, or whose `portIndex`
    /// is this port. COMMAND checks have nothing HAProxy could check and are ignored.
    static func healthCheck(for app: MarathonApp, index: Int) -> MarathonHealthCheck? {
        app.healthChecks.first {
            $0.proto != .command && $0.proto != .other && ($0.port != nil || $0.portIndex == index)
        }
    }

    static func healthSpec(_ c: MarathonHealthCheck, mode: ServiceLabels.Mode, appId: String) throws -> HealthCheckSpec? {
        func positive(_ v: Int, _ name: String) throws -> Int {
            guard (1...86_400).contains(v) else {
                throw ValidationError(field: "healthChecks.\(name)", value: String(v), reason: "must be 1-86400")
            }
            return v
        }
        let kind: HealthCheckSpec.Kind
        if mode == .tcp || c.proto.isTCP {
            kind = .tcp
        } else {
            kind = .http(path: try URLPath(c.path ?? "/", field: "healthChecks.path").text)
        }
        return HealthCheckSpec(
            kind: kind,
            intervalSeconds: try positive(c.intervalSeconds, "intervalSeconds"),
            timeoutSeconds: try positive(c.timeoutSeconds, "timeoutSeconds"),
            fall: try positive(min(c.maxConsecutiveFailures, Int.max - 1) + 1, "maxConsecutiveFailures"),
            port: try c.port.map { try Port($0, field: "healthChecks.port") },
            source: c)
    }

    static func servers(of app: MarathonApp, index: Int, checkIndex: Int? = nil, options: RoutingOptions,
                        context: BuildContext, diagnostics: inout [Diagnostic]) -> [DesiredServer] {
        let checkHealth = options.healthCheck && !app.healthChecks.isEmpty
        var out: [DesiredServer] = []
        var seen = Set<Endpoint>()
        for task in app.tasks {
            // Marathon before 1.0 did not report `state`: such a task is running.
            let routing = task.state?.routing ?? .serve
            if routing == .none { continue }
            guard let endpoint = endpoint(of: task, app: app, index: index, context: context, diagnostics: &diagnostics) else { continue }
            if routing == .serve, checkHealth {
                let healthy = task.healthAlive.map { $0.allSatisfy { $0 } } ?? context.lastKnownHealth[task.id]
                    ?? context.liveServing.contains(endpoint)
                if !healthy { continue }
            }
            let desired: DesiredServer.Routing = routing == .serve ? .serve : .drain
            // Two tasks on one address: the first keeps it (a slot serves one address).
            guard seen.insert(endpoint).inserted else {
                diagnostics.append(Diagnostic(.warning, .skippedTask, appId: app.id, "task \(task.id) has the same address \(endpoint) as another task; skipped"))
                continue
            }
            var checkPort: Port?
            if let checkIndex {
                var quiet: [Diagnostic] = []
                checkPort = Self.endpoint(of: task, app: app, index: checkIndex, context: context, diagnostics: &quiet)?.port
            }
            out.append(DesiredServer(taskId: task.id, endpoint: endpoint, routing: desired, checkPort: checkPort))
        }
        return out.sorted { $0.taskId < $1.taskId }
    }

    /// Every colour's tasks at port index `index`, each reached as its own app says; the older
    /// colours' tasks the group drains are `drain`.
    static func groupServers(_ group: DeploymentGroups.Group, index: Int, checkIndex: Int?, options: RoutingOptions,
                             context: BuildContext, diagnostics: inout [Diagnostic]) -> [DesiredServer] {
        var out: [DesiredServer] = []
        var seen = Set<Endpoint>()
        for member in group.members {
            for var server in servers(of: member, index: index, checkIndex: checkIndex, options: options, context: context,
                                      diagnostics: &diagnostics) {
                guard seen.insert(server.endpoint).inserted else {
                    diagnostics.append(Diagnostic(.warning, .skippedTask, appId: member.id, "task \(server.taskId) has the same address \(server.endpoint) as a task of another colour; skipped"))
                    continue
                }
                if group.draining.contains(server.taskId) { server.routing = .drain }
                out.append(server)
            }
        }
        return out.sorted { $0.taskId < $1.taskId }
    }

    static func endpoint(of task: MarathonTask, app: MarathonApp, index: Int, context: BuildContext,
                         diagnostics: inout [Diagnostic]) -> Endpoint? {
        let ip: IPAddress
        let portNumber: Int?
        switch app.networking {
        case .ipPerTask:
            guard let raw = task.ipAddresses.first(where: IPAddress.isNumeric), let addr = try? IPAddress(raw) else {
                diagnostics.append(Diagnostic(.warning, .skippedTask, appId: app.id, "task \(task.id) has no usable IP address (IP-per-task); skipped"))
                return nil
            }
            ip = addr
            let ports = app.containerPorts.isEmpty ? task.ports : app.containerPorts
            portNumber = index < ports.count ? ports[index] : nil
        case .host:
            if task.host.isEmpty {
                diagnostics.append(Diagnostic(.warning, .skippedTask, appId: app.id, "task \(task.id) has no host; skipped"))
                return nil
            }
            if let numeric = try? IPAddress(task.host) {
                ip = numeric
            } else if let resolved = context.resolvedHosts[task.host] {
                ip = resolved
            } else if !isHostName(task.host) {
                diagnostics.append(Diagnostic(.warning, .unresolvable, appId: app.id, "task \(task.id): host \(ValidationError.quoted(task.host)) is not a valid host name; skipped"))
                return nil
            } else {
                diagnostics.append(Diagnostic(.warning, .unresolvable, appId: app.id, "task \(task.id): host \(ValidationError.quoted(task.host)) does not resolve to an IP address; skipped"))
                return nil
            }
            portNumber = index < task.ports.count ? task.ports[index] : nil
        }
        guard let portNumber, let port = try? Port(portNumber) else {
            diagnostics.append(Diagnostic(.warning, .skippedTask, appId: app.id, "task \(task.id) has no valid port for port index \(index); skipped"))
            return nil
        }
        return Endpoint(ip: ip, port: port)
    }

    /// Deterministic conflict rules (documented in docs/architecture.md):
    /// - a service port used by the shared frontends is refused;
    /// - two apps on one service port: the backend HAProxy already serves keeps it, else the app
    ///   with the oldest `versionInfo.lastConfigChangeAt`, else the smaller app id;
    /// - two services claiming the same vhost + path: the higher backend weight keeps it, then the
    ///   same order as above; the other loses only that vhost.
    static func resolveConflicts(_ candidates: [Service], options: RoutingOptions, context: BuildContext,
                                 diagnostics: inout [Diagnostic]) -> [Service] {
        func older(_ a: Service, _ b: Service) -> Bool {
            let ai = context.incumbentBackends.contains(a.backend), bi = context.incumbentBackends.contains(b.backend)
            if ai != bi { return ai }
            let ac = a.configChangedAt ?? "~", bc = b.configChangedAt ?? "~"
            if ac != bc { return ac < bc }
            return (a.appId, a.portIndex) < (b.appId, b.portIndex)
        }
        var byPort: [Int: Service] = [:]
        for s in candidates {
            if options.reservedPorts.contains(s.servicePort.value) {
                diagnostics.append(Diagnostic(.error, .conflict, appId: s.appId, "service port \(s.servicePort) is used by servicerouter's shared frontends; port index \(s.portIndex) skipped"))
                continue
            }
            if let other = byPort[s.servicePort.value] {
                let (winner, loser) = older(s, other) ? (s, other) : (other, s)
                byPort[s.servicePort.value] = winner
                diagnostics.append(Diagnostic(.warning, .conflict, appId: loser.appId, "service port \(s.servicePort) is also claimed by \(winner.appId), which keeps it; port index \(loser.portIndex) of \(loser.appId) skipped"))
            } else {
                byPort[s.servicePort.value] = s
            }
        }
        var services = byPort.values.sorted { $0.backend < $1.backend }

        struct RouteKey: Hashable { var host: HostName; var path: String }
        var owner: [RouteKey: Int] = [:]
        let order = services.indices.sorted { i, j in
            let a = services[i], b = services[j]
            if a.labels.backendWeight != b.labels.backendWeight { return a.labels.backendWeight > b.labels.backendWeight }
            return older(a, b)
        }
        for i in order {
            var kept: [HostName] = []
            for host in services[i].labels.vhosts {
                let key = RouteKey(host: host, path: services[i].labels.path?.text ?? "")
                if let j = owner[key] {
                    diagnostics.append(Diagnostic(.warning, .conflict, appId: services[i].appId, "vhost \(host)\(key.path) is already routed to \(services[j].appId); removed from \(services[i].backend)"))
                } else {
                    owner[key] = i
                    kept.append(host)
                }
            }
            services[i].labels.vhosts = kept
        }
        return services
    }
}
