import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import ServiceRouterCore
import ServiceRouterIO
import Synchronization

/// `servicerouter zdd`: marathon-lb's `zdd.py` — a blue/green deploy through Marathon's REST API.
/// The decisions are `BlueGreen`'s; this command fetches, performs, waits, and aborts cleanly.
enum ZDDCommand {
    static let zddFlags: [FlagSpec] = [
        FlagSpec(["-j", "--json"], .value, value: "FILE", help: "the app definition to deploy, with the HAPROXY_DEPLOYMENT_GROUP and HAPROXY_DEPLOYMENT_ALT_PORT labels (required unless --resume)"),
        FlagSpec(["-d", "--dry-run"], .switchFlag, help: "print the new colour's app definition; change nothing"),
        FlagSpec(["-f", "--force"], .switchFlag, help: "do not ask before creating the new colour, killing old tasks and deleting the old colour (needed when standard input is not a terminal)"),
        FlagSpec(["-l", "--haproxy-stats", "--marathon-lb"], .repeatable, value: "URL", help: "a load balancer's stats page, e.g. http://lb1:9090 (servicerouter's --haproxy-stats): old tasks are killed only once every one given shows them drained"),
        FlagSpec(["-s", "--step-delay"], .value, value: "SECONDS", help: "pause between two looks at Marathon and the load balancers", default: "5"),
        FlagSpec(["-i", "--initial-instances"], .value, value: "N", help: "instances the new colour starts with (at most the old colour's)", default: "1"),
        FlagSpec(["--linear-increase"], .value, value: "N", help: "grow the new colour by N instances per step instead of by half", default: "0"),
        FlagSpec(["-w", "--max-wait"], .value, value: "SECONDS", help: "how long old tasks may take to drain (no connection left) before those set aside are killed anyway", default: "300"),
        FlagSpec(["--timeout"], .value, value: "SECONDS", help: "give up after this long: abort cleanly (the old colour scaled back and serving, the new one deleted)", default: "3600"),
        FlagSpec(["--abort-timeout"], .value, value: "SECONDS", help: "how long an abort waits for the old colour to be back at full strength before deleting the new one", default: "300"),
        FlagSpec(["-r", "--resume"], .switchFlag, help: "finish a deploy that was interrupted (the group has two colours): the newer one replaces the older"),
        FlagSpec(["--group-name"], .value, value: "GROUP", help: "with --resume and no --json: the HAPROXY_DEPLOYMENT_GROUP to resume"),
        FlagSpec(["--pre-kill-hook"], .value, value: "PATH", help: "run before each kill with three JSON arguments (the old app, the task ids, the new app); a non-zero exit aborts the deploy"),
    ]

    static var specs: [FlagSpec] {
        zddFlags + Flags.marathon.filter { $0.canonical != "--apps-json" } + Flags.logging + Flags.help
    }

    static var help: CommandHelp {
        CommandHelp(name: "zdd", summary: """
            Blue/green deploy through Marathon's REST API, as marathon-lb's zdd.py: create the next colour of the app \
            (id suffixed -blue or -green, the group's other service port, HAPROXY_DEPLOYMENT_* labels), grow it while \
            the old colour's tasks drain and are killed, then delete the old colour. servicerouter routes both colours \
            through one backend and applies every step at runtime, without a reload.
            Success (exit 0) only when the old colour is gone and the new one serves at full size. On --timeout, \
            SIGINT/SIGTERM, a refused request, a failing --pre-kill-hook or a "no" at a prompt, the deploy is aborted \
            cleanly: the old colour is scaled back to its size and, once it serves again, the new colour is deleted \
            (exit 1).
            """, usage: "servicerouter zdd --marathon URL --json FILE [options]", specs: specs)
    }

    static func run(_ args: [String]) async throws -> Int32 {
        let a = try ArgumentParser.parse(args, specs: specs)
        if a.has("--help") {
            printOut(help.text)
            return 0
        }
        let opts = try CommonOptions.parse(a, requireGroup: false)
        var settings = ZDDSettings()
        settings.dryRun = a.has("--dry-run")
        settings.force = a.has("--force")
        settings.resume = a.has("--resume")
        settings.stepDelay = try a.double("--step-delay", default: 5, range: 0.01...3600)
        settings.initialInstances = try a.int("--initial-instances", default: 1, range: 0...100_000)
        settings.linearIncrease = try a.int("--linear-increase", default: 0, range: 0...100_000)
        settings.maxWait = try a.double("--max-wait", default: 300, range: 0...86_400)
        settings.timeout = try a.double("--timeout", default: 3600, range: 1...604_800)
        settings.abortTimeout = try a.double("--abort-timeout", default: 300, range: 1...86_400)
        settings.preKillHook = a.string("--pre-kill-hook")
        for raw in a.strings("--haproxy-stats") {
            guard let u = URL(string: raw), let scheme = u.scheme, ["http", "https"].contains(scheme), u.host != nil else {
                throw UsageError("--haproxy-stats: '\(redactURL(raw))' is not an http(s) URL")
            }
            settings.balancers.append(u)
        }
        var definition: JSONValue?
        if let file = a.string("--json") {
            guard let data = FileManager.default.contents(atPath: file) else { throw UsageError("--json: cannot read \(file)") }
            do { definition = try JSONValue.parse(Array(data)) } catch { throw UsageError("--json: \(file) is not JSON: \(error)") }
            do { _ = try BlueGreen.inspect(definition!) } catch { throw UsageError("--json: \(file): \(error)") }
        } else if !settings.resume {
            throw UsageError("--json is required (the app definition to deploy)")
        }
        if let g = a.string("--group-name") {
            guard settings.resume else { throw UsageError("--group-name goes with --resume") }
            settings.groupName = g
        } else if definition == nil {
            throw UsageError("--resume without --json needs --group-name")
        }
        if !settings.dryRun && !settings.force && isatty(STDIN_FILENO) == 0 {
            throw UsageError("zdd asks before each change: run it from a terminal, or pass --force")
        }
        let logger = opts.logger
        let client = try AppsSourceFactory.marathonClient(opts, logger: logger)
        let runner = ZDDRunner(client: client, http: HTTPClient(caCertificateFile: opts.caCert), settings: settings, logger: logger)
        // SIGINT/SIGTERM: abort cleanly at the next look (the runner never exits half-way).
        let signals = Signals.stream()
        let watcher = Task {
            for await sig in signals where sig == SIGINT || sig == SIGTERM { runner.interrupt(sig) }
        }
        defer { watcher.cancel() }
        let outcome = await runner.run(definition: definition)
        switch outcome {
        case .succeeded(let message):
            logger.info("zdd: \(message)")
            return 0
        case .failed(let message):
            logger.error("zdd: \(message)")
            Console.standardError("servicerouter zdd: \(message)\n")
            return 1
        }
    }
}

/// `servicerouter zdd`'s options (the benchmark runs deploys with them too).
public struct ZDDSettings: Sendable {
    public var dryRun = false
    public var force = false
    public var resume = false
    public var groupName: String?
    public var stepDelay = 5.0
    public var initialInstances = 1
    public var linearIncrease = 0
    public var maxWait = 300.0
    public var timeout = 3600.0
    public var abortTimeout = 300.0
    public var preKillHook: String?
    public var balancers: [URL] = []
    public init() {}
}

/// One blue/green deploy: the I/O around `BlueGreen`'s decisions.
public final class ZDDRunner: Sendable {
    public enum Outcome: Sendable, Equatable {
        case succeeded(String)
        case failed(String)
    }

    let client: MarathonClient
    let http: HTTPClient
    let settings: ZDDSettings
    let logger: Logger
    let time: any TimeSource
    let resolver = CachingHostResolver()
    /// Set by `interrupt` (SIGINT/SIGTERM in the command): the loop aborts at its next look.
    let interrupted = Atomic<Int32>(0)
    /// What to say on standard output (the final definition): replaceable in tests.
    let output: @Sendable (String) -> Void
    /// The operator's answer to a question (only asked without --force).
    let ask: @Sendable (String) -> Bool

    public init(client: MarathonClient, http: HTTPClient = HTTPClient(), settings: ZDDSettings, logger: Logger, time: any TimeSource = SystemTime(),
         output: @escaping @Sendable (String) -> Void = { Console.standardOutput($0.hasSuffix("\n") ? $0 : $0 + "\n") }, ask: @escaping @Sendable (String) -> Bool = ZDDRunner.askOnTerminal) {
        self.client = client
        self.http = http
        self.settings = settings
        self.logger = logger
        self.time = time
        self.output = output
        self.ask = ask
    }

    public static let askOnTerminal: @Sendable (String) -> Bool = { question in
        Console.standardError("\(question) [y/N] ")
        guard let line = readLine() else { return false }
        return ["y", "yes"].contains(line.trimmingWhitespace().lowercased())
    }

    /// A failure that aborts the deploy: what failed, and what to do.
    struct Abort: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    /// Deploys `definition` (nil: `--resume` of `settings.groupName`). Never `.succeeded` unless
    /// the old colour is gone and the new one serves at its target.
    public func run(definition: JSONValue?) async -> Outcome {
        do {
            return try await deploy(definition)
        } catch let e as Abort {
            return .failed(e.description)
        } catch {
            return .failed("\(error)")
        }
    }

    /// Asks the deploy in progress to abort cleanly (as SIGINT does), at its next look.
    public func interrupt(_ signal: Int32 = SIGINT) {
        interrupted.store(signal, ordering: .releasing)
    }

    // MARK: - The deploy

    private func deploy(_ definition: JSONValue?) async throws -> Outcome {
        let group = try definition.map { try BlueGreen.inspect($0).group } ?? settings.groupName ?? ""
        let deploys = BlueGreen.deploys(of: group, in: try await listGroup(group))
        if settings.resume {
            guard deploys.count >= 2 else {
                throw Abort("nothing to resume: deployment group \(group) has \(deploys.count) app(s) (\(deploys.map(\.id).joined(separator: ", ")))")
            }
            let old = deploys[deploys.count - 2], new = deploys[deploys.count - 1]
            logger.info("zdd: resuming", [("old", old.id), ("new", new.id)])
            if settings.dryRun { return .succeeded("dry run: \(new.id) would replace \(old.id)") }
            return try await swap(oldId: old.id, newId: new.id, restoreTo: max(old.instances, BlueGreen.target(new)))
        }
        guard let definition else { throw Abort("no app definition") }
        guard deploys.count <= 1 else {
            throw Abort("deployment group \(group) already has \(deploys.count) apps (\(deploys.map(\.id).joined(separator: ", "))): a deploy is in progress; finish it with --resume, or delete one of them")
        }
        let current = deploys.last
        let now = DeploymentTimestamp.text(secondsSince1970: Date().timeIntervalSince1970)
        let prepared = try BlueGreen.prepare(definition, current: current, initialInstances: settings.initialInstances, startedAt: now)
        logger.info("zdd: final app definition", [("id", prepared.id), ("colour", prepared.colour),
                                                  ("service_port", String(prepared.servicePort)), ("instances", String(prepared.instances)),
                                                  ("target", String(prepared.targetInstances)), ("replaces", prepared.replaces ?? "-")])
        output(prepared.app.prettyText())
        if settings.dryRun {
            return .succeeded("dry run: nothing changed")
        }
        guard settings.force || ask("Create \(prepared.id)\(current.map { " to replace \($0.id)" } ?? "")?") else {
            return .failed("not confirmed; nothing changed")
        }
        let created = try await write("POST", "/v2/apps", body: prepared.app.encoded(), what: "create \(prepared.id)")
        guard created.status == 201 || created.status == 200 else {
            throw Abort("Marathon refused to create \(prepared.id): \(Self.statusText(created)); nothing changed")
        }
        logger.info("zdd: created", [("app", prepared.id)])
        guard let old = current else {
            // The group's first colour: nothing to replace, but done only once it serves.
            return try await firstDeploy(prepared)
        }
        return try await swap(oldId: old.id, newId: prepared.id, restoreTo: old.instances)
    }

    private func firstDeploy(_ p: BlueGreen.Prepared) async throws -> Outcome {
        let deadline = time.now() + settings.timeout
        while true {
            if let why = stopReason(deadline) {
                _ = try? await write("DELETE", "/v2/apps\(p.id)", query: [URLQueryItem(name: "force", value: "true")], what: "delete \(p.id)")
                return .failed("aborted (\(why)): \(p.id) was the group's first colour and did not get healthy; it was deleted")
            }
            if let new = try? await fetch(p.id), new.deployments == 0,
               DeploymentGroups.healthyTasks(new.app).count >= p.targetInstances {
                return .succeeded("\(p.id) deployed (\(p.targetInstances) instances); it was the group's first colour")
            }
            await pause(settings.stepDelay)
        }
    }

    /// zdd.py's `swap_zdd_apps`: step until the old colour can be deleted, then delete it.
    private func swap(oldId: String, newId: String, restoreTo: Int) async throws -> Outcome {
        let deadline = time.now() + settings.timeout
        var lastAction = time.now()
        var lastWait = ""
        var oldDeleted = false
        while true {
            if let why = stopReason(deadline) {
                return await abort(why, oldId: oldId, newId: newId, restoreTo: restoreTo, oldDeleted: oldDeleted)
            }
            let old: BlueGreen.Colour?, new: BlueGreen.Colour?
            do {
                old = try await fetch(oldId)
                new = try await fetch(newId)
            } catch {
                logger.warning("zdd: cannot read the apps from Marathon; trying again", [("reason", "\(error)")])
                await pause(settings.stepDelay)
                continue
            }
            guard let new else {
                return await abort("\(newId) was deleted by someone else", oldId: oldId, newId: nil, restoreTo: restoreTo, oldDeleted: old == nil)
            }
            guard let old else {
                // The old colour is gone (deleted by this deploy, or by hand): done once the new
                // one serves at its target.
                let target = BlueGreen.target(new.app)
                if new.deployments == 0, DeploymentGroups.healthyTasks(new.app).count >= target {
                    return .succeeded("\(newId) serves with \(target) instance(s); \(oldId) deleted")
                }
                oldDeleted = true
                await pause(settings.stepDelay)
                continue
            }
            if oldDeleted {
                await pause(settings.stepDelay)
                continue
            }
            let balancers = await readBalancers(backend: BlueGreen.backendName(of: new.app) ?? "")
            let hosts = DesiredStateBuilder.hostsToResolve([old.app, new.app])
            let resolved = hosts.isEmpty ? [:] : await resolver.resolve(hosts)
            let step = BlueGreen.step(.init(old: old, new: new, balancers: balancers, resolvedHosts: resolved,
                                            drainWaitExpired: time.now() - lastAction > settings.maxWait,
                                            linearIncrease: settings.linearIncrease))
            switch step {
            case .wait(let why):
                if why != lastWait { logger.info("zdd: waiting", [("why", why)]) }
                lastWait = why
            case .act(let kill, let scale):
                lastWait = ""
                if !kill.isEmpty {
                    do { try await preKill(old: old.app, tasks: kill, new: new.app) } catch {
                        return await abort("\(error)", oldId: oldId, newId: newId, restoreTo: restoreTo, oldDeleted: false)
                    }
                    guard settings.force || ask("Kill \(kill.count) drained task(s) of \(oldId) (\(kill.joined(separator: ", ")))?") else {
                        return await abort("not confirmed", oldId: oldId, newId: newId, restoreTo: restoreTo, oldDeleted: false)
                    }
                    let body = JSONValue.object(["ids": .strings(kill)]).encoded()
                    let r = try await write("POST", "/v2/tasks/delete", query: [URLQueryItem(name: "scale", value: "true")], body: body,
                                            what: "kill \(kill.count) task(s) of \(oldId)")
                    if r.status == 409 {
                        logger.info("zdd: Marathon is busy with \(oldId); trying again", [("answer", Self.statusText(r))])
                    } else if !(200..<300).contains(r.status) {
                        return await abort("Marathon refused to kill \(kill.joined(separator: ", ")): \(Self.statusText(r))",
                                           oldId: oldId, newId: newId, restoreTo: restoreTo, oldDeleted: false)
                    } else {
                        logger.info("zdd: killed drained tasks", [("app", oldId), ("tasks", kill.joined(separator: ","))])
                    }
                }
                if let n = scale {
                    let r = try await write("PUT", "/v2/apps\(newId)", body: JSONValue.object(["instances": .int(n)]).encoded(),
                                            what: "scale \(newId) to \(n)")
                    if r.status == 409 {
                        logger.info("zdd: Marathon is busy with \(newId); trying again", [("answer", Self.statusText(r))])
                    } else if !(200..<300).contains(r.status) {
                        return await abort("Marathon refused to scale \(newId) to \(n): \(Self.statusText(r))",
                                           oldId: oldId, newId: newId, restoreTo: restoreTo, oldDeleted: false)
                    } else {
                        logger.info("zdd: scaled", [("app", newId), ("instances", String(n))])
                    }
                }
                lastAction = time.now()
            case .deleteOld:
                guard settings.force || ask("Delete \(oldId)?") else {
                    return await abort("not confirmed", oldId: oldId, newId: newId, restoreTo: restoreTo, oldDeleted: false)
                }
                let r = try await write("DELETE", "/v2/apps\(oldId)", what: "delete \(oldId)")
                if r.status == 409 {
                    logger.info("zdd: Marathon is busy with \(oldId); trying again", [("answer", Self.statusText(r))])
                } else if !(200..<300).contains(r.status) {
                    return await abort("Marathon refused to delete \(oldId): \(Self.statusText(r))",
                                       oldId: oldId, newId: newId, restoreTo: restoreTo, oldDeleted: false)
                } else {
                    logger.info("zdd: deleted the old colour", [("app", oldId)])
                    oldDeleted = true
                    lastAction = time.now()
                }
            }
            await pause(settings.stepDelay)
        }
    }

    /// A clean abort: the old colour back at `restoreTo` instances and serving, then the new
    /// colour deleted. Never removes the only colour that serves.
    private func abort(_ why: String, oldId: String, newId: String?, restoreTo: Int, oldDeleted: Bool) async -> Outcome {
        logger.error("zdd: aborting", [("reason", why)])
        if oldDeleted {
            return .failed("aborted (\(why)) after \(oldId) was deleted: \(newId ?? "the new colour") is left as it is; check it in Marathon")
        }
        let force = [URLQueryItem(name: "force", value: "true")]
        do {
            let r = try await write("PUT", "/v2/apps\(oldId)", query: force, body: JSONValue.object(["instances": .int(restoreTo)]).encoded(),
                                    what: "scale \(oldId) back to \(restoreTo)")
            guard (200..<300).contains(r.status) else {
                return .failed("aborted (\(why)); scaling \(oldId) back to \(restoreTo) was refused (\(Self.statusText(r))), so \(newId ?? "the new colour") was left running; fix it by hand")
            }
        } catch {
            return .failed("aborted (\(why)); \(oldId) could not be scaled back to \(restoreTo) (\(error)), so \(newId ?? "the new colour") was left running; fix it by hand")
        }
        let deadline = time.now() + settings.abortTimeout
        var ready = false
        while time.now() < deadline {
            if let old = try? await fetch(oldId), old.deployments == 0, DeploymentGroups.healthyTasks(old.app).count >= restoreTo {
                ready = true
                break
            }
            await pause(min(settings.stepDelay, 1))
        }
        guard ready else {
            return .failed("aborted (\(why)); \(oldId) did not get back to \(restoreTo) healthy task(s) within \(Int(settings.abortTimeout)) s, so \(newId ?? "the new colour") was left running so that traffic is served; delete one colour by hand once the other serves")
        }
        guard let newId else {
            return .failed("aborted (\(why)); \(oldId) serves with \(restoreTo) instance(s)")
        }
        do {
            let r = try await write("DELETE", "/v2/apps\(newId)", query: force, what: "delete \(newId)")
            guard (200..<300).contains(r.status) || r.status == 404 else {
                return .failed("aborted (\(why)); \(oldId) serves with \(restoreTo) instance(s) again, but deleting \(newId) was refused (\(Self.statusText(r))); delete it by hand")
            }
        } catch {
            return .failed("aborted (\(why)); \(oldId) serves with \(restoreTo) instance(s) again, but \(newId) could not be deleted (\(error)); delete it by hand")
        }
        return .failed("aborted (\(why)); \(oldId) serves with \(restoreTo) instance(s) again and \(newId) was deleted")
    }

    private func stopReason(_ deadline: Double) -> String? {
        let sig = interrupted.load(ordering: .acquiring)
        if sig != 0 { return "\(Signals.name(sig)) received" }
        if time.now() >= deadline { return "not done within --timeout \(Int(settings.timeout)) s" }
        return nil
    }

    private func pause(_ seconds: Double) async {
        // In slices, so a signal is seen within a tenth of a second.
        let until = time.now() + seconds
        while time.now() < until && interrupted.load(ordering: .acquiring) == 0 {
            try? await time.sleep(for: min(0.1, until - time.now()))
        }
    }

    private func preKill(old: MarathonApp, tasks: [String], new: MarathonApp) async throws {
        guard let hook = settings.preKillHook else { return }
        let oldJSON = try await rawApp(old.id), newJSON = try await rawApp(new.id)
        let ids = JSONValue.strings(tasks).text
        logger.info("zdd: running the pre-kill hook", [("hook", hook), ("tasks", tasks.joined(separator: ","))])
        let result = try await Blocking.run { try ProcessRunner.run(hook, [oldJSON, ids, newJSON], timeout: 600) }
        guard result.status == 0 else {
            throw Abort("the pre-kill hook \(hook) exited with status \(result.status): \(result.output.split(separator: "\n").last ?? "")")
        }
    }

    // MARK: - Marathon and the load balancers

    private func listGroup(_ group: String) async throws -> [MarathonApp] {
        let query = [URLQueryItem(name: "label", value: "\(DeploymentLabels.groupKey)==\(group)")]
        let (response, _) = try await client.get(path: "/v2/apps", query: query)
        return try MarathonDecoding.apps(from: response.body).apps
    }

    /// The app and its deployments (`GET /v2/apps/<id>`); nil when Marathon does not know it.
    private func fetch(_ id: String) async throws -> BlueGreen.Colour? {
        let (r, _) = try await client.send("GET", path: "/v2/apps\(id)", query: [URLQueryItem(name: "embed", value: "app.tasks"),
                                                                               URLQueryItem(name: "embed", value: "app.deployments")])
        if r.status == 404 { return nil }
        guard r.status == 200 else { throw Abort("GET /v2/apps\(id): \(Self.statusText(r))") }
        let json = try JSONValue.parse(r.body)
        guard let app = try MarathonDecoding.apps(from: r.body).apps.first else { throw Abort("GET /v2/apps\(id): no app in the answer") }
        return BlueGreen.Colour(app: app, deployments: json["app"]?["deployments"]?.arrayValue?.count ?? 0)
    }

    private func rawApp(_ id: String) async throws -> String {
        let (r, _) = try await client.send("GET", path: "/v2/apps\(id)")
        return String(decoding: r.body, as: UTF8.self)
    }

    private func write(_ method: String, _ path: String, query: [URLQueryItem] = [], body: [UInt8]? = nil, what: String) async throws -> HTTPResponse {
        do {
            return try await client.send(method, path: path, query: query, json: body).response
        } catch {
            throw Abort("cannot \(what): \(error)")
        }
    }

    /// Each `--haproxy-stats` page, reduced to the group's backend (nil servers when it is not
    /// there yet, or the page could not be read).
    private func readBalancers(backend: String) async -> [BlueGreen.Balancer] {
        guard !settings.balancers.isEmpty else { return [] }
        var out: [BlueGreen.Balancer] = []
        for base in settings.balancers {
            var text = base.absoluteString
            while text.hasSuffix("/") { text.removeLast() }
            let name = redactURL(text)
            guard let url = URL(string: text + "/haproxy?stats;csv") else { continue }
            do {
                let r = try await http.send(HTTPRequest(url: url), timeout: 10)
                guard r.status == 200 else { throw Abort("HTTP \(r.status)") }
                let servers = try StatsCSV.servers(r.text).filter { $0.backend == backend }
                out.append(.init(name: name, servers: servers.isEmpty ? nil : servers))
            } catch {
                logger.warning("zdd: cannot read a load balancer's stats", [("url", name), ("reason", "\(error)")])
                out.append(.init(name: name, servers: nil))
            }
        }
        return out
    }

    static func statusText(_ r: HTTPResponse) -> String {
        var text = "HTTP \(r.status)"
        if let json = try? JSONValue.parse(r.body), let message = json["message"]?.stringValue { text += ": " + message }
        return text
    }
}
