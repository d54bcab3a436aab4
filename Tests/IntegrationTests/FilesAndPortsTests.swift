import Foundation
import Testing
import MarathonSimulator
import ServiceRouterCore
import ServiceRouterIO
@testable import ServiceRouterController
import ServiceRouterTestSupport

/// What only a real HAProxy shows: the files on disk reproduce what it serves (a restart from them
/// routes the same), and a port held by another process leaves only its service out.
@Suite(.serialized, .enabled(if: HAProxyProcess.isAvailable, "haproxy is not on PATH (.ci/run installs it)"))
struct FilesAndPortsTests {
    /// A vhost moved at runtime (map edit, no reload) is in the map file too: HAProxy restarted
    /// from the files routes the new host, and the old one no longer.
    @Test func vhostMapFilesFollowRuntimeChangesAndSurviveARestart() async throws {
        let s = try await Stack.start([webApp("/files/web", instances: 2, labels: ["HAPROXY_0_VHOST": "a.files.local"])])
        try await withCleanup {
            try await s.waitConverged("/files/web")
            let want = await s.taskIds("/files/web")
            try await eventually("host a routed") { await s.routed(port: s.httpPort, host: "a.files.local") == want }
            let reloads = try await s.haproxy.reloadCount()
            try await s.sim.updateLabels("/files/web", ["HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "b.files.local"])
            // A label change is a deployment: Marathon replaces the tasks.
            try await s.sim.waitForDeployments()
            try await s.waitConverged("/files/web")
            let moved = await s.taskIds("/files/web")
            try await eventually("host b routed") { await s.routed(port: s.httpPort, host: "b.files.local") == moved }
            #expect(try await s.haproxy.reloadCount() == reloads, "a vhost move is a map edit: \(s.reloadLog)")
            let mapFile = s.haproxy.directory + "/servicerouter-vhost.map"
            try await eventually("the map file rewritten") {
                let text = try String(contentsOfFile: mapFile, encoding: .utf8)
                return text.contains("b.files.local ") && !text.contains("a.files.local ")
            }
            // The controller exits (as on SIGTERM); HAProxy starts again from the files alone.
            await s.stopController()
            try await s.haproxy.restart()
            try await eventually("host b routed after the restart") { await s.routed(port: s.httpPort, host: "b.files.local") == moved }
            #expect(await s.routed(port: s.httpPort, host: "a.files.local", count: 4) == ["status 503"])
        } cleanup: {
            await s.stop()
        }
    }

    /// A new app whose service port another process holds: `haproxy -c` accepts the config, the
    /// reload would fail as a whole. The port is found before the reload, only that app is left
    /// out (with a log line and a metric), the other new app is routed, and the left-out app comes
    /// in once the port is free.
    @Test func aServicePortInUseLeavesOnlyThatAppOut() async throws {
        let s = try await Stack.start([webApp("/ports/first", instances: 1)])
        try await withCleanup {
            try await s.waitConverged("/ports/first")
            let takenPort = try freePort(), otherPort = try freePort()
            let squatter = Holder(try Listener.tcp(host: "0.0.0.0", port: takenPort))
            _ = try await s.sim.createApp(AppSpec(id: "/ports/taken", instances: 1, labels: ["HAPROXY_GROUP": "external"],
                                                   portDefinitions: [.init(port: takenPort)]))
            _ = try await s.sim.createApp(AppSpec(id: "/ports/other", instances: 1, labels: ["HAPROXY_GROUP": "external"],
                                                   portDefinitions: [.init(port: otherPort)]))
            try await s.sim.waitForDeployments()
            try await s.waitConverged("/ports/other")
            #expect(s.logs.all.contains { $0.message.hasPrefix("service left out: its port is in use") && $0.field("app") == "/ports/taken" })
            try await eventually("the pass that left it out counted") {
                s.reconciler.metrics.prometheus().contains("servicerouter_services_left_out{reason=\"port_in_use\"} 1\n")
            }
            #expect(s.reconciler.metrics.degradedReason == nil)
            #expect(s.logs.all.filter { $0.message == "reload failed" }.isEmpty, "\(s.reloadLog)")
            // Freed: the next full pass routes it.
            squatter.value = nil
            s.controller.queue.push(.resync("test: the port is free"))
            try await s.waitConverged("/ports/taken")
        } cleanup: {
            await s.stop()
        }
    }

    /// `/v2/apps` hangs (a resync asked for it) while the event stream keeps delivering: a task
    /// replaced meanwhile is routed at once, long before the fetch ends — not behind it.
    @Test func taskEventsAreAppliedWhileASnapshotFetchHangs() async throws {
        var o = Stack.Options()
        o.requestTimeout = 60
        let s = try await Stack.start([webApp("/slow/web", instances: 2)], o)
        try await withCleanup {
            try await s.waitConverged("/slow/web")
            try await eventually("the start-up passes over") { s.controller.isIdle }
            let passes = s.controller.fullPasses
            s.sim.hangNextRequests(1, seconds: 30)
            s.controller.queue.push(.resync("test: Marathon is slow"))
            try await eventually("the fetch under way") { !s.controller.isIdle }
            _ = try await s.sim.replaceTask("/slow/web")
            try await s.waitConverged("/slow/web")
            #expect(s.controller.fullPasses == passes, "routed by the fast path while the fetch still hangs: \(s.reloadLog)")
        } cleanup: {
            await s.stop()
        }
    }
}
