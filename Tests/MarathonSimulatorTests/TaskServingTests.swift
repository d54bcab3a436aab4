import Foundation
import ServiceRouterCore
import ServiceRouterIO
import Testing
@testable import MarathonSimulator

@Suite struct TaskServingTests {
    @Test func everyTaskAnswersWithItsIdOverTCP() async throws {
        try await withSimulator { sim in
            try await sim.createApp(AppSpec(id: "/web", instances: 3))
            let tasks = await sim.tasks("/web")
            #expect(tasks.count == 3)
            #expect(Set(tasks.flatMap(\.ports)).count == 3)
            for t in tasks {
                #expect(t.state == .running)
                #expect(t.host == "127.0.0.1")
                #expect(t.id.hasPrefix("web.instance-") && t.id.hasSuffix("._app.1"))
                #expect(t.instanceId.hasPrefix("web.marathon-"))
                let r = try await RawHTTP.get(port: t.ports[0], "/anything?x=1")
                #expect(r.status == 200)
                #expect(r.text == "\(t.id)\n")
                #expect(r.headers["X-Task-Id"] == t.id)
            }
        }
    }

    @Test func taskListenerKeepsConnectionsAliveAndPipelines() async throws {
        try await withSimulator { sim in
            try await sim.createApp(AppSpec(id: "/keep", instances: 1))
            let port = await sim.tasks("/keep")[0].ports[0]
            let bytes = try await Blocking.run { () -> [UInt8] in
                let c = try Connection.tcp(host: "127.0.0.1", port: port)
                defer { c.close() }
                try c.write("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nHEAD /c HTTP/1.1\r\nConnection: close\r\n\r\n")
                return try c.readToEnd(timeout: 5)
            }
            let text = String(decoding: bytes, as: UTF8.self)
            #expect(text.components(separatedBy: "HTTP/1.1 200 OK").count == 4)
        }
    }

    @Test func failedHealthAnswers503OnTheHealthPathOnly() async throws {
        try await withSimulator { sim in
            try await sim.createApp(AppSpec(id: "/hc", instances: 1, healthChecks: [.init(path: "/health")]))
            let t = await sim.tasks("/hc")[0]
            #expect(t.healthy == true)
            try await sim.setHealth(t.id, alive: false)
            #expect(try await RawHTTP.get(port: t.ports[0], "/health").status == 503)
            #expect(try await RawHTTP.get(port: t.ports[0], "/").status == 200)
            let app = try await RawHTTP.get(port: sim.port, "/v2/apps/hc").json()
            let result = app["app"]?["tasks"]?.arrayValue?.first?["healthCheckResults"]?.arrayValue?.first
            #expect(result?["alive"] == .bool(false))
            #expect(result?["instanceId"]?.stringValue == t.instanceId)
            try await sim.setHealth(t.id, alive: true)
            #expect(try await RawHTTP.get(port: t.ports[0], "/health").status == 200)
            #expect(await sim.tasks("/hc")[0].healthy == true)
        }
    }

    @Test func killedTaskServesThroughItsGracePeriodThenRefuses() async throws {
        try await withSimulator(.init(heartbeatInterval: nil, killGracePeriod: 0.6)) { sim in
            try await sim.createApp(AppSpec(id: "/kill", instances: 2))
            let victim = await sim.tasks("/kill")[0]
            try await sim.killTask(victim.id)
            let during = await sim.tasks("/kill")
            #expect(during.first { $0.id == victim.id }?.state == .killing)
            // Marathon launches the replacement at once; the killed task still serves.
            #expect(during.filter { $0.state == .running }.count == 2)
            #expect(try await RawHTTP.get(port: victim.ports[0], "/").text == "\(victim.id)\n")
            try await sim.waitUntil(timeout: 5, "the killed task to go") { await $0.tasks("/kill").allSatisfy { $0.id != victim.id } }
            #expect(RawHTTP.refuses(port: victim.ports[0]))
            #expect(await sim.tasks("/kill").count == 2)
        }
    }

    @Test func killWithScaleLowersInstances() async throws {
        try await withSimulator(.init(heartbeatInterval: nil, killGracePeriod: 0)) { sim in
            try await sim.createApp(AppSpec(id: "/shrink", instances: 3))
            let victim = await sim.tasks("/shrink")[1]
            try await sim.killTask(victim.id, scale: true)
            #expect(await sim.app("/shrink")?.instances == 2)
            #expect(await sim.tasks("/shrink").map(\.id).contains(victim.id) == false)
            #expect(await sim.tasks("/shrink").count == 2)
            #expect(RawHTTP.refuses(port: victim.ports[0]))
        }
    }

    @Test func processDyingSilentlyClosesThePortButMarathonStillReportsIt() async throws {
        try await withSimulator { sim in
            try await sim.createApp(AppSpec(id: "/ghost", instances: 1, healthChecks: [.init()]))
            let t = await sim.tasks("/ghost")[0]
            try await sim.killTaskProcessSilently(t.id)
            #expect(RawHTTP.refuses(port: t.ports[0]))
            let after = await sim.tasks("/ghost")
            #expect(after.map(\.id) == [t.id])
            #expect(after[0].state == .running)
            #expect(after[0].healthy == true)
            #expect(after[0].processAlive == false)
        }
    }

    @Test func crashedTaskIsFailedAndReplaced() async throws {
        try await withSimulator { sim in
            try await sim.createApp(AppSpec(id: "/crash", instances: 1))
            let t = await sim.tasks("/crash")[0]
            try await sim.crashTask(t.id)
            #expect(RawHTTP.refuses(port: t.ports[0]))
            let now = await sim.tasks("/crash")
            #expect(now.count == 1 && now[0].id != t.id && now[0].state == .running)
            let app = try await RawHTTP.get(port: sim.port, "/v2/apps/crash").json()
            #expect(app["app"]?["lastTaskFailure"]?["state"] == "TASK_FAILED")
        }
    }

    @Test func ipPerTaskTasksListenOnTheirOwnLoopbackAddress() async throws {
        try await withSimulator { sim in
            var spec = AppSpec(id: "/ippt", instances: 2, network: .container, networkName: "dcos",
                               portMappings: [.init(containerPort: 18080 + Int.random(in: 0..<1000), name: "http")])
            spec.dockerImage = "nginx"
            try await sim.createApp(spec)
            let tasks = await sim.tasks("/ippt")
            #expect(tasks.count == 2)
            for t in tasks {
                #expect(t.ipAddress.hasPrefix("127.0.0.") && t.ipAddress != "127.0.0.1")
                #expect(t.ports.isEmpty)
                let r = try await RawHTTP.request("GET", port: t.listenPorts[0], "/", host: t.ipAddress)
                #expect(r.text == "\(t.id)\n")
            }
            #expect(Set(tasks.map(\.ipAddress)).count == 2)
            let decoded = try MarathonDecoding.apps(from: try await RawHTTP.get(port: sim.port, "/v2/apps?embed=apps.tasks").body)
            #expect(decoded.apps.first?.networking == .ipPerTask)
            #expect(decoded.apps.first?.tasks.first?.ipAddresses.first?.hasPrefix("127.0.0.") == true)
        }
    }

    /// Marathon 1.4's IP-per-task shape (`ipAddress.discovery`) comes back in that shape, and —
    /// Marathon issue 3636 — without service ports: what marathon-lb's (and servicerouter's)
    /// `--min/max-serv-port-ip-per-task` are for.
    @Test func ipAddressDiscoveryAppsHaveNoServicePorts() async throws {
        try await withSimulator { sim in
            let port = 18080 + Int.random(in: 0..<1000)
            let created = try await sim.createApp(json: """
                {"id": "/legacy", "instances": 1, "container": {"type": "DOCKER", "docker": {"image": "nginx"}},
                 "ipAddress": {"networkName": "dcos", "discovery": {"ports": [{"number": \(port), "name": "http", "protocol": "tcp"}]}}}
                """)
            #expect(created.servicePorts.isEmpty)
            let raw = try await RawHTTP.get(port: sim.port, "/v2/apps?embed=apps.tasks").json()
            let app = raw["apps"]?.arrayValue?.first
            #expect(app?["ipAddress"]?["discovery"]?["ports"] == [["number": .int(port), "protocol": "tcp", "name": "http"]])
            #expect(app?["networks"] == nil)
            #expect(app?["container"]?["portMappings"] == nil)
            #expect(app?["portDefinitions"] == [])
            let decoded = try #require(try MarathonDecoding.apps(from: try await RawHTTP.get(port: sim.port, "/v2/apps?embed=apps.tasks").body).apps.first)
            #expect(decoded.networking == .ipPerTask)
            #expect(decoded.servicePorts.isEmpty)
            #expect(decoded.containerPorts == [port])
            let t = try #require(await sim.tasks("/legacy").first)
            let r = try await RawHTTP.request("GET", port: t.listenPorts[0], "/", host: t.ipAddress)
            #expect(r.text == "\(t.id)\n")
        }
    }

    @Test func bridgeAppsGetServicePortsAndHostPorts() async throws {
        try await withSimulator { sim in
            let created = try await sim.createApp(json: """
                {"id": "/bridged", "instances": 2, "container": {"type": "DOCKER", "docker": {"image": "nginx"},
                 "portMappings": [{"containerPort": 80, "hostPort": 0, "servicePort": 0, "name": "http"}]},
                 "networks": [{"mode": "container/bridge"}]}
                """)
            #expect(created.servicePorts.count == 1 && (10000...20000).contains(created.servicePorts[0]))
            let decoded = try MarathonDecoding.apps(from: try await RawHTTP.get(port: sim.port, "/v2/apps?embed=apps.tasks").body)
            let app = try #require(decoded.apps.first)
            #expect(app.networking == .host)
            #expect(app.servicePorts == created.servicePorts)
            for t in app.tasks {
                let r = try await RawHTTP.get(port: t.ports[0], "/")
                #expect(r.text == "\(t.id)\n")
            }
        }
    }
}
