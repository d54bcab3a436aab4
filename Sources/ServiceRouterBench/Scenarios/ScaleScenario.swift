import Foundation
import ServiceRouterController
import ServiceRouterCLI
import ServiceRouterCore
import ServiceRouterIO

public struct ScaleResult: Sendable, Codable {
    public var apps: Int
    public var tasks: Int
    public var backends: Int
    /// Server lines (slots) in the config.
    public var servers: Int
    /// `/v2/apps?embed=apps.tasks` body size.
    public var payloadBytes: Int
    public var configBytes: Int
    /// Milliseconds, one run (the first pass starts from HAProxy's minimal config, so it reloads).
    public var initialSync: [String: Double]
    public var initialSyncReloaded: Bool
    /// Milliseconds: fetch + decode + full pass, nothing changed.
    public var idleResync: Summary
    /// Medians of each phase of the idle resyncs (ms).
    public var idleResyncPhases: [String: Double]
    /// Runtime commands the idle resyncs sent (must be 0), and reloads they caused (must be 0).
    public var idleResyncCommands: Int
    public var idleResyncReloads: Int
    /// One task change at this size through the event fast path.
    public var changes: Int
    public var eventToApplied: Summary
    public var cpuPerBatch: Summary
    public var batches: Int
    public var reloadsDuringChanges: Int
    /// Milliseconds: the config file rewrite after task changes (rendered off the controller's
    /// actor, at most once a second while tasks change).
    public var configRewriteWall: Double
    public var configRewriteCPU: Double
    /// Bytes: this process (the controller; the simulator runs in another process unless in-process).
    public var rssAtStart: Int
    public var peakRSS: Int
    public var rssAtEnd: Int
    public var peakResetWorked: Bool
    public var simulatorInProcess: Bool
    /// The `servicerouter` executable's own process on the same workload (the RSS target's figure);
    /// nil only in a smoke run where the executable was not built.
    public var controllerProcess: ControllerProcessResult?
}

enum ScaleScenario {
    static let probeAppId = "/bench/probe"

    /// apps × tasks background apps plus a 2-task probe app (the convergence scenario watches it:
    /// with 2 tasks, a replacement gets every other request, so the probe sees it at once).
    static func apps(_ o: BenchOptions) throws -> [BenchApp] {
        let ports = try BenchPorts.free(o.apps + 1)
        var out = (0..<o.apps).map { i in
            let name = String(format: "app-%04d", i + 1)
            return BenchApp(id: "/bench/\(name)", instances: o.tasksPerApp, servicePort: ports[i], vhost: "\(name).bench.local")
        }
        out.append(BenchApp(id: probeAppId, instances: 2, servicePort: ports[o.apps], vhost: "probe.bench.local"))
        return out
    }

    static func startStack(_ o: BenchOptions) async throws -> BenchStack {
        o.progress("starting HAProxy and the simulator with \(o.apps) apps × \(o.tasksPerApp) tasks (+ a 2-task probe app)")
        let started = Monotonic.now()
        let stack = try await BenchStack.start(.init(apps: try apps(o), killGrace: o.killGrace, placement: o.placement,
                                                     haproxyBinary: o.haproxyBinary))
        o.progress(String(format: "  simulator ready in %.1f s", Monotonic.now() - started))
        return stack
    }

    /// One full resync as `run` does it: fetch, decode, replace the model, full pass.
    struct Pass {
        var fetch: Double
        var decode: Double
        var model: Double
        var report: PassReport
        var payloadBytes: Int
        var total: Double { fetch + decode + model + report.timings.total }
    }

    static func pass(_ stack: BenchStack, reason: String) async throws -> Pass {
        var t = Monotonic.now()
        let (data, _) = try await stack.client.fetchApps()
        let fetch = Monotonic.now() - t
        t = Monotonic.now()
        let decoded = try MarathonDecoding.apps(from: data)
        let decode = Monotonic.now() - t
        t = Monotonic.now()
        await stack.reconciler.replace(with: AppsSnapshot(apps: decoded.apps, skipped: decoded.skipped))
        let model = Monotonic.now() - t
        let report = await stack.reconciler.fullPass(reason: reason)
        if let e = report.error { throw BenchError("full pass failed: \(e) (log: \(stack.logPath))") }
        return Pass(fetch: fetch, decode: decode, model: model, report: report, payloadBytes: data.count)
    }

    static func phases(_ p: Pass) -> [String: Double] {
        let t = p.report.timings
        return ["fetch": ms(p.fetch), "decode": ms(p.decode), "model": ms(p.model), "readLive": ms(t.readLive),
                "build": ms(t.build), "plan": ms(t.plan), "render": ms(t.render), "validate": ms(t.validate),
                "reload": ms(t.reload), "apply": ms(t.apply), "writeFile": ms(t.writeFile), "total": ms(p.total)]
    }

    /// Measures the initial sync, idle resyncs, task changes at full size and peak RSS; leaves the
    /// controller running on `stack` (the convergence scenario continues on it).
    static func run(_ stack: BenchStack, _ o: BenchOptions, rssAtStart: Int, peakResetWorked: Bool) async throws -> ScaleResult {
        // 1. Initial sync, from HAProxy's minimal config: one validated reload.
        o.progress("scale: initial sync")
        let first = try await pass(stack, reason: "benchmark: initial sync")
        let initial = phases(first)
        let reloaded = first.report.reloaded
        let configBytes = first.report.plan?.config.text.utf8.count ?? 0
        let servers = first.report.plan?.slots.backends.reduce(0) { $0 + $1.slotCount } ?? 0
        let backends = first.report.plan?.slots.backends.count ?? 0
        let tasks = first.report.plan?.desired.serverCount ?? 0
        let payload = first.payloadBytes
        o.progress(String(format: "  %d tasks, %d slots, config %.1f MB, initial sync %.0f ms", tasks, servers,
                          Double(configBytes) / 1e6, initial["total"] ?? 0))

        // 2. Idle full resyncs: nothing changed, so no command and no reload.
        o.progress("scale: \(o.resyncRuns) idle full resyncs")
        var idle: [[String: Double]] = []
        var idleCommands = 0, idleReloads = 0
        for _ in 0..<o.resyncRuns {
            let sentBefore = stack.reconciler.metrics.commandsSent
            let p = try await pass(stack, reason: "benchmark: idle resync")
            idleCommands += stack.reconciler.metrics.commandsSent - sentBefore
            if p.report.reloaded { idleReloads += 1 }
            idle.append(phases(p))
        }
        var idlePhases: [String: Double] = [:]
        for key in idle.first?.keys ?? [:].keys { idlePhases[key] = Summary(idle.compactMap { $0[key] }).median }

        // 3. The controller on the event stream; its start-up pass is one more idle resync.
        o.progress("scale: \(o.scaleChanges) task changes through the event fast path")
        let syncsBefore = stack.reconciler.metrics.fullPasses
        // The once-a-second config file rewrite would run beside the batches and count in their
        // CPU: it is measured on its own below.
        var run = RunSettings()
        run.fileSyncInterval = 3600
        stack.startController(run)
        guard let controller = stack.controller else { throw BenchError("controller not started") }
        try await waitUntil("the controller's start-up pass", timeout: 120, every: 0.05) {
            stack.reconciler.metrics.fullPasses > syncsBefore
        }
        // The stream's `connected` resync may follow the start-up pass: let both finish.
        try await settle(stack.reconciler, quiet: 1.5, timeout: 120)
        let reloadsBefore = try await stack.reloadCount()
        controller.latencies.reset()
        let background = stack.apps.filter { $0.id != probeAppId }
        for i in 0..<o.scaleChanges {
            let app = background[(i * 37) % background.count]
            let batches = controller.latencies.batches
            _ = try await stack.sim.replaceTask(app.id)
            try await waitUntil("the change of \(app.id) applied", timeout: 30, every: 0.005) {
                controller.latencies.batches > batches
            }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        // The killed tasks end (TASK_KILLED) after the grace period: their slots go to maint.
        try await Task.sleep(nanoseconds: UInt64((o.killGrace + 0.5) * 1e9))
        let reloadsDuring = try await stack.reloadCount() - reloadsBefore
        let latencies = controller.latencies.latencies.map(ms)
        let cpu = controller.latencies.cpuTimes.map(ms)
        // The config file rewrite that follows task changes (at most once a second in `run`).
        let rewriteWall = Monotonic.now(), rewriteCPU = CPUClock.process()
        await stack.reconciler.rewriteConfigIfDirty()
        let rewrite = (wall: ms(Monotonic.now() - rewriteWall), cpu: ms(CPUClock.process() - rewriteCPU))
        await stack.stopController()
        let rssAtEnd = ProcessMemory.currentRSS, peakRSS = ProcessMemory.peakRSS

        // 4. The controller's memory in its own process: `servicerouter run` on the same stack.
        var process: ControllerProcessResult?
        if ControllerProcess.executable() != nil || !o.smoke {
            o.progress("scale: servicerouter run in its own process (peak RSS)")
            process = try await ControllerProcess.measure(stack, o, changes: o.smoke ? 3 : o.scaleChanges, resyncs: o.smoke ? 2 : 5)
        }
        // The convergence scenario continues with a controller as `run` starts it.
        let syncsBeforeRestart = stack.reconciler.metrics.fullPasses
        stack.startController()
        try await waitUntil("the controller's start-up pass", timeout: 120, every: 0.05) {
            stack.reconciler.metrics.fullPasses > syncsBeforeRestart
        }

        return ScaleResult(
            apps: o.apps, tasks: tasks, backends: backends, servers: servers, payloadBytes: payload, configBytes: configBytes,
            initialSync: initial, initialSyncReloaded: reloaded,
            idleResync: Summary(idle.compactMap { $0["total"] }), idleResyncPhases: idlePhases,
            idleResyncCommands: idleCommands, idleResyncReloads: idleReloads,
            changes: o.scaleChanges, eventToApplied: Summary(latencies), cpuPerBatch: Summary(cpu),
            batches: controller.latencies.batches, reloadsDuringChanges: reloadsDuring,
            configRewriteWall: rewrite.wall, configRewriteCPU: rewrite.cpu,
            rssAtStart: rssAtStart, peakRSS: peakRSS, rssAtEnd: rssAtEnd,
            peakResetWorked: peakResetWorked, simulatorInProcess: o.placement == .inProcess, controllerProcess: process)
    }

    /// Waits until the reconciler has not started a full pass for `quiet` seconds.
    static func settle(_ reconciler: Reconciler, quiet: Double, timeout: Double) async throws {
        var last = reconciler.metrics.fullPasses
        var since = Monotonic.now()
        let deadline = Monotonic.now() + timeout
        while Monotonic.now() < deadline {
            try await Task.sleep(nanoseconds: 100_000_000)
            let now = reconciler.metrics.fullPasses
            if now != last {
                last = now
                since = Monotonic.now()
            } else if Monotonic.now() - since >= quiet {
                return
            }
        }
        throw BenchError("the controller kept running full passes for \(timeout) s")
    }
}
