import Testing
import ServiceRouterController
import ServiceRouterCore
import ServiceRouterIO
import ServiceRouterTestSupport

/// A wrong operator value never looks like success.
@Suite struct OperatorMistakeTests {
    let app = harnessApp("/web", port: 10000, tasks: [("web.1", 31001)])

    @Test func aReloadOntoAnotherFileIsAnErrorAndIsNotRepeated() async throws {
        let h = try ControllerHarness(apps: [app])
        // HAProxy was started with -f on another file than --haproxy-config.
        h.files.setFault(nil)
        try h.files.replaceFile("/in-memory/other.cfg", with: "global\n  stats socket /in-memory/admin.sock\n")
        h.haproxy.loadFrom("/in-memory/other.cfg")
        h.start()
        try await eventually("the error") {
            h.controller.activity.all.contains { if case .fullPass(_, _, .configNotLoaded?) = $0 { true } else { false } }
        }
        #expect(h.haproxy.reloads == 1)
        #expect(h.reconciler.metrics.degradedReason?.contains("is --haproxy-config the file HAProxy was started with") == true)
        // Retries and resyncs do not reload again while nothing changed.
        for _ in 0..<6 {
            try await h.waitUntilIdle()
            h.time.advance(by: 5)
        }
        try await h.waitUntilIdle()
        #expect(h.haproxy.reloads == 1, "no reload loop")
        #expect(h.fullPasses.count > 2, "it kept checking")
        // Fixed (HAProxy now reads the right file): the next pass applies.
        h.haproxy.loadFrom(nil)
        h.haproxy.restartFromFiles()
        h.time.advance(by: h.settings.haproxyCheckInterval)
        try await eventually("no longer degraded once HAProxy reads the right file") { h.reconciler.metrics.degradedReason == nil }
        #expect(h.haproxy.serving("web_10000").count == 1)
        await h.stop()
    }

    @Test func aSocketTypoWhileHAProxyRunsWritesNothingAndNamesTheRealSocket() async throws {
        let h = try ControllerHarness(apps: [app])
        let before = h.files.config
        h.haproxy.setDown("No such file or directory")   // the admin socket path is wrong...
        h.haproxy.setMaster(answers: true, sockets: ["/run/haproxy/admin.sock"])  // ...HAProxy runs
        h.haproxy.rejectCommands(nil)
        h.start()
        try await eventually("the error") {
            h.controller.activity.all.contains { if case .fullPass(_, _, .socketMismatch?) = $0 { true } else { false } }
        }
        #expect(h.files.config == before, "HAProxy's admin socket is never moved to a path nothing listens on")
        #expect(h.haproxy.reloads == 0 && h.haproxy.validations == 0)
        #expect(h.reconciler.metrics.degradedReason?.contains("/run/haproxy/admin.sock") == true)
        await h.stop()
    }

    @Test func withHAProxyDownTheValidatedConfigIsInstalledForItsStartButNothingReloads() async throws {
        let h = try ControllerHarness(apps: [app])
        h.haproxy.setDown("Connection refused")
        h.haproxy.setMaster(answers: false)
        h.start()
        try await eventually("the config installed") { h.files.config?.contains("backend web_10000") == true }
        #expect(h.haproxy.reloads == 0, "never reloaded blind")
        #expect(h.haproxy.validations == 1)
        await h.stop()
    }

    @Test func aGroupNoAppHasIsAWarningNotASilentEmptyHAProxy() throws {
        var p = PassPlanner(settings: PassSettings(routing: RoutingOptions(groups: ["externl"]),
                                                   render: RenderOptions(adminSocket: "/run/a.sock"), templates: try TemplateSet()))
        let plan = try p.plan(PassInput(apps: [app], live: nil))
        #expect(plan.desired.services.isEmpty)
        let warning = try #require(plan.desired.diagnostics.first { $0.kind == .notInGroup })
        #expect(warning.message.contains("none of Marathon's 1 app(s) is in --group \"externl\"") && warning.message.contains("\"external\""),
                "\(warning.message)")
    }
}
