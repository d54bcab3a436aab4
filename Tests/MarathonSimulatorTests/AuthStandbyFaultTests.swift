import Foundation
import ServiceRouterCore
import ServiceRouterIO
import Testing
@testable import MarathonSimulator

@Suite struct AuthStandbyFaultTests {
    static let credentials = MarathonSimulator.Credentials(user: "marathon", password: "s3cret")

    @Test func basicAuthOnEveryEndpointIncludingEvents() async throws {
        try await withSimulator(.init(credentials: Self.credentials, heartbeatInterval: nil)) { sim in
            for path in ["/v2/apps", "/v2/tasks", "/v2/leader", "/ping", "/v2/events"] {
                let none = try await RawHTTP.get(port: sim.port, path, headers: [("Accept", "text/event-stream")])
                #expect(none.status == 401, "\(path)")
                #expect(none.headers["WWW-Authenticate"] == "Basic realm=\"Mesosphere\"")
                let wrong = try await RawHTTP.get(port: sim.port, path, headers: [RawHTTP.basic("marathon", "nope")])
                #expect(wrong.status == 401)
            }
            let ok = try await RawHTTP.get(port: sim.port, "/v2/apps", headers: [RawHTTP.basic("marathon", "s3cret")])
            #expect(ok.status == 200)
            let reader = try SSEReader(port: sim.port, extraHeaders: [RawHTTP.basic("marathon", "s3cret")])
            #expect(await reader.read { $0.events.count == 1 })
        }
    }

    @Test func standbyRedirectsToTheLeaderAndLeaderAnnouncesItself() async throws {
        try await withSimulator { leader in
            try await withSimulator(.init(heartbeatInterval: nil, standbyLeaderURL: leader.url)) { standby in
                let r = try await RawHTTP.get(port: standby.port, "/v2/apps?embed=apps.tasks")
                #expect(r.status == 307)
                #expect(r.headers["Location"] == "\(leader.url)/v2/apps?embed=apps.tasks")
                #expect(r.headers["X-Marathon-Leader"] == nil)
                let events = try await RawHTTP.get(port: standby.port, "/v2/events", headers: [("Accept", "text/event-stream")])
                #expect(events.status == 307)
                #expect(try await RawHTTP.get(port: standby.port, "/ping").status == 200)
                let fromLeader = try await RawHTTP.get(port: leader.port, "/v2/apps")
                #expect(fromLeader.headers["X-Marathon-Leader"] == leader.url)

                // Leadership moves: the old leader redirects with 302 (Marathon 1.7+), the standby leads.
                leader.becomeStandby(leaderURL: standby.url, redirectStatus: 302)
                standby.becomeLeader()
                let moved = try await RawHTTP.get(port: leader.port, "/v2/leader")
                #expect(moved.status == 302)
                #expect(moved.headers["Location"] == "\(standby.url)/v2/leader")
                #expect(try await RawHTTP.get(port: standby.port, "/v2/leader").json() == ["leader": .string("127.0.0.1:\(standby.port)")])
            }
        }
    }

    @Test func nextRequestsFailThenRecover() async throws {
        try await withSimulator { sim in
            sim.failNextRequests(2, status: 500)
            #expect(try await RawHTTP.get(port: sim.port, "/v2/apps").status == 500)
            let second = try await RawHTTP.get(port: sim.port, "/v2/apps")
            #expect(second.status == 500)
            #expect(try second.json()["message"] != nil)
            #expect(try await RawHTTP.get(port: sim.port, "/v2/apps").status == 200)
            // Over HTTP too.
            #expect(try await RawHTTP.request("POST", port: sim.port, "/_sim/faults/fail?count=1&status=503").status == 200)
            #expect(try await RawHTTP.get(port: sim.port, "/v2/apps").status == 503)
            #expect(try await RawHTTP.get(port: sim.port, "/v2/apps").status == 200)
        }
    }

    @Test func hangingRequestsAnswerLate() async throws {
        try await withSimulator { sim in
            sim.hangNextRequests(1, seconds: 0.5)
            let started = Monotonic.now()
            #expect(try await RawHTTP.get(port: sim.port, "/v2/apps").status == 200)
            #expect(Monotonic.now() - started >= 0.45)
            // The fault is spent: the next request does not hang (a hang would exceed this
            // client's 10 s timeout and throw).
            _ = try await RawHTTP.request("GET", port: sim.port, "/v2/apps", timeout: 10)
            // A client with a short read timeout sees a timeout.
            sim.hangNextRequests(1, seconds: 2)
            await #expect(throws: TimeoutError.self) {
                _ = try await RawHTTP.request("GET", port: sim.port, "/v2/apps", timeout: 0.3)
            }
            sim.clearRequestFaults()
        }
    }

    @Test func aHangingRequestDoesNotHoldUpStop() async throws {
        let sim = try await MarathonSimulator.start(.init(heartbeatInterval: nil))
        sim.hangNextRequests(1, seconds: 30)
        let port = sim.port
        let pending = Task { try? await RawHTTP.request("GET", port: port, "/v2/apps", timeout: 10) }
        try await Task.sleep(nanoseconds: 200_000_000)
        // stop() does not wait for the 30 s hang: the pending request ends (its client gives up
        // after 10 s at the latest, so a stop that waited would show as a refused port late).
        sim.stop()
        _ = await pending.value
        #expect(RawHTTP.refuses(port: port))
    }

    @Test func healthResultsVanishAndComeBack() async throws {
        try await withSimulator { sim in
            try await sim.createApp(AppSpec(id: "/h", instances: 2, healthChecks: [.init()]))
            sim.hideHealthResults()
            let hidden = try MarathonDecoding.apps(from: try await RawHTTP.get(port: sim.port, "/v2/apps?embed=apps.tasks").body)
            #expect(hidden.apps[0].tasks.allSatisfy { $0.healthAlive == nil })
            let raw = try await RawHTTP.get(port: sim.port, "/v2/apps/h").json()
            #expect(raw["app"]?["tasks"]?.arrayValue?.allSatisfy { $0["healthCheckResults"] == [] } == true)
            #expect(try await RawHTTP.request("POST", port: sim.port, "/_sim/health/show").status == 200)
            let back = try MarathonDecoding.apps(from: try await RawHTTP.get(port: sim.port, "/v2/apps?embed=apps.tasks").body)
            #expect(back.apps[0].tasks.allSatisfy { $0.healthAlive == [true] })
        }
    }

    @Test func controlRoutesDriveTasks() async throws {
        try await withSimulator(.init(heartbeatInterval: nil, killGracePeriod: 0)) { sim in
            try await sim.createApp(AppSpec(id: "/ctl", instances: 2, healthChecks: [.init()]))
            let tasks = await sim.tasks("/ctl")
            let fail = try await RawHTTP.request("POST", port: sim.port, "/_sim/tasks/\(tasks[0].id)/health?alive=false")
            #expect(fail.status == 200)
            #expect(await sim.tasks("/ctl")[0].healthy == false)
            #expect(try await RawHTTP.request("POST", port: sim.port, "/_sim/tasks/\(tasks[1].id)/die").status == 200)
            #expect(RawHTTP.refuses(port: tasks[1].ports[0]))
            let replaced = try await RawHTTP.request("POST", port: sim.port, "/_sim/apps/ctl/replace").json()
            #expect(replaced["killed"]?.stringValue == tasks[0].id)
            #expect(await sim.tasks("/ctl").count == 2)
            let state = try await RawHTTP.get(port: sim.port, "/_sim/state").json()
            #expect(state["tasks"] == 2 && state["apps"] == 1)
            #expect(try await RawHTTP.request("POST", port: sim.port, "/_sim/tasks/nope/die").status == 404)
        }
    }
}
