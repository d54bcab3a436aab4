import Foundation
import MarathonSimulator
import Testing
import ServiceRouterCore
import ServiceRouterIO
@testable import ServiceRouterController
@testable import ServiceRouterCLI
import ServiceRouterTestSupport
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Faults: HAProxy keeps serving while they last, and the controller converges once they end.
/// Real HAProxy 2.6, the Marathon simulator, real task listeners; faults are injected through the
/// simulator or through wrappers around the controller's edges (`Support/Faults.swift`).
/// docs/reliability.md lists each case with its guarantee.
/// One test at a time: each starts HAProxy, often a simulator, load or child processes; run all at
/// once beside the rest of the suite on 2 cores, they stretch every other test's timing.
@Suite(.serialized, .enabled(if: HAProxyProcess.isAvailable, "haproxy is not on PATH (.ci/run installs it)"))
struct ReliabilityTests {
    // MARK: - Marathon faults

    @Test func marathonUnreachableAtStartOnAFreshInstall() async throws {
        let h = try HAProxyProcess()
        try await h.start()
        let marathonPort = try freePort()   // reserved: nothing listens there until the simulator starts
        let rig = try ControllerRig(haproxy: h, .init(urls: ["http://127.0.0.1:\(marathonPort)"]))
        let sim = Holder<MarathonSimulator>()
        try await withCleanup {
            let minimal = try String(contentsOfFile: h.configPath, encoding: .utf8)
            let pid = try await h.workerPid()
            rig.start()
            try await eventually("failed fetches") { rig.count("cannot fetch apps from Marathon") >= 3 }
            try await assertBackoff(rig)
            // HAProxy untouched: the same worker on the same (minimal) config, which is still valid.
            #expect(try await h.workerPid() == pid)
            #expect(try await h.runtime.identity().structureHash == nil)
            #expect(try String(contentsOfFile: h.configPath, encoding: .utf8) == minimal)
            #expect(try await haproxyCheck(h.configPath).ok)
            #expect(rig.runtime.mutations.isEmpty, "\(rig.runtime.mutations)")
            #expect(try await h.reloadCount() == 0)

            // Marathon appears on the port the controller was given.
            let s = try await MarathonSimulator.start(.init(port: marathonPort, heartbeatInterval: 1, killGracePeriod: 0.3))
            sim.value = s
            let servicePort = try freePort()
            _ = try await s.createApp(AppSpec(id: "/rel/fresh", instances: 2, labels: ["HAPROXY_GROUP": "external"],
                                               portDefinitions: [.init(port: servicePort)]))
            try await s.waitForDeployments()
            let want = Set(await s.tasks("/rel/fresh").map(\.id))
            try await eventually("the app routed once Marathon answers") { await responses(port: servicePort, count: 12) == want }
            #expect(try await h.runtime.identity().structureHash != nil)
        } cleanup: {
            await rig.stop()
            sim.value?.stop()
            await h.shutdown()
        }
    }

    @Test func marathonUnreachableAtStartKeepsAnEarlierControllersConfig() async throws {
        let h = try HAProxyProcess()
        try await h.start()
        let httpPort = try freePort(), servicePort = try freePort(), marathonPort = try freePort()
        let old = try (1...2).map { try TaskServer(id: "earlier.\($0)") }
        let rig = try ControllerRig(haproxy: h, .init(urls: ["http://127.0.0.1:\(marathonPort)"], httpPort: httpPort))
        let sim = Holder<MarathonSimulator>()
        try await withCleanup {
            try await configureAsEarlierController(h, httpPort: httpPort, appId: "/rel/web", servicePort: servicePort, tasks: old)
            let config = try String(contentsOfFile: h.configPath, encoding: .utf8)
            let reloads = try await h.reloadCount()
            let live = try await h.runtime.liveState()
            #expect(await responses(port: servicePort, count: 8) == ["earlier.1", "earlier.2"])

            // A new controller starts while Marathon is down: the earlier config keeps routing.
            rig.start()
            for _ in 0..<3 {
                try await eventually("another failed fetch", timeout: 10) { rig.count("cannot fetch apps from Marathon") >= 1 }
                #expect(await responses(port: servicePort, count: 8) == ["earlier.1", "earlier.2"])
                await pause(0.4)
            }
            #expect(try await h.reloadCount() == reloads)
            #expect(try await h.runtime.liveState() == live)
            #expect(try String(contentsOfFile: h.configPath, encoding: .utf8) == config)
            #expect(rig.runtime.mutations.isEmpty, "nothing may be applied without a snapshot: \(rig.runtime.mutations)")

            // Marathon appears, with the app on the same service port: its tasks take over.
            let s = try await MarathonSimulator.start(.init(port: marathonPort, heartbeatInterval: 1, killGracePeriod: 0.3))
            sim.value = s
            _ = try await s.createApp(AppSpec(id: "/rel/web", instances: 2, labels: ["HAPROXY_GROUP": "external"],
                                               portDefinitions: [.init(port: servicePort)]))
            try await s.waitForDeployments()
            let want = Set(await s.tasks("/rel/web").map(\.id))
            try await eventually("Marathon's tasks routed") { await responses(port: servicePort, count: 12) == want }
        } cleanup: {
            await rig.stop()
            sim.value?.stop()
            await h.shutdown()
        }
    }

    /// Marathon answers 5xx, or hangs past the request timeout: HAProxy keeps its worker, its
    /// config and its routing; once Marathon answers again, the controller converges.
    @Test func marathon5xxTimeoutsAndHangsLeaveHAProxyServing() async throws {
        var o = Stack.Options()
        o.requestTimeout = 1
        let s = try await Stack.start([webApp("/rel/hang", instances: 2)], o)
        try await withCleanup {
            try await s.waitConverged("/rel/hang")
            let port = try await s.servicePort("/rel/hang")
            let want = await s.taskIds("/rel/hang")
            let reloads = try await s.haproxy.reloadCount(), pid = try await s.haproxy.workerPid()
            // Each snapshot request hangs 4 s; the client gives up after 1 s.
            s.sim.hangNextRequests(3, seconds: 4)
            s.controller.queue.push(.resync("test: Marathon hangs"))
            try await eventually("a fetch that timed out") { s.logs.contains(.error, "cannot fetch apps from Marathon") }
            let failure = try #require(s.logs.all.first { $0.message.contains("cannot fetch apps from Marathon") })
            // The message names the timeout and the flag that sets it.
            #expect(failure.field("reason")?.contains("no complete response within 1 s (--marathon-timeout 1)") == true, "\(failure)")
            for _ in 0..<3 {
                #expect(await s.routed(port: port) == want)
                await pause(0.3)
            }
            #expect(try await s.haproxy.reloadCount() == reloads)
            #expect(try await s.haproxy.workerPid() == pid)
            s.sim.clearRequestFaults()

            // 5xx answers: the same.
            let before = s.logs.all.filter { $0.message.contains("cannot fetch apps from Marathon") }.count
            s.sim.failNextRequests(3, status: 503)
            s.controller.queue.push(.resync("test: Marathon answers 503"))
            try await eventually("a 503 answer") {
                s.logs.all.filter { $0.message.contains("cannot fetch apps from Marathon") && ($0.field("reason") ?? "").contains("HTTP 503") }.count > 0
            }
            #expect(s.logs.all.filter { $0.message.contains("cannot fetch apps from Marathon") }.count > before)
            #expect(await s.routed(port: port) == want)
            #expect(try await s.haproxy.reloadCount() == reloads)
            #expect(try await s.haproxy.workerPid() == pid)
            s.sim.clearRequestFaults()
            _ = try await s.sim.replaceTask("/rel/hang")
            try await s.waitConverged("/rel/hang", timeout: 20)
        } cleanup: {
            await s.stop()
        }
    }

    @Test func redirectLoopBetweenTwoStandbysIsBoundedThenConverges() async throws {
        let a = try await MarathonSimulator.start(.init(heartbeatInterval: 1, killGracePeriod: 0.3))
        let b = try await MarathonSimulator.start(.init(heartbeatInterval: 1))
        let servicePort = try freePort(), httpPort = try freePort()
        _ = try await a.createApp(AppSpec(id: "/rel/loop", instances: 2, labels: ["HAPROXY_GROUP": "external"],
                                           portDefinitions: [.init(port: servicePort)]))
        try await a.waitForDeployments()
        a.becomeStandby(leaderURL: b.url)
        b.becomeStandby(leaderURL: a.url, redirectStatus: 302)
        let h = try HAProxyProcess()
        try await h.start()
        let old = try (1...2).map { try TaskServer(id: "loop.old.\($0)") }
        let rig = try ControllerRig(haproxy: h, .init(urls: [a.url, b.url], httpPort: httpPort))
        try await withCleanup {
            try await configureAsEarlierController(h, httpPort: httpPort, appId: "/rel/loop", servicePort: servicePort, tasks: old)
            let reloads = try await h.reloadCount(), live = try await h.runtime.liveState()
            rig.start()
            try await eventually("failed fetches") { rig.count("cannot fetch apps from Marathon") >= 2 }
            let failure = try #require(rig.logs.all.first { $0.message.contains("cannot fetch apps from Marathon") })
            #expect(failure.field("reason")?.contains("more than 3 redirects") == true, "\(failure)")
            try await assertBackoff(rig)
            // HAProxy untouched.
            #expect(await responses(port: servicePort, count: 8) == ["loop.old.1", "loop.old.2"])
            #expect(try await h.reloadCount() == reloads)
            #expect(try await h.runtime.liveState() == live)
            #expect(!rig.controller.isStopping)

            // One of them becomes the leader again: converge.
            a.becomeLeader()
            let want = Set(await a.tasks("/rel/loop").map(\.id))
            try await eventually("the leader's tasks routed") { await responses(port: servicePort, count: 12) == want }
        } cleanup: {
            await rig.stop()
            a.stop()
            b.stop()
            await h.shutdown()
        }
    }

    /// A Marathon leader failover: the new leader answers with empty `healthCheckResults` for a
    /// while. With `--health-check`, no backend is emptied — not by the resync after the stream
    /// reconnects, and not by a controller that restarts in the middle of it (no health memory).
    @Test func leaderFailoverWithEmptyHealthResultsNeverEmptiesABackend() async throws {
        var o = Stack.Options()
        o.healthCheck = true
        let s = try await Stack.start([webApp("/rel/failover", instances: 3, healthChecks: true)], o)
        let rig = Holder<ControllerRig>()
        try await withCleanup {
            try await s.waitConverged("/rel/failover")
            let port = try await s.servicePort("/rel/failover")
            let want = await s.taskIds("/rel/failover")
            let load = LoadGenerator(targets: [.init(name: "new", port: port, keepAlive: false), .init(name: "keepalive", port: port, keepAlive: true)],
                                     ratePerTarget: 30, maxDuration: 60)
            load.start()
            let passes = s.logs.all.filter { $0.message == "sync done" }.count
            s.sim.hideHealthResults(true)
            s.sim.dropEventStreams()
            try await eventually("the resync after the reconnect") { s.logs.all.filter { $0.message == "sync done" }.count > passes }
            for _ in 0..<3 {
                #expect(await s.routed(port: port) == want, "backend emptied during the failover")
                await pause(0.3)
            }
            // servicerouter restarts during the failover: no memory of health at all.
            await s.stopController()
            let fresh = try ControllerRig(haproxy: s.haproxy, .init(urls: [s.sim.url], healthCheck: true, httpPort: s.httpPort))
            rig.value = fresh
            fresh.start()
            try await eventually("the restarted controller's first pass") { fresh.logs.contains(.info, "sync done") }
            for _ in 0..<3 {
                #expect(await s.routed(port: port) == want, "backend emptied after a restart during the failover")
                await pause(0.3)
            }
            // Results come back.
            s.sim.hideHealthResults(false)
            let freshPasses = fresh.controller.fullPasses
            fresh.controller.queue.push(.resync("test: health results are back"))
            try await eventually("the pass on the payload with health results") { fresh.controller.fullPasses > freshPasses }
            #expect(await s.routed(port: port) == want)
            try await eventually("traffic through the whole failover") { load.totals.total > 50 }
            let counts = await load.finish()
            let total = counts.values.reduce(0) { $0 + $1.total }, failed = counts.values.reduce(0) { $0 + $1.failed }
            #expect(total > 50)
            #expect(failed == 0, "\(counts)")
            #expect(fresh.runtime.mutations.isEmpty, "nothing changed, nothing to send: \(fresh.runtime.mutations)")
        } cleanup: {
            await rig.value?.stop()
            await s.stop()
        }
    }

    // MARK: - HAProxy faults

    /// HAProxy killed: its socket missing, then refusing connections (a stale socket file). Changes
    /// made meanwhile are written (validated) to the config, never reloaded blind; HAProxy started
    /// again loads them, and the controller adopts what it runs.
    @Test func haproxyKilledSocketMissingOrRefusingThenBack() async throws {
        let s = try await Stack.start([webApp("/rel/down", instances: 2)])
        try await withCleanup {
            try await s.waitConverged("/rel/down")
            let port = try await s.servicePort("/rel/down")
            // Routing works as soon as the new worker serves; the pass that reloaded it finishes a
            // moment later (killed in between, HAProxy would look like a failed reload).
            try await eventually("the first pass done") { s.logs.contains(.info, "sync done") }
            await s.haproxy.shutdown()
            unlink(s.haproxy.socketPath)
            func unreachable(_ fragment: String) -> Int {
                s.logs.all.filter { $0.message.hasPrefix("HAProxy not reachable") && ($0.field("reason") ?? "").contains(fragment) }.count
            }
            _ = try await s.sim.replaceTask("/rel/down")
            try await eventually("the change kept while the socket is missing") { unreachable("No such file or directory") > 0 }

            try makeStaleUnixSocket(at: s.haproxy.socketPath)
            _ = try await s.sim.replaceTask("/rel/down")
            try await eventually("the change kept while the socket refuses connections") { unreachable("Connection refused") > 0 }
            try await s.sim.waitForDeployments()
            let want = await s.taskIds("/rel/down")
            let ports = await s.sim.tasks("/rel/down").filter { want.contains($0.id) }.map { $0.ports[0] }
            try await eventually("the config file carries the current tasks") {
                let text = try String(contentsOfFile: s.haproxy.configPath, encoding: .utf8)
                return ports.allSatisfy { text.contains("127.0.0.1:\($0) ") }
            }
            #expect(try await haproxyCheck(s.haproxy.configPath).ok)

            // HAProxy back: it loads the config written while it was down; the controller adopts it.
            unlink(s.haproxy.socketPath)
            try await s.haproxy.start()
            #expect(await s.routed(port: port) == want)
            try await s.waitConverged("/rel/down")
            try await eventually("the controller sees HAProxy again") { s.reconciler.metrics.prometheus().contains("servicerouter_haproxy_reachable 1") }
            try await eventually("the controller done with it") { s.controller.isIdle }
            #expect(try await s.haproxy.reloadCount() == 0, "the restarted HAProxy already runs the current config: \(s.reloadLog)")
        } cleanup: {
            await s.stop()
        }
    }

    /// Someone reloads HAProxy (through its master) onto another config. The new worker must not
    /// pass for ours — a `setenv` from our config would survive in the master's environment, which
    /// is why the fingerprint lives in `description` — and the controller puts its config back.
    @Test func haproxyReloadedOntoAnotherConfigIsNoticedAndRestored() async throws {
        let s = try await Stack.start([webApp("/rel/foreign", instances: 2)])
        try await withCleanup {
            try await s.waitConverged("/rel/foreign")
            let port = try await s.servicePort("/rel/foreign")
            let want = await s.taskIds("/rel/foreign")
            #expect(try await s.haproxy.runtime.identity().structureHash != nil)
            let reloads = try await s.haproxy.reloadCount()

            try HAProxyProcess.minimalConfig(socket: s.haproxy.socketPath).write(toFile: s.haproxy.configPath, atomically: true, encoding: .utf8)
            _ = try await s.haproxy.control().reload(runtime: s.haproxy.runtime, timeout: 30)
            // Identity and servers from one connection, so from one worker (the replaced one may
            // still answer for a moment). The controller may already be restoring its config; a
            // worker without backends runs the minimal config and must never report our structure.
            let view = try await s.haproxy.runtime.liveView()
            let (foreign, live) = (view.identity, view.servers)
            if live.backendOrder.isEmpty {
                #expect(foreign.structureHash == nil, "a worker on the minimal config claims our structure")
            }
            // Restored: a newer worker on a generated config (the replaced worker may still answer
            // a request or two right after a reload, so routing alone would prove nothing).
            // (The worker read above may already be the controller's restored one.)
            try await eventually("the controller reloads its config back") {
                let now = try await s.haproxy.runtime.identity()
                return now.structureHash != nil && (now.pid != foreign.pid || foreign.structureHash != nil)
            }
            try await eventually("the app routed again") { await s.routed(port: port) == want }
            let after = try await s.haproxy.reloadCount()
            #expect(after >= reloads + 2, "reloads \(reloads) → \(after): \(s.reloadLog)")
        } cleanup: {
            await s.stop()
        }
    }

    @Test func rejectedRuntimeCommandFallsBackToAValidatedReload() async throws {
        let h = try HAProxyProcess()
        try await h.start()
        let logs = MemoryLogSink()
        let faulty = FaultyRuntime(h.runtime)
        try await withCleanup {
            let a = try TaskServer(id: "rej.a"), b = try TaskServer(id: "rej.b"), c = try TaskServer(id: "rej.c")
            let port = try freePort()
            let r = try reconciler(h, runtime: faulty, logger: Logger(minimum: .info, sink: logs))
            await r.replace(with: AppsSnapshot(apps: [testApp("/rel/rej", servicePort: port, tasks: [("rej.a", a.port), ("rej.b", b.port)])]))
            #expect(await r.fullPass(reason: "test").reloaded)
            let reloads = try await h.reloadCount()

            faulty.rejectNextSetServer(2)
            await r.replace(with: AppsSnapshot(apps: [testApp("/rel/rej", servicePort: port, tasks: [("rej.a", a.port), ("rej.c", c.port)])]))
            let report = await r.fullPass(reason: "test")
            #expect(faulty.rejected.count == 2)
            #expect(report.error == nil)
            #expect(report.reloaded)
            #expect(report.reloadReasons.first?.message.hasPrefix("runtime command rejected") == true, "\(report.reloadReasons)")
            #expect(logs.all.contains { $0.level == .error && $0.message == "runtime command rejected" && $0.field("reply") == "No such server." })
            #expect(logs.all.contains { $0.message == "HAProxy reloaded" && ($0.field("reason") ?? "").hasPrefix("runtime command rejected") })
            #expect(r.metrics.prometheus().contains("servicerouter_reloads_total{reason=\"runtime_fallback\"} 1\n"))
            #expect(try await h.reloadCount() == reloads + 1)
            #expect(await responses(port: port, count: 12) == ["rej.a", "rej.c"])
            let idle = await r.fullPass(reason: "test")
            #expect(idle.commands.isEmpty && !idle.reloaded)
        } cleanup: {
            await h.shutdown()
        }
    }

    /// A candidate `haproxy -c` refuses because of one app (an SSL certificate that does not exist):
    /// never loaded, reported (log naming the app, `servicerouter_invalid_configs_total`), that app
    /// alone left out; the other apps keep updating; the app comes back when it changes.
    @Test func candidateRejectedByHAProxyLeavesOnlyTheOffendingAppOut() async throws {
        let r = try await LabelRoutingTests.Router()
        try await withCleanup {
            let good = try TaskServer(id: "good.1"), bad = try TaskServer(id: "bad.1")
            let goodPort = try freePort(), goodPort2 = try freePort(), badPort = try freePort()
            let missing = r.haproxy.directory + "/no-such-cert.pem"
            var goodApp = simpleApp("/rel/good", ports: [goodPort], [good], labels: ["HAPROXY_0_VHOST": "good.example.com"])
            var badApp = simpleApp("/rel/bad", ports: [badPort], [bad], labels: ["HAPROXY_0_VHOST": "bad.example.com", "HAPROXY_0_SSL_CERT": missing])

            let first = try await r.apply([goodApp, badApp])
            #expect(first.reloaded)
            #expect(first.desired.services.map(\.appId) == ["/rel/good"])
            let left = r.logs.all.first { $0.level == .error && $0.message.hasPrefix("service left out: haproxy -c refused its config") }
            #expect(left?.field("app") == "/rel/bad")
            #expect(left?.field("reason")?.contains("no-such-cert.pem") == true, "\(String(describing: left))")
            #expect(r.reconciler.metrics.prometheus().contains("servicerouter_invalid_configs_total 1\n"))
            #expect(try await httpRequest(port: goodPort).body == "good.1")
            #expect(try await httpRequest(port: r.httpPort, host: "good.example.com").body == "good.1")
            #expect(try await httpRequest(port: r.httpPort, host: "bad.example.com").status == 503)
            await #expect(throws: (any Error).self) { _ = try await httpRequest(port: badPort) }
            #expect(!configAndMaps(r.haproxy).contains(missing), "the refused config was never installed")
            #expect(try String(contentsOfFile: r.haproxy.configPath + ".rejected", encoding: .utf8).contains(missing))

            // The other app keeps updating: a new vhost and a new service port.
            goodApp = simpleApp("/rel/good", ports: [goodPort, goodPort2], [good], labels: ["HAPROXY_0_VHOST": "good.example.com,new.example.com"],
                                changedAt: "2026-01-02T00:00:00.000Z")
            let second = try await r.apply([goodApp, badApp])
            #expect(second.desired.services.map(\.appId) == ["/rel/good", "/rel/good"])
            #expect(try await httpRequest(port: r.httpPort, host: "new.example.com").body == "good.1")
            #expect(try await httpRequest(port: goodPort2).body == "good.1")
            #expect(second.desired.diagnostics.contains { $0.appId == "/rel/bad" && $0.message.contains("tried again when the app changes") })
            #expect(r.reconciler.metrics.prometheus().contains("servicerouter_invalid_configs_total 1\n"), "a known-bad app is not re-validated")

            // The bad app changes (its certificate label fixed): it comes back.
            badApp = simpleApp("/rel/bad", ports: [badPort], [bad], labels: ["HAPROXY_0_VHOST": "bad.example.com"], changedAt: "2026-01-03T00:00:00.000Z")
            let third = try await r.apply([goodApp, badApp])
            #expect(Set(third.desired.services.map(\.appId)) == ["/rel/good", "/rel/bad"])
            #expect(try await httpRequest(port: badPort).body == "bad.1")
            #expect(try await httpRequest(port: r.httpPort, host: "bad.example.com").body == "bad.1")
            #expect(try await httpRequest(port: r.httpPort, host: "new.example.com").body == "good.1")
        } cleanup: {
            await r.stop()
        }
    }

    /// 2 → 200 → 2 tasks, far beyond the backend's slots, under load on keep-alive and new
    /// connections: the backend grows with dynamic servers (`add server`), written into the config
    /// for later reloads — no reload at all, no failed request; scaled back down, the slots are
    /// freed and kept (a shrink would be a reload for nothing).
    @Test func scaleUpPastTheSlotsAndBackDownWithoutAReload() async throws {
        var o = Stack.Options()
        o.minSlots = 2
        let s = try await Stack.start([webApp("/rel/grow", instances: 2)], o)
        try await withCleanup {
            try await s.waitConverged("/rel/grow")
            let port = try await s.servicePort("/rel/grow")
            let backend = try ProxyName("rel_grow_\(port)")
            let slotsBefore = try await s.haproxy.runtime.liveState(backends: [backend]).serverCount
            try await eventually("the start-up passes over") { s.controller.isIdle }
            let reloads = try await s.haproxy.reloadCount()
            let load = LoadGenerator(targets: [.init(name: "keepalive", port: port, keepAlive: true), .init(name: "new", port: port, keepAlive: false)],
                                     ratePerTarget: 40, maxDuration: 120)
            load.start()
            try await eventually("traffic flowing before the scale-up") { load.totals.ok > 20 }
            try await s.sim.scale("/rel/grow", instances: 200)
            try await s.sim.waitForDeployments(timeout: 60)
            try await s.waitConverged("/rel/grow", timeout: 60)
            let slotsAfter = try await s.haproxy.runtime.liveState(backends: [backend]).serverCount
            #expect(slotsBefore < 200 && slotsAfter >= 200, "\(slotsBefore) → \(slotsAfter) slots")
            #expect(s.logs.all.contains { $0.message == "runtime commands applied" } && s.reloadLog.contains("sync done"))
            try await eventually("the grown backend written to the config") {
                (try String(contentsOfFile: s.haproxy.configPath, encoding: .utf8)).contains("  server s\(slotsAfter) ")
            }
            try await s.sim.scale("/rel/grow", instances: 2)
            try await s.sim.waitForDeployments(timeout: 60)
            try await s.waitConverged("/rel/grow", timeout: 60)
            try await eventually("the controller done with the scale-down") { s.controller.isIdle }
            try await eventually("traffic through the whole scale") { load.snapshot().values.allSatisfy { $0.ok > 40 } }
            let counts = await load.finish()
            #expect(try await s.haproxy.reloadCount() == reloads, "dynamic servers, no reload: \(s.reloadLog)")
            #expect(try await s.haproxy.runtime.liveState(backends: [backend]).serverCount == slotsAfter, "no shrink")
            for (name, c) in counts {
                #expect(c.failed == 0, "\(name): \(c)")
            }
        } cleanup: {
            await s.stop()
        }
    }

    /// `servicerouter run` (the real binary) killed with SIGKILL while it applies task churn, then
    /// started again: it adopts the live slots — every task that survived keeps its slot.
    @Test(.enabled(if: BuiltBinary.path != nil, Comment(rawValue: BuiltBinary.missing)))
    func sigkillDuringABatchThenRestartKeepsEverySurvivorInItsSlot() async throws {
        let binary = try #require(BuiltBinary.path)
        let h = try HAProxyProcess()
        try await h.start()
        let sim = try await MarathonSimulator.start(.init(heartbeatInterval: 1, killGracePeriod: 0.3))
        let spec = webApp("/rel/sigkill", instances: 6)
        let servicePort = spec.portDefinitions[0].port
        let controller = Holder<ChildProcess>()
        let args = ["run", "--marathon", sim.url, "--group", "external", "--haproxy-config", h.configPath,
                    "--haproxy-socket", h.socketPath, "--master-socket", h.masterSocketPath, "--http-port", String(try freePort()),
                    "--appid-port", "0", "--haproxy-stats", "off", "--min-slots", "4", "--haproxy-check-interval", "0.3",
                    "--max-backoff", "1", "--log-level", "debug"]
        try await withCleanup {
            _ = try await sim.createApp(spec)
            try await sim.waitForDeployments()
            func converged() async throws {
                try await sim.waitForDeployments(timeout: 20)
                try await eventually("the controller's first pass done", timeout: 30) { controller.value?.output.contains("sync done") == true }
                try await eventually("routing converged", timeout: 30) {
                    let want = Set(await sim.tasks("/rel/sigkill").filter { $0.state == .running }.map(\.id))
                    return await responses(port: servicePort, count: 24) == want
                }
            }
            controller.value = try ChildProcess.start(binary, args, log: h.directory + "/servicerouter-0.log")
            // Killed the first time as soon as routing works: in practice while its first pass
            // still waits for the reloaded worker; the next rounds land between the batches of a
            // churn burst.
            try await eventually("routing converged", timeout: 30) {
                await responses(port: servicePort, count: 24) == Set(await sim.tasks("/rel/sigkill").map(\.id))
            }
            var compared = 0
            for (round, delay) in [0.0, 0.02, 0.08].enumerated() {
                // Churn: three tasks replaced at once, and the controller killed while it applies it.
                for _ in 0..<3 { _ = try await sim.replaceTask("/rel/sigkill") }
                await pause(delay)
                await controller.value?.kill(SIGKILL)
                let atKill = slotsByAddress(try await h.runtime.liveState())
                let runningAtKill = Set(await sim.tasks("/rel/sigkill").filter { $0.state == .running }.map { "127.0.0.1:\($0.ports[0])" })

                controller.value = try ChildProcess.start(binary, args, log: h.directory + "/servicerouter-\(round + 1).log")
                try await converged()
                let after = slotsByAddress(try await h.runtime.liveState())
                let runningNow = Set(await sim.tasks("/rel/sigkill").filter { $0.state == .running }.map { "127.0.0.1:\($0.ports[0])" })
                for (address, slot) in atKill where runningAtKill.contains(address) && runningNow.contains(address) {
                    compared += 1
                    #expect(after[address] == slot, "round \(round): \(address) moved from \(slot) to \(after[address] ?? "nowhere")\n\(controller.value?.output ?? "")")
                }
            }
            #expect(compared >= 6, "survivors compared: \(compared)")
            #expect(try await h.reloadCount() == 1, "restarted controllers adopt the live config: only the first pass reloads")
        } cleanup: {
            await controller.value?.kill(SIGTERM)
            sim.stop()
            await h.shutdown()
        }
    }

    /// The config directory read-only, or the disk full: nothing is installed or reloaded, HAProxy's
    /// live state does not move, the error names the path and the errno, and the pass is retried;
    /// once the file system heals, the change goes through.
    @Test(arguments: [EROFS, ENOSPC])
    func configDirectoryReadOnlyOrDiskFull(_ code: Int32) async throws {
        let files = Holder<FaultyFiles>()
        var o = Stack.Options()
        o.files = { h in
            let f = FaultyFiles(path: h.configPath)
            files.value = f
            return f
        }
        let s = try await Stack.start([webApp("/rel/disk/a", instances: 2)], o)
        try await withCleanup {
            try await s.waitConverged("/rel/disk/a")
            let portA = try await s.servicePort("/rel/disk/a")
            let wantA = await s.taskIds("/rel/disk/a")
            try await eventually("the start-up passes over") { s.controller.isIdle }
            let identity = try await s.haproxy.runtime.identity()
            let live = try await s.haproxy.runtime.liveState()
            let config = try String(contentsOfFile: s.haproxy.configPath, encoding: .utf8)
            let reloads = try await s.haproxy.reloadCount()
            let fault = try #require(files.value)

            fault.setFault(code)
            let spec = webApp("/rel/disk/b", instances: 2)
            _ = try await s.sim.createApp(spec)
            let errnoText = code == EROFS ? "Read-only file system" : "No space left on device"
            func failures() -> Int {
                s.logs.all.filter { $0.level == .error && $0.message.contains("HAProxy untouched") && ($0.field("reason") ?? "").contains(errnoText) }.count
            }
            try await eventually("the write failed and was retried") { failures() >= 2 }
            let line = try #require(s.logs.all.first { $0.message.contains("HAProxy untouched") && ($0.field("reason") ?? "").contains(errnoText) })
            #expect(line.field("reason")?.contains(s.haproxy.configPath) == true, "\(line)")
            if code == EROFS {
                // The directory and the flag that chooses it, not only the one file that failed.
                #expect(line.field("reason")?.contains("the directory \(s.haproxy.directory) (where --haproxy-config and the vhost maps are written) is not writable") == true, "\(line)")
            }
            #expect(s.logs.contains(.info, "will retry"))
            #expect(try await s.haproxy.runtime.identity() == identity)
            #expect(try await s.haproxy.runtime.liveState() == live)
            #expect(try String(contentsOfFile: s.haproxy.configPath, encoding: .utf8) == config)
            #expect(try await s.haproxy.reloadCount() == reloads)
            #expect(await s.routed(port: portA) == wantA)
            await #expect(throws: (any Error).self) { _ = try await httpRequest(port: spec.portDefinitions[0].port) }

            fault.setFault(nil)
            try await s.waitConverged("/rel/disk/b", timeout: 20)
            #expect(try await s.haproxy.reloadCount() == reloads + 1)
            #expect(await s.routed(port: portA) == wantA)
        } cleanup: {
            await s.stop()
        }
    }

    /// 10,000 status updates in well under a second, for real task listeners: a few coalesced
    /// fast-path batches, no reload, and the last state of each task wins. The apps source already
    /// answers with the final state, so a resync landing in the middle (a slow machine) cannot
    /// make the end state right or wrong by itself; the fast path is checked separately.
    @Test func floodOfTenThousandStatusUpdatesEndToEnd() async throws {
        let h = try HAProxyProcess()
        try await h.start()
        let base = try (0..<2).map { try TaskServer(id: "flood.b\($0)") }, extra = try (0..<3).map { try TaskServer(id: "flood.x\($0)") }
        let port = try freePort()
        func app(_ tasks: [TaskServer]) -> MarathonApp { testApp("/rel/flood", servicePort: port, tasks: tasks.map { ($0.id, $0.port) }, instances: 4) }
        let source = MemoryAppsSource([app(base)])
        let rig = try ControllerRig(haproxy: h, .init(source: source))
        try await withCleanup {
            rig.start()
            try await eventually("the first pass done") { rig.logs.contains(.info, "sync done") }
            try await eventually("the app routed") { await responses(port: port, count: 12) == ["flood.b0", "flood.b1"] }
            let reloads = try await h.reloadCount()
            source.set([app(base + extra.prefix(2))])
            rig.controller.latencies.reset()
            // Timestamps in order, as Marathon writes them: each event is newer than the last.
            func stamp(_ i: Int) -> String {
                let ms = 1_000_000 + i
                return "2026-01-01T00:\(String(format: "%02d", ms / 60_000 % 60)):\(String(format: "%02d", ms / 1000 % 60)).\(String(format: "%03d", ms % 1000))Z"
            }
            let cycle: [TaskState] = [.running, .unreachable]
            for i in 0..<9_997 {
                let t = extra[i % 3]
                rig.controller.queue.push(.statusUpdate(StatusUpdate(taskId: t.id, appId: "/rel/flood", taskStatus: cycle[(i / 3) % cycle.count],
                                                                     host: "127.0.0.1", ports: [t.port], timestamp: stamp(i))))
            }
            for (i, (t, state)) in zip(extra, [TaskState.running, .running, .killed]).enumerated() {
                rig.controller.queue.push(.statusUpdate(StatusUpdate(taskId: t.id, appId: "/rel/flood", taskStatus: state, host: "127.0.0.1",
                                                                     ports: [t.port], timestamp: stamp(10_000 + i))))
            }
            let want: Set<String> = ["flood.b0", "flood.b1", "flood.x0", "flood.x1"]
            try await eventually("the final states routed") { await responses(port: port, count: 20) == want }
            #expect(rig.controller.latencies.batches >= 1, "applied through the fast path")
            #expect(try await h.reloadCount() == reloads)
            #expect(!rig.logs.all.contains { $0.message.hasPrefix("fast path not enough") })
        } cleanup: {
            await rig.stop()
            await h.shutdown()
        }
    }

    // MARK: - Helpers

    func reconciler(_ h: HAProxyProcess, runtime: any RuntimeAPI, logger: Logger) throws -> Reconciler {
        let render = RenderOptions(adminSocket: h.socketPath, httpPort: try freePort(), appIdPort: nil, stats: nil, mapDirectory: h.directory, bindAddress: "127.0.0.1")
        let settings = ReconcilerSettings(pass: PassSettings(routing: RoutingOptions(groups: ["external"], minSlots: 4, reservedPorts: render.reservedPorts),
                                          render: render, templates: try TemplateSet()), configPath: h.configPath)
        return Reconciler(settings: settings, runtime: runtime, control: h.control(logger: logger), resolver: CachingHostResolver(), logger: logger)
    }

    /// Fetch retries back off: the retry delays grow, and never beyond `--max-backoff` (1 s
    /// here), jitter included. (How often they fire is the manual-clock tests' subject:
    /// ControllerDecisionTests.)
    func assertBackoff(_ rig: ControllerRig, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        try await eventually("three retries scheduled") { rig.logs.all.filter { $0.message == "will retry" }.count >= 3 }
        let delays = rig.logs.all.filter { $0.message == "will retry" }.compactMap { $0.field("in_s").flatMap(Double.init) }
        #expect(delays.max()! <= 1 && delays.first! < delays.max()!, "retry delays: \(delays)", sourceLocation: sourceLocation)
    }
}
