import Foundation
import ServiceRouterCore
import ServiceRouterIO
import Testing
@testable import MarathonSimulator

@Suite struct DeploymentTests {
    @Test func scaleUpAndDownOverREST() async throws {
        try await withSimulator(.init(heartbeatInterval: nil, killGracePeriod: 0)) { sim in
            try await sim.createApp(AppSpec(id: "/s", instances: 1))
            let up = try await RawHTTP.request("PUT", port: sim.port, "/v2/apps/s", body: #"{"instances": 4}"#)
            #expect(up.status == 200)
            #expect(try up.json().objectValue?.keys == ["version", "deploymentId"])
            #expect(await sim.tasks("/s").count == 4)
            let first = await sim.tasks("/s").map(\.id)
            _ = try await RawHTTP.request("PUT", port: sim.port, "/v2/apps/s", body: #"{"instances": 2}"#)
            // YOUNGEST_FIRST: the two oldest tasks stay.
            #expect(await sim.tasks("/s").map(\.id) == Array(first.prefix(2)))
            let app = await sim.app("/s")
            #expect(app?.instances == 2)
        }
    }

    @Test func labelChangeReplacesEveryTaskAsMarathonDoes() async throws {
        try await withSimulator(.init(heartbeatInterval: nil, killGracePeriod: 0)) { sim in
            try await sim.createApp(AppSpec(id: "/l", instances: 3, labels: ["a": "1"]))
            let before = Set(await sim.tasks("/l").map(\.id))
            try await sim.updateLabels("/l", ["a": "2"])
            try await sim.waitForDeployments()
            let after = await sim.tasks("/l")
            #expect(after.count == 3)
            #expect(before.isDisjoint(with: after.map(\.id)))
            #expect(await sim.app("/l")?.labels == ["a": "2"])
        }
    }

    @Test func lockedAppNeedsForce() async throws {
        try await withSimulator(.init(heartbeatInterval: nil, taskStartDelay: 10)) { sim in
            try await sim.createApp(AppSpec(id: "/locked", instances: 1))
            let locked = try await RawHTTP.request("PUT", port: sim.port, "/v2/apps/locked", body: #"{"instances": 2}"#)
            #expect(locked.status == 409)
            #expect(try locked.json()["message"]?.stringValue?.hasPrefix("App is locked by one or more deployments.") == true)
            #expect(try locked.json()["deployments"]?.arrayValue?.count == 1)
            let forced = try await RawHTTP.request("PUT", port: sim.port, "/v2/apps/locked?force=true", body: #"{"instances": 2}"#)
            #expect(forced.status == 200)
            #expect(sim.deploymentCount == 1)
        }
    }

    @Test func deleteKillsTasksAndTerminatesTheApp() async throws {
        try await withSimulator(.init(heartbeatInterval: nil, killGracePeriod: 0.2)) { sim in
            try await sim.createApp(AppSpec(id: "/gone", instances: 2))
            let ports = await sim.tasks("/gone").map { $0.ports[0] }
            let reader = try SSEReader(port: sim.port)
            #expect(await reader.read { $0.events.count == 1 })
            let del = try await RawHTTP.request("DELETE", port: sim.port, "/v2/apps/gone")
            #expect(del.status == 200)
            #expect(try await RawHTTP.get(port: sim.port, "/v2/apps/gone").status == 404)
            #expect(await reader.read { $0.eventTypes().contains("app_terminated_event") })
            let statuses = reader.events.filter { $0.type == "status_update_event" }
                .compactMap { try? JSONValue.parse($0.data)["taskStatus"]?.stringValue }
            #expect(statuses == ["TASK_KILLING", "TASK_KILLING", "TASK_KILLED", "TASK_KILLED"])
            for port in ports { #expect(RawHTTP.refuses(port: port)) }
            #expect(await sim.allTasks().isEmpty)
        }
    }

    @Test func killTaskOverREST() async throws {
        try await withSimulator(.init(heartbeatInterval: nil, killGracePeriod: 0)) { sim in
            try await sim.createApp(AppSpec(id: "/k", instances: 2))
            let tasks = await sim.tasks("/k")
            let killed = try await RawHTTP.request("DELETE", port: sim.port, "/v2/apps/k/tasks/\(tasks[0].id)")
            #expect(killed.status == 200)
            #expect(try killed.json()["task"]?["id"]?.stringValue == tasks[0].id)
            #expect(await sim.tasks("/k").count == 2)
            let scaled = try await RawHTTP.request("DELETE", port: sim.port, "/v2/apps/k/tasks/\(tasks[1].id)?scale=true")
            #expect(try scaled.json()["deploymentId"] != nil)
            #expect(await sim.tasks("/k").count == 1)
            #expect(await sim.app("/k")?.instances == 1)
        }
    }

    /// Samples the app while a restart rolls and checks Marathon's two bounds.
    private func rollingRestart(instances: Int, minimumHealthCapacity: Double, maximumOverCapacity: Double) async throws
        -> (maxLive: Int, minReady: Int, replaced: Bool) {
        try await withSimulator(.init(heartbeatInterval: nil, killGracePeriod: 0.05, taskStartDelay: 0.05)) { sim in
            let spec = AppSpec(id: "/roll", instances: instances,
                               upgradeStrategy: .init(minimumHealthCapacity: minimumHealthCapacity,
                                                      maximumOverCapacity: maximumOverCapacity))
            try await sim.createApp(spec)
            try await sim.waitForDeployments()
            let before = Set(await sim.tasks("/roll").map(\.id))
            try await sim.restartApp("/roll")
            var maxLive = 0
            var minReady = Int.max
            let deadline = Monotonic.now() + 10
            while Monotonic.now() < deadline {
                let tasks = await sim.tasks("/roll")
                maxLive = max(maxLive, tasks.filter { $0.state != .killing }.count)
                minReady = min(minReady, tasks.filter { $0.state == .running }.count)
                if sim.deploymentCount == 0 { break }
                try await Task.sleep(nanoseconds: 5_000_000)
            }
            let after = await sim.tasks("/roll")
            return (maxLive, minReady, after.count == instances && before.isDisjoint(with: after.map(\.id)))
        }
    }

    @Test func restartRespectsUpgradeStrategy() async throws {
        let defaults = try await rollingRestart(instances: 3, minimumHealthCapacity: 1, maximumOverCapacity: 1)
        #expect(defaults.replaced)
        #expect(defaults.maxLive <= 6)
        #expect(defaults.minReady >= 3)
        let tight = try await rollingRestart(instances: 4, minimumHealthCapacity: 0.5, maximumOverCapacity: 0)
        #expect(tight.replaced)
        #expect(tight.maxLive <= 4)
        #expect(tight.minReady >= 2)
    }

    @Test func restartOverRESTAnswersWithADeployment() async throws {
        try await withSimulator(.init(heartbeatInterval: nil, killGracePeriod: 0)) { sim in
            try await sim.createApp(AppSpec(id: "/r", instances: 2))
            let before = Set(await sim.tasks("/r").map(\.id))
            let r = try await RawHTTP.request("POST", port: sim.port, "/v2/apps/r/restart")
            #expect(r.status == 200)
            #expect(try r.json()["deploymentId"] != nil)
            try await sim.waitForDeployments()
            #expect(before.isDisjoint(with: await sim.tasks("/r").map(\.id)))
        }
    }
}
