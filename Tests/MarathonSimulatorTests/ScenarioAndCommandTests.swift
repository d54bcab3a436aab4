import Foundation
import ServiceRouterCore
import ServiceRouterIO
import Testing
@testable import MarathonSimulator

// Serialized: two tests install SIGINT/SIGTERM handlers and must not interleave.
@Suite(.serialized) struct ScenarioAndCommandTests {
    static let scenario = """
        {"steps": [
          {"at": 0,    "action": "createApp", "app": {"id": "/web", "instances": 2, "labels": {"HAPROXY_GROUP": "external"},
                                                    "healthChecks": [{"protocol": "HTTP", "path": "/health"}]}},
          {"at": 0.1,  "action": "scale", "appId": "/web", "instances": 3},
          {"at": 0.2,  "action": "kill", "appId": "/web", "index": 0},
          {"at": 0.3,  "action": "failHealth", "appId": "/web", "index": 1},
          {"at": 0.35, "action": "failRequests", "count": 1, "status": 500},
          {"at": 0.4,  "action": "createApp", "app": {"id": "/api", "instances": 1}},
          {"at": 0.45, "action": "restart", "appId": "/api"},
          {"at": 0.5,  "action": "updateLabels", "appId": "/api", "labels": {"HAPROXY_GROUP": "internal"}},
          {"at": 0.55, "action": "deleteApp", "appId": "/api"}
        ]}
        """

    @Test func scenarioRunsItsStepsInTime() async throws {
        try await withSimulator(.init(heartbeatInterval: nil, killGracePeriod: 0)) { sim in
            let reader = try SSEReader(port: sim.port)
            #expect(await reader.read { $0.events.count == 1 })
            let started = Monotonic.now()
            try await sim.runScenario(try Scenario.parse(Array(Self.scenario.utf8)))
            #expect(Monotonic.now() - started >= 0.5)
            try await sim.waitUntil(timeout: 5, "/api to be deleted") { await $0.app("/api") == nil }
            let web = await sim.tasks("/web")
            #expect(web.count == 3)
            #expect(web.filter { $0.healthy == false }.count == 1)
            #expect(try await RawHTTP.get(port: sim.port, "/v2/apps").status == 500)
            #expect(await reader.read { $0.eventTypes().contains("app_terminated_event") })
            let types = Set(reader.eventTypes())
            #expect(types.isSuperset(of: ["api_post_event", "status_update_event", "health_status_changed_event",
                                          "deployment_success", "app_terminated_event"]))
        }
    }

    @Test func scenarioFileAndErrorsNameTheStep() async throws {
        let path = NSTemporaryDirectory() + "sim-scenario-\(UUID().uuidString).json"
        try Data(#"[{"at": 0, "action": "createApp", "app": {"id": "/x"}}, {"action": "scale", "appId": "/nope", "instances": 1}]"#.utf8)
            .write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        try await withSimulator { sim in
            await #expect(throws: ScenarioError.self) { try await sim.runScenario(file: path) }
            do { try await sim.runScenario(file: path) } catch let e as ScenarioError {
                #expect(e.step == 0) // the app exists now: createApp fails first
                #expect(e.description.contains("already exists"))
            }
            #expect(await sim.app("/x") != nil)
        }
        #expect(throws: ScenarioError.self) { try Scenario.parse(Array(#"{"steps": [{"action": "explode"}]}"#.utf8)) }
        #expect(throws: ScenarioError.self) { try Scenario.parse(Array("not json".utf8)) }
        let sorted = try Scenario.parse(Array(#"[{"at": 2, "action": "wait"}, {"at": 1, "action": "dropEvents"}]"#.utf8))
        #expect(sorted.steps.map(\.action) == ["dropEvents", "wait"])
    }

    @Test func commandRunsDemoAppsAndStops() async throws {
        let status = await SimulatorCommand.run(arguments: [
            "--port", "0", "--apps", "3", "--tasks-per-app", "2", "--heartbeat", "0", "--duration", "0.3", "--log-level", "error",
        ])
        #expect(status == 0)
        #expect(await SimulatorCommand.run(arguments: ["--apps", "many"]) == 2)
        #expect(await SimulatorCommand.run(arguments: ["--host", "0.0.0.0"]) == 2)
        #expect(await SimulatorCommand.run(arguments: ["--bogus"]) == 2)
        let args = try SimulatorCommand.parse(["--port", "0", "--credentials", "u:p:w", "--redirect-status", "302",
                                               "--scenario", "/tmp/s.json", "--kill-grace", "1.5"])
        #expect(args.options.credentials == .init(user: "u", password: "p:w"))
        #expect(args.options.redirectStatus == 302)
        #expect(args.options.killGracePeriod == 1.5)
        #expect(args.scenario == "/tmp/s.json")
    }

    @Test func sigtermEndsTheWait() async throws {
        let reason = await SimulatorCommand.waitForSignal(duration: 10) {
            // Handlers are installed: the signal goes to the dispatch source, not the default action.
            kill(getpid(), SIGTERM)
        }
        #expect(reason == "SIGTERM")
    }

    @Test func demoAppsDecodeAsRoutableApps() async throws {
        try await withSimulator { sim in
            try await sim.createApps(SimulatorCommand.demoApps(count: 3, tasksPerApp: 2))
            let decoded = try MarathonDecoding.apps(from: try await RawHTTP.get(port: sim.port, "/v2/apps?embed=apps.tasks").body)
            #expect(decoded.apps.map(\.id) == ["/demo/app-001", "/demo/app-002", "/demo/app-003"])
            #expect(decoded.apps.map { $0.servicePorts.count } == [1, 1, 1])
            #expect(Set(decoded.apps.flatMap(\.servicePorts)).count == 3)
            #expect(decoded.apps.allSatisfy { $0.labels["HAPROXY_GROUP"] == "external" && $0.tasks.count == 2 })
        }
    }

    /// `sim --service-port-base P`: the demo apps' service ports are P, P+1, ... (not 10000+).
    @Test func servicePortBaseChoosesTheDemoAppsPorts() async throws {
        let args = try SimulatorCommand.parse(["--apps", "2", "--service-port-base", "18100"])
        #expect(args.servicePortBase == 18100)
        #expect(throws: (any Error).self) { try SimulatorCommand.parse(["--apps", "3", "--service-port-base", "65534"]) }
        #expect(throws: (any Error).self) { try SimulatorCommand.parse(["--service-port-base", "0"]) }
        try await withSimulator { sim in
            try await sim.createApps(SimulatorCommand.demoApps(count: 2, tasksPerApp: 1, servicePortBase: 18100))
            let decoded = try MarathonDecoding.apps(from: try await RawHTTP.get(port: sim.port, "/v2/apps?embed=apps.tasks").body)
            #expect(decoded.apps.map(\.servicePorts) == [[18100], [18101]])
        }
    }
}
