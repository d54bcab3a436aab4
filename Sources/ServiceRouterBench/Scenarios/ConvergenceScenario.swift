import Foundation
import ServiceRouterController
import ServiceRouterCLI
import ServiceRouterCore
import ServiceRouterIO

public struct ConvergenceResult: Sendable, Codable {
    public var replacements: Int
    /// Tasks HAProxy routes besides the probe app's.
    public var tasksInHAProxy: Int
    /// Milliseconds from the oldest event of a batch reaching the controller to HAProxy
    /// acknowledging its runtime commands (every fast-path batch during the scenario).
    public var eventToApplied: Summary
    public var cpuPerBatch: Summary
    public var batches: Int
    public var events: Int
    /// Milliseconds from the simulator change (the kill request sent) to the first request that
    /// the replacement task served / the last request that the killed task served.
    public var changeToFirstRequestOnNewTask: Summary
    public var changeToLastRequestOnKilledTask: Summary
    /// Replacements whose new task the probe never saw within 5 s.
    public var unseen: Int
    public var probeRequests: Int
    public var probeFailed: Int
    public var probeLastFailure: String?
    public var reloads: Int
}

enum ConvergenceScenario {
    /// Replaces the probe app's tasks one at a time while a probe sends requests through HAProxy
    /// back to back, and times when the routing changed. The controller runs on `stack`.
    static func run(_ stack: BenchStack, _ o: BenchOptions) async throws -> ConvergenceResult {
        guard let controller = stack.controller, let app = stack.apps.first(where: { $0.id == ScaleScenario.probeAppId }) else {
            throw BenchError("convergence needs a running controller and the probe app")
        }
        o.progress("convergence: \(o.replacements) replacements of \(app.id) (probe through HAProxy, Host: \(app.vhost))")
        try await stack.waitConverged([app.id], timeout: 60)
        let probe = RouteProbe(port: stack.httpPort, host: app.vhost, maxDuration: Double(o.replacements) * 3 + 120)
        probe.start()
        defer { Task { await probe.stop() } }
        try await waitUntil("the probe's first answers", timeout: 10) { probe.count >= 20 }
        try await ScaleScenario.settle(stack.reconciler, quiet: 0.5, timeout: 60)
        let reloadsBefore = try await stack.reloadCount()
        controller.latencies.reset()

        var firstNew: [Double] = [], lastKilled: [Double] = []
        var unseen = 0
        // Killed tasks drain for the kill grace period, each in its own slot: pace the
        // replacements so that the probe app's 8 slots always suffice (a growth would reload).
        let interval = max(0.2, o.killGrace / 3)
        var nextStart = Monotonic.now()
        for i in 0..<o.replacements {
            let wait = nextStart - Monotonic.now()
            if wait > 0 { try await Task.sleep(nanoseconds: UInt64(wait * 1e9)) }
            nextStart = Monotonic.now() + interval
            let before = try await stack.sim.runningTaskIds(app.id)
            let t0 = Monotonic.now()
            let killed = try await stack.sim.replaceTask(app.id)
            // The replacement is launched in the same simulator step as the kill.
            var fresh: String?
            try await waitUntil("the replacement of \(killed)", timeout: 5, every: 0.002) {
                fresh = try await stack.sim.runningTaskIds(app.id).subtracting(before).first
                return fresh != nil
            }
            guard let newTask = fresh else { continue }
            do {
                try await waitUntil("a request on the new task", timeout: 5, every: 0.001) {
                    probe.firstSeen(newTask, since: t0) != nil
                }
            } catch {
                unseen += 1
                continue
            }
            // The killed task is out of rotation once the probe has gone 50 ms without it.
            _ = try? await waitUntil("the killed task out of rotation", timeout: 5, every: 0.005) {
                guard let newest = probe.newest else { return false }
                return newest - (probe.lastSeen(killed, since: t0) ?? t0) >= 0.05
            }
            if let seen = probe.firstSeen(newTask, since: t0) { firstNew.append(ms(seen - t0)) }
            lastKilled.append(ms(max(0, (probe.lastSeen(killed, since: t0) ?? t0) - t0)))
            probe.trim(before: t0 - 1)
            if (i + 1) % 50 == 0 { o.progress("  \(i + 1)/\(o.replacements)") }
        }
        // Let the last killed tasks end before counting reloads.
        try await Task.sleep(nanoseconds: UInt64((o.killGrace + 0.3) * 1e9))
        let reloads = try await stack.reloadCount() - reloadsBefore
        await probe.stop()
        let live = try await stack.haproxy.runtime.liveState()
        return ConvergenceResult(
            replacements: o.replacements,
            tasksInHAProxy: live.backends.values.reduce(0) { $0 + $1.filter { $0.admin != .maint }.count },
            eventToApplied: Summary(controller.latencies.latencies.map(ms)), cpuPerBatch: Summary(controller.latencies.cpuTimes.map(ms)),
            batches: controller.latencies.batches, events: controller.latencies.events,
            changeToFirstRequestOnNewTask: Summary(firstNew), changeToLastRequestOnKilledTask: Summary(lastKilled),
            unseen: unseen, probeRequests: probe.count, probeFailed: probe.failed, probeLastFailure: probe.lastFailure,
            reloads: reloads)
    }
}
