import Foundation
import MarathonSimulator
import Testing
import ServiceRouterCore
import ServiceRouterIO
@testable import ServiceRouterController
@testable import ServiceRouterCLI
import ServiceRouterTestSupport

/// Blue/green deploys end to end: `servicerouter zdd` against the simulator's REST API, the
/// controller on its event stream, the real HAProxy in between, load running throughout.
/// The promise: 0 failed requests and 0 reloads from the first new task to the old colour's
/// deletion; an aborted deploy leaves the old colour serving.
@Suite(.serialized, .enabled(if: HAProxyProcess.isAvailable, "haproxy is not on PATH (.ci/run installs it)"))
struct ZDDEndToEndTests {
    /// An app definition as an operator writes it for zdd.
    static func definition(_ id: String, group: String, port: Int, altPort: Int, instances: Int, version: String) -> String {
        """
        {"id": "\(id)", "instances": \(instances), "cmd": "serve \(version)",
         "labels": {"HAPROXY_GROUP": "external", "HAPROXY_DEPLOYMENT_GROUP": "\(group)", "HAPROXY_DEPLOYMENT_ALT_PORT": "\(altPort)"},
         "portDefinitions": [{"port": \(port), "protocol": "tcp", "name": "http"}],
         "healthChecks": [{"protocol": "HTTP", "path": "/health", "portIndex": 0, "intervalSeconds": 1, "timeoutSeconds": 1,
                           "maxConsecutiveFailures": 2, "gracePeriodSeconds": 5}]}
        """
    }

    static func runner(_ s: Stack, stats: [String], hook: String? = nil, timeout: Double = 120, initial: Int = 1) throws -> ZDDRunner {
        var settings = ZDDSettings()
        settings.force = true
        settings.stepDelay = 0.2
        settings.initialInstances = initial
        settings.maxWait = 30
        settings.timeout = timeout
        settings.abortTimeout = 60
        settings.preKillHook = hook
        settings.balancers = stats.map { URL(string: $0)! }
        let client = MarathonClient(endpoints: try MarathonEndpoints(urls: [URL(string: s.sim.url)!]), requestTimeout: 10)
        return ZDDRunner(client: client, settings: settings, logger: Logger(minimum: .debug, sink: s.logs), output: { _ in })
    }

    static func write(_ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "zdd-\(UUID().uuidString).json"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func running(_ s: Stack, _ id: String) async -> Set<String> {
        Set(await s.sim.tasks(id).filter { $0.state == .running }.map(\.id))
    }

    /// Blue (3 instances) is replaced by green under load, with the load balancer's stats page
    /// watched: old tasks are killed only once HAProxy shows them drained.
    @Test func blueGreenDeployUnderLoadNeitherFailsNorReloads() async throws {
        var o = Stack.Options()
        o.statsPort = try freePort()
        o.killGrace = 0.3
        let s = try await Stack.start([], o)
        try await withCleanup {
            let port = try freePort(), alt = try freePort()
            let stats = "http://127.0.0.1:\(o.statsPort!)"
            let v1 = try JSONValue.parse(Self.definition("/zdd/web", group: "zdd-web", port: port, altPort: alt, instances: 3, version: "v1"))
            // The group's first colour: blue on the app's own port (one reload: a new backend).
            #expect(await (try Self.runner(s, stats: [stats])).run(definition: v1) == .succeeded("/zdd/web-blue deployed (3 instances); it was the group's first colour"))
            let blue = await running(s, "/zdd/web-blue")
            #expect(blue.count == 3)
            try await eventually("blue routed on the group's port") { await s.routed(port: port, count: 16) == blue }
            try await eventually("the controller idle") { s.controller.isIdle }
            let reloads = try await s.haproxy.reloadCount()

            let load = LoadGenerator(targets: [.init(name: "keep-alive", port: port, keepAlive: true),
                                               .init(name: "new-connection", port: port, keepAlive: false)],
                                     ratePerTarget: 40, maxDuration: 180, trackTasks: true)
            load.start()
            try await eventually("load on blue") { load.totals.ok > 20 }
            let v2 = try JSONValue.parse(Self.definition("/zdd/web", group: "zdd-web", port: port, altPort: alt, instances: 3, version: "v2"))
            let outcome = await (try Self.runner(s, stats: [stats])).run(definition: v2)
            #expect(outcome == .succeeded("/zdd/web-green serves with 3 instance(s); /zdd/web-blue deleted"), "\(s.reloadLog)")
            let green = await running(s, "/zdd/web-green")
            #expect(green.count == 3)
            #expect(await s.sim.app("/zdd/web-blue") == nil)
            try await eventually("green routed on the group's port") { await s.routed(port: port, count: 16) == green }
            try await eventually("the last pass done") { s.controller.isIdle }
            let okAfter = load.totals.ok
            try await eventually("load on green alone") { load.totals.ok > okAfter + 20 }
            let counts = await load.finish()
            let total = counts.values.reduce(0) { $0 + $1.total }, failed = counts.values.reduce(0) { $0 + $1.failed }
            #expect(total > 60)
            #expect(failed == 0, "\(counts)")
            // Both colours answered through the one backend; no reload from the first green task
            // to blue's deletion.
            let byTask = counts.values.reduce(into: [String: Int]()) { $0.merge($1.byTask) { $0 + $1 } }
            #expect(Set(byTask.keys).isSuperset(of: green), "\(byTask)")
            #expect(!Set(byTask.keys).isDisjoint(with: blue))
            #expect(try await s.haproxy.reloadCount() == reloads, "\(s.reloadLog)")
            // The group's service is one backend named after the group: blue's service port and
            // green's alternate port are never bound.
            let config = try String(contentsOfFile: s.haproxy.configPath, encoding: .utf8)
            #expect(config.contains("backend zdd-web_\(port)\n"))
            #expect(!config.contains(":\(alt)\n"))
        } cleanup: {
            await s.stop()
        }
    }

    /// The same without a stats page to watch: zdd kills what the load balancer drains (the same
    /// computation), relying on the kill grace period for requests in flight.
    @Test func withoutAStatsPageTheDrainedTasksAreKilledDirectly() async throws {
        var o = Stack.Options()
        o.killGrace = 0.5
        let s = try await Stack.start([], o)
        try await withCleanup {
            let port = try freePort(), alt = try freePort()
            let v1 = try JSONValue.parse(Self.definition("/zdd/plain", group: "zdd-plain", port: port, altPort: alt, instances: 2, version: "v1"))
            #expect(await (try Self.runner(s, stats: [])).run(definition: v1) == .succeeded("/zdd/plain-blue deployed (2 instances); it was the group's first colour"))
            let blue = await running(s, "/zdd/plain-blue")
            try await eventually("blue routed") { await s.routed(port: port, count: 12) == blue }
            try await eventually("the controller idle") { s.controller.isIdle }
            let reloads = try await s.haproxy.reloadCount()
            let load = LoadGenerator(targets: [.init(name: "new-connection", port: port, keepAlive: false)], ratePerTarget: 40, maxDuration: 180)
            load.start()
            try await eventually("load on blue") { load.totals.ok > 20 }
            let v2 = try JSONValue.parse(Self.definition("/zdd/plain", group: "zdd-plain", port: port, altPort: alt, instances: 2, version: "v2"))
            #expect(await (try Self.runner(s, stats: [])).run(definition: v2) == .succeeded("/zdd/plain-green serves with 2 instance(s); /zdd/plain-blue deleted"))
            let green = await running(s, "/zdd/plain-green")
            try await eventually("green routed") { await s.routed(port: port, count: 12) == green }
            let counts = await load.finish()
            #expect(counts.values.reduce(0) { $0 + $1.failed } == 0, "\(counts)")
            #expect(try await s.haproxy.reloadCount() == reloads, "\(s.reloadLog)")
        } cleanup: {
            await s.stop()
        }
    }

    /// A deploy that fails half-way (the pre-kill hook refuses the second kill) is aborted cleanly:
    /// the old colour is scaled back to its size and serves, the new colour is deleted, nothing
    /// failed, nothing reloaded, and zdd does not report success.
    @Test func anAbortedDeployLeavesTheOldColourServing() async throws {
        var o = Stack.Options()
        o.statsPort = try freePort()
        let s = try await Stack.start([], o)
        let dir = NSTemporaryDirectory() + "zdd-hook-\(UUID().uuidString)"
        try await withCleanup {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let hook = dir + "/hook.sh"
            // Succeeds once (and records its arguments), then fails.
            try """
                #!/bin/sh
                n=$(cat "\(dir)/calls" 2>/dev/null || echo 0)
                n=$((n + 1))
                echo "$n" > "\(dir)/calls"
                printf '%s\\n' "$2" > "\(dir)/tasks-$n"
                [ "$n" -lt 2 ] || { echo "refusing kill number $n" >&2; exit 3; }
                """.write(toFile: hook, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: hook)
            let port = try freePort(), alt = try freePort()
            let stats = "http://127.0.0.1:\(o.statsPort!)"
            let v1 = try JSONValue.parse(Self.definition("/zdd/abort", group: "zdd-abort", port: port, altPort: alt, instances: 3, version: "v1"))
            #expect(await (try Self.runner(s, stats: [stats])).run(definition: v1) == .succeeded("/zdd/abort-blue deployed (3 instances); it was the group's first colour"))
            let blue = await running(s, "/zdd/abort-blue")
            try await eventually("blue routed") { await s.routed(port: port, count: 16) == blue }
            try await eventually("the controller idle") { s.controller.isIdle }
            let reloads = try await s.haproxy.reloadCount()
            let load = LoadGenerator(targets: [.init(name: "keep-alive", port: port, keepAlive: true),
                                               .init(name: "new-connection", port: port, keepAlive: false)], ratePerTarget: 40, maxDuration: 180)
            load.start()
            try await eventually("load on blue") { load.totals.ok > 20 }

            let v2 = try JSONValue.parse(Self.definition("/zdd/abort", group: "zdd-abort", port: port, altPort: alt, instances: 3, version: "v2"))
            let outcome = await (try Self.runner(s, stats: [stats], hook: hook)).run(definition: v2)
            guard case .failed(let message) = outcome else {
                Issue.record("an aborted deploy reported success: \(outcome)")
                return
            }
            #expect(message.contains("pre-kill hook"), "\(message)")
            #expect(message.contains("/zdd/abort-blue serves with 3 instance(s) again and /zdd/abort-green was deleted"), "\(message)")
            // The hook saw the first kill (one drained blue task) as JSON.
            let firstKill = try String(contentsOfFile: dir + "/tasks-1", encoding: .utf8)
            #expect(firstKill.hasPrefix("[\"zdd_abort-blue."), "\(firstKill)")
            #expect(await s.sim.app("/zdd/abort-green") == nil)
            #expect(await s.sim.app("/zdd/abort-blue")?.instances == 3)
            let restored = await running(s, "/zdd/abort-blue")
            #expect(restored.count == 3)
            try await eventually("blue routed again, green gone") { await s.routed(port: port, count: 16) == restored }
            let counts = await load.finish()
            #expect(counts.values.reduce(0) { $0 + $1.failed } == 0, "\(counts)")
            #expect(try await s.haproxy.reloadCount() == reloads, "\(s.reloadLog)")
        } cleanup: {
            await s.stop()
            try? FileManager.default.removeItem(atPath: dir)
        }
    }

    /// SIGINT in the middle of a deploy (here: while the new colour's first task is up and old
    /// tasks are draining) is a clean abort too; `--resume` afterwards is not needed.
    @Test func anInterruptedDeployIsAbortedCleanly() async throws {
        var o = Stack.Options()
        o.statsPort = try freePort()
        let s = try await Stack.start([], o)
        try await withCleanup {
            let port = try freePort(), alt = try freePort()
            let stats = "http://127.0.0.1:\(o.statsPort!)"
            let v1 = try JSONValue.parse(Self.definition("/zdd/int", group: "zdd-int", port: port, altPort: alt, instances: 2, version: "v1"))
            #expect(await (try Self.runner(s, stats: [stats])).run(definition: v1) == .succeeded("/zdd/int-blue deployed (2 instances); it was the group's first colour"))
            let blue = await running(s, "/zdd/int-blue")
            try await eventually("blue routed") { await s.routed(port: port, count: 12) == blue }
            let load = LoadGenerator(targets: [.init(name: "new-connection", port: port, keepAlive: false)], ratePerTarget: 40, maxDuration: 180)
            load.start()
            // A stats page that never shows the old task drained: the deploy waits there.
            let runner = try Self.runner(s, stats: [stats, "http://127.0.0.1:\(try freePort())"])
            let v2 = try JSONValue.parse(Self.definition("/zdd/int", group: "zdd-int", port: port, altPort: alt, instances: 2, version: "v2"))
            let deploy = Task { await runner.run(definition: v2) }
            try await eventually("the new colour running") { await running(s, "/zdd/int-green").count == 1 }
            runner.interrupt(SIGINT)
            let outcome = await deploy.value
            #expect(outcome == .failed("aborted (SIGINT received); /zdd/int-blue serves with 2 instance(s) again and /zdd/int-green was deleted"))
            #expect(await s.sim.app("/zdd/int-green") == nil)
            let restored = await running(s, "/zdd/int-blue")
            try await eventually("blue alone routed") { await s.routed(port: port, count: 12) == restored }
            let counts = await load.finish()
            #expect(counts.values.reduce(0) { $0 + $1.failed } == 0, "\(counts)")
        } cleanup: {
            await s.stop()
        }
    }

    /// An interrupted deploy (both colours left) is finished by `--resume`: the newer colour
    /// replaces the older.
    @Test func resumeFinishesADeployLeftHalfWay() async throws {
        let s = try await Stack.start([])
        try await withCleanup {
            let port = try freePort(), alt = try freePort()
            func labels(_ colour: String, _ at: String) -> [String: String] {
                ["HAPROXY_GROUP": "external", "HAPROXY_DEPLOYMENT_GROUP": "zdd-res", "HAPROXY_DEPLOYMENT_COLOUR": colour,
                 "HAPROXY_0_PORT": String(port), "HAPROXY_DEPLOYMENT_ALT_PORT": String(alt), "HAPROXY_DEPLOYMENT_STARTED_AT": at,
                 "HAPROXY_DEPLOYMENT_TARGET_INSTANCES": "3", "HAPROXY_DEPLOYMENT_NEW_INSTANCES": "0"]
            }
            _ = try await s.sim.createApp(AppSpec(id: "/zdd/res-blue", instances: 2, labels: labels("blue", "2026-03-01T10:00:00"),
                                                  portDefinitions: [.init(port: port)]))
            _ = try await s.sim.createApp(AppSpec(id: "/zdd/res-green", instances: 1, labels: labels("green", "2026-03-01T11:00:00"),
                                                  portDefinitions: [.init(port: alt)]))
            try await s.sim.waitForDeployments()
            try await eventually("both colours routed on the group's port") {
                await s.routed(port: port, count: 16).count == 3
            }
            var settings = ZDDSettings()
            settings.force = true
            settings.resume = true
            settings.groupName = "zdd-res"
            settings.stepDelay = 0.2
            settings.timeout = 120
            let client = MarathonClient(endpoints: try MarathonEndpoints(urls: [URL(string: s.sim.url)!]))
            let outcome = await ZDDRunner(client: client, settings: settings, logger: .silent, output: { _ in }).run(definition: nil)
            #expect(outcome == .succeeded("/zdd/res-green serves with 3 instance(s); /zdd/res-blue deleted"))
            let green = await running(s, "/zdd/res-green")
            #expect(green.count == 3)
            try await eventually("green alone routed") { await s.routed(port: port, count: 16) == green }
        } cleanup: {
            await s.stop()
        }
    }

    /// What zdd refuses, and what `--dry-run` shows, without changing anything.
    @Test func dryRunAndRefusals() async throws {
        let s = try await Stack.start([])
        try await withCleanup {
            let port = try freePort(), alt = try freePort()
            let v1 = try JSONValue.parse(Self.definition("/zdd/dry", group: "zdd-dry", port: port, altPort: alt, instances: 2, version: "v1"))
            var settings = ZDDSettings()
            settings.dryRun = true
            let printed = Holder<String>("")
            let client = MarathonClient(endpoints: try MarathonEndpoints(urls: [URL(string: s.sim.url)!]))
            let dry = ZDDRunner(client: client, settings: settings, logger: .silent, output: { printed.value = (printed.value ?? "") + $0 })
            #expect(await dry.run(definition: v1) == .succeeded("dry run: nothing changed"))
            let shown = try JSONValue.parse(printed.value ?? "")
            #expect(shown["id"] == .string("/zdd/dry-blue"))
            #expect(shown["labels"]?["HAPROXY_DEPLOYMENT_COLOUR"] == .string("blue"))
            #expect(await s.sim.apps().isEmpty, "a dry run creates nothing")

            // Two colours already: a deploy is in progress; zdd says how to go on.
            for colour in ["blue", "green"] {
                _ = try await s.sim.createApp(AppSpec(id: "/zdd/dry-\(colour)", instances: 1,
                                                      labels: ["HAPROXY_DEPLOYMENT_GROUP": "zdd-dry", "HAPROXY_DEPLOYMENT_COLOUR": colour],
                                                      portDefinitions: [.init(port: colour == "blue" ? port : alt)]))
            }
            let busy = await (try Self.runner(s, stats: [])).run(definition: v1)
            #expect(busy == .failed("deployment group zdd-dry already has 2 apps (/zdd/dry-blue, /zdd/dry-green): a deploy is in progress; finish it with --resume, or delete one of them"))
        } cleanup: {
            await s.stop()
        }
    }
}
