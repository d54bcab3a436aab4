import Testing
import ServiceRouterController
import ServiceRouterCore
import ServiceRouterIO
import ServiceRouterTestSupport

/// The controller's decisions on in-memory edges and a manual clock: which path a change takes,
/// when HAProxy reloads, what is retried and when. No HAProxy process, no real time: each test
/// runs in milliseconds and cannot depend on how busy the machine is.
@Suite struct ControllerDecisionTests {
    static let web = "/web"
    static let webBackend = "web_10000"

    func twoTaskApp() -> MarathonApp {
        harnessApp(Self.web, port: 10000, tasks: [("web.1", 31001), ("web.2", 31002)])
    }

    func started(_ apps: [MarathonApp], _ o: ControllerHarness.Options = .init()) async throws -> ControllerHarness {
        let h = try ControllerHarness(apps: apps, o)
        h.start()
        try await eventually("the start-up pass") { h.fullPasses.count == 1 }
        try await h.waitUntilIdle()
        return h
    }

    @Test func startUpTakesOverTheMinimalConfigWithOneReload() async throws {
        let h = try await started([twoTaskApp()])
        #expect(h.haproxy.reloads == 1, "the minimal config is not ours: one validated reload")
        #expect(h.haproxy.validations == 1)
        #expect(h.haproxy.serving(Self.webBackend) == ["127.0.0.1:31001", "127.0.0.1:31002"])
        #expect(h.source.fetches == 1)
        #expect(h.files.config?.contains("backend web_10000") == true)
        await h.stop()
    }

    @Test func taskEventsGoThroughTheFastPathWithoutFetchOrReload() async throws {
        let h = try await started([twoTaskApp()])
        h.push(statusUpdate(Self.web, "web.2", .killed, port: 31002))
        h.push(statusUpdate(Self.web, "web.3", .running, port: 31003))
        try await eventually("the replacement to be served") {
            h.haproxy.serving(Self.webBackend) == ["127.0.0.1:31001", "127.0.0.1:31003"]
        }
        try await h.waitUntilIdle()
        #expect(h.fastPaths == 1, "one batch, one fast path")
        #expect(h.haproxy.reloads == 1)
        #expect(h.source.fetches == 1, "no /v2/apps fetch for task events")
        #expect(h.fullPasses.count == 1)
        await h.stop()
    }

    @Test func theLoopSleepsUntilItsNextDeadlineInsteadOfTicking() async throws {
        let h = try await started([twoTaskApp()])
        let now = h.time.now()
        guard case .waiting(let until) = h.controller.activity.last else { Issue.record("not waiting"); return }
        #expect(until == now + h.settings.haproxyCheckInterval, "the next thing to do is the HAProxy identity check")
        let count = h.controller.activity.count
        // Half the interval passes: nothing is due, so the loop does not even wake.
        h.time.advance(by: h.settings.haproxyCheckInterval / 2)
        try await h.waitUntilIdle()
        #expect(h.controller.activity.count == count)
        h.time.advance(by: h.settings.haproxyCheckInterval / 2)
        try await eventually("the check to run and the loop to sleep again") {
            if case .waiting(let u) = h.controller.activity.last, u == now + 2 * h.settings.haproxyCheckInterval { return true }
            return false
        }
        #expect(h.haproxy.commandLog.last == "show info")
        await h.stop()
    }

    @Test func structuralEventsAreDebouncedIntoOneFetch() async throws {
        let h = try await started([twoTaskApp()], { var o = ControllerHarness.Options(); o.debounce = 0.05; return o }())
        for _ in 0..<100 { h.push(.structureChanged("api_post_event")) }
        try await h.waitUntilIdle()
        #expect(h.source.fetches == 1, "nothing fetched inside the debounce window")
        h.time.advance(by: 0.05)
        try await eventually("one fetch after the window") { h.source.fetches == 2 }
        try await h.waitUntilIdle()
        #expect(h.source.fetches == 2)
        #expect(h.fullPasses.last == "api_post_event event")
        await h.stop()
    }

    @Test func aFailedFetchIsRetriedWithBackOffAndNeverTouchesHAProxy() async throws {
        var o = ControllerHarness.Options()
        o.run.maxBackoff = 4
        let h = try ControllerHarness(apps: [twoTaskApp()], o)
        h.source.fail("connection refused")
        h.start()
        var expected = 1
        // With the jitter pinned (random 0.5: factor 1), the delays are 0.5, 1, 2, 4, 4.
        for delay in [0.5, 1, 2, 4, 4] {
            try await eventually("fetch \(expected)") { h.source.fetches == expected }
            try await h.waitUntilIdle()
            #expect(h.controller.activity.all.contains { if case .retryScheduled(let d) = $0 { abs(d - delay) < 1e-9 } else { false } },
                    "retry after \(delay) s")
            h.time.advance(by: delay - 0.01)
            try await h.waitUntilIdle()
            #expect(h.source.fetches == expected, "not retried before \(delay) s")
            h.time.advance(by: 0.01)
            expected += 1
        }
        try await eventually("fetch \(expected)") { h.source.fetches == expected }
        #expect(h.haproxy.reloads == 0 && h.haproxy.mutations.isEmpty, "no snapshot yet: HAProxy keeps its state")
        h.source.fail(nil)
        try await h.waitUntilIdle()
        h.time.advance(by: 4)
        try await eventually("the pass once Marathon answers") { h.haproxy.reloads == 1 }
        await h.stop()
    }

    @Test func haproxyRestartedBehindOurBackIsReappliedWithoutAFetch() async throws {
        let h = try await started([twoTaskApp()])
        h.push(statusUpdate(Self.web, "web.2", .killed, port: 31002))
        try await eventually("the kill applied") { h.haproxy.serving(Self.webBackend) == ["127.0.0.1:31001"] }
        // Someone reloads HAProxy onto a config that is not ours (here: ours with another
        // description): the controller notices at its next identity check.
        h.haproxy.reloadForeign(h.files.config!.replacing("description servicerouter", with: "description someone"))
        try await h.waitUntilIdle()
        h.time.advance(by: h.settings.haproxyCheckInterval)
        try await eventually("the re-applied state") {
            h.fullPasses.count == 2 && h.haproxy.serving(Self.webBackend) == ["127.0.0.1:31001"]
        }
        #expect(h.fullPasses.last?.contains("changed behind our back") == true)
        #expect(h.haproxy.reloads == 2, "a foreign config is replaced by ours")
        #expect(h.source.fetches == 1, "Marathon did not change: nothing fetched")
        await h.stop()
    }

    @Test func aServiceHAProxyRefusesIsLeftOutAndTheOthersGoOn() async throws {
        let bad = harnessApp("/bad", port: 10001, tasks: [("bad.1", 31101)])
        let h = try ControllerHarness(apps: [twoTaskApp(), bad])
        h.haproxy.rejectValidation { text in
            text.contains("backend bad_10001")
                ? ConfigCheckOutput(alerts: ["[ALERT] (1) : config : proxy 'bad_10001': unable to load certificate"], lines: [], proxies: ["bad_10001"])
                : nil
        }
        h.start()
        try await eventually("the good app served") { h.haproxy.serving(Self.webBackend).count == 2 }
        try await h.waitUntilIdle()
        #expect(h.haproxy.validations == 2, "one round without the offender")
        #expect(h.haproxy.reloads == 1)
        #expect(!h.haproxy.backendNames.contains("bad_10001"))
        #expect(h.logged(.error, "service left out: haproxy -c refused its config"))
        await h.stop()
    }

    @Test func aRejectedRuntimeCommandFallsBackToAValidatedReload() async throws {
        let h = try await started([twoTaskApp()])
        h.haproxy.rejectCommands { c in if case .setAddress = c { "No such server." } else { nil } }
        h.push(statusUpdate(Self.web, "web.3", .running, port: 31003))
        try await eventually("the reload that carries the change") { h.haproxy.reloads == 2 }
        h.haproxy.rejectCommands(nil)
        try await eventually("web.3 served") { h.haproxy.serving(Self.webBackend).contains("127.0.0.1:31003") }
        #expect(h.controller.activity.all.contains(.fastPathMissed(.runtimeCommandRejected(
            command: "set server web_10000/s3 addr 127.0.0.1 port 31003", reply: "No such server."))))
        await h.stop()
    }

    @Test func aBackendOutgrowingItsSlotsGrowsWithDynamicServersSizedFromAFreshSnapshot() async throws {
        let h = try await started([twoTaskApp()])
        let slots = h.haproxy.servers(Self.webBackend).count
        var app = twoTaskApp()
        app.instances = 20
        app.tasks = (1...20).map { MarathonTask(id: "web.\($0)", appId: Self.web, host: "127.0.0.1", ports: [31000 + $0]) }
        h.source.set([app])
        for t in app.tasks.dropFirst(2) { h.push(statusUpdate(Self.web, t.id, .running, port: t.ports[0])) }
        try await eventually("all twenty served") { h.haproxy.serving(Self.webBackend).count == 20 }
        #expect(h.haproxy.servers(Self.webBackend).count > slots)
        #expect(h.haproxy.reloads == 1, "the backend grew with dynamic servers, without a reload")
        #expect(h.haproxy.commandLog.contains { $0.hasPrefix("add server web_10000/s\(slots + 1) ") })
        #expect(h.source.fetches == 2, "the growth is planned from Marathon's instance count")
        // The config file carries the added slots: a reload or restart keeps them.
        try await h.waitUntilIdle()
        h.haproxy.restartFromFiles()
        #expect(h.haproxy.serving(Self.webBackend).count == 20)
        await h.stop()
    }

    @Test func aStickyBackendOutgrowingItsSlotsReloadsOnce() async throws {
        var sticky = twoTaskApp()
        sticky.labels["HAPROXY_0_STICKY"] = "true"
        let h = try await started([sticky])
        var grown = sticky
        grown.instances = 20
        grown.tasks = (1...20).map { MarathonTask(id: "web.\($0)", appId: Self.web, host: "127.0.0.1", ports: [31000 + $0]) }
        h.source.set([grown])
        h.push(.resync("scale-up"))
        try await eventually("all twenty served") { h.haproxy.serving(Self.webBackend).count == 20 }
        #expect(h.haproxy.reloads == 2, "HAProxy refuses dynamic servers with cookies: one reload grows it")
        #expect(!h.haproxy.commandLog.contains { $0.hasPrefix("add server") })
        await h.stop()
    }

    @Test func runtimeChangesReachTheConfigFileAndItIsWrittenOnStop() async throws {
        var o = ControllerHarness.Options()
        o.run.fileSyncInterval = 1
        let h = try await started([twoTaskApp()], o)
        h.push(statusUpdate(Self.web, "web.3", .running, port: 31003))
        try await eventually("the first change written at once") { h.files.config?.contains("127.0.0.1:31003") == true }
        h.push(statusUpdate(Self.web, "web.4", .running, port: 31004))
        try await eventually("web.4 served") { h.haproxy.serving(Self.webBackend).contains("127.0.0.1:31004") }
        try await h.waitUntilIdle()
        #expect(h.files.config?.contains("127.0.0.1:31004") == false, "coalesced: at most one rewrite per interval")
        h.time.advance(by: 1)
        try await eventually("the second change written") { h.files.config?.contains("127.0.0.1:31004") == true }
        h.push(statusUpdate(Self.web, "web.5", .running, port: 31005))
        try await eventually("web.5 served") { h.haproxy.serving(Self.webBackend).contains("127.0.0.1:31005") }
        await h.stop()
        #expect(h.files.config?.contains("127.0.0.1:31005") == true, "written before the controller exits")
        // What is on disk reproduces what HAProxy serves.
        h.haproxy.restartFromFiles()
        #expect(h.haproxy.serving(Self.webBackend) == ["127.0.0.1:31001", "127.0.0.1:31002", "127.0.0.1:31003",
                                                        "127.0.0.1:31004", "127.0.0.1:31005"])
    }
}
