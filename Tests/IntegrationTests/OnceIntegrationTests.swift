import Foundation
import Testing
import ServiceRouterCore
import ServiceRouterIO
@testable import ServiceRouterController
@testable import ServiceRouterCLI
import ServiceRouterTestSupport

/// `once` against a real HAProxy 2.6: task changes go through the runtime API with no reload;
/// structure changes cause exactly one validated reload.
@Suite(.enabled(if: HAProxyHarness.isAvailable, "haproxy is not on PATH (.ci/run installs it)"))
struct OnceIntegrationTests {
    func reconciler(_ h: HAProxyHarness, httpPort: Int, minSlots: Int = 4, logger: Logger = .silent) throws -> Reconciler {
        let render = RenderOptions(adminSocket: h.socketPath, httpPort: httpPort, appIdPort: nil, stats: nil, bindAddress: "127.0.0.1")
        let settings = ReconcilerSettings(pass: PassSettings(
            routing: RoutingOptions(groups: ["external"], minSlots: minSlots, reservedPorts: render.reservedPorts),
            render: render, templates: try TemplateSet()), configPath: h.configPath)
        return Reconciler(settings: settings, runtime: h.runtime, control: h.control, resolver: CachingHostResolver(), logger: logger)
    }

    /// Distinct bodies seen over `count` new-connection requests.
    func seen(port: Int, count: Int = 12, host: String? = nil) async -> Set<String> {
        await responses(port: port, host: host, count: count)
    }

    @Test func taskChurnChangesRoutingWithoutReload() async throws {
        let h = try HAProxyHarness(name: "churn")
        try await h.start()
        defer { h.stop() }
        let a = try TaskServer(id: "web.a"), b = try TaskServer(id: "web.b"), c = try TaskServer(id: "web.c"), d = try TaskServer(id: "web.d")
        let port = try freePort()
        let r = try reconciler(h, httpPort: try freePort())

        await r.replace(with: AppsSnapshot(apps: [testApp("/web", servicePort: port, tasks: [("web.a", a.port), ("web.b", b.port)])]))
        let first = await r.fullPass(reason: "test")
        #expect(first.error == nil)
        #expect(first.reloaded, "the minimal config is not ours: the first pass must reload")
        #expect(await seen(port: port) == ["web.a", "web.b"])
        let reloads = try await h.reloadCount()
        let pid = try await h.workerPid()

        // Replace b by c.
        b.stop()
        await r.replace(with: AppsSnapshot(apps: [testApp("/web", servicePort: port, tasks: [("web.a", a.port), ("web.c", c.port)])]))
        let second = await r.fullPass(reason: "test")
        #expect(!second.reloaded)
        #expect(second.reloadReasons.isEmpty)
        #expect(!second.commands.isEmpty)
        #expect(await seen(port: port) == ["web.a", "web.c"])

        // Add d, then kill a.
        await r.replace(with: AppsSnapshot(apps: [testApp("/web", servicePort: port, tasks: [("web.a", a.port), ("web.c", c.port), ("web.d", d.port)], instances: 2)]))
        let third = await r.fullPass(reason: "test")
        #expect(third.reloadReasons.isEmpty)
        #expect(await seen(port: port, count: 15) == ["web.a", "web.c", "web.d"])
        a.stop()
        await r.replace(with: AppsSnapshot(apps: [testApp("/web", servicePort: port, tasks: [("web.c", c.port), ("web.d", d.port)])]))
        let fourth = await r.fullPass(reason: "test")
        #expect(fourth.reloadReasons.isEmpty)
        #expect(await seen(port: port) == ["web.c", "web.d"])

        // HAProxy's own view: same worker, no reload.
        #expect(try await h.reloadCount() == reloads)
        #expect(try await h.workerPid() == pid)

        // Nothing changed → no command at all.
        let idle = await r.fullPass(reason: "test")
        #expect(idle.commands.isEmpty)
        #expect(!idle.reloaded)
    }

    @Test func newPortOrVhostCausesExactlyOneReload() async throws {
        let h = try HAProxyHarness(name: "reload")
        try await h.start()
        defer { h.stop() }
        let a = try TaskServer(id: "api.a"), b = try TaskServer(id: "shop.b")
        let httpPort = try freePort(), apiPort = try freePort(), shopPort = try freePort()
        let r = try reconciler(h, httpPort: httpPort)
        let api = testApp("/api", servicePort: apiPort, tasks: [("api.a", a.port)])
        await r.replace(with: AppsSnapshot(apps: [api]))
        _ = await r.fullPass(reason: "test")
        let before = try await h.reloadCount()

        // A new app (new port and a vhost): one reload.
        let shop = testApp("/shop", servicePort: shopPort, tasks: [("shop.b", b.port)],
                           labels: ["HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "shop.example.com"])
        await r.replace(with: AppsSnapshot(apps: [api, shop]))
        let s = await r.fullPass(reason: "test")
        #expect(s.reloaded)
        #expect(s.reloadReasons.contains { $0.message.contains("new backend shop_\(shopPort)") })
        #expect(try await h.reloadCount() == before + 1)
        #expect(try await httpGet(port: httpPort, host: "shop.example.com").body == "shop.b")
        #expect(try await httpGet(port: shopPort).body == "shop.b")

        // A vhost change on an existing app: the vhost map changes at runtime, no reload.
        var moved = shop
        moved.labels["HAPROXY_0_VHOST"] = "store.example.com"
        await r.replace(with: AppsSnapshot(apps: [api, moved]))
        let v = await r.fullPass(reason: "test")
        #expect(!v.reloaded, "\(v.reloadReasons)")
        #expect(v.mapEdits.count == 1)
        #expect(try await h.reloadCount() == before + 1)
        #expect(try await httpGet(port: httpPort, host: "store.example.com").body == "shop.b")
        #expect(try await httpGet(port: httpPort, host: "shop.example.com").status == 503)

        // Again, unchanged: nothing.
        let idle = await r.fullPass(reason: "test")
        #expect(!idle.reloaded && idle.commands.isEmpty && idle.mapEdits.isEmpty)
        #expect(try await h.reloadCount() == before + 1)
    }

    @Test func restartWithLastWrittenConfigRoutesToSameTasks() async throws {
        let h = try HAProxyHarness(name: "restart")
        try await h.start()
        defer { h.stop() }
        let a = try TaskServer(id: "svc.a"), b = try TaskServer(id: "svc.b"), c = try TaskServer(id: "svc.c")
        let port = try freePort()
        let r = try reconciler(h, httpPort: try freePort())
        await r.replace(with: AppsSnapshot(apps: [testApp("/svc", servicePort: port, tasks: [("svc.a", a.port), ("svc.b", b.port)])]))
        _ = await r.fullPass(reason: "test")
        // A runtime-only change (no reload) must still reach the file.
        await r.replace(with: AppsSnapshot(apps: [testApp("/svc", servicePort: port, tasks: [("svc.a", a.port), ("svc.c", c.port)])]))
        let s = await r.fullPass(reason: "test")
        #expect(!s.reloaded)
        #expect(s.configWritten)
        b.stop()

        try await h.restart()
        #expect(await seen(port: port) == ["svc.a", "svc.c"])
        let after = await r.fullPass(reason: "test")
        #expect(!after.reloaded)
        #expect(after.commands.isEmpty, "the restarted HAProxy already has every task: \(after.commands)")
    }

    @Test func adoptsLiveSlotsInsteadOfReshuffling() async throws {
        let h = try HAProxyHarness(name: "adopt")
        try await h.start()
        defer { h.stop() }
        let tasks = try (0..<3).map { try TaskServer(id: "adopt.\($0)") }
        let port = try freePort(), httpPort = try freePort()
        let app = testApp("/adopt", servicePort: port, tasks: tasks.map { ($0.id, $0.port) })
        let first = try reconciler(h, httpPort: httpPort)
        await first.replace(with: AppsSnapshot(apps: [app]))
        _ = await first.fullPass(reason: "test")
        let liveBefore = try await h.runtime.liveState()

        // A new controller (restart): it adopts, sends nothing, reloads nothing.
        let second = try reconciler(h, httpPort: httpPort)
        var reordered = app
        reordered.tasks.reverse()
        await second.replace(with: AppsSnapshot(apps: [reordered]))
        let s = await second.fullPass(reason: "test")
        #expect(!s.reloaded)
        #expect(s.commands.isEmpty)
        #expect(try await h.runtime.liveState() == liveBefore)
    }
}

/// Every captured Marathon payload renders a config that HAProxy accepts.
@Suite(.enabled(if: HAProxyHarness.isAvailable, "haproxy is not on PATH (.ci/run installs it)"))
struct FixtureConfigTests {
    static let fixtures = ["marathon15_apps.json", "zdd_apps.json", "zdd_app_blue_marathon1.5.json", "1-nginx.json",
                           "1-nginx-marathon1.5.json", "app.json", "app_list.json", "app-check-http-example.json"]

    @Test(arguments: fixtures)
    func renderedConfigPassesHAProxyCheck(_ name: String) throws {
        let url = try Fixture.url(name)
        let (apps, _) = try MarathonDecoding.apps(from: Data(contentsOf: url))
        let dir = NSTemporaryDirectory() + "sr-fixture-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let render = RenderOptions(adminSocket: dir + "/admin.sock", stats: .init(address: "127.0.0.1", port: 9090), bindAddress: "127.0.0.1")
        let desired = DesiredStateBuilder.build(apps: apps, options: RoutingOptions(groups: ["*"], reservedPorts: render.reservedPorts))
        let plan = SlotPlanner.plan(desired: desired, live: LiveState())
        let config = try ConfigRenderer.render(desired: desired, plan: plan, templates: TemplateSet(), options: render)
        let path = dir + "/haproxy.cfg"
        try config.text.write(toFile: path, atomically: true, encoding: .utf8)
        for (file, entries) in config.maps {
            try entries.map { "\($0.key) \($0.value)\n" }.joined().write(toFile: file, atomically: true, encoding: .utf8)
        }
        let result = try ProcessRunner.run("haproxy", ["-c", "-f", path])
        #expect(result.status == 0, "\(result.output)")
    }
}

/// In CI (`scripts/test` sets SERVICEROUTER_REQUIRE_HAPROXY=1) the real-HAProxy suites must run.
@Test func haproxyIsAvailableWhenRequired() {
    if ProcessInfo.processInfo.environment["SERVICEROUTER_REQUIRE_HAPROXY"] == "1" {
        #expect(HAProxyHarness.isAvailable, "haproxy must be on PATH: the integration suites would be skipped")
    }
}
