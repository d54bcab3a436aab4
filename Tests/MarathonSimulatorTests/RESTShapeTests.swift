import Foundation
import ServiceRouterCore
import ServiceRouterIO
import Testing
@testable import MarathonSimulator

@Suite struct RESTShapeTests {
    @Test func appsWithTasksHaveTheShapeOfMarathon15() async throws {
        try await withSimulator { sim in
            let post = try await RawHTTP.request("POST", port: sim.port, "/v2/apps", body: Captures.nginxDefinition15)
            #expect(post.status == 201)
            #expect(post.headers["Location"] == "\(sim.url)/v2/apps/nginx")
            #expect(post.headers["Marathon-Deployment-Id"] != nil)
            let response = try await RawHTTP.get(port: sim.port, "/v2/apps?embed=apps.tasks")
            #expect(response.headers["Content-Type"] == "application/json")
            let ours = try response.json()
            let theirs = try JSONValue.parse(Captures.zddAppBlueMarathon15)
            // Every key Marathon 1.5 wrote is there; the only extras are ones other captures show.
            #expect(keyPaths(theirs).subtracting(keyPaths(ours)).sorted() == [])
            #expect(keyPaths(ours).subtracting(keyPaths(theirs)).sorted() == ["apps[].env", "apps[].tasks[].servicePorts"])

            // And the project's own decoder reads both the same way.
            let decoded = try MarathonDecoding.apps(from: response.body)
            #expect(decoded.skipped.isEmpty)
            let app = try #require(decoded.apps.first)
            let capture = try #require(try MarathonDecoding.apps(from: Array(Captures.zddAppBlueMarathon15.utf8)).apps.first)
            #expect(app.id == "/nginx")
            #expect(app.servicePorts == [10000] && capture.servicePorts == [10000])
            #expect(app.networking == capture.networking)
            #expect(app.healthChecks.map(\.proto) == capture.healthChecks.map(\.proto))
            #expect(app.labels["HAPROXY_GROUP"] == "external")
            #expect(app.tasks.count == 5)
            for t in app.tasks {
                #expect(t.state == .running)
                #expect(t.healthAlive == [true])
                #expect(t.ipAddresses == ["127.0.0.1"])
                #expect(t.ports.count == 1)
                // Task id and health-result instance id name the same instance, as in Marathon 1.5+.
                let simTask = await sim.tasks("/nginx").first { $0.id == t.id }
                #expect(MarathonTask.instanceKey(of: t.id) == MarathonTask.instanceKey(of: simTask?.instanceId ?? ""))
            }
        }
    }

    @Test func olderDefinitionsAreAnsweredInThe15Shape() async throws {
        try await withSimulator { sim in
            let post = try await RawHTTP.request("POST", port: sim.port, "/v2/apps", body: Captures.nginxDefinitionLegacy)
            #expect(post.status == 201)
            let app = try await RawHTTP.get(port: sim.port, "/v2/apps/nginx").json()["app"]
            #expect(app?["networks"] == [["mode": "container/bridge"]])
            #expect(app?["container"]?["portMappings"]?.arrayValue?.first?["servicePort"] == 10000)
            #expect(app?["container"]?["docker"]?["network"] == nil)
            #expect(app?["portDefinitions"] == nil)
        }
    }

    @Test func tasksEndpointsHaveTheCapturedFields() async throws {
        try await withSimulator { sim in
            try await sim.createApp(AppSpec(id: "/frontend", instances: 2, healthChecks: [.init()]))
            let all = try await RawHTTP.get(port: sim.port, "/v2/tasks").json()
            let theirs = try JSONValue.parse(Captures.tasks)
            // region/zone/role only appear when agents have fault domains (Marathon 1.6+).
            let missing = keyPaths(theirs).subtracting(keyPaths(all)).subtracting(["tasks[].region", "tasks[].zone", "tasks[].role"])
            #expect(missing.sorted() == [])
            let decoded = try MarathonDecoding.tasks(from: try await RawHTTP.get(port: sim.port, "/v2/apps/frontend/tasks").body)
            #expect(decoded.count == 2)
            #expect(decoded.allSatisfy { $0.appId == "/frontend" && $0.healthAlive == [true] })
            let capture = try JSONValue.parse(Captures.appTasksWithHealthCheckResults)
            let ours = try await RawHTTP.get(port: sim.port, "/v2/apps/frontend/tasks").json()
            // 1.5+ names the instance in health results; 2017's Marathon wrote taskId.
            #expect(keyPaths(capture).subtracting(keyPaths(ours)).sorted() == ["tasks[].healthCheckResults[].taskId"])
            let one = try await RawHTTP.get(port: sim.port, "/v2/tasks?status=running").json()
            #expect(one["tasks"]?.arrayValue?.count == 2)
            #expect(try await RawHTTP.get(port: sim.port, "/v2/tasks?status=staging").json()["tasks"] == [])
        }
    }

    @Test func embedFormsAndDefaults() async throws {
        try await withSimulator { sim in
            try await sim.createApp(AppSpec(id: "/e", instances: 1))
            for embed in ["apps.tasks", "app.tasks", "group.apps.tasks", "tasks", "apps.counts&embed=apps.tasks"] {
                let apps = try await RawHTTP.get(port: sim.port, "/v2/apps?embed=\(embed)").json()["apps"]
                #expect(apps?.arrayValue?.first?["tasks"]?.arrayValue?.count == 1, "embed=\(embed)")
            }
            let plain = try await RawHTTP.get(port: sim.port, "/v2/apps").json()["apps"]?.arrayValue?.first
            #expect(plain?["tasks"] == nil)
            #expect(plain?["tasksRunning"] == 1)
            #expect(plain?["deployments"] == [])
            // A single app embeds its tasks by default, as Marathon does.
            let single = try await RawHTTP.get(port: sim.port, "/v2/apps/e").json()
            #expect(single["app"]?["tasks"]?.arrayValue?.count == 1)
            #expect(try await RawHTTP.get(port: sim.port, "/v2/apps//e/").json()["app"]?["id"] == "/e")
        }
    }

    @Test func idAndLabelFilters() async throws {
        try await withSimulator { sim in
            try await sim.createApp(AppSpec(id: "/shop/web", instances: 0, labels: ["HAPROXY_GROUP": "external", "tier": "front"]))
            try await sim.createApp(AppSpec(id: "/shop/db", instances: 0, labels: ["HAPROXY_GROUP": "internal"]))
            try await sim.createApp(AppSpec(id: "/other", instances: 0))
            func ids(_ query: String) async throws -> [String] {
                try await RawHTTP.get(port: sim.port, "/v2/apps?\(query)").json()["apps"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []
            }
            #expect(try await ids("id=shop") == ["/shop/db", "/shop/web"])
            #expect(try await ids("label=HAPROXY_GROUP==external") == ["/shop/web"])
            #expect(try await ids("label=HAPROXY_GROUP%3D%3Dexternal") == ["/shop/web"])
            #expect(try await ids("label=HAPROXY_GROUP") == ["/shop/db", "/shop/web"])
            #expect(try await ids("label=HAPROXY_GROUP!=external") == ["/other", "/shop/db"])
            #expect(try await ids("label=HAPROXY_GROUP%20in%20(internal,%20external),tier") == ["/shop/web"])
            #expect(try await ids("id=shop&label=HAPROXY_GROUP==internal") == ["/shop/db"])
        }
    }

    @Test func errorsLookLikeMarathons() async throws {
        try await withSimulator { sim in
            let missing = try await RawHTTP.get(port: sim.port, "/v2/apps/nope")
            #expect(missing.status == 404)
            #expect(try missing.json() == ["message": "App '/nope' does not exist"])
            try await sim.createApp(AppSpec(id: "/dup", instances: 0))
            let dup = try await RawHTTP.request("POST", port: sim.port, "/v2/apps", body: #"{"id":"/dup"}"#)
            #expect(dup.status == 409)
            #expect(try dup.json()["message"] == "An app with id [/dup] already exists.")
            let invalid = try await RawHTTP.request("POST", port: sim.port, "/v2/apps", body: #"{"id":"/Bad_Id"}"#)
            #expect(invalid.status == 422)
            #expect(try invalid.json()["message"] == "Object is not valid")
            #expect(try invalid.json()["details"]?.arrayValue?.first?["path"] == "/id")
            let noId = try await RawHTTP.request("POST", port: sim.port, "/v2/apps", body: #"{"instances":1}"#)
            #expect(try noId.json()["details"]?.arrayValue?.first?["errors"] == ["error.path.missing"])
            let broken = try await RawHTTP.request("POST", port: sim.port, "/v2/apps", body: "{nope")
            #expect(broken.status == 400)
            #expect(try await RawHTTP.request("DELETE", port: sim.port, "/v2/apps/dup/tasks/nope").status == 404)
            #expect(try await RawHTTP.get(port: sim.port, "/v2/nothing").status == 404)
        }
    }

    @Test func pingLeaderInfoDeployments() async throws {
        try await withSimulator(.init(heartbeatInterval: nil, taskStartDelay: 5)) { sim in
            let ping = try await RawHTTP.get(port: sim.port, "/ping")
            #expect(ping.status == 200 && ping.text == "pong")
            #expect(ping.headers["X-Marathon-Leader"] == sim.url)
            #expect(try await RawHTTP.get(port: sim.port, "/v2/leader").json() == ["leader": .string("127.0.0.1:\(sim.port)")])
            let info = try await RawHTTP.get(port: sim.port, "/v2/info").json()
            #expect(info["name"] == "marathon" && info["elected"] == true)
            #expect(info["leader"]?.stringValue == "127.0.0.1:\(sim.port)")
            try await sim.createApp(AppSpec(id: "/foo", instances: 1))
            let deployments = try await RawHTTP.get(port: sim.port, "/v2/deployments").json()
            let capture = try JSONValue.parse(Captures.deployments)
            #expect(keyPaths(capture).subtracting(keyPaths(deployments)).sorted() == [
                "[].currentActions[].readinessCheckResults[].lastResponse", "[].currentActions[].readinessCheckResults[].lastResponse.body",
                "[].currentActions[].readinessCheckResults[].lastResponse.contentType",
                "[].currentActions[].readinessCheckResults[].lastResponse.status", "[].currentActions[].readinessCheckResults[].name",
                "[].currentActions[].readinessCheckResults[].ready", "[].currentActions[].readinessCheckResults[].taskId",
                "[].steps[].actions[].pod",
            ])
            #expect(deployments.arrayValue?.first?["affectedApps"] == ["/foo"])
            let app = try await RawHTTP.get(port: sim.port, "/v2/apps/foo").json()["app"]
            #expect(app?["deployments"]?.arrayValue?.count == 1)
            #expect(app?["tasksStaged"] == 1)
            #expect(try await RawHTTP.get(port: sim.port, "/v2/apps/foo/tasks").json()["tasks"]?.arrayValue?.first?["state"] == "TASK_STAGING")
        }
    }
}

@Suite struct VersionClockTests {
    @Test func versionsAreDistinctAndFormattedLikeMarathons() {
        let clock = VersionClock()
        let versions = (0..<2000).map { _ in clock.next() }
        #expect(Set(versions).count == 2000)
        #expect(versions == versions.sorted())
        #expect(VersionClock.format(milliseconds: 1_500_000_000_123) == "2017-07-14T02:40:00.123Z")
        #expect(VersionClock.format(milliseconds: 1_500_000_000_001) == "2017-07-14T02:40:00.001Z")
    }
}
