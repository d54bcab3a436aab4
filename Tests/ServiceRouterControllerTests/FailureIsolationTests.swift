import Testing
import ServiceRouterController
import ServiceRouterCore
import ServiceRouterIO
import ServiceRouterTestSupport

/// One bad app, port or value never blocks the others, and the controller says so.
@Suite struct FailureIsolationTests {
    func app(_ id: String, port: Int, task: Int) -> MarathonApp {
        harnessApp(id, port: port, tasks: [("\(id.dropFirst()).1", task)])
    }

    @Test func aServicePortHeldByAnotherProcessLeavesOnlyThatServiceOut() async throws {
        let h = try ControllerHarness(apps: [app("/web", port: 10000, task: 31001)])
        h.start()
        try await eventually("the first app served") { h.haproxy.serving("web_10000").count == 1 }
        // A new app on a port another process holds: haproxy -c cannot see it, the reload would fail.
        h.ports.hold(10001)
        h.source.set([app("/web", port: 10000, task: 31001), app("/taken", port: 10001, task: 31101), app("/new", port: 10002, task: 31201)])
        h.push(.structureChanged("api_post_event"))
        try await h.waitUntilIdle()
        h.time.advance(by: 1)
        try await eventually("the other new app served") { h.haproxy.serving("new_10002").count == 1 }
        #expect(!h.haproxy.backendNames.contains("taken_10001"))
        #expect(h.haproxy.reloads == 2, "one reload for the new app, none failed")
        #expect(h.logged(.error, "service left out: its port is in use by another process"))
        #expect(h.reconciler.metrics.prometheus().contains("servicerouter_services_left_out{reason=\"port_in_use\"} 1\n"))
        #expect(h.reconciler.metrics.degradedReason == nil, "the others converged: not degraded")
        // The port is freed: the next full pass takes the app in.
        h.ports.free(10001)
        try await h.waitUntilIdle()
        h.push(.resync("SIGHUP"))
        try await eventually("the app served once its port is free") { h.haproxy.serving("taken_10001").count == 1 }
        #expect(h.reconciler.metrics.prometheus().contains("servicerouter_services_left_out{reason=\"port_in_use\"} 0\n"))
        await h.stop()
    }

    @Test func aSharedFrontendPortInUseIsDegradedNotOK() async throws {
        let h = try ControllerHarness(apps: [app("/web", port: 10000, task: 31001)])
        h.ports.hold(18080)  // the shared HTTP frontend's port
        h.start()
        try await eventually("the pass to fail") { h.reconciler.metrics.degradedReason != nil }
        #expect(h.haproxy.reloads == 0, "nothing reloaded onto a config that cannot bind")
        let health = h.reconciler.metrics.health(now: h.time.now() + 3600)
        #expect(!health.healthy && health.reason.hasPrefix("degraded: "), "\(health)")
        #expect(h.logged(.error, "cannot reload: a port of servicerouter's own frontends is in use"))
        h.ports.free(18080)
        try await h.waitUntilIdle()
        h.time.advance(by: 1)  // the retry
        try await eventually("served after the retry") { h.haproxy.serving("web_10000").count == 1 }
        #expect(h.reconciler.metrics.degradedReason == nil)
        await h.stop()
    }

    @Test func aReloadThatKeepsFailingIsDegraded() async throws {
        let h = try ControllerHarness(apps: [app("/web", port: 10000, task: 31001)])
        h.haproxy.failNextReloads(100)
        h.start()
        try await eventually("the failed reload reported") { h.reconciler.metrics.degradedReason != nil }
        #expect(h.reconciler.metrics.degradedReason?.contains("failed to load") == true)
        #expect(h.files.config?.contains("backend web_10000") == false, "the last good config is put back")
        await h.stop()
    }

    @Test func anUnreachableHAProxyIsLoggedAtOnceThenEveryThirtySeconds() async throws {
        let h = try ControllerHarness(apps: [app("/web", port: 10000, task: 31001)])
        h.start()
        try await eventually("the start-up pass") { h.haproxy.reloads == 1 }
        try await h.waitUntilIdle()
        func count(_ message: String) -> Int { h.logs.all.filter { $0.message.hasPrefix(message) }.count }
        h.haproxy.setDown("connection refused")
        for _ in 0..<5 {  // 5 identity checks, 2 s apart: one line
            h.time.advance(by: h.settings.haproxyCheckInterval)
            try await h.waitUntilIdle()
        }
        #expect(count("HAProxy's runtime socket does not answer") == 1)
        #expect(count("HAProxy's runtime socket still does not answer") == 0)
        for _ in 0..<11 {  // 22 s more: 30 s since the first line
            h.time.advance(by: h.settings.haproxyCheckInterval)
            try await h.waitUntilIdle()
        }
        #expect(count("HAProxy's runtime socket still does not answer") == 1)
        h.haproxy.setDown(nil)
        h.time.advance(by: h.settings.haproxyCheckInterval)
        try await eventually("the recovery logged") { count("HAProxy's runtime socket answers again") == 1 }
        await h.stop()
    }
}
