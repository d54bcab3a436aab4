import Foundation
import ServiceRouterController
import ServiceRouterCLI
import ServiceRouterCore
import ServiceRouterIO

/// The controller's memory as operators see it: the `servicerouter` executable itself (built
/// beside this one) running `servicerouter run` on the scale scenario's simulator and HAProxy —
/// not this benchmark process, which also holds the harness, the recorded samples and its own
/// in-process controller.
public struct ControllerProcessResult: Sendable, Codable {
    public var executable: String
    /// Bytes, from the child's /proc/PID/status.
    public var peakRSS: Int
    public var rssAtEnd: Int
    /// What the process went through before `peakRSS` was read.
    public var initialSyncReloaded: Bool
    public var taskChanges: Int
    public var fullPasses: Int
}

enum ControllerProcess {
    /// `servicerouter` in this executable's directory (`swift run -c release servicerouter-bench`
    /// builds it: the bench's executable target depends on it).
    static func executable() -> String? {
        guard let me = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return nil }
        let path = (me as NSString).deletingLastPathComponent + "/servicerouter"
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }

    /// HAProxy goes back to its minimal config (as operators start it); then `servicerouter run`
    /// takes over: an initial sync with its reload, `changes` task replacements through the event
    /// stream, and full resyncs every second until at least `resyncs` more have run. Returns its
    /// peak RSS. The in-process controller must be stopped.
    static func measure(_ stack: BenchStack, _ o: BenchOptions, changes: Int, resyncs: Int) async throws -> ControllerProcessResult {
        guard let binary = executable() else {
            throw BenchError("the servicerouter executable is not beside servicerouter-bench: build it (swift build -c release)")
        }
        try HAProxyProcess.minimalConfig(socket: stack.haproxy.socketPath).write(toFile: stack.haproxy.configPath, atomically: true, encoding: .utf8)
        _ = try await stack.haproxy.control().reload(runtime: stack.haproxy.runtime, timeout: 30)

        let log = stack.directory + "/controller-process.log"
        let fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw BenchError("cannot open \(log): errno \(errno)") }
        defer { close(fd) }
        let p = try Subprocess(executable: binary, arguments: [
            "run", "--marathon", stack.sim.url, "--group", "external",
            "--haproxy-config", stack.haproxy.configPath, "--haproxy-socket", stack.haproxy.socketPath,
            "--master-socket", stack.haproxy.masterSocketPath,
            "--http-port", String(stack.httpPort), "--appid-port", "0", "--haproxy-stats", "off",
            "--resync-interval", "1"], standardOutput: fd, standardError: fd)
        defer {
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        }
        func syncs() -> [String] {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").filter { $0.contains(" sync done ") }.map(String.init)
        }
        try await waitUntil("servicerouter run's start-up pass", timeout: 120, every: 0.1) { !syncs().isEmpty }
        let reloaded = syncs().first?.contains("reload=yes") ?? false

        let background = stack.apps.filter { $0.id != ScaleScenario.probeAppId }
        for i in 0..<changes {
            _ = try await stack.sim.replaceTask(background[(i * 53) % background.count].id)
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        let before = syncs().count
        try await waitUntil("\(resyncs) full resyncs of servicerouter run", timeout: 120, every: 0.1) {
            syncs().count >= before + resyncs
        }
        guard p.isRunning else { throw BenchError("servicerouter run exited early (see \(log))") }
        let peak = ProcessMemory.field("VmHWM", pid: p.processIdentifier), now = ProcessMemory.field("VmRSS", pid: p.processIdentifier)
        let passes = syncs().count

        kill(p.processIdentifier, SIGTERM)
        try await waitUntil("servicerouter run to exit on SIGTERM", timeout: 15, every: 0.05) { !p.isRunning }
        return ControllerProcessResult(executable: binary, peakRSS: peak, rssAtEnd: now, initialSyncReloaded: reloaded,
                                       taskChanges: changes, fullPasses: passes)
    }
}
