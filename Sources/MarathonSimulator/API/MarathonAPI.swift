#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import ServiceRouterCore
import ServiceRouterIO

/// Marathon's REST API over the engine: routing, basic auth, standby redirects, request faults.
/// Paths and payloads follow Marathon 1.x (see Sources/MarathonSimulator/README.md for the list).
final class MarathonAPI: Sendable {
    let engine: SimulatorEngine
    let bus: EventBus
    let control: ControlState
    let options: MarathonSimulator.Options
    /// `http://host:port` of this instance (set once the server is bound).
    let selfURL: String
    let frameworkId = UUID().uuidString.lowercased() + "-0000"
    /// Serialized apps of `/v2/apps`, reused while an app and its tasks are unchanged.
    let listingCache = AppListingCache()

    init(engine: SimulatorEngine, bus: EventBus, control: ControlState, options: MarathonSimulator.Options, selfURL: String) {
        self.engine = engine
        self.bus = bus
        self.control = control
        self.options = options
        self.selfURL = selfURL
    }

    var hostPort: String { String(selfURL.dropFirst("http://".count)) }

    func handle(_ request: HTTPServerRequest) -> HTTPServerResponse {
        let path = request.path
        if path.hasPrefix("/_sim/") || path == "/_sim" {
            return SimControlRoutes.handle(request, api: self)
        }
        if let denied = checkAuth(request) { return denied }
        let (hang, failStatus) = control.takeFault()
        if let hang { sleepUnlessStopped(hang) }
        if let failStatus {
            return json(["message": .string("Simulated failure \(failStatus)")], status: failStatus)
        }
        let role = control.currentRole
        if let leader = role.leaderURL, path.hasPrefix("/v2") {
            var headers = HTTPHeaders()
            headers.set("Location", leader + request.target)
            return HTTPServerResponse(status: role.redirectStatus, headers: headers, body: .bytes([]))
        }
        var response = route(request)
        if role.leaderURL == nil { response.headers.set("X-Marathon-Leader", selfURL) }
        return response
    }

    /// A hang fault sleeps in short slices so stop() is never held up for long.
    private func sleepUnlessStopped(_ seconds: Double) {
        let deadline = Monotonic.now() + seconds
        while Monotonic.now() < deadline && !engine.isStopped {
            usleep(UInt32(min(0.05, max(0, deadline - Monotonic.now())) * 1_000_000))
        }
    }

    private func checkAuth(_ request: HTTPServerRequest) -> HTTPServerResponse? {
        guard let credentials = options.credentials else { return nil }
        let expected = "Basic " + Data("\(credentials.user):\(credentials.password)".utf8).base64EncodedString()
        if request.headers["Authorization"] == expected { return nil }
        var headers = HTTPHeaders()
        headers.set("WWW-Authenticate", "Basic realm=\"Mesosphere\"")
        return json(["message": "Invalid username or password."], status: 401, headers: headers)
    }

    // MARK: - Routing

    private func route(_ r: HTTPServerRequest) -> HTTPServerResponse {
        let path = r.path
        let method = r.method == "HEAD" ? "GET" : r.method
        do {
            switch (method, path) {
            case ("GET", "/ping"): return .text("pong")
            case ("GET", "/v2/ping"): return .text("pong")
            case ("GET", "/v2/leader"): return json(["leader": .string(hostPort)])
            case ("GET", "/v2/info"): return json(info())
            case ("GET", "/v2/events"): return EventStream.response(r, api: self)
            case ("GET", "/v2/deployments"):
                let s = engine.snapshot()
                return json(.array(s.deploymentOrder.compactMap { s.deployments[$0] }.map(Rendering.deployment)))
            case ("GET", "/v2/queue"): return json(["queue": []])
            case ("GET", "/v2/tasks"): return json(["tasks": .array(listTasks(r))])
            case ("POST", "/v2/tasks/delete"): return try killTasks(r)
            case ("GET", "/v2/apps"), ("GET", "/v2/apps/"): return .json(listApps(r))
            case ("POST", "/v2/apps"), ("POST", "/v2/apps/"): return try createApp(r)
            default: break
            }
            if path.hasPrefix("/v2/deployments/") {
                let id = String(path.dropFirst("/v2/deployments/".count))
                return json(["message": .string("DeploymentPlan \(id) does not exist")], status: 404)
            }
            if path.hasPrefix("/v2/apps/") {
                return try appRoute(r, method: method, rest: String(path.dropFirst("/v2/apps".count)))
            }
            if path.hasPrefix("/v2/") || path == "/v2" {
                return json(["message": "HTTP 404 Not Found"], status: 404)
            }
            return .text("Not Found\n", status: 404)
        } catch let e as SimulatorError {
            return json(e.json, status: e.status)
        } catch let e as AppValidationError {
            let e = SimulatorError.invalid(e)
            return json(e.json, status: e.status)
        } catch let e as JSONParseError {
            return json(["message": "Invalid JSON", "details": [["path": "/", "errors": [.string(e.description)]]]], status: 400)
        } catch {
            return json(["message": .string("\(error)")], status: 500)
        }
    }

    /// `/v2/apps/<id>`, `/v2/apps/<id>/restart`, `/v2/apps/<id>/tasks[/<taskId>]`, `/v2/apps/<id>/versions`.
    private func appRoute(_ r: HTTPServerRequest, method: String, rest: String) throws -> HTTPServerResponse {
        let segments = rest.split(separator: "/").map(String.init)
        let force = r.queryValue("force") == "true"
        if method == "POST", segments.last == "restart", segments.count > 1 {
            let id = AppSpec.normalize(id: segments.dropLast().joined(separator: "/"))
            let change = try engine.restartApp(id, force: force)
            return changeResponse(change)
        }
        if segments.count > 1, segments.last == "tasks" {
            let id = AppSpec.normalize(id: segments.dropLast().joined(separator: "/"))
            switch method {
            case "GET":
                let s = engine.snapshot()
                guard let app = s.apps[id], !app.deleting else { throw SimulatorError.appNotFound(id) }
                return json(["tasks": .array(s.tasks(of: id).map { Rendering.task($0, app: app, state: s) })])
            case "DELETE":
                let s = engine.snapshot()
                guard let app = s.apps[id], !app.deleting else { throw SimulatorError.appNotFound(id) }
                let scale = r.queryValue("scale") == "true"
                var killed: [JSONValue] = []
                for t in s.tasks(of: id) where t.state != .killing {
                    let (k, _) = try engine.killTask(t.id, appId: id, scale: scale)
                    killed.append(Rendering.task(k, app: app, state: engine.snapshot()))
                }
                return json(["tasks": .array(killed)])
            default: return methodNotAllowed()
            }
        }
        if segments.count > 2, segments[segments.count - 2] == "tasks" {
            let id = AppSpec.normalize(id: segments.dropLast(2).joined(separator: "/"))
            let taskId = segments[segments.count - 1]
            switch method {
            case "GET":
                let s = engine.snapshot()
                guard let t = s.tasks[taskId], t.appId == id else { throw SimulatorError.taskNotFound(taskId) }
                return json(["task": Rendering.task(t, app: s.apps[id], state: s)])
            case "DELETE":
                guard engine.snapshot().apps[id] != nil else { throw SimulatorError.appNotFound(id) }
                let scale = r.queryValue("scale") == "true"
                let (task, change) = try engine.killTask(taskId, appId: id, scale: scale)
                if let change { return changeResponse(change) }
                let s = engine.snapshot()
                return json(["task": Rendering.task(task, app: s.apps[id], state: s)])
            default: return methodNotAllowed()
            }
        }
        if segments.count > 1, segments.last == "versions", method == "GET" {
            let id = AppSpec.normalize(id: segments.dropLast().joined(separator: "/"))
            guard let app = engine.snapshot().apps[id], !app.deleting else { throw SimulatorError.appNotFound(id) }
            return json(["versions": [.string(app.version)]])
        }
        let id = AppSpec.normalize(id: segments.joined(separator: "/"))
        switch method {
        case "GET":
            let s = engine.snapshot()
            guard let app = s.apps[id], !app.deleting else { throw SimulatorError.appNotFound(id) }
            var embed = parseEmbed(r)
            if embed.isEmpty { embed = [.tasks, .counts, .deployments, .lastTaskFailure] }
            return json(["app": Rendering.app(app, state: s, embed: embed.union([.counts, .deployments]))])
        case "PUT", "PATCH":
            let body = try JSONValue.parse(r.body)
            guard let update = body.objectValue else { throw AppValidationError(path: "/", "error.expected.jsobject") }
            if engine.snapshot().apps[id] == nil {
                let spec = try AppSpec.parse(body, idOverride: id)
                let (_, change) = try engine.createApp(spec, clientIp: r.remoteAddress, uri: r.path)
                var response = json(["version": .string(change.version), "deploymentId": .string(change.deploymentId)], status: 201)
                response.headers.set("Marathon-Deployment-Id", change.deploymentId)
                return response
            }
            let change = try engine.updateApp(id, force: force, clientIp: r.remoteAddress, uri: r.path) { spec in
                try spec.apply(update)
            }
            return changeResponse(change)
        case "DELETE":
            return changeResponse(try engine.deleteApp(id, force: force))
        default:
            return methodNotAllowed()
        }
    }

    private func createApp(_ r: HTTPServerRequest) throws -> HTTPServerResponse {
        let body = try JSONValue.parse(r.body)
        let spec = try AppSpec.parse(body)
        let (app, change) = try engine.createApp(spec, clientIp: r.remoteAddress, uri: "/v2/apps")
        let s = engine.snapshot()
        var headers = HTTPHeaders()
        headers.set("Location", "\(selfURL)/v2/apps\(app.id)")
        headers.set("Marathon-Deployment-Id", change.deploymentId)
        let rendered = Rendering.app(s.apps[app.id] ?? app, state: s, embed: [.tasks, .counts, .deployments])
        return json(rendered, status: 201, headers: headers)
    }

    private func killTasks(_ r: HTTPServerRequest) throws -> HTTPServerResponse {
        let body = try JSONValue.parse(r.body)
        let ids = body["ids"]?.arrayValue?.compactMap(\.stringValue) ?? []
        let scale = r.queryValue("scale") == "true"
        var killed: [JSONValue] = []
        for id in ids {
            guard let (t, _) = try? engine.killTask(id, scale: scale) else { continue }
            let s = engine.snapshot()
            killed.append(Rendering.task(t, app: s.apps[t.appId], state: s))
        }
        return json(["tasks": .array(killed)])
    }

    private func changeResponse(_ change: SimulatorEngine.Change) -> HTTPServerResponse {
        var response = json(["version": .string(change.version), "deploymentId": .string(change.deploymentId)])
        response.headers.set("Marathon-Deployment-Id", change.deploymentId)
        return response
    }

    // MARK: - Listings

    /// `embed=apps.tasks` and friends; Marathon accepts the `apps.`, `app.`, `group.apps.` prefixes or none.
    private func parseEmbed(_ r: HTTPServerRequest) -> Rendering.AppEmbed {
        var embed: Rendering.AppEmbed = []
        for value in r.queryValues("embed") {
            for item in value.split(separator: ",") {
                var name = Substring(item)
                for prefix in ["group.apps.", "apps.", "app."] where name.hasPrefix(prefix) {
                    name = name.dropFirst(prefix.count)
                    break
                }
                switch name {
                case "tasks": embed.insert(.tasks)
                case "counts": embed.insert(.counts)
                case "deployments": embed.insert(.deployments)
                case "lastTaskFailure", "failures": embed.insert(.lastTaskFailure)
                default: break
                }
            }
        }
        return embed
    }

    /// The `/v2/apps` body: the query picks the apps and the embed set, the cache writes them.
    private func listApps(_ r: HTTPServerRequest) -> [UInt8] {
        let s = engine.snapshot()
        return listingCache.listing(selectApps(r, s), state: s, embed: listingEmbed(r))
    }

    /// Marathon always embeds counts and deployments in /v2/apps (backwards compatibility).
    func listingEmbed(_ r: HTTPServerRequest) -> Rendering.AppEmbed {
        parseEmbed(r).union([.counts, .deployments])
    }

    /// The apps `/v2/apps` lists for the query's `id`, `cmd` and `label` filters, by id.
    func selectApps(_ r: HTTPServerRequest, _ s: EngineState) -> [AppRecord] {
        let idFilter = r.queryValue("id")?.lowercased()
        let selectors = r.queryValues("label").compactMap(LabelSelector.init)
        let cmdFilter = r.queryValue("cmd")
        return s.apps.values
            .filter { app in
                !app.deleting
                    && (idFilter.map { app.id.lowercased().contains($0) } ?? true)
                    && (cmdFilter.map { app.spec.cmd?.contains($0) ?? false } ?? true)
                    && selectors.allSatisfy { $0.matches(app.spec.labels) }
            }
            .sorted { $0.id < $1.id }
    }

    /// `/v2/apps` written without the cache: the reference the cache is tested against.
    func uncachedListing(_ r: HTTPServerRequest) -> [UInt8] {
        let s = engine.snapshot()
        let embed = listingEmbed(r)
        return JSONValue.object(["apps": .array(selectApps(r, s).map { Rendering.app($0, state: s, embed: embed) })]).encoded()
    }

    private func listTasks(_ r: HTTPServerRequest) -> [JSONValue] {
        let s = engine.snapshot()
        let statuses = Set(r.queryValues("status").map { "TASK_" + $0.uppercased() })
        return s.apps.keys.sorted().flatMap { id in
            s.tasks(of: id)
                .filter { statuses.isEmpty || statuses.contains($0.state.rawValue) }
                .map { Rendering.task($0, app: s.apps[id], state: s) }
        }
    }

    private func info() -> JSONValue {
        let port = Int(hostPort.split(separator: ":").last ?? "0") ?? 0
        let role = control.currentRole
        return ["name": "marathon", "version": .string(options.marathonVersion), "buildref": "simulator",
                "elected": .bool(role.leaderURL == nil),
                "leader": .string(role.leaderURL.map { String($0.dropFirst("http://".count)) } ?? hostPort),
                "frameworkId": .string(frameworkId),
                "marathon_config": ["framework_name": "marathon", "ha": true, "hostname": .string(options.host),
                                    "http_port": .int(port), "local_port_max": 20000, "local_port_min": 10000,
                                    "master": "local", "mesos_role": nil, "webui_url": nil],
                "zookeeper_config": ["zk": "zk://localhost:2181/marathon"],
                "http_config": ["http_port": .int(port), "https_port": 8443],
                "event_subscriber": nil]
    }

    // MARK: - Helpers

    func json(_ value: JSONValue, status: Int = 200, headers: HTTPHeaders = HTTPHeaders()) -> HTTPServerResponse {
        .json(value.encoded(), status: status, headers: headers)
    }

    private func methodNotAllowed() -> HTTPServerResponse {
        json(["message": "HTTP 405 Method Not Allowed"], status: 405)
    }
}
