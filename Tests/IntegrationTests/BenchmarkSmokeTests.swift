import Foundation
import Testing
import ServiceRouterBench
import ServiceRouterIO

/// The benchmarks' smoke version (`servicerouter-bench --smoke`), in-process, so the benchmark
/// code cannot rot. It asserts behaviour only — no failed request, no reload where servicerouter
/// promises none, no runtime command on an idle resync — never speed: timings depend on the
/// machine and on whatever runs beside the tests.
@Suite(.enabled(if: HAProxyProcess.isInstalled(), "haproxy is not on PATH (.ci/run installs it)"))
struct BenchmarkSmokeTests {
    @Test func smokeScenariosRunAndBehave() async throws {
        let results = try await BenchRunner.run(.smoke(placement: .inProcess))
        let report = BenchReport.text(results)

        let scale = try #require(results.scale, "\(report)")
        #expect(scale.tasks == 20 * 3 + 2)
        #expect(scale.initialSyncReloaded, "the first pass starts from HAProxy's minimal config")
        #expect(scale.idleResyncCommands == 0, "an idle resync sends no runtime command\n\(report)")
        #expect(scale.idleResyncReloads == 0, "an idle resync does not reload\n\(report)")
        #expect(scale.reloadsDuringChanges == 0, "task changes go through the runtime API\n\(report)")
        #expect(scale.batches >= scale.changes, "every change went through the event fast path\n\(report)")

        let convergence = try #require(results.convergence, "\(report)")
        #expect(convergence.probeFailed == 0, "\(convergence.probeLastFailure ?? "")\n\(report)")
        #expect(convergence.reloads == 0, "\(report)")
        #expect(convergence.unseen == 0, "every replacement was routed\n\(report)")
        #expect(convergence.changeToFirstRequestOnNewTask.count == convergence.replacements)

        let churn = try #require(results.churn, "\(report)")
        #expect(churn.servicerouter.requests > 0)
        #expect(churn.servicerouter.failed == 0, "\(churn.servicerouter.lastFailure ?? "")\n\(report)")
        #expect(churn.servicerouter.reloads == 0, "\(report)")
        #expect(churn.servicerouter.replacements > 0)
        #expect(churn.servicerouter.minRunningBeforeKill >= 3, "never fewer than 2 tasks left running")
        // The baseline is the same controller forced to reload on every change.
        #expect(churn.reloadAlways.reloads > 0, "\(report)")
        #expect(churn.reloadAlways.fastPathBatches == 0)

        // A vhost label change is applied through the vhost map, without a reload.
        let vhost = try #require(results.vhost, "\(report)")
        #expect(vhost.moves == 3)
        #expect(vhost.unrouted == 0, "every new host routed, every old one dropped\n\(report)")
        #expect(vhost.reloads == 0, "\(report)")
        #expect(vhost.failed == 0, "\(vhost.lastFailure ?? "")\n\(report)")

        // An idle `servicerouter run` neither reloads nor runs full passes (its CPU is reported only).
        let idle = try #require(results.idle, "\(report)")
        #expect(idle.reloads == 0 && idle.fullPasses == 0, "\(report)")

        // A blue/green deploy (servicerouter zdd) under load: completed, no reload, no failure.
        let bluegreen = try #require(results.bluegreen, "\(report)")
        #expect(bluegreen.succeeded, "\(bluegreen.outcome)\n\(report)")
        #expect(bluegreen.reloads == 0, "\(report)")
        #expect(bluegreen.requests > 0)
        #expect(bluegreen.failed == 0, "\(bluegreen.lastFailure ?? "")\n\(report)")
        #expect(bluegreen.servedByOld > 0 && bluegreen.servedByNew > 0, "both colours served through one backend\n\(report)")

        #expect(results.correctnessPassed, "\(report)")
        // The machine-readable form round-trips.
        let decoded = try JSONDecoder().decode(BenchResults.self, from: Data(try results.json().utf8))
        #expect(decoded.checks.count == results.checks.count)
    }
}
