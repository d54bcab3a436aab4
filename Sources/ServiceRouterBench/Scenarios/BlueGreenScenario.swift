import Foundation
import ServiceRouterController
import ServiceRouterCLI
import ServiceRouterCore
import ServiceRouterIO

public struct BlueGreenResult: Sendable, Codable {
    /// Instances of each colour.
    public var instances: Int
    /// Whether `servicerouter zdd` reported success (and what it said).
    public var succeeded: Bool
    public var outcome: String
    /// The deploy, from the new colour's creation to the old colour's deletion (s).
    public var seconds: Double
    /// HAProxy reloads (master `show proc`) during the deploy.
    public var reloads: Int
    /// Load on the group's service port while the colours swapped: requests and failures.
    public var requests: Int
    public var failed: Int
    public var lastFailure: String?
    /// Requests answered by each colour.
    public var servedByOld: Int
    public var servedByNew: Int
    public var fullPasses: Int
}

/// A blue/green deploy as an operator runs it (`servicerouter zdd` against Marathon's REST API,
/// with the load balancer's stats page watched), under load: the colours share one backend and
/// every step goes through HAProxy's runtime API, so nothing reloads and no request fails.
enum BlueGreenScenario {
    static func definition(port: Int, altPort: Int, instances: Int, version: String) -> JSONValue {
        [
            "id": "/bluegreen/web", "instances": .int(instances), "cmd": .string("serve \(version)"),
            "labels": ["HAPROXY_GROUP": "external", "HAPROXY_DEPLOYMENT_GROUP": "bluegreen-web", "HAPROXY_DEPLOYMENT_ALT_PORT": .string(String(altPort))],
            "portDefinitions": [["port": .int(port), "protocol": "tcp", "name": "http"]],
            "healthChecks": [["protocol": "HTTP", "path": "/health", "portIndex": 0, "intervalSeconds": 1, "timeoutSeconds": 1,
                              "maxConsecutiveFailures": 2, "gracePeriodSeconds": 5]],
        ]
    }

    static func run(_ o: BenchOptions) async throws -> BlueGreenResult {
        let ports = try BenchPorts.free(3)
        let (port, alt, stats) = (ports[0], ports[1], ports[2])
        let n = o.blueGreenInstances
        o.progress("bluegreen: a zdd deploy of \(n) instances under load")
        let stack = try await BenchStack.start(.init(apps: [], killGrace: o.killGrace, placement: o.placement,
                                                     haproxyBinary: o.haproxyBinary, statsPort: stats))
        do {
            stack.startController()
            var settings = ZDDSettings()
            settings.force = true
            settings.stepDelay = 0.2
            settings.maxWait = 30
            settings.timeout = 600
            settings.balancers = [URL(string: "http://127.0.0.1:\(stats)")!]
            func runner() -> ZDDRunner { ZDDRunner(client: stack.client, settings: settings, logger: stack.logger, output: { _ in }) }

            // The group's first colour (a new backend: one reload, not counted).
            let first = await runner().run(definition: definition(port: port, altPort: alt, instances: n, version: "v1"))
            guard case .succeeded = first else { throw BenchError("bluegreen: the first colour was not deployed: \(first)") }
            let probe = LoadGenerator.Target(name: "probe", port: port, keepAlive: false)
            try await waitUntil("the first colour to serve", timeout: 60) {
                try await Blocking.run {
                    var c: Connection?
                    defer { c?.close() }
                    if case .success = LoadGenerator.request(probe, reusing: &c) { return true }
                    return false
                }
            }
            try await ScaleScenario.settle(stack.reconciler, quiet: 0.5, timeout: 60)
            let reloadsBefore = try await stack.reloadCount()
            let passesBefore = stack.reconciler.metrics.fullPasses
            let load = LoadGenerator(targets: [
                .init(name: "keep-alive", port: port, keepAlive: true),
                .init(name: "new-connection", port: port, keepAlive: false),
            ], ratePerTarget: min(o.loadRate, 200), maxDuration: 600, trackTasks: true)
            load.start()
            let oldTasks = Set(try await stack.sim.tasks("/bluegreen/web-blue").map(\.id))
            let start = Monotonic.now()
            let outcome = await runner().run(definition: definition(port: port, altPort: alt, instances: n, version: "v2"))
            let seconds = Monotonic.now() - start
            try await ScaleScenario.settle(stack.reconciler, quiet: 0.5, timeout: 60)
            let counts = await load.finish()
            let reloads = try await stack.reloadCount() - reloadsBefore
            var byOld = 0, byNew = 0
            for c in counts.values {
                for (task, k) in c.byTask { if oldTasks.contains(task) { byOld += k } else { byNew += k } }
            }
            let (succeeded, text): (Bool, String) = switch outcome {
            case .succeeded(let m): (true, m)
            case .failed(let m): (false, m)
            }
            let result = BlueGreenResult(
                instances: n, succeeded: succeeded, outcome: text, seconds: seconds, reloads: reloads,
                requests: counts.values.reduce(0) { $0 + $1.total }, failed: counts.values.reduce(0) { $0 + $1.failed },
                lastFailure: counts.values.compactMap(\.lastFailure).first, servedByOld: byOld, servedByNew: byNew,
                fullPasses: stack.reconciler.metrics.fullPasses - passesBefore)
            o.progress("  \(succeeded ? "deployed" : "NOT deployed") in \(String(format: "%.1f", seconds)) s: \(reloads) reloads, \(result.failed) of \(result.requests) requests failed")
            await stack.stop()
            return result
        } catch {
            o.progress("  bluegreen stack kept for inspection: \(stack.directory)")
            await stack.stop(keep: true)
            throw error
        }
    }
}
