import Foundation
import MarathonSimulator
import Testing
import ServiceRouterCore
import ServiceRouterIO
@testable import ServiceRouterController
@testable import ServiceRouterCLI
import ServiceRouterTestSupport

/// `run` end to end: real HAProxy, the Marathon simulator, real task listeners.
@Suite(.enabled(if: HAProxyProcess.isAvailable, "haproxy is not on PATH (.ci/run installs it)"))
struct RunEndToEndTests {
    @Test func replacedTaskIsRoutedWithoutReload() async throws {
        try await Stack.with([webApp("/e2e/web", instances: 2)]) { s in
            try await s.waitConverged("/e2e/web")
            let port = try await s.servicePort("/e2e/web")
            let reloads = try await s.haproxy.reloadCount()
            let pid = try await s.haproxy.runtime.identity().pid
            s.controller.latencies.reset()

            for _ in 0..<3 {
                let before = await s.taskIds("/e2e/web")
                let killed = try await s.sim.replaceTask("/e2e/web")
                let routedIn = try await eventually("the replacement routed") {
                    let now = await s.taskIds("/e2e/web")
                    let fresh = now.subtracting(before)
                    guard !fresh.isEmpty else { return false }
                    return await s.routed(port: port, count: 10).isSuperset(of: fresh)
                }
                // The killed task leaves the rotation (drain, then maint) and never comes back.
                _ = try await eventually("the killed task out of rotation") { await !s.routed(port: port, count: 10).contains(killed) }
                print("replacement routed \(String(format: "%.1f", routedIn * 1000)) ms after the kill")
            }
            #expect(try await s.haproxy.reloadCount() == reloads, "task churn must not reload HAProxy: \(s.reloadLog)")
            #expect(try await s.haproxy.runtime.identity().pid == pid)
            #expect(s.controller.latencies.batches > 0, "the changes went through the event fast path")
        }
    }

    @Test func killedTaskStopsGettingNewRequests() async throws {
        try await Stack.with([webApp("/e2e/kill", instances: 3)]) { s in
            try await s.waitConverged("/e2e/kill")
            let port = try await s.servicePort("/e2e/kill")
            let victim = try #require(await s.taskIds("/e2e/kill").sorted().first)
            try await s.sim.killTask(victim, scale: true)
            _ = try await eventually("no new request reaches the killed task") {
                await !s.routed(port: port, count: 12).contains(victim)
            }
            // And it stays so: 30 more requests, none to the victim.
            #expect(await !s.routed(port: port, count: 30).contains(victim))
            #expect(await s.routed(port: port, count: 30).count == 2)
        }
    }

    @Test func recoversFromDroppedAndCutStreams() async throws {
        try await Stack.with([webApp("/e2e/drop", instances: 2)]) { s in
            try await s.waitConverged("/e2e/drop")
            s.sim.dropEventStreams()
            _ = try await s.sim.replaceTask("/e2e/drop")
            try await s.waitConverged("/e2e/drop")
            s.sim.cutEventStreamsMidEvent()
            _ = try await s.sim.replaceTask("/e2e/drop")
            try await s.waitConverged("/e2e/drop")
            #expect(s.logs.contains(.warning, "event stream disconnected"))
        }
    }

    @Test func silentStreamIsReconnectedAndResynced() async throws {
        var o = Stack.Options()
        o.streamTimeout = 1
        o.heartbeat = 0.3
        try await Stack.with([webApp("/e2e/silent", instances: 2)], o) { s in
            try await s.waitConverged("/e2e/silent")
            // Silence hides events too: the change is only learnt through the resync that follows
            // the reconnect.
            try await Task.sleep(nanoseconds: 500_000_000)  // let the start-up resyncs finish
            s.sim.silenceEventStreams(true)
            _ = try await s.sim.replaceTask("/e2e/silent")
            _ = try await eventually("the silent stream declared dead") { s.logs.contains(.warning, "event stream disconnected") }
            try await s.waitConverged("/e2e/silent", timeout: 15)
            s.sim.silenceEventStreams(false)
        }
    }

    @Test func followsTheLeaderFromAStandby() async throws {
        let leader = try await MarathonSimulator.start(.init(heartbeatInterval: 1, killGracePeriod: 0.3))
        let standby = try await MarathonSimulator.start(.init(heartbeatInterval: 1, standbyLeaderURL: leader.url))
        var o = Stack.Options()
        o.simulator = leader
        o.marathonURLs = [standby.url]
        defer { standby.stop() }
        try await Stack.with([webApp("/e2e/leader", instances: 2)], o) { s in
            try await s.waitConverged("/e2e/leader")
            _ = try await s.sim.replaceTask("/e2e/leader")
            try await s.waitConverged("/e2e/leader")
        }
    }

    @Test func survivesMarathon5xx() async throws {
        try await Stack.with([webApp("/e2e/five", instances: 2)]) { s in
            try await s.waitConverged("/e2e/five")
            s.sim.failNextRequests(4, status: 503)
            s.controller.queue.push(.resync("test"))
            _ = try await s.sim.replaceTask("/e2e/five")
            try await s.waitConverged("/e2e/five")
            s.sim.clearRequestFaults()
            s.controller.queue.push(.resync("test"))
            _ = try await s.sim.replaceTask("/e2e/five")
            try await s.waitConverged("/e2e/five")
            #expect(s.logs.contains(.error, "cannot fetch apps from Marathon"))
        }
    }

    @Test func haproxyRestartedBehindOurBackIsReapplied() async throws {
        try await Stack.with([webApp("/e2e/restart", instances: 2)]) { s in
            try await s.waitConverged("/e2e/restart")
            // Killed and restarted on the last written config: routing is there at once.
            try await s.haproxy.restart()
            try await s.waitConverged("/e2e/restart")
            _ = try await s.sim.replaceTask("/e2e/restart")
            try await s.waitConverged("/e2e/restart")

            // Replaced by a process with another config (the minimal one): servicerouter takes over again.
            await s.haproxy.shutdown()
            try HAProxyProcess.minimalConfig(socket: s.haproxy.socketPath).write(toFile: s.haproxy.configPath, atomically: true, encoding: .utf8)
            try await s.haproxy.start()
            try await s.waitConverged("/e2e/restart")
            // HAProxy now runs servicerouter's config again (it reloaded from the minimal one).
            #expect(try await s.haproxy.runtime.identity().structureHash != nil)
        }
    }

    @Test func healthCheckedTasksGetTrafficOnlyWhenHealthy() async throws {
        var o = Stack.Options()
        o.healthCheck = true
        try await Stack.with([webApp("/e2e/health", instances: 2, healthChecks: true)], o) { s in
            try await s.waitConverged("/e2e/health")
            let port = try await s.servicePort("/e2e/health")
            let sick = try #require(await s.taskIds("/e2e/health").sorted().first)
            try await s.sim.setHealth(sick, alive: false)
            _ = try await eventually("the unhealthy task out of rotation") { await !s.routed(port: port).contains(sick) }
            // A Marathon failover hides every health result: nothing is emptied.
            s.sim.hideHealthResults(true)
            let passes = s.controller.fullPasses
            s.controller.queue.push(.resync("test"))
            try await eventually("the resync's pass on the payload without health results") { s.controller.fullPasses > passes }
            let during = await s.routed(port: port, count: 12)
            #expect(!during.isEmpty && !during.contains { $0.hasPrefix("status") }, "backend emptied during failover: \(during)")
            #expect(!during.contains(sick))
            s.sim.hideHealthResults(false)
            try await s.sim.setHealth(sick, alive: true)
            _ = try await eventually("the recovered task back in rotation") { await s.routed(port: port, count: 16).contains(sick) }
        }
    }
}
