import Foundation
import MarathonSimulator
import Testing
import ServiceRouterCore
import ServiceRouterIO
@testable import ServiceRouterController
@testable import ServiceRouterCLI
import ServiceRouterTestSupport

/// `servicerouter run` as a process, driven the way an operator (or the external checks) drive it:
/// HAProxy already running in master-worker mode with a minimal config.
@Suite(.enabled(if: Binary.isBuilt && HAProxyProcess.isInstalled(), "needs the built binary and haproxy"))
struct RunBinaryTests {
    @Test func takesOverAMinimalHAProxyAndStopsCleanlyOnSIGTERM() async throws {
        let haproxy = try HAProxyProcess()
        try await haproxy.start()
        let sim = try await MarathonSimulator.start(.init(heartbeatInterval: 1, killGracePeriod: 0.3))
        let app = webApp("/bin/web", instances: 3)
        _ = try await sim.createApp(app)
        try await sim.waitForDeployments(timeout: 10)
        let servicePort = try #require(await sim.app("/bin/web")?.servicePorts.first)
        let httpPort = try freePort()
        let log = haproxy.directory + "/run.log"
        // What a controller killed in the middle of a write leaves behind.
        try "half a config".write(toFile: haproxy.configPath + ".candidate", atomically: true, encoding: .utf8)
        // ServiceRouterIO's posix_spawn, not Foundation's Process (see Binary.run).
        let p = try ChildProcess.start(try #require(Binary.path), [
            "run", "--marathon", sim.url, "--group", "external", "--haproxy-config", haproxy.configPath,
            "--haproxy-socket", haproxy.socketPath, "--master-socket", haproxy.masterSocketPath,
            "--http-port", String(httpPort), "--appid-port", "0", "--haproxy-stats", "off", "--log-level", "debug"], log: log).process
        func stopAll() async {
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
            sim.stop()
            await haproxy.shutdown()
        }
        do {
            // It takes over: one reload from the minimal config, then routing to every task.
            try await eventually("every running task routed") {
                let want = Set(await sim.tasks("/bin/web").filter { $0.state == .running }.map(\.id))
                guard !want.isEmpty else { return false }
                return await responses(port: servicePort, count: 12) == want
            }
            #expect(try await haproxy.reloadCount() == 1)

            // A second controller on the same HAProxy is refused: it names the one that runs.
            let flags = ["--marathon", sim.url, "--group", "external", "--haproxy-config", haproxy.configPath,
                         "--haproxy-socket", haproxy.socketPath, "--master-socket", haproxy.masterSocketPath,
                         "--http-port", String(httpPort), "--appid-port", "0", "--haproxy-stats", "off"]
            for command in ["run", "once"] {
                let second = try await Binary.run([command] + flags)
                #expect(second.status == 1, "\(command): \(second.stderr)")
                #expect(second.stderr.contains("another servicerouter (pid \(p.processIdentifier)) already manages \(haproxy.configPath)"),
                        "\(command): \(second.stderr)")
            }
            #expect(try await haproxy.reloadCount() == 1, "the refused controllers changed nothing")
            #expect(((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("removed a file an earlier servicerouter left behind"))

            // Churn, then SIGTERM in the middle of it.
            var known = Set(await sim.tasks("/bin/web").flatMap { t in t.ports.map { "127.0.0.1:\($0)" } })
            for _ in 0..<3 { _ = try await sim.replaceTask("/bin/web") }
            try await Task.sleep(nanoseconds: 100_000_000)
            known.formUnion(await sim.tasks("/bin/web").flatMap { t in t.ports.map { "127.0.0.1:\($0)" } })
            kill(p.processIdentifier, SIGTERM)
            try await eventually("run to exit after SIGTERM") { !p.isRunning }
            p.waitUntilExit()
            #expect(p.terminationStatus == 0)
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            #expect(text.contains("SIGTERM: finishing the batch in flight"))
            #expect(text.contains("controller stopped"))
            // No half-applied batch: every slot HAProxy has in service points at a task Marathon
            // reported (a batch is sent whole: address and state together, or not at all).
            let live = try await haproxy.runtime.liveState()
            known.formUnion(await sim.tasks("/bin/web").flatMap { t in t.ports.map { "127.0.0.1:\($0)" } })
            for s in live.backends.values.flatMap({ $0 }) where s.admin != .maint {
                #expect(known.contains("\(s.address):\(s.port)"), "slot \(s.name) serves \(s.address):\(s.port), unknown to Marathon")
            }
            #expect(try await haproxy.reloadCount() == 1, "task churn must not reload")
            #expect(!text.contains("password"))
        } catch {
            await stopAll()
            throw error
        }
        await stopAll()
    }
}
