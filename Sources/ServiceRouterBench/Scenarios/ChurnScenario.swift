import Foundation
import ServiceRouterController
import ServiceRouterCLI
import ServiceRouterCore
import ServiceRouterIO

public struct ChurnModeResult: Sendable, Codable {
    public var mode: String
    public var seconds: Double
    public var replacements: Int
    /// Replacements skipped because the app had fewer than 3 running tasks (never kill below 2).
    public var skipped: Int
    public var minRunningBeforeKill: Int
    public var requests: Int
    public var failed: Int
    public var failedByTarget: [String: Int]
    public var lastFailure: String?
    /// HAProxy's own reload counter (master `show proc`) over the churn.
    public var reloads: Int
    /// The master, the current worker and old workers still alive when the churn ends.
    public var haproxyProcessesAtEnd: Int
    public var fastPathBatches: Int
    /// Event → HAProxy acknowledged, fast-path batches only (the baseline has none).
    public var eventToApplied: Summary
    public var fullPasses: Int
}

public struct ChurnResult: Sendable, Codable {
    public var servicerouter: ChurnModeResult
    public var reloadAlways: ChurnModeResult
    /// reload-always ÷ servicerouter, per figure; nil where servicerouter's figure is 0 (the
    /// table then prints both values).
    public var ratios: [String: Double?]
}

enum ChurnScenario {
    static func run(_ o: BenchOptions) async throws -> ChurnResult {
        let sr = try await runMode(o, reloadAlways: false)
        let baseline = try await runMode(o, reloadAlways: true)
        func ratio(_ a: Int, _ b: Int) -> Double? { a == 0 ? nil : Double(b) / Double(a) }
        return ChurnResult(servicerouter: sr, reloadAlways: baseline, ratios: [
            "requests": ratio(sr.requests, baseline.requests),
            "failed": ratio(sr.failed, baseline.failed),
            "reloads": ratio(sr.reloads, baseline.reloads),
            "haproxyProcessesAtEnd": ratio(sr.haproxyProcessesAtEnd, baseline.haproxyProcessesAtEnd),
        ])
    }

    static func runMode(_ o: BenchOptions, reloadAlways: Bool) async throws -> ChurnModeResult {
        let mode = reloadAlways ? "reload-always" : "servicerouter"
        let ports = try BenchPorts.free(2)
        let apps = [
            BenchApp(id: "/churn/web", instances: 4, servicePort: ports[0], vhost: "web.churn.local"),
            BenchApp(id: "/churn/api", instances: 4, servicePort: ports[1], vhost: "api.churn.local"),
        ]
        o.progress("churn (\(mode)): \(Int(o.duration)) s, \(o.changeRate) replacements/s, 4 load targets × \(Int(o.loadRate)) req/s")
        let stack = try await BenchStack.start(.init(apps: apps, killGrace: o.killGrace, reloadAlways: reloadAlways,
                                                     placement: o.placement, haproxyBinary: o.haproxyBinary))
        var keep = true
        defer { if keep { o.progress("  churn stack kept for inspection: \(stack.directory)") } }
        do {
            stack.startController()
            try await stack.waitConverged(apps.map(\.id), timeout: 60)
            guard let controller = stack.controller else { throw BenchError("controller not started") }
            try await ScaleScenario.settle(stack.reconciler, quiet: 0.5, timeout: 60)
            controller.latencies.reset()
            let reloadsBefore = try await stack.reloadCount()
            let syncsBefore = stack.reconciler.metrics.fullPasses

            let load = LoadGenerator(targets: [
                .init(name: "web keep-alive (vhost)", port: stack.httpPort, host: apps[0].vhost, keepAlive: true),
                .init(name: "web new-connection (vhost)", port: stack.httpPort, host: apps[0].vhost, keepAlive: false),
                .init(name: "api keep-alive (service port)", port: apps[1].servicePort, keepAlive: true),
                .init(name: "api new-connection (service port)", port: apps[1].servicePort, keepAlive: false),
            ], ratePerTarget: o.loadRate, maxDuration: o.duration + 30)
            load.start()

            let start = Monotonic.now()
            var replacements = 0, skipped = 0, minRunning = Int.max
            var i = 0
            while Monotonic.now() - start < o.duration {
                let due = start + Double(i) / o.changeRate
                let now = Monotonic.now()
                if due > now { try await Task.sleep(nanoseconds: UInt64((due - now) * 1e9)) }
                if Monotonic.now() - start >= o.duration { break }
                let app = apps[i % apps.count]
                i += 1
                // Never below 2 running tasks: kill one only when 3 or more run.
                let running = try await stack.sim.runningTaskIds(app.id).count
                minRunning = min(minRunning, running)
                guard running >= 3 else {
                    skipped += 1
                    continue
                }
                _ = try await stack.sim.replaceTask(app.id)
                replacements += 1
            }
            let seconds = Monotonic.now() - start
            let processes = try await stack.haproxyProcesses()
            let counts = await load.finish()
            let reloads = try await stack.reloadCount() - reloadsBefore
            let syncs = stack.reconciler.metrics.fullPasses - syncsBefore
            let total = counts.values.reduce(0) { $0 + $1.total }
            let failed = counts.values.reduce(0) { $0 + $1.failed }
            let result = ChurnModeResult(
                mode: mode, seconds: seconds, replacements: replacements, skipped: skipped,
                minRunningBeforeKill: minRunning == Int.max ? 0 : minRunning,
                requests: total, failed: failed, failedByTarget: counts.mapValues(\.failed),
                lastFailure: counts.values.compactMap(\.lastFailure).first, reloads: reloads,
                haproxyProcessesAtEnd: processes, fastPathBatches: controller.latencies.batches,
                eventToApplied: Summary(controller.latencies.latencies.map(ms)), fullPasses: syncs)
            o.progress("  \(total) requests, \(failed) failed, \(reloads) reloads, \(processes) HAProxy processes at the end")
            keep = false
            await stack.stop()
            return result
        } catch {
            await stack.stop(keep: true)
            throw error
        }
    }
}
