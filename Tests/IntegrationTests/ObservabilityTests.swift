import Foundation
import Testing
@testable import ServiceRouterCore
import ServiceRouterIO
@testable import ServiceRouterController
@testable import ServiceRouterCLI
import ServiceRouterTestSupport

/// The `--listen` endpoint: Prometheus text format, health, status JSON.
@Suite struct ObservabilityTests {
    /// Checks the Prometheus text exposition format rules this endpoint must follow.
    static func validatePrometheus(_ text: String) -> [String] {
        var problems: [String] = []
        let name = try! Regex("^[a-zA-Z_:][a-zA-Z0-9_:]*$")
        let sample = try! Regex(#"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\\\|\\"|\\n)*")(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\\\|\\"|\\n)*")*\})? (-?[0-9.eE+-]+|\+Inf|-Inf|NaN)$"#)
        var typed: [String: String] = [:]
        var seenSamplesFor = Set<String>()
        var buckets: [Double] = []
        guard text.hasSuffix("\n") else { return ["text must end with a newline"] }
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
            if line.hasPrefix("# HELP ") || line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ", maxSplits: 3)
                guard parts.count >= 4, (try? name.wholeMatch(in: String(parts[2]))) != nil else {
                    problems.append("bad comment line: \(line)"); continue
                }
                if line.hasPrefix("# TYPE ") {
                    let family = String(parts[2])
                    if seenSamplesFor.contains(family) { problems.append("TYPE after samples for \(family)") }
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(String(parts[3])) { problems.append("bad type: \(line)") }
                    typed[family] = String(parts[3])
                }
                continue
            }
            guard let m = try? sample.wholeMatch(in: String(line)) else { problems.append("bad sample line: \(line)"); continue }
            let metric = String(m.output[1].substring ?? "")
            let family = ["_bucket", "_sum", "_count"].reduce(metric) { f, suffix in
                typed[f] == nil && f.hasSuffix(suffix) && typed[String(f.dropLast(suffix.count))] == "histogram" ? String(f.dropLast(suffix.count)) : f
            }
            guard typed[family] != nil else { problems.append("sample without TYPE: \(line)"); continue }
            seenSamplesFor.insert(family)
            if metric.hasSuffix("_bucket"), let v = Double(line.split(separator: " ").last ?? "") {
                if let last = buckets.last, v < last { problems.append("histogram buckets must not decrease: \(line)") }
                buckets.append(v)
            }
            if metric.hasSuffix("_total"), typed[family] != "counter" { problems.append("_total on a non-counter: \(line)") }
        }
        return problems
    }

    @Test func exposition() throws {
        let m = ControllerMetrics()
        m.input(.statusUpdate(StatusUpdate(taskId: "t", appId: "/a", taskStatus: .running, host: "127.0.0.1")))
        m.input(.structureChanged("api_post_event"))
        m.commands(sent: 12, failed: 1)
        m.reload(reason: "new_backend")
        for l in [0.0004, 0.003, 0.02, 7.0] { m.applied(latency: l) }
        let be = try ProxyName("web_10000")
        let plan = ReconcilePlan(backends: [BackendPlan(backend: be, slotCount: 2, slots: [
            DesiredServer(taskId: "web.1", endpoint: Endpoint(ip: try IPAddress("127.0.0.1"), port: try Port(31000))), nil,
        ], commands: [], freedSlots: [], structureChanged: false)], commands: [])
        m.backends(plan, live: LiveState(servers: [LiveServer(backend: be, name: try ProxyName("s1"), address: "127.0.0.1", port: 31000)]), replaceAll: true)
        let text = m.prometheus()
        #expect(Self.validatePrometheus(text) == [])
        #expect(text.contains("servicerouter_events_total{type=\"status_update_event\"} 1\n"))
        #expect(text.contains("servicerouter_runtime_commands_total 12\n"))
        #expect(text.contains("servicerouter_reloads_total{reason=\"new_backend\"} 1\n"))
        #expect(text.contains("servicerouter_slots{backend=\"web_10000\",state=\"used\"} 1\n"))
        #expect(text.contains("servicerouter_apply_latency_seconds_bucket{le=\"+Inf\"} 4\n"))
        #expect(text.contains("servicerouter_apply_latency_seconds_count 4\n"))
        // The validator itself can fail.
        #expect(!Self.validatePrometheus("x 1\n").isEmpty)
        #expect(!Self.validatePrometheus("# TYPE y counter\ny{a=\"b} 1\n").isEmpty)

        struct Status: Decodable {
            struct Backend: Decodable { var backend: String; var slots: [[String: String?]] }
            var backends: [Backend]
        }
        let status = try JSONDecoder().decode(Status.self, from: Data(m.statusJSON()))
        #expect(status.backends.map(\.backend) == ["web_10000"])
        #expect(status.backends[0].slots.count == 2)
    }

    /// Label values come from fixed sets: no input grows the number of series.
    @Test func eventTypeLabelsAreAFixedSet() {
        let m = ControllerMetrics()
        for i in 0..<10_000 { m.input(.structureChanged("deployment_info\(i)")) }
        m.input(.structureChanged("api_post_event"))
        let series = m.prometheus().split(separator: "\n").filter { $0.hasPrefix("servicerouter_events_total{") }
        #expect(series == ["servicerouter_events_total{type=\"api_post_event\"} 1", "servicerouter_events_total{type=\"other\"} 10000"])
    }

    @Test func healthNeedsMarathonAndHAProxy() {
        let m = ControllerMetrics()
        #expect(m.health(grace: 60).healthy, "healthy while starting")
        #expect(!m.health(grace: 0).healthy)
        m.marathon(connected: true)
        m.haproxy(reachable: true)
        #expect(m.health(grace: 0) == (true, "ok"))
        m.haproxy(reachable: false)
        #expect(m.health(grace: 0).reason.contains("HAProxy"))
    }

    @Test(.enabled(if: HAProxyProcess.isAvailable, "haproxy is not on PATH"))
    func endpointServesLiveFigures() async throws {
        try await Stack.with([webApp("/obs/web", instances: 2)]) { s in
            try await s.waitConverged("/obs/web")
            // Routing works as soon as the new worker serves; the pass that reloaded it finishes
            // (and records its figures) a moment later.
            _ = try await eventually("the first pass recorded") { s.logs.contains(.info, "sync done") }
            let port = try freePort()
            let socket = s.haproxy.runtime
            let server = try StatusEndpoint.start(host: "127.0.0.1", port: port, metrics: s.reconciler.metrics, logger: .silent, grace: 0) {
                do { return .success(try socket.liveStateBlocking()) } catch { return .failure(error as! RuntimeSocketError) }
            }
            defer { server.stop() }
            let metrics = try await httpRequest(port: port, path: "/metrics")
            #expect(metrics.status == 200)
            #expect(metrics.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true)
            #expect(Self.validatePrometheus(metrics.body + "\n") == [])
            #expect(metrics.body.contains("servicerouter_marathon_connected 1"))
            let health = try await httpRequest(port: port, path: "/healthz")
            #expect(health.status == 200, "\(health.body)")
            let status = try await httpRequest(port: port, path: "/status")
            let json = try JSONSerialization.jsonObject(with: Data(status.body.utf8)) as? [String: Any]
            let backends = json?["backends"] as? [[String: Any]]
            #expect(backends?.count == 1, "\(status.body)")
            #expect(!metrics.body.contains("password") && !status.body.contains("password"))
            #expect(try await httpRequest(port: port, path: "/nope").status == 404)

            // /status shows what HAProxy has now, not what the last pass read: a slot put into
            // maintenance by hand shows at once.
            let backend = try #require(backends?.first?["backend"] as? String)
            let busy = try #require((backends?.first?["slots"] as? [[String: Any]])?.first { $0["liveAdmin"] as? String == "ready" })
            let slot = try #require(busy["slot"] as? String)
            _ = try await s.haproxy.runtime.raw("set server \(backend)/\(slot) state maint")
            let after = try await httpRequest(port: port, path: "/status")
            let afterJSON = try JSONSerialization.jsonObject(with: Data(after.body.utf8)) as? [String: Any]
            #expect(afterJSON?["live"] as? String == "now")
            let afterSlots = ((afterJSON?["backends"] as? [[String: Any]])?.first?["slots"] as? [[String: Any]]) ?? []
            #expect(afterSlots.first { $0["slot"] as? String == slot }?["liveAdmin"] as? String == "maint", "\(after.body)")

            await s.haproxy.shutdown()
            _ = try await eventually("healthz turns 503 without HAProxy") {
                try await httpRequest(port: port, path: "/healthz").status == 503
            }
        }
    }
}
