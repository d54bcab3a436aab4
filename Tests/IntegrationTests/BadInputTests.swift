import Foundation
import Testing
import ServiceRouterCore
import ServiceRouterIO
@testable import ServiceRouterController
@testable import ServiceRouterCLI
import ServiceRouterTestSupport

/// Bad input from Marathon, end to end through a real HAProxy: the app (or task) is skipped with a
/// clear log line, everything else keeps working, and hostile text never reaches the config, the
/// runtime socket or a process. Decoding and label parsing are unit-tested in ServiceRouterCoreTests
/// (MarathonDecodingTests, LabelTests, DesiredStateTests, RenderTests.hostileInputNeverReachesTheConfig).
/// One test at a time: each starts HAProxy, often a simulator, load or child processes; run all at
/// once beside the rest of the suite on 2 cores, they stretch every other test's timing.
@Suite(.serialized, .enabled(if: HAProxyProcess.isAvailable, "haproxy is not on PATH (.ci/run installs it)"))
struct BadInputTests {
    // MARK: - Payloads

    /// A payload with every kind of broken app beside good ones, padded to many megabytes.
    static func payload(good: [(id: String, port: Int, task: TaskServer)], badPorts: [Int], dupPorts: [Int], dupTasks: [TaskServer],
                        padding: Int) -> String {
        func task(_ id: String, _ port: Int) -> String {
            #"{"id": "\#(id)", "host": "127.0.0.1", "ports": [\#(port)], "state": "TASK_RUNNING"}"#
        }
        func app(_ id: String, _ port: Int, tasks: [String], extra: String = "") -> String {
            #"{"id": "\#(id)", "instances": \#(tasks.count), "labels": {"HAPROXY_GROUP": "external"\#(extra)}, "portDefinitions": [{"port": \#(port)}], "tasks": [\#(tasks.joined(separator: ","))]}"#
        }
        var apps: [String] = []
        apps.append(#"{"id": "/bad/types", "instances": "three", "labels": {"HAPROXY_GROUP": "external"}, "portDefinitions": [{"port": \#(badPorts[0])}]}"#)
        apps.append(#"{"instances": 1, "labels": {"HAPROXY_GROUP": "external"}, "portDefinitions": [{"port": \#(badPorts[1])}]}"#)
        apps.append(#"{"id": "/bad/task", "labels": {"HAPROXY_GROUP": "external"}, "portDefinitions": [{"port": \#(badPorts[2])}], "tasks": [{"host": "127.0.0.1", "ports": [1]}]}"#)
        apps.append(#"{"id": "/bad/labels", "labels": {"HAPROXY_GROUP": 7}, "portDefinitions": [{"port": \#(badPorts[3])}]}"#)
        apps.append(#"{"id": "/bad/port", "labels": {"HAPROXY_GROUP": "external"}, "portDefinitions": [{"port": 70000}], "tasks": [\#(task("bad.port.1", 1))]}"#)
        for (i, g) in good.enumerated() {
            // The first good app carries the padding: a multi-megabyte label value.
            let extra = i == 0 ? #", "padding": "\#(String(repeating: "x", count: padding))""# : ""
            apps.append(app(g.id, g.port, tasks: [task(g.task.id, g.task.port)], extra: extra))
        }
        apps.append(app("/dup", dupPorts[0], tasks: [task(dupTasks[0].id, dupTasks[0].port)]))
        apps.append(app("/dup", dupPorts[1], tasks: [task(dupTasks[1].id, dupTasks[1].port)]))
        return #"{"apps": ["# + apps.joined(separator: ",\n") + "]}"
    }

    @Test func malformedWrongTypedMissingDuplicateAndHugeAppsSkipOnlyThemselves() async throws {
        let r = try await LabelRoutingTests.Router()
        try await withCleanup {
            let a = try TaskServer(id: "good.a"), b = try TaskServer(id: "good.b")
            let d1 = try TaskServer(id: "dup.first"), d2 = try TaskServer(id: "dup.second")
            let portA = try freePort(), portB = try freePort(), dup1 = try freePort(), dup2 = try freePort()
            let bad = try (0..<4).map { _ in try freePort() }
            let text = Self.payload(good: [("/good/a", portA, a), ("/good/b", portB, b)], badPorts: bad, dupPorts: [dup1, dup2],
                                    dupTasks: [d1, d2], padding: 12 << 20)
            #expect(text.utf8.count > 12 << 20)
            let file = r.haproxy.directory + "/apps.json"
            try text.write(toFile: file, atomically: true, encoding: .utf8)

            // Decoding many megabytes is CPU work: off the cooperative pool.
            let (apps, skipped) = try await Blocking.run { try MarathonDecoding.apps(from: Data(contentsOf: URL(fileURLWithPath: file))) }
            await r.reconciler.replace(with: AppsSnapshot(apps: apps, skipped: skipped))
            let report = await r.reconciler.fullPass(reason: "test")
            #expect(report.error == nil)
            #expect(try await httpRequest(port: portA).body == "good.a")
            #expect(try await httpRequest(port: portB).body == "good.b")
            #expect(try await httpRequest(port: dup1).body == "dup.first", "the first of two apps with one id is used")
            for port in bad + [dup2] {
                await #expect(throws: (any Error).self, "port \(port)") { _ = try await httpRequest(port: port) }
            }
            func logged(_ app: String, _ fragment: String) -> Bool {
                r.logs.all.contains { $0.level >= .warning && $0.field("app") == app && ($0.message + " " + ($0.field("reason") ?? "")).contains(fragment) }
            }
            #expect(logged("/bad/types", ".instances"), "\(r.logs.all.map(\.message))")
            #expect(logged("#1", ".id: missing"))
            #expect(logged("/bad/task", ".tasks[0].id: missing"), "\(r.logs.all.filter { $0.field("app") == "/bad/task" })")
            #expect(logged("/bad/labels", ".labels.HAPROXY_GROUP"))
            #expect(logged("/bad/port", "has no service port (70000)"))
            #expect(logged("/dup", "duplicate app id"))
            #expect(r.reconciler.metrics.prometheus().contains("servicerouter_apps_skipped 5\n"), "4 undecodable apps and 1 duplicate")
            #expect(!configAndMaps(r.haproxy).contains("xxxxxxxx"))
        } cleanup: {
            await r.stop()
        }
    }

    /// A document that is not JSON at all (truncated, garbage): the fetch fails with a clear reason,
    /// nothing is applied, HAProxy keeps its last state; fixed, it converges.
    @Test func malformedDocumentLeavesHAProxyOnItsLastState() async throws {
        let h = try HAProxyProcess()
        try await h.start()
        let file = h.directory + "/apps.json"
        let a = try TaskServer(id: "doc.a"), b = try TaskServer(id: "doc.b")
        let port = try freePort()
        let good = Self.payload(good: [("/doc/web", port, a)], badPorts: try (0..<4).map { _ in try freePort() }, dupPorts: [try freePort(), try freePort()],
                                dupTasks: [b, b], padding: 10)
        try good.write(toFile: file, atomically: true, encoding: .utf8)
        let rig = try ControllerRig(haproxy: h, .init(source: FileAppsSource(path: file)))
        try await withCleanup {
            rig.start()
            try await eventually("the app routed") { try await httpRequest(port: port).body == "doc.a" }
            try await eventually("the first pass done") { rig.logs.contains(.info, "sync done") }
            let reloads = try await h.reloadCount(), live = try await h.runtime.liveState()
            for garbage in [String(good.prefix(good.utf8.count / 2)), "<html>502 Bad Gateway</html>", ""] {
                try garbage.write(toFile: file, atomically: true, encoding: .utf8)
                let before = rig.count("cannot fetch apps from Marathon")
                rig.controller.queue.push(.resync("test: bad document"))
                try await eventually("the bad document refused") { rig.count("cannot fetch apps from Marathon") > before }
                let line = try #require(rig.logs.all.last { $0.message.contains("cannot fetch apps from Marathon") })
                #expect(line.field("reason")?.hasPrefix("cannot decode Marathon apps payload") == true, "\(line)")
                #expect(try await httpRequest(port: port).body == "doc.a")
                #expect(try await h.runtime.liveState() == live)
            }
            #expect(try await h.reloadCount() == reloads)
            try good.replacingOccurrences(of: "doc.a", with: "doc.b").replacingOccurrences(of: "\(a.port)]", with: "\(b.port)]")
                .write(toFile: file, atomically: true, encoding: .utf8)
            rig.controller.queue.push(.resync("test: fixed"))
            try await eventually("the fixed document applied") { try await httpRequest(port: port).body == "doc.b" }
        } cleanup: {
            await rig.stop()
            await h.shutdown()
        }
    }

    // MARK: - Labels

    /// One hostile or invalid label per app. `EVIL` marks the text that must never reach HAProxy.
    static let hostileLabels: [(name: String, labels: [String: String])] = [
        ("vhost-newline", ["HAPROXY_0_VHOST": "ok.example.com\n  use_backend EVIL"]),
        ("vhost-semicolon", ["HAPROXY_0_VHOST": "a.example.com;EVIL"]),
        ("vhost-hash", ["HAPROXY_0_VHOST": "a.example.com#EVIL"]),
        ("vhost-backslash", ["HAPROXY_0_VHOST": "a\\EVIL.example.com"]),
        ("vhost-quote", ["HAPROXY_0_VHOST": "\"EVIL\".example.com"]),
        ("vhost-non-ascii", ["HAPROXY_0_VHOST": "ÉVIL.example.com"]),
        ("vhost-kelvin", ["HAPROXY_0_VHOST": "\u{212A}EVIL.example.com"]),
        ("vhost-hyphen", ["HAPROXY_0_VHOST": "-EVIL-.example.com"]),
        ("vhost-space", ["HAPROXY_0_VHOST": "EVIL example.com"]),
        ("path-newline", ["HAPROXY_0_VHOST": "p.example.com", "HAPROXY_0_PATH": "/EVIL\nbackend x"]),
        ("path-semicolon", ["HAPROXY_0_VHOST": "p.example.com", "HAPROXY_0_PATH": "/EVIL;x"]),
        ("path-hash", ["HAPROXY_0_VHOST": "p.example.com", "HAPROXY_0_PATH": "/EVIL#x"]),
        ("path-backslash", ["HAPROXY_0_VHOST": "p.example.com", "HAPROXY_0_PATH": "/EVIL\\x"]),
        ("path-quote", ["HAPROXY_0_VHOST": "p.example.com", "HAPROXY_0_PATH": "/\"EVIL\""]),
        ("path-space", ["HAPROXY_0_VHOST": "p.example.com", "HAPROXY_0_PATH": "/EVIL x"]),
        ("path-relative", ["HAPROXY_0_VHOST": "p.example.com", "HAPROXY_0_PATH": "EVIL/x"]),
        ("port-range", ["HAPROXY_0_PORT": "70000"]),
        ("port-zero", ["HAPROXY_0_PORT": "0"]),
        ("port-negative", ["HAPROXY_0_PORT": "-80"]),
        ("port-text", ["HAPROXY_0_PORT": "EVIL"]),
        ("port-inject", ["HAPROXY_0_PORT": "8080;EVIL"]),
        ("mode-unknown", ["HAPROXY_0_MODE": "EVIL"]),
        ("mode-newline", ["HAPROXY_0_MODE": "http\nEVIL"]),
        ("balance-unknown", ["HAPROXY_0_BALANCE": "EVIL"]),
        ("balance-newline", ["HAPROXY_0_BALANCE": "roundrobin\n  EVIL"]),
        ("bind-addr", ["HAPROXY_0_BIND_ADDR": "1.2.3.4;EVIL"]),
        ("bind-options", ["HAPROXY_0_BIND_OPTIONS": "maxconn 10;EVIL"]),
        ("weight", ["HAPROXY_0_BACKEND_WEIGHT": "5 EVIL"]),
        ("sticky", ["HAPROXY_0_STICKY": "EVIL"]),
        ("auth-newline", ["HAPROXY_0_VHOST": "auth.example.com", "HAPROXY_0_AUTH": "realm:user:$6$x$EVIL\nbackend x"]),
        ("ssl-cert-space", ["HAPROXY_0_SSL_CERT": "/tmp/EVIL cert.pem"]),
        ("acl", ["HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL": "10.0.0.0/8 EVIL"]),
        ("redir-newline", ["HAPROXY_0_VHOST": "r.example.com", "HAPROXY_0_HTTP_BACKEND_REDIR": "/EVIL\n"]),
        ("group-newline", ["HAPROXY_GROUP": "external\nEVIL"]),
        ("port-group-quote", ["HAPROXY_0_GROUP": "\"EVIL\""]),
    ]

    @Test func hostileAndInvalidLabelsSkipTheAppAndNeverReachTheConfig() async throws {
        let r = try await LabelRoutingTests.Router()
        try await withCleanup {
            let good = try TaskServer(id: "labels.good"), victim = try TaskServer(id: "labels.bad")
            let goodPort = try freePort()
            var apps = [simpleApp("/labels/good", ports: [goodPort], [good], labels: ["HAPROXY_0_VHOST": "good.example.com"])]
            var badPorts: [Int] = []
            for c in Self.hostileLabels {
                let port = try freePort()
                badPorts.append(port)
                apps.append(simpleApp("/labels/\(c.name)", ports: [port], [victim], labels: c.labels))
            }
            let report = try await r.apply(apps)
            #expect(report.desired.services.map(\.appId) == ["/labels/good"])
            #expect(try await httpRequest(port: goodPort).body == "labels.good")
            #expect(try await httpRequest(port: r.httpPort, host: "good.example.com").body == "labels.good")
            for port in badPorts {
                await #expect(throws: (any Error).self, "port \(port)") { _ = try await httpRequest(port: port) }
            }
            let text = configAndMaps(r.haproxy)
            #expect(!text.contains("EVIL") && !text.lowercased().contains("evil") && !text.contains("ÉVIL"), "hostile text reached the config:\n\(text)")
            let check = try await haproxyCheck(r.haproxy.configPath)
            #expect(check.ok, "\(check.output)")
            for c in Self.hostileLabels {
                let line = r.logs.all.first { $0.field("app") == "/labels/\(c.name)" && $0.level == .error }
                #expect(line?.message.hasPrefix("app skipped: invalid HAPROXY_") == true, "\(c.name): \(String(describing: line))")
                #expect(line?.field("kind") == "bad_label", "\(c.name)")
            }
            assertSingleLineLogs(r.logs)
        } cleanup: {
            await r.stop()
        }
    }

    // MARK: - Conflicts

    /// Two apps on one service port, two services on one vhost + path: the documented rule
    /// (docs/architecture.md, "Conflicts"), a warning naming both, and a valid config.
    @Test func conflictsFollowTheDocumentedRuleWithAWarning() async throws {
        let r = try await LabelRoutingTests.Router()
        try await withCleanup {
            let old = try TaskServer(id: "c.old"), new = try TaskServer(id: "c.new"), older = try TaskServer(id: "c.older")
            let low = try TaskServer(id: "v.low"), high = try TaskServer(id: "v.high"), same = try TaskServer(id: "v.same")
            let shared = try freePort(), lowPort = try freePort(), highPort = try freePort(), samePort = try freePort()
            let oldApp = simpleApp("/c/old", ports: [shared], [old], labels: [:], changedAt: "2020-01-01T00:00:00.000Z")
            let newApp = simpleApp("/c/new", ports: [shared], [new], labels: [:], changedAt: "2025-01-01T00:00:00.000Z")
            let lowApp = simpleApp("/v/low", ports: [lowPort], [low], labels: [
                "HAPROXY_0_VHOST": "shop.example.com,low.example.com", "HAPROXY_0_PATH": "/api", "HAPROXY_0_BACKEND_WEIGHT": "1"])
            let highApp = simpleApp("/v/high", ports: [highPort], [high], labels: [
                "HAPROXY_0_VHOST": "shop.example.com", "HAPROXY_0_PATH": "/api", "HAPROXY_0_BACKEND_WEIGHT": "5"])
            let sameApp = simpleApp("/v/same", ports: [samePort], [same], labels: [
                "HAPROXY_0_VHOST": "low.example.com", "HAPROXY_0_PATH": "/api", "HAPROXY_0_BACKEND_WEIGHT": "1"], changedAt: "2027-01-01T00:00:00.000Z")

            // Input order does not matter: the oldest configuration keeps the port.
            let first = try await r.apply([newApp, sameApp, highApp, lowApp, oldApp])
            #expect(try await httpRequest(port: shared).body == "c.old")
            #expect(r.logs.all.contains { $0.level == .warning && $0.field("app") == "/c/new" && $0.field("kind") == "conflict"
                && $0.message.contains("also claimed by /c/old") })
            // The higher weight keeps shop.example.com/api; the loser keeps its port and its other vhost.
            #expect(try await httpRequest(port: r.httpPort, path: "/api/x", host: "shop.example.com").body == "v.high")
            #expect(try await httpRequest(port: r.httpPort, path: "/api/x", host: "low.example.com").body == "v.low", "equal weights: the older app")
            #expect(try await httpRequest(port: lowPort).body == "v.low")
            #expect(try await httpRequest(port: samePort).body == "v.same")
            #expect(r.logs.all.contains { $0.level == .warning && $0.field("app") == "/v/low" && $0.message.contains("already routed to /v/high") })
            #expect(r.logs.all.contains { $0.level == .warning && $0.field("app") == "/v/same" && $0.message.contains("already routed to /v/low") })
            #expect(try await haproxyCheck(r.haproxy.configPath).ok)

            // Reversed input, same decisions; and an even older app cannot take the port HAProxy serves.
            let olderApp = simpleApp("/c/older", ports: [shared], [older], labels: [:], changedAt: "2010-01-01T00:00:00.000Z")
            let second = try await r.apply([oldApp, lowApp, highApp, sameApp, newApp, olderApp].reversed())
            #expect(second.desired.services.map(\.backend) == first.desired.services.map(\.backend))
            #expect(try await httpRequest(port: shared).body == "c.old", "the backend HAProxy already serves keeps the port")
            #expect(r.logs.all.contains { $0.level == .warning && $0.field("app") == "/c/older" && $0.message.contains("also claimed by /c/old") })
        } cleanup: {
            await r.stop()
        }
    }

    // MARK: - Task hosts and ids

    /// Task hosts and ids with spaces, `;`, newlines and shell metacharacters: never in a runtime
    /// command, the config, the arguments of a process, or a resolver query; tasks with such a host
    /// are skipped with a log line; a hostile id on a good address is routed (ids are never used).
    @Test func hostileTaskHostsAndIdsNeverReachTheSocketTheConfigOrAShell() async throws {
        let h = try HAProxyProcess()
        try await h.start()
        let runtime = FaultyRuntime(h.runtime)
        let control = RecordingControl(h.control())
        let resolver = RecordingResolver(["agent.local": "127.0.0.1"])
        let logs = MemoryLogSink()
        let pwned = h.directory + "/pwned"
        try await withCleanup {
            let ok = try TaskServer(id: "ok.1"), odd = try TaskServer(id: "odd"), named = try TaskServer(id: "named"), later = try TaskServer(id: "later")
            let port = try freePort()
            let render = RenderOptions(adminSocket: h.socketPath, httpPort: try freePort(), appIdPort: nil, stats: nil, mapDirectory: h.directory, bindAddress: "127.0.0.1")
            let settings = ReconcilerSettings(pass: PassSettings(routing: RoutingOptions(groups: ["external"], minSlots: 4, reservedPorts: render.reservedPorts),
                                              render: render, templates: try TemplateSet()), configPath: h.configPath)
            let r = Reconciler(settings: settings, runtime: runtime, control: control, resolver: resolver, logger: Logger(minimum: .debug, sink: logs))
            let hostileHosts = ["127.0.0.1; shutdown sessions server x/s1", "127.0.0.1\nset server x/s1 state maint", "$(touch \(pwned))",
                                "`touch \(pwned)`", "agent one", "127.0.0.1 # EVIL", "127.0.0.1|touch \(pwned)", "-oProxyCommand=touch"]
            func task(_ id: String, _ host: String, _ port: Int) -> MarathonTask { MarathonTask(id: id, appId: "/hostile", host: host, ports: [port]) }
            var tasks = [task("ok.1", "127.0.0.1", ok.port),
                         task("EVIL id; shutdown sessions\nshow info $(touch \(pwned))", "127.0.0.1", odd.port),
                         task("named", "agent.local", named.port)]
            for (i, host) in hostileHosts.enumerated() { tasks.append(task("bad.\(i)\nEVIL forged log line", host, 40_000 + i)) }
            var app = MarathonApp(id: "/hostile", labels: ["HAPROXY_GROUP": "external"], instances: 3, servicePorts: [port], tasks: tasks)
            await r.replace(with: AppsSnapshot(apps: [app]))
            let first = await r.fullPass(reason: "test")
            #expect(first.error == nil && first.reloaded)
            #expect(await responses(port: port, count: 16) == ["ok.1", "odd", "named"])

            // A change applied through the runtime API: one more task with a hostile id.
            app.tasks.append(task("later;\nshow info", "127.0.0.1", later.port))
            await r.replace(with: AppsSnapshot(apps: [app]))
            let second = await r.fullPass(reason: "test")
            #expect(second.error == nil && !second.reloaded && !second.commands.isEmpty)
            #expect(await responses(port: port, count: 20) == ["ok.1", "odd", "named", "later"])

            let forbidden = ["EVIL", "\n", "\r", ";", "$", "`", "|", "#", "shutdown", "touch", "pwned", "agent", "ProxyCommand"]
            for command in runtime.commands {
                #expect(!forbidden.contains { command.contains($0) }, "runtime command \(ValidationError.quoted(command))")
            }
            let setServer = try Regex(#"^set server hostile_[0-9]+/s[0-9]+ (addr 127\.0\.0\.1 port [0-9]+|state (ready|drain|maint)|weight [0-9]+)$"#)
            for command in runtime.mutations {
                #expect((try? setServer.wholeMatch(in: command)) != nil, "\(command)")
            }
            #expect(runtime.rawLines.isEmpty)
            let text = configAndMaps(h)
            for f in forbidden where f != "\n" && f != "#" {
                #expect(!text.contains(f), "\(ValidationError.quoted(f)) reached the config")
            }
            #expect(Set(control.validatedPaths) == [h.configPath + ".candidate"], "the only process argument built: \(control.validatedPaths)")
            #expect(!FileManager.default.fileExists(atPath: pwned))
            #expect(resolver.names.allSatisfy { !forbidden.contains(where: $0.contains) || $0 == "agent.local" },
                    "only host names are looked up: \(resolver.names.sorted())")
            for host in hostileHosts {
                #expect(logs.all.contains { $0.level == .warning && $0.field("app") == "/hostile" && $0.message.contains(ValidationError.quoted(host)) },
                        "no log line for \(ValidationError.quoted(host))")
            }
            assertSingleLineLogs(logs)
        } cleanup: {
            await h.shutdown()
        }
    }

    // MARK: - Property

    /// Random label values (valid and hostile) and random app sets, 25 seeded rounds through the
    /// reconciler into a real HAProxy: every config it installs passes `haproxy -c`, has only lines
    /// of known shapes, and carries no hostile text; apps with a hostile value are left out.
    @Test(arguments: [RenderOptions.VhostRouting.map, .acl])
    func randomLabelsAndAppSetsAlwaysRenderAValidConfig(routing: RenderOptions.VhostRouting) async throws {
        let hash = try await Blocking.run { try ProcessRunner.run("openssl", ["passwd", "-6", "-salt", "prop", "s3cret"]) }.output
            .trimmingCharacters(in: .whitespacesAndNewlines)
        try #require(hash.hasPrefix("$6$prop$"))
        let r = try await LabelRoutingTests.Router(acl: routing == .acl)
        try await withCleanup {
            var rng = SplitMix64(seed: routing == .map ? 0x5EED_0001 : 0x5EED_0002)
            let ports = try (0..<12).map { _ in try freePort() }
            var badApps = 0, services = 0
            for round in 0..<13 {
                let s = PropertyShapes.scenario(&rng, ports: ports, hash: hash)
                await r.reconciler.replace(with: AppsSnapshot(apps: s.apps))
                let report = await r.reconciler.fullPass(reason: "round \(round)")
                #expect(report.error == nil, "round \(round): \(report.error.map { "\($0)" } ?? "")")
                let config = try String(contentsOfFile: r.haproxy.configPath, encoding: .utf8)
                let check = try await haproxyCheck(r.haproxy.configPath)
                #expect(check.ok, "round \(round): \(check.output)")
                let text = configAndMaps(r.haproxy)
                #expect(!text.contains("VIL") && !text.lowercased().contains("evil"), "round \(round):\n\(text)")
                for unknown in try await PropertyShapes.unknownLines(config) {
                    Issue.record("round \(round), \(unknown)")
                }
                for (id, why) in s.bad {
                    badApps += 1
                    // Left out, unless an earlier round routed it: then it keeps those labels.
                    let kept = report.desired.diagnostics.contains { $0.appId == id && $0.kind == .staleLabels }
                    #expect(kept || !report.desired.services.contains { $0.appId == id },
                            "round \(round): \(ValidationError.quoted(id)) (\(why)) routed with its invalid labels")
                }
                services += report.desired.services.count
            }
            assertSingleLineLogs(r.logs)
            #expect(badApps > 5 && services > 10, "the generator makes both: \(badApps) bad apps, \(services) services")
        } cleanup: {
            await r.stop()
        }
    }
}

/// Every record, as the text and JSON log formats write it, is one line: no value from Marathon
/// can forge a log line.
func assertSingleLineLogs(_ logs: MemoryLogSink, sourceLocation: SourceLocation = #_sourceLocation) {
    for record in logs.all {
        for format in [LogFormat.text, .json] {
            let line = StreamLogSink.format(record, as: format, time: Date(timeIntervalSince1970: 0))
            #expect(!line.contains("\n") && !line.contains("\r"), "a log record spans lines: \(ValidationError.quoted(line))", sourceLocation: sourceLocation)
        }
    }
}

/// The property test's generator and line shapes. The shapes extend the core property test's
/// (RenderTests.lineShapes: test targets cannot share code) with the lines of the labels this
/// generator adds (sticky, redirects, HSTS, auth, allowed networks, proxypass/revproxy/redir) and
/// the shared frontends the reconciler renders.
enum PropertyShapes {
    struct Scenario {
        var apps: [MarathonApp] = []
        /// App id → which value must keep it out.
        var bad: [String: String] = [:]
    }

    static let hostile = ["EVIL", "x\nEVIL", "EVIL;x", "#EVIL", "a b EVIL", "EVIL\\", "\"EVIL\"", "EVIL'", "ÉVIL", "\u{212A}EVIL",
                          "EVIL\r", "EVIL\u{0}", "/EVIL;x", "/EVIL x", "/EVIL#x", "/EVIL\nbackend x", "8080;EVIL", "{EVIL}",
                          "1.2.3.4;EVIL", "http\nEVIL", "roundrobin;EVIL", "EVIL,", ",EVIL", "true\nEVIL", "/EVIL\"x"]

    static func valid(_ label: String, ports: [Int], hash: String) -> [String] {
        switch label {
        case "VHOST": ["a.example.com", "B.example.com, c.example.com", "x", "a.example.com,a.example.com"]
        case "PATH": ["/api", "/a?b=c&d=e", "/x/(y)", "/"]
        case "PORT": ports.map(String.init)
        case "MODE": ["http", "tcp", "HTTP"]
        case "BALANCE": ["leastconn", "source", "static-rr", "roundrobin", "uri", "first", "random"]
        case "BIND_ADDR": ["*", "127.0.0.1"]
        case "BACKEND_WEIGHT": ["3", "-2", "0"]
        case "ENABLED": ["true", "yes", "false"]
        case "STICKY", "REDIRECT_TO_HTTPS", "USE_HSTS": ["true", "false", "yes"]
        case "BACKEND_NETWORK_ALLOWED_ACL": ["127.0.0.0/8", "10.0.0.0/8 192.168.0.1"]
        case "BIND_OPTIONS": ["maxconn 50"]
        case "AUTH": ["Area 51:alice:\(hash)"]
        case "HTTP_BACKEND_PROXYPASS_PATH", "HTTP_BACKEND_REVPROXY_PATH": ["/app"]
        case "HTTP_BACKEND_REDIR": ["/welcome", "https://example.com/x"]
        default: []
        }
    }

    static let labels = ["VHOST", "PATH", "PORT", "MODE", "BALANCE", "BIND_ADDR", "BACKEND_WEIGHT", "ENABLED", "STICKY",
                         "REDIRECT_TO_HTTPS", "USE_HSTS", "BACKEND_NETWORK_ALLOWED_ACL", "BIND_OPTIONS", "AUTH",
                         "HTTP_BACKEND_PROXYPASS_PATH", "HTTP_BACKEND_REVPROXY_PATH", "HTTP_BACKEND_REDIR"]

    static func scenario(_ rng: inout SplitMix64, ports: [Int], hash: String) -> Scenario {
        var s = Scenario()
        let ids = ["/web", "/group/app", "/a.b-c", "/x_y", "/ok:colon", "/api", "/shop/cart", "/EVIL;id", "/EVIL\nid", "/ÉVIL"]
        for (i, base) in ids.shuffled(using: &rng).prefix(Int.random(in: 1...5, using: &rng)).enumerated() {
            let id = base + "\(i)"
            let servicePorts = (0..<Int.random(in: 1...2, using: &rng)).map { _ in rng.pick(ports) }
            var labels: [String: String] = ["HAPROXY_GROUP": "external", "note": "EVIL\n#;", "HAPROXY_7_VHOST": "EVIL;ignored"]
            var reason: String? = id.contains("VIL") ? "id" : nil
            for index in servicePorts.indices {
                for label in Self.labels where rng.chance(0.3) {
                    let key = "HAPROXY_\(index)_\(label)"
                    if rng.chance(0.95) {
                        labels[key] = rng.pick(valid(label, ports: ports, hash: hash))
                    } else {
                        labels[key] = rng.pick(hostile)
                        reason = key
                    }
                }
            }
            var tasks: [MarathonTask] = []
            for t in 0..<Int.random(in: 0...3, using: &rng) {
                let host = rng.pick(["127.0.0.1", "127.0.0.1", "EVIL;host", "127.0.0.1\nEVIL", ""])
                tasks.append(MarathonTask(id: "t\(t)\(rng.chance(0.1) ? "\nEVIL" : "")", appId: id, host: host,
                                          ports: servicePorts.map { _ in Int.random(in: 20_000...30_000, using: &rng) },
                                          state: rng.pick([.running, .running, .killing, .staging, nil])))
            }
            s.apps.append(MarathonApp(id: id, labels: labels, instances: Int.random(in: 0...4, using: &rng),
                                      configChangedAt: rng.pick(["2019", "2020", "2021"]), servicePorts: servicePorts, tasks: tasks))
            s.bad[id] = reason
        }
        return s
    }

    /// The lines of `config` no shape matches (regex matching is CPU work: off the cooperative pool).
    static func unknownLines(_ config: String) async throws -> [String] {
        try await Blocking.run {
            let shapes = lines()
            return config.split(separator: "\n", omittingEmptySubsequences: false).enumerated().compactMap { i, line in
                shapes.contains(where: { (try? $0.wholeMatch(in: line)) != nil }) ? nil
                    : "line \(i + 1) has an unknown shape: \(ValidationError.quoted(String(line)))"
            }
        }
    }

    static func lines() -> [Regex<AnyRegexOutput>] {
        let name = "[A-Za-z0-9_.:-]+", acl = "[A-Za-z0-9_.:-]+", host = "[a-z0-9.-]+", path = "/[A-Za-z0-9._~/!$&()*+,=:@%?-]*"
        let ip = "(?:[0-9]{1,3}(?:\\.[0-9]{1,3}){3}|[0-9a-f:.]*:[0-9a-f:.]*)", port = "[0-9]{1,5}"
        let balances = ServiceLabels.Balance.allCases.map(\.rawValue).joined(separator: "|")
        let map = "[A-Za-z0-9_./-]+\\.map"
        return [
            "# Generated by servicerouter\\. Do not edit: it is rewritten on every change\\.",
            "", "global", "  stats socket [A-Za-z0-9_.:/@-]+ mode 600 level admin expose-fd listeners",
            "  description servicerouter structure [0-9a-f]{16}",
            "frontend marathon_http_in", "frontend marathon_http_appid_in", "  bind \\*:\(port)",
            "  acl path_\(name) path_beg \(path)", "  acl host_\(acl) req\\.hdr\\(host\\),field\\(1,:\\) -i \(host)",
            "  use_backend \(name) if host_\(acl)( path_\(name))?",
            "  acl app_\(acl) hdr\\(x-marathon-app-id\\) -i /[A-Za-z0-9_.:/-]+", "  use_backend \(name) if app_\(acl)",
            "frontend \(name)", "  bind (\\*|\(ip)):\(port)( maxconn 50)?", "  mode (http|tcp)", "  use_backend \(name)",
            "backend \(name)", "  balance (\(balances))",
            "  option forwardfor", "  http-request set-header X-Forwarded-Port %\\[dst_port\\]",
            "  http-request add-header X-Forwarded-Proto https if \\{ ssl_fc \\}",
            "  option  httpchk GET \(path)", "  timeout check [0-9]+s",
            "  server s[0-9]+ \(ip):\(port) id [0-9]+( check inter [0-9]+s fall [0-9]+( port \(port))?)?( cookie s[0-9]+)?( disabled)?",
            // Labels beyond the core test's set.
            "  cookie mesosphere_server_id insert indirect nocache",
            "userlist user_\(name)", "  user [A-Za-z0-9_.:@-]+ password \\$6\\$[A-Za-z0-9./]+\\$[A-Za-z0-9./]+",
            "  acl auth_\(acl) http_auth\\(user_\(name)\\)",
            "  http-request auth realm \"[A-Za-z0-9 _.-]+\" if host_\(acl)( path_\(name))? !auth_\(acl)",
            "  redirect scheme https code 301 if !\\{ ssl_fc \\} host_\(acl)( path_\(name))?",
            "  http-response set-header Strict-Transport-Security max-age=15768000",
            "  acl network_allowed src [0-9.]+(/[0-9]+)?",
            "  http-request allow if network_allowed", "  http-request deny",
            "  tcp-request content accept if network_allowed", "  tcp-request content reject",
            "  http-request set-header Host \(host)", "  http-request replace-path \\^\(path)/\\?\\(\\.\\*\\) /\\\\1",
            "  http-response replace-header Location \\^\\(https\\?://\(host)\\(:\\[0-9\\]\\+\\)\\?\\)\\?\\(/\\.\\*\\)\\$ \(path)\\\\3",
            "  acl is_root path -i /", "  acl is_domain req\\.hdr\\(host\\),field\\(1,:\\) -i \(host)",
            "  redirect code 301 location (\(path)|https?://\(host)\(path)) if is_domain is_root",
            "  http-request set-var\\(txn\\.sr_host\\) req\\.hdr\\(host\\),field\\(1,:\\),lower",
            "  http-request set-var\\(txn\\.sr_path\\) path",
            "  use_backend %\\[var\\(txn\\.sr_host\\),concat\\(,txn\\.sr_path,\\),map_beg\\(\(map)\\)\\] if \\{ var\\(txn\\.sr_host\\),concat\\(,txn\\.sr_path,\\),map_beg\\(\(map)\\) -m found \\}",
            "  use_backend %\\[var\\(txn\\.sr_host\\),map_str\\(\(map)\\)\\] if \\{ var\\(txn\\.sr_host\\),map_str\\(\(map)\\) -m found \\}",
        ].map { try! Regex($0) } + DefaultTemplates.head.split(separator: "\n").map { try! Regex(NSRegularExpression.escapedPattern(for: String($0))) }
    }
}
