import Testing
@testable import ServiceRouterCore

/// The pure pass planner: what a full pass decides, from values.
@Suite struct PassPlannerTests {
    func planner() throws -> PassPlanner {
        let render = RenderOptions(adminSocket: "/run/admin.sock", httpPort: 80, appIdPort: nil, stats: nil)
        return PassPlanner(settings: PassSettings(routing: RoutingOptions(groups: ["*"], minSlots: 2, reservedPorts: render.reservedPorts),
                                                  render: render, templates: try TemplateSet()))
    }

    func web(_ labels: [String: String], tasks: Int = 2) -> MarathonApp {
        makeApp("/web", ports: [10000], labels: labels, instances: tasks,
                tasks: (1...tasks).map { makeTask("web.\($0)", app: "/web", host: "10.0.0.\($0)", ports: [31000]) })
    }

    @Test func anInvalidLabelOnALiveAppKeepsItsLastGoodDefinition() throws {
        var p = try planner()
        let good = try p.plan(PassInput(apps: [web(["HAPROXY_0_BALANCE": "leastconn"])], live: nil))
        #expect(good.desired.services.map(\.backend.text) == ["web_10000"])
        #expect(good.config.text.contains("balance leastconn"))

        // A typo: the app keeps its port and its last good labels; its tasks still update.
        let typo = try p.plan(PassInput(apps: [web(["HAPROXY_0_BALANCE": "leastconns"], tasks: 3)], live: nil))
        #expect(typo.desired.services.map(\.backend.text) == ["web_10000"])
        #expect(typo.desired.services.first?.servers.count == 3)
        #expect(typo.config.text.contains("balance leastconn\n"))
        let note = try #require(typo.desired.diagnostics.first { $0.kind == .staleLabels })
        #expect(note.level == .error && note.message.contains("keeps its last good labels") && note.message.contains("leastconns"))

        // Still wrong at the next pass: still the last good ones.
        let again = try p.plan(PassInput(apps: [web(["HAPROXY_0_BALANCE": "leastconns"], tasks: 3)], live: nil))
        #expect(again.desired.services.count == 1)
        // Fixed: the new labels apply.
        let fixed = try p.plan(PassInput(apps: [web(["HAPROXY_0_BALANCE": "source"], tasks: 3)], live: nil))
        #expect(fixed.config.text.contains("balance source"))
        #expect(!fixed.desired.diagnostics.contains { $0.kind == .staleLabels })
    }

    @Test func anAppWhoseLabelsWereNeverValidIsSkipped() throws {
        var p = try planner()
        let plan = try p.plan(PassInput(apps: [web(["HAPROXY_0_BALANCE": "leastconns"])], live: nil))
        #expect(plan.desired.services.isEmpty)
        #expect(plan.desired.diagnostics.contains { $0.kind == .badLabel && $0.message.hasPrefix("app skipped: invalid") })
    }

    @Test func withoutALiveHAProxyThePlanReloadsForTheSocketAndSaysWhy() throws {
        var p = try planner()
        let plan = try p.plan(PassInput(apps: [web([:])], live: nil, socketProblem: "connection refused"))
        #expect(plan.reload == [.socketUnusable("connection refused")])
        #expect(plan.reload.first?.metricLabel == "socket_unusable")
    }
}
