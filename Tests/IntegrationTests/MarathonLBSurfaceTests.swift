import Foundation
import MarathonSimulator
import Testing
import ServiceRouterCore
import ServiceRouterIO
@testable import ServiceRouterController
@testable import ServiceRouterCLI
import ServiceRouterTestSupport

/// The rest of marathon-lb's surface, through the real HAProxy: automatic service ports for
/// IP-per-task apps, and what `HAPROXY_{n}_BACKEND_WEIGHT` decides in each routing mode (exactly
/// as docs/labels.md says).
@Suite(.serialized, .enabled(if: HAProxyProcess.isAvailable, "haproxy is not on PATH (.ci/run installs it)"))
struct MarathonLBSurfaceTests {
    /// An IP-per-task app in Marathon 1.4's shape has no service port; with the range given, it
    /// gets marathon-lb's port for it (the same one every instance computes), and is routed there
    /// and by its vhost.
    @Test func ipPerTaskAppsWithoutServicePortsGetTheirPortFromTheRange() async throws {
        // A range outside freePort's (12000-19999), the simulator's and the kernel's ephemeral
        // ports; the container port is chosen so that the port the range gives is free here.
        let range = 7000...7999
        var o = Stack.Options()
        o.ipPerTaskServicePorts = range
        var containerPort = 18000 + Int.random(in: 0..<1000), port = 0
        for _ in 0..<50 {
            var probe = ServicePortAssigner(range: range)
            port = probe.port(appId: "/ipt/web", containerPort: containerPort) ?? 0
            if (try? Listener.tcp(host: "0.0.0.0", port: port)) != nil { break }
            containerPort += 1
        }
        let s = try await Stack.start([], o)
        try await withCleanup {
            _ = try await s.sim.createApp(json: """
                {"id": "/ipt/web", "instances": 2, "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "ipt.example.com"},
                 "container": {"type": "DOCKER", "docker": {"image": "nginx"}},
                 "ipAddress": {"networkName": "dcos", "discovery": {"ports": [{"number": \(containerPort), "name": "http", "protocol": "tcp"}]}}}
                """)
            try await s.sim.waitForDeployments()
            let tasks = await s.taskIds("/ipt/web")
            #expect(tasks.count == 2)
            try await eventually("the app routed on its assigned port") { await s.routed(port: port, count: 12) == tasks }
            #expect(await s.routed(port: s.httpPort, host: "ipt.example.com", count: 12) == tasks)
            // Task churn on such an app goes through the runtime API like any other.
            let reloads = try await s.haproxy.reloadCount()
            _ = try await s.sim.replaceTask("/ipt/web")
            try await s.sim.waitForDeployments()
            let now = await s.taskIds("/ipt/web")
            try await eventually("the replacement routed") { await s.routed(port: port, count: 12) == now }
            #expect(try await s.haproxy.reloadCount() == reloads, "\(s.reloadLog)")
        } cleanup: {
            await s.stop()
        }
    }

    typealias Router = LabelRoutingTests.Router

    func app(_ id: String, _ task: TaskServer, _ labels: [String: String]) throws -> MarathonApp {
        var l = ["HAPROXY_GROUP": "external"]
        l.merge(labels) { _, new in new }
        return MarathonApp(id: id, labels: l, instances: 1, configChangedAt: "2026-01-01T00:00:00.000Z", servicePorts: [try freePort()],
                           tasks: [MarathonTask(id: task.id, appId: id, host: "127.0.0.1", ports: [task.port])])
    }

    func with(acl: Bool, _ body: (Router) async throws -> Void) async throws {
        let r = try await Router(acl: acl)
        do { try await body(r) } catch {
            await r.stop()
            throw error
        }
        await r.stop()
    }

    /// A plain vhost with a higher weight than a vhost + path on the same host: in acl mode its
    /// rule comes first and catches the path too; in map mode the path entry wins (weights do not
    /// reorder map lookups).
    @Test(arguments: [true, false])
    func aHeavierPlainVhostAgainstAPath(acl: Bool) async throws {
        try await with(acl: acl) { r in
            let site = try TaskServer(id: "w.site"), api = try TaskServer(id: "w.api")
            try await r.apply([
                try app("/w-site", site, ["HAPROXY_0_VHOST": "w.example.com", "HAPROXY_0_BACKEND_WEIGHT": "5"]),
                try app("/w-api", api, ["HAPROXY_0_VHOST": "w.example.com", "HAPROXY_0_PATH": "/api"]),
            ])
            #expect(try await httpRequest(port: r.httpPort, path: "/api/x", host: "w.example.com").body == (acl ? "w.site" : "w.api"))
            #expect(try await httpRequest(port: r.httpPort, path: "/other", host: "w.example.com").body == "w.site")
        }
    }

    /// Two paths of one host, the shorter one heavier: acl mode tries the heavier rule first, map
    /// mode picks the longest prefix.
    @Test(arguments: [true, false])
    func aHeavierShorterPathAgainstALongerOne(acl: Bool) async throws {
        try await with(acl: acl) { r in
            let wide = try TaskServer(id: "p.wide"), narrow = try TaskServer(id: "p.narrow")
            try await r.apply([
                try app("/p-wide", wide, ["HAPROXY_0_VHOST": "p.example.com", "HAPROXY_0_PATH": "/", "HAPROXY_0_BACKEND_WEIGHT": "5"]),
                try app("/p-narrow", narrow, ["HAPROXY_0_VHOST": "p.example.com", "HAPROXY_0_PATH": "/n", "HAPROXY_0_BACKEND_WEIGHT": "1"]),
            ])
            #expect(try await httpRequest(port: r.httpPort, path: "/n/x", host: "p.example.com").body == (acl ? "p.wide" : "p.narrow"))
            #expect(try await httpRequest(port: r.httpPort, path: "/x", host: "p.example.com").body == "p.wide")
        }
    }

    /// In map mode, services that need explicit rules (here REDIRECT_TO_HTTPS) are matched before
    /// any map entry, whatever the weights and path lengths.
    @Test func explicitRulesComeBeforeTheMaps() async throws {
        try await with(acl: false) { r in
            let secure = try TaskServer(id: "e.secure"), deep = try TaskServer(id: "e.deep")
            try await r.apply([
                try app("/e-secure", secure, ["HAPROXY_0_VHOST": "e.example.com", "HAPROXY_0_PATH": "/a", "HAPROXY_0_REDIRECT_TO_HTTPS": "true",
                                              "HAPROXY_0_BACKEND_WEIGHT": "-5"]),
                try app("/e-deep", deep, ["HAPROXY_0_VHOST": "e.example.com", "HAPROXY_0_PATH": "/a/b", "HAPROXY_0_BACKEND_WEIGHT": "50"]),
            ])
            #expect(try await httpRequest(port: r.httpPort, path: "/a/b/x", host: "e.example.com").status == 301)
        }
    }
}
