import Foundation
import ServiceRouterController
import ServiceRouterCLI
import ServiceRouterCore
import ServiceRouterIO

public struct VhostResult: Sendable, Codable {
    /// Vhost label changes made (each moves the app to a new host name).
    public var moves: Int
    /// The label change accepted by Marathon → the first request with the new Host header
    /// answered by one of the app's tasks (ms).
    public var changeToNewHostRouted: Summary
    /// → the first request with the old Host header no longer routed to the app (ms).
    public var changeToOldHostGone: Summary
    /// Moves whose new host was not routed (or old host not dropped) within 15 s.
    public var unrouted: Int
    /// HAProxy reloads (master `show proc`) over all the moves.
    public var reloads: Int
    /// Load on the app's service port while it moved: requests and failures.
    public var requests: Int
    public var failed: Int
    public var lastFailure: String?
    public var fullPasses: Int
}

/// Moves an app from one virtual host to another by changing its `HAPROXY_0_VHOST` label, as an
/// operator would (PUT /v2/apps/<id>), and measures when HAProxy routes the new host and stops
/// routing the old one. The vhost map is updated through the runtime API: no reload.
enum VhostScenario {
    static func run(_ o: BenchOptions) async throws -> VhostResult {
        let ports = try BenchPorts.free(1)
        let app = BenchApp(id: "/vhost/web", instances: 2, servicePort: ports[0], vhost: "v0.move.local")
        o.progress("vhost: \(o.vhostMoves) moves of an app's virtual host")
        let stack = try await BenchStack.start(.init(apps: [app], killGrace: o.killGrace, placement: o.placement,
                                                     haproxyBinary: o.haproxyBinary))
        do {
            stack.startController()
            try await stack.waitConverged([app.id], timeout: 60)
            try await waitUntil("the first vhost to route", timeout: 30) {
                try await Self.routed(port: stack.httpPort, host: app.vhost)
            }
            try await ScaleScenario.settle(stack.reconciler, quiet: 0.5, timeout: 60)
            let reloadsBefore = try await stack.reloadCount()
            let passesBefore = stack.reconciler.metrics.fullPasses
            let load = LoadGenerator(targets: [
                .init(name: "service port keep-alive", port: app.servicePort, keepAlive: true),
                .init(name: "service port new-connection", port: app.servicePort, keepAlive: false),
            ], ratePerTarget: 50, maxDuration: Double(o.vhostMoves) * 20 + 30)
            load.start()

            var toNew: [Double] = [], toOldGone: [Double] = []
            var unrouted = 0
            var old = app.vhost
            for i in 1...o.vhostMoves {
                let host = "v\(i).move.local"
                try await waitUntil("Marathon's deployments to finish", timeout: 60) { try await stack.sim.idle() }
                let start = Monotonic.now()
                try await stack.sim.updateLabels(app.id, ["HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": host])
                var newAt: Double?, oldGoneAt: Double?
                let deadline = start + 15
                // Bounded: at most one request per host every 2 ms for 15 s.
                while (newAt == nil || oldGoneAt == nil) && Monotonic.now() < deadline {
                    if newAt == nil, try await Self.routed(port: stack.httpPort, host: host) { newAt = Monotonic.now() }
                    if oldGoneAt == nil, try await !Self.routed(port: stack.httpPort, host: old) { oldGoneAt = Monotonic.now() }
                    try await Task.sleep(nanoseconds: 2_000_000)
                }
                if let newAt, let oldGoneAt {
                    toNew.append(ms(newAt - start))
                    toOldGone.append(ms(oldGoneAt - start))
                } else {
                    unrouted += 1
                }
                old = host
                // Let the rolling restart the label change started finish before the next move.
                try await stack.waitConverged([app.id], timeout: 60)
            }
            let counts = await load.finish()
            let reloads = try await stack.reloadCount() - reloadsBefore
            let result = VhostResult(
                moves: o.vhostMoves, changeToNewHostRouted: Summary(toNew), changeToOldHostGone: Summary(toOldGone),
                unrouted: unrouted, reloads: reloads,
                requests: counts.values.reduce(0) { $0 + $1.total }, failed: counts.values.reduce(0) { $0 + $1.failed },
                lastFailure: counts.values.compactMap(\.lastFailure).first,
                fullPasses: stack.reconciler.metrics.fullPasses - passesBefore)
            o.progress("  \(o.vhostMoves - unrouted) of \(o.vhostMoves) moves routed, \(reloads) reloads, \(result.failed) of \(result.requests) requests failed")
            await stack.stop()
            return result
        } catch {
            o.progress("  vhost stack kept for inspection: \(stack.directory)")
            await stack.stop(keep: true)
            throw error
        }
    }

    /// One request (own connection) through HAProxy's HTTP frontend with `host` as Host header:
    /// true when a task answered 200.
    static func routed(port: Int, host: String) async throws -> Bool {
        try await Blocking.run {
            var connection: Connection?
            defer { connection?.close() }
            let target = LoadGenerator.Target(name: "vhost probe", port: port, host: host, keepAlive: false)
            if case .success = LoadGenerator.request(target, reusing: &connection) { return true }
            return false
        }
    }
}
