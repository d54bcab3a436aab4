import Foundation
import ServiceRouterController
import ServiceRouterCLI
import ServiceRouterCore
import ServiceRouterIO

/// The machine the figures come from.
public struct MachineInfo: Sendable, Codable {
    public var cpus: Int
    public var cpuModel: String
    public var memoryBytes: Int
    public var kernel: String
    public var haproxy: String
    public var swift: String

    static func current(haproxyBinary: String) -> MachineInfo {
        func firstLine(_ cmd: String, _ args: [String]) -> String {
            guard let r = try? ProcessRunner.run(cmd, args, timeout: 20), r.status == 0 else { return "unknown" }
            return r.output.split(separator: "\n").first.map { String($0).trimmingCharacters(in: .whitespaces) } ?? "unknown"
        }
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }
            .flatMap { $0.split(separator: ":", maxSplits: 1).last }.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown"
        let meminfo = (try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8)) ?? ""
        let memKB = meminfo.split(separator: "\n").first { $0.hasPrefix("MemTotal:") }.map { Int($0.filter(\.isNumber)) ?? 0 } ?? 0
        return MachineInfo(cpus: ProcessInfo.processInfo.activeProcessorCount, cpuModel: model, memoryBytes: memKB * 1024,
                           kernel: firstLine("uname", ["-r"]), haproxy: firstLine(haproxyBinary, ["-v"]),
                           swift: firstLine("swift", ["--version"]))
    }
}

/// One line of the verdict: a correctness check (the smoke test asserts these) or a speed target
/// (reported, never asserted in tests).
public struct Check: Sendable, Codable {
    public enum Kind: String, Sendable, Codable { case correctness, target }
    public var kind: Kind
    public var name: String
    public var target: String
    public var measured: String
    public var passed: Bool
}

public struct BenchResults: Sendable, Codable {
    public var machine: MachineInfo
    public var smoke: Bool
    public var startedAt: String
    public var seconds: Double
    public var scale: ScaleResult?
    public var convergence: ConvergenceResult?
    public var churn: ChurnResult?
    public var vhost: VhostResult?
    public var idle: IdleResult?
    public var bluegreen: BlueGreenResult?
    public var checks: [Check]

    public var correctnessPassed: Bool { checks.allSatisfy { $0.kind != .correctness || $0.passed } }

    public func json() throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try e.encode(self), as: UTF8.self)
    }
}

public enum BenchRunner {
    public static func run(_ o: BenchOptions) async throws -> BenchResults {
        guard HAProxyProcess.isInstalled(binary: o.haproxyBinary) else {
            throw BenchError("HAProxy is not installed (\(o.haproxyBinary) -v failed): run scripts/setup")
        }
        let started = Monotonic.now()
        let startedAt = StreamLogSink.timestamp(Date())
        let machine = MachineInfo.current(haproxyBinary: o.haproxyBinary)
        var results = BenchResults(machine: machine, smoke: o.smoke, startedAt: startedAt, seconds: 0, checks: [])
        let runs = o.runs

        // Scale first: the peak RSS must not include what earlier scenarios left in this process.
        if runs.contains(.scale) || runs.contains(.convergence) {
            let resetWorked = ProcessMemory.resetPeak()
            let rssAtStart = ProcessMemory.currentRSS
            let stack = try await ScaleScenario.startStack(o)
            do {
                if runs.contains(.scale) {
                    results.scale = try await ScaleScenario.run(stack, o, rssAtStart: rssAtStart, peakResetWorked: resetWorked)
                } else {
                    stack.startController()
                }
                if runs.contains(.convergence) {
                    results.convergence = try await ConvergenceScenario.run(stack, o)
                }
            } catch {
                o.progress("failed; logs and configs kept in \(stack.directory)")
                await stack.stop(keep: true)
                throw error
            }
            await stack.stop()
        }
        if runs.contains(.churn) {
            results.churn = try await ChurnScenario.run(o)
        }
        if runs.contains(.vhost) {
            results.vhost = try await VhostScenario.run(o)
        }
        if runs.contains(.idle) {
            results.idle = try await IdleScenario.run(o)
        }
        if runs.contains(.bluegreen) {
            results.bluegreen = try await BlueGreenScenario.run(o)
        }
        results.seconds = Monotonic.now() - started
        results.checks = checks(results)
        return results
    }

    static func checks(_ r: BenchResults) -> [Check] {
        var out: [Check] = []
        func f(_ v: Double, _ unit: String = "ms") -> String { v.isFinite ? String(format: "%.2f %@", v, unit) : "n/a" }
        if let c = r.convergence {
            out.append(Check(kind: .correctness, name: "convergence: probe requests failed", target: "0",
                             measured: String(c.probeFailed), passed: c.probeFailed == 0))
            out.append(Check(kind: .correctness, name: "convergence: reloads", target: "0", measured: String(c.reloads), passed: c.reloads == 0))
            out.append(Check(kind: .correctness, name: "convergence: replacements never routed", target: "0",
                             measured: String(c.unseen), passed: c.unseen == 0))
            out.append(Check(kind: .target, name: "event → runtime applied p99", target: "≤ 5 ms",
                             measured: f(c.eventToApplied.p99), passed: c.eventToApplied.p99 <= 5))
            out.append(Check(kind: .target, name: "change → first request on the new task p99", target: "≤ 50 ms",
                             measured: f(c.changeToFirstRequestOnNewTask.p99), passed: c.changeToFirstRequestOnNewTask.p99 <= 50))
            out.append(Check(kind: .target, name: "change → last request on the killed task p99", target: "≤ 50 ms",
                             measured: f(c.changeToLastRequestOnKilledTask.p99), passed: c.changeToLastRequestOnKilledTask.p99 <= 50))
        }
        if let c = r.churn {
            let sr = c.servicerouter
            out.append(Check(kind: .correctness, name: "churn (servicerouter): failed requests", target: "0",
                             measured: "\(sr.failed) of \(sr.requests)", passed: sr.failed == 0 && sr.requests > 0))
            out.append(Check(kind: .correctness, name: "churn (servicerouter): reloads", target: "0", measured: String(sr.reloads), passed: sr.reloads == 0))
            out.append(Check(kind: .correctness, name: "churn (servicerouter): never below 2 running tasks", target: "≥ 2",
                             measured: String(sr.minRunningBeforeKill - 1), passed: sr.minRunningBeforeKill - 1 >= 2))
        }
        if let v = r.vhost {
            out.append(Check(kind: .correctness, name: "vhost: moves routed (new host served, old host dropped)", target: "\(v.moves)",
                             measured: String(v.moves - v.unrouted), passed: v.unrouted == 0))
            out.append(Check(kind: .correctness, name: "vhost: reloads", target: "0", measured: String(v.reloads), passed: v.reloads == 0))
            out.append(Check(kind: .correctness, name: "vhost: failed requests on the service port", target: "0",
                             measured: "\(v.failed) of \(v.requests)", passed: v.failed == 0 && v.requests > 0))
            out.append(Check(kind: .target, name: "vhost: label change → new host routed (median)", target: "≤ 50 ms",
                             measured: f(v.changeToNewHostRouted.median), passed: v.changeToNewHostRouted.median <= 50))
        }
        if let i = r.idle {
            out.append(Check(kind: .correctness, name: "idle: reloads and full passes", target: "0 / 0",
                             measured: "\(i.reloads) / \(i.fullPasses)", passed: i.reloads == 0 && i.fullPasses == 0))
            out.append(Check(kind: .target, name: "idle: servicerouter run CPU", target: "< 1 ms/s",
                             measured: f(i.cpuMillisecondsPerSecond, "ms/s"), passed: i.cpuMillisecondsPerSecond < 1))
        }
        if let b = r.bluegreen {
            out.append(Check(kind: .correctness, name: "bluegreen: zdd deploy completed", target: "yes",
                             measured: b.succeeded ? "yes" : "no: \(b.outcome)", passed: b.succeeded))
            out.append(Check(kind: .correctness, name: "bluegreen: reloads during the deploy", target: "0", measured: String(b.reloads), passed: b.reloads == 0))
            out.append(Check(kind: .correctness, name: "bluegreen: failed requests", target: "0",
                             measured: "\(b.failed) of \(b.requests)", passed: b.failed == 0 && b.requests > 0))
        }
        if let s = r.scale {
            out.append(Check(kind: .correctness, name: "scale: runtime commands on an idle resync", target: "0",
                             measured: String(s.idleResyncCommands), passed: s.idleResyncCommands == 0))
            out.append(Check(kind: .correctness, name: "scale: reloads on an idle resync", target: "0",
                             measured: String(s.idleResyncReloads), passed: s.idleResyncReloads == 0))
            out.append(Check(kind: .correctness, name: "scale: reloads during task changes", target: "0",
                             measured: String(s.reloadsDuringChanges), passed: s.reloadsDuringChanges == 0))
            out.append(Check(kind: .target, name: "scale: idle full resync (median)", target: "≤ 300 ms",
                             measured: f(s.idleResync.median), passed: s.idleResync.median <= 300))
            out.append(Check(kind: .target, name: "scale: controller CPU per task change (median)", target: "≤ 2 ms",
                             measured: f(s.cpuPerBatch.median), passed: s.cpuPerBatch.median <= 2))
            out.append(Check(kind: .target, name: "scale: event → runtime applied p99", target: "≤ 5 ms",
                             measured: f(s.eventToApplied.p99), passed: s.eventToApplied.p99 <= 5))
            if let c = s.controllerProcess {
                let mb = Double(c.peakRSS) / 1_048_576
                out.append(Check(kind: .target, name: "scale: controller peak RSS (servicerouter run)", target: "≤ 50 MB",
                                 measured: String(format: "%.1f MB", mb), passed: mb <= 50))
            }
        }
        return out
    }
}
