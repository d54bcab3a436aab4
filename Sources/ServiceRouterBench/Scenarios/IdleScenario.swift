import Foundation
import ServiceRouterCore
import ServiceRouterIO

public struct IdleResult: Sendable, Codable {
    /// Seconds measured, after the start-up passes.
    public var seconds: Double
    /// utime + stime of the `servicerouter run` process over `seconds`, from /proc/PID/stat.
    public var cpuMilliseconds: Double
    public var cpuMillisecondsPerSecond: Double { seconds > 0 ? cpuMilliseconds / seconds : .nan }
    /// HAProxy reloads and full passes while idle (both should be 0).
    public var reloads: Int
    public var fullPasses: Int
}

/// An idle controller: `servicerouter run` (the executable, in its own process) on the simulator
/// with 2 apps and nothing changing. What it costs to wait is what every HAProxy node pays forever.
enum IdleScenario {
    static func run(_ o: BenchOptions) async throws -> IdleResult {
        guard let binary = ControllerProcess.executable() else {
            throw BenchError("the servicerouter executable is not beside servicerouter-bench: build it (swift build -c release)")
        }
        let ports = try BenchPorts.free(2)
        let apps = [BenchApp(id: "/idle/a", instances: 2, servicePort: ports[0], vhost: "a.idle.local"),
                    BenchApp(id: "/idle/b", instances: 2, servicePort: ports[1], vhost: "b.idle.local")]
        o.progress("idle: servicerouter run with 2 apps, nothing changing, for \(Int(o.idleSeconds)) s")
        let stack = try await BenchStack.start(.init(apps: apps, killGrace: o.killGrace, placement: o.placement,
                                                     haproxyBinary: o.haproxyBinary))
        do {
            let log = stack.directory + "/idle-controller.log"
            let fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw BenchError("cannot open \(log): errno \(errno)") }
            defer { close(fd) }
            let p = try Subprocess(executable: binary, arguments: [
                "run", "--marathon", stack.sim.url, "--group", "external",
                "--haproxy-config", stack.haproxy.configPath, "--haproxy-socket", stack.haproxy.socketPath,
                "--master-socket", stack.haproxy.masterSocketPath,
                "--http-port", String(stack.httpPort), "--appid-port", "0", "--haproxy-stats", "off"],
                standardOutput: fd, standardError: fd)
            defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
            func syncs() -> Int {
                let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                return text.split(separator: "\n").filter { $0.contains(" sync done ") }.count
            }
            try await stack.waitConverged(apps.map(\.id), timeout: 60)
            // The start-up pass and the one after the event stream connected.
            try await waitUntil("the start-up passes", timeout: 60, every: 0.1) { syncs() >= 2 }
            try await Task.sleep(nanoseconds: 2_000_000_000)
            let reloadsBefore = try await stack.reloadCount(), syncsBefore = syncs()
            let cpuBefore = ProcessMemory.cpuSeconds(pid: p.processIdentifier)
            let started = Monotonic.now()
            try await Task.sleep(nanoseconds: UInt64(o.idleSeconds * 1e9))
            let cpu = ProcessMemory.cpuSeconds(pid: p.processIdentifier) - cpuBefore
            let seconds = Monotonic.now() - started
            guard p.isRunning else { throw BenchError("servicerouter run exited early (see \(log))") }
            let result = IdleResult(seconds: seconds, cpuMilliseconds: cpu * 1000, reloads: try await stack.reloadCount() - reloadsBefore,
                                    fullPasses: syncs() - syncsBefore)
            kill(p.processIdentifier, SIGTERM)
            try await waitUntil("servicerouter run to exit on SIGTERM", timeout: 15, every: 0.05) { !p.isRunning }
            await stack.stop()
            return result
        } catch {
            await stack.stop(keep: true)
            throw error
        }
    }
}
