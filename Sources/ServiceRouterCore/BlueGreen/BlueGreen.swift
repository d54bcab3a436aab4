/// The decisions of `servicerouter zdd` (marathon-lb's `zdd.py`), on values: the new colour's app
/// definition, then, step after step, what to do next from what Marathon (and, when given, each
/// load balancer's stats page) says. The command only fetches, performs and waits.
///
/// The steps, as zdd.py takes them: the new colour starts with `--initial-instances`; whenever no
/// deployment of either colour runs, the old tasks the load balancers drain (the same computation
/// as `DeploymentGroups`) are killed once drained — with `scale=true`, so the old app shrinks — and
/// the new colour grows by half (or `--linear-increase`), straight to the target once it is as big
/// as the old one; when the new colour is at the target and every old task still serving is
/// drained, the old app is deleted.
public enum BlueGreen {
    public struct DefinitionError: Error, Sendable, Equatable, CustomStringConvertible {
        public var reason: String
        public init(_ reason: String) { self.reason = reason }
        public var description: String { reason }
    }

    /// The new colour, ready to be posted to `/v2/apps`.
    public struct Prepared: Sendable, Equatable {
        public var app: JSONValue
        public var id: String
        public var colour: String
        /// The Marathon service port the new colour gets (the group's alternate port, or back).
        public var servicePort: Int
        /// `HAPROXY_0_PORT`: the port the load balancers serve the group on.
        public var frontendPort: Int
        public var targetInstances: Int
        public var instances: Int
        /// The colour it replaces; nil on the group's first deploy.
        public var replaces: String?
    }

    /// The group, alternate port and service port of an app definition (zdd.py's `validate_app`).
    public struct DefinitionInfo: Sendable, Equatable {
        public var id: String
        public var group: String
        public var altPort: Int
        public var servicePort: Int
        public var instances: Int
    }

    public static func inspect(_ definition: JSONValue) throws -> DefinitionInfo {
        guard case .object(let o) = definition else { throw DefinitionError("the app definition is not a JSON object") }
        guard let id = o["id"]?.stringValue, !id.isEmpty else { throw DefinitionError("the app definition has no \"id\"") }
        guard let labels = o["labels"]?.objectValue else {
            throw DefinitionError("the app definition has no labels: set HAPROXY_DEPLOYMENT_GROUP and HAPROXY_DEPLOYMENT_ALT_PORT")
        }
        guard let group = labels[DeploymentLabels.groupKey]?.stringValue else {
            throw DefinitionError("set the HAPROXY_DEPLOYMENT_GROUP label (the name both colours share)")
        }
        do { _ = try DeploymentLabels.parse([DeploymentLabels.groupKey: group]) } catch { throw DefinitionError("\(error)") }
        guard let altText = labels[DeploymentLabels.altPortKey]?.stringValue else {
            throw DefinitionError("set the HAPROXY_DEPLOYMENT_ALT_PORT label (the service port the other colour uses)")
        }
        guard let alt = Int(altText.trimmingSpaces), (1...65535).contains(alt) else {
            throw DefinitionError("HAPROXY_DEPLOYMENT_ALT_PORT=\(ValidationError.quoted(altText)): not a port number")
        }
        var port = firstServicePort(definition)
        if port == nil, let label = labels["HAPROXY_0_PORT"]?.stringValue, let p = Int(label.trimmingSpaces), (1...65535).contains(p) {
            port = p
        }
        guard let servicePort = port else {
            throw DefinitionError("the app definition has no service port: give its first port mapping a servicePort (or portDefinitions[0].port); the load balancers serve the group on it")
        }
        guard servicePort != alt else {
            throw DefinitionError("HAPROXY_DEPLOYMENT_ALT_PORT (\(alt)) is the app's own service port: the two colours need different ports")
        }
        let instances = o["instances"]?.intValue ?? 1
        return DefinitionInfo(id: id, group: group, altPort: alt, servicePort: servicePort, instances: max(0, instances))
    }

    /// The apps of Marathon's listing in the definition's group (its `HAPROXY_DEPLOYMENT_GROUP`
    /// label, compared as written, as zdd.py does), oldest deploy first.
    public static func deploys(of group: String, in apps: [MarathonApp]) -> [MarathonApp] {
        apps.filter { $0.labels[DeploymentLabels.groupKey] == group }.sorted { a, b in
            let x = a.labels[DeploymentLabels.startedAtKey].flatMap(DeploymentTimestamp.init)
            let y = b.labels[DeploymentLabels.startedAtKey].flatMap(DeploymentTimestamp.init)
            switch (x, y) {
            case let (x?, y?) where x != y: return x < y
            case (nil, _?): return true
            case (_?, nil): return false
            default: return a.id < b.id
            }
        }
    }

    /// zdd.py's `prepare_deploy`: the next colour of `definition` given the group's current deploy
    /// (at most one; more is a deploy in progress, see `--resume`).
    public static func prepare(_ definition: JSONValue, current: MarathonApp?, initialInstances: Int,
                               startedAt: String) throws -> Prepared {
        let info = try inspect(definition)
        var app = definition
        let colour: String, nextPort: Int, target: Int, instances: Int
        if let last = current {
            colour = last.labels[DeploymentLabels.colourKey] == "blue" ? "green" : "blue"
            // The port the current colour does not use (zdd.py read the deprecated `ports`, which
            // Marathon 1.5+ omits; the decoded service port works for every shape).
            if last.servicePorts.first == info.altPort {
                nextPort = Int(last.labels["HAPROXY_0_PORT"]?.trimmingSpaces ?? "") ?? info.servicePort
            } else {
                nextPort = info.altPort
            }
            target = max(0, last.instances)
            instances = min(max(0, initialInstances), target)
        } else {
            colour = "blue"
            nextPort = info.servicePort
            target = info.instances
            instances = info.instances
        }
        var rawId = info.id
        while rawId.hasSuffix("/") { rawId.removeLast() }
        var id = rawId + "-" + colour
        if !id.hasPrefix("/") { id = "/" + id }
        app.set("id", .string(id))
        app.set("instances", .int(instances))
        setFirstServicePort(&app, nextPort)
        var labels = app["labels"]?.objectValue ?? JSONObject()
        labels[DeploymentLabels.appIdKey] = .string(info.id)
        labels["HAPROXY_0_PORT"] = .string(String(info.servicePort))
        labels[DeploymentLabels.targetInstancesKey] = .string(String(target))
        labels[DeploymentLabels.newInstancesKey] = .string("0")
        labels[DeploymentLabels.colourKey] = .string(colour)
        labels[DeploymentLabels.startedAtKey] = .string(startedAt)
        app.set("labels", .object(labels))
        return Prepared(app: app, id: id, colour: colour, servicePort: nextPort, frontendPort: info.servicePort,
                        targetInstances: target, instances: instances, replaces: current?.id)
    }

    /// The first service port of a definition, in zdd.py's order: `container.docker.portMappings`,
    /// `container.portMappings`, `portDefinitions`, `ports` (0 or absent: none).
    static func firstServicePort(_ app: JSONValue) -> Int? {
        let candidates: [JSONValue?] = [
            app["container"]?["docker"]?["portMappings"]?.arrayValue?.first?["servicePort"],
            app["container"]?["portMappings"]?.arrayValue?.first?["servicePort"],
            app["portDefinitions"]?.arrayValue?.first?["port"],
            app["ports"]?.arrayValue?.first,
        ]
        for c in candidates { if let p = c?.intValue, (1...65535).contains(p) { return p } }
        return nil
    }

    /// zdd.py's `set_service_port`: the first of those that exists gets `port`.
    static func setFirstServicePort(_ app: inout JSONValue, _ port: Int) {
        func setFirst(_ list: JSONValue?, key: String?) -> JSONValue? {
            guard var items = list?.arrayValue, !items.isEmpty else { return nil }
            if let key { items[0].set(key, .int(port)) } else { items[0] = .int(port) }
            return .array(items)
        }
        if var container = app["container"], var docker = container["docker"],
           let updated = setFirst(docker["portMappings"], key: "servicePort") {
            docker.set("portMappings", updated)
            container.set("docker", docker)
            app.set("container", container)
        } else if var container = app["container"], let updated = setFirst(container["portMappings"], key: "servicePort") {
            container.set("portMappings", updated)
            app.set("container", container)
        } else if let updated = setFirst(app["portDefinitions"], key: "port") {
            app.set("portDefinitions", updated)
        } else if let updated = setFirst(app["ports"], key: nil) {
            app.set("ports", updated)
        } else {
            app.set("portDefinitions", [["port": .int(port), "protocol": "tcp"]])
        }
    }

    // MARK: - Steps

    /// A colour as Marathon reports it (`GET /v2/apps/<id>`).
    public struct Colour: Sendable, Equatable {
        public var app: MarathonApp
        /// Deployments running for the app (`deployments` of its answer).
        public var deployments: Int
        public init(app: MarathonApp, deployments: Int) {
            self.app = app
            self.deployments = deployments
        }
    }

    /// One load balancer's stats page, reduced to the group's backend; nil servers: the backend
    /// is not there (yet).
    public struct Balancer: Sendable, Equatable {
        public var name: String
        public var servers: [StatsServer]?
        public init(name: String, servers: [StatsServer]?) {
            self.name = name
            self.servers = servers
        }
    }

    public struct StepInput: Sendable {
        public var old: Colour
        public var new: Colour
        /// Empty: no load balancer is watched (no `--haproxy-stats`).
        public var balancers: [Balancer]
        /// Task host → IP, for matching tasks to the load balancers' server addresses.
        public var resolvedHosts: [String: IPAddress]
        /// `--max-wait` has passed while old tasks were draining: kill those set aside even if
        /// connections are still open (zdd.py's behaviour after its wait).
        public var drainWaitExpired: Bool
        /// `--linear-increase` (0: grow by half).
        public var linearIncrease: Int

        public init(old: Colour, new: Colour, balancers: [Balancer] = [], resolvedHosts: [String: IPAddress] = [:],
                    drainWaitExpired: Bool = false, linearIncrease: Int = 0) {
            self.old = old
            self.new = new
            self.balancers = balancers
            self.resolvedHosts = resolvedHosts
            self.drainWaitExpired = drainWaitExpired
            self.linearIncrease = linearIncrease
        }
    }

    public enum Step: Sendable, Equatable {
        /// Nothing to do yet; why (for the log).
        case wait(String)
        /// Kill these old tasks (drained) with `scale=true`, then scale the new colour (if set).
        case act(kill: [String], scaleNewTo: Int?)
        /// The new colour serves at its target and every old task is drained: delete the old app.
        case deleteOld
    }

    /// The load balancers' backend for the group of `app` (a colour): `<group>_<HAPROXY_0_PORT>`.
    public static func backendName(of app: MarathonApp) -> String? {
        guard let labels = try? DeploymentLabels.parse(app.labels) else { return nil }
        let port = app.labels["HAPROXY_0_PORT"].flatMap { Int($0.trimmingSpaces) } ?? app.servicePorts.first ?? 0
        return (try? DesiredStateBuilder.backendName(appId: labels.serviceId, servicePort: port))?.text
    }

    /// zdd.py's `get_deployment_target`: the new colour's target label, else its instances.
    public static func target(_ new: MarathonApp) -> Int {
        new.labels[DeploymentLabels.targetInstancesKey].flatMap { Int($0.trimmingSpaces) } ?? new.instances
    }

    /// What to do next.
    public static func step(_ i: StepInput) -> Step {
        let old = i.old.app, new = i.new.app
        if i.new.deployments > 0 { return .wait("a deployment of \(new.id) is in progress") }
        if i.old.deployments > 0 { return .wait("a deployment of \(old.id) is in progress") }
        let target = Self.target(new)
        let newLabels = (try? DeploymentLabels.parse(new.labels)) ?? nil
        let drain = newLabels.map { DeploymentGroups.drainingTasks(old: [old], new: new, newLabels: $0) } ?? []
        let healthy = DeploymentGroups.healthyTasks(new).count
        var killable = drain
        if !i.balancers.isEmpty {
            let address = addresses([old, new], resolvedHosts: i.resolvedHosts)
            for b in i.balancers {
                guard let servers = b.servers else { return .wait("\(b.name) has no backend for the group yet") }
                // Every task Marathon runs healthy is in the backend (zdd.py: as many listeners as
                // instances), and at least the target is up there.
                let present = Set(servers.map(\.address))
                let routable = DeploymentGroups.healthyTasks(old) + DeploymentGroups.healthyTasks(new)
                for t in routable {
                    if let a = address[t.id], !present.contains(a) { return .wait("\(b.name) does not route task \(t.id) (\(a)) yet") }
                }
                let up = servers.filter(\.isUp).count
                let wanted = min(target, routable.count)
                if up < wanted { return .wait("\(b.name): \(up) server(s) up, waiting for \(wanted)") }
            }
            func onEvery(_ id: String, _ test: (StatsServer) -> Bool) -> Bool {
                guard let a = address[id] else { return false }
                return i.balancers.allSatisfy { b in (b.servers ?? []).contains { $0.address == a && test($0) } }
            }
            killable = drain.filter { onEvery($0, \.isDrained) }
            if killable.isEmpty, !drain.isEmpty, i.drainWaitExpired {
                killable = drain.filter { onEvery($0, \.isSetAside) }
            }
            if killable.isEmpty, !drain.isEmpty {
                return .wait("waiting for \(drain.joined(separator: ", ")) to drain on the load balancers")
            }
        }
        let oldServing = old.tasks.filter { ($0.state?.routing ?? .serve) == .serve }.map(\.id)
        if new.instances >= target, healthy >= target, Set(oldServing).isSubset(of: killable) {
            return .deleteOld
        }
        var scale: Int?
        if new.instances < target, !killable.isEmpty || (drain.isEmpty && healthy >= new.instances) {
            scale = nextInstances(new: new.instances, old: old.instances, target: target, linear: i.linearIncrease)
        }
        if killable.isEmpty && scale == nil {
            if healthy < new.instances { return .wait("\(healthy) of \(new.instances) tasks of \(new.id) healthy") }
            return .wait("nothing to drain yet")
        }
        return .act(kill: killable, scaleNewTo: scale)
    }

    /// zdd.py's `scale_new_app_instances`: half as many again (rounded down), and once that reaches
    /// the old colour's size, the target; with `linear`, that many more, up to the target.
    public static func nextInstances(new: Int, old: Int, target: Int, linear: Int) -> Int {
        if linear > 0 { return min(new + linear, target) }
        let grown = new + (new + 1) / 2
        return grown >= old ? target : min(grown, target)
    }

    /// `ip:port` (port index 0) of every task, as the load balancers' `addr` shows it.
    static func addresses(_ apps: [MarathonApp], resolvedHosts: [String: IPAddress]) -> [String: String] {
        var out: [String: String] = [:]
        var quiet: [Diagnostic] = []
        for app in apps {
            for t in app.tasks {
                if let e = DesiredStateBuilder.endpoint(of: t, app: app, index: 0, context: BuildContext(resolvedHosts: resolvedHosts),
                                                        diagnostics: &quiet) {
                    out[t.id] = e.ip.isV6 ? "[\(e.ip.text)]:\(e.port.value)" : "\(e.ip.text):\(e.port.value)"
                }
            }
        }
        return out
    }
}

extension JSONValue {
    /// Sets `key` of an object (keeps its place; appends a new key).
    mutating func set(_ key: String, _ value: JSONValue) {
        guard case .object(var o) = self else { return }
        o[key] = value
        self = .object(o)
    }

    /// Indented text with sorted keys (as zdd.py prints the final app definition).
    public func prettyText(indent: Int = 2) -> String {
        var out = ""
        pretty(into: &out, level: 0, indent: indent)
        return out
    }

    private func pretty(into out: inout String, level: Int, indent: Int) {
        let pad = String(repeating: " ", count: (level + 1) * indent), close = String(repeating: " ", count: level * indent)
        switch self {
        case .array(let a) where !a.isEmpty:
            out += "[\n"
            for (n, v) in a.enumerated() {
                out += pad
                v.pretty(into: &out, level: level + 1, indent: indent)
                out += n == a.count - 1 ? "\n" : ",\n"
            }
            out += close + "]"
        case .object(let o) where !o.pairs.isEmpty:
            out += "{\n"
            let pairs = o.pairs.sorted { $0.0 < $1.0 }
            for (n, (k, v)) in pairs.enumerated() {
                out += pad + JSONValue.string(k).text + ": "
                v.pretty(into: &out, level: level + 1, indent: indent)
                out += n == pairs.count - 1 ? "\n" : ",\n"
            }
            out += close + "}"
        default:
            out += text
        }
    }
}
