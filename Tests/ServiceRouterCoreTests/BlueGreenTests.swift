import Testing
@testable import ServiceRouterCore
import ServiceRouterTestSupport

/// `servicerouter zdd`'s decisions: the new colour's definition (zdd.py's `prepare_deploy`, checked
/// against zdd.py's own expected output) and each step of the swap.
@Suite struct BlueGreenTests {
    static let startedAt = "2026-03-01T10:00:00.000000"

    func definition(_ name: String) throws -> JSONValue {
        try JSONValue.parse(Fixture.marathon(name))
    }

    func withoutStart(_ v: JSONValue) -> JSONValue {
        var v = v
        var labels = v["labels"]?.objectValue ?? JSONObject()
        labels[DeploymentLabels.startedAtKey] = ""
        v.set("labels", .object(labels))
        return v
    }

    // MARK: - The new colour

    /// zdd.py's test_simple_marathon15: the group's current deploy is green (zdd_app_blue_marathon1.5.json,
    /// 3 instances on service port 10000), so the next is blue on the alternate port 10001, one
    /// instance, target 3, the original id in HAPROXY_APP_ID.
    @Test func nextColourIsZddPysOutput() throws {
        let (apps, _) = try MarathonDecoding.apps(from: Fixture.data("zdd_app_blue_marathon1.5.json"))
        let current = try #require(apps.first)
        let p = try BlueGreen.prepare(try definition("1-nginx-marathon1.5.json"), current: current, initialInstances: 1,
                                      startedAt: Self.startedAt)
        let expected = try JSONValue.parse("""
            {"acceptedResourceRoles": ["*", "slave_public"],
             "container": {"docker": {"forcePullImage": true, "image": "brndnmtthws/nginx-echo-sleep"}, "type": "DOCKER",
                           "portMappings": [{"containerPort": 8080, "hostPort": 0, "servicePort": 10001}]},
             "networks": [{"mode": "container/bridge"}],
             "cpus": 0.1,
             "healthChecks": [{"gracePeriodSeconds": 15, "intervalSeconds": 3, "maxConsecutiveFailures": 10, "path": "/",
                               "portIndex": 0, "protocol": "MESOS_HTTP", "timeoutSeconds": 15}],
             "id": "/nginx-blue", "instances": 1,
             "labels": {"HAPROXY_0_PORT": "10000", "HAPROXY_APP_ID": "nginx", "HAPROXY_DEPLOYMENT_ALT_PORT": "10001",
                        "HAPROXY_DEPLOYMENT_COLOUR": "blue", "HAPROXY_DEPLOYMENT_GROUP": "nginx",
                        "HAPROXY_DEPLOYMENT_NEW_INSTANCES": "0", "HAPROXY_DEPLOYMENT_STARTED_AT": "",
                        "HAPROXY_DEPLOYMENT_TARGET_INSTANCES": "3", "HAPROXY_GROUP": "external"},
             "mem": 65}
            """)
        #expect(withoutStart(p.app).prettyText() == expected.prettyText())
        #expect(p.app["labels"]?["HAPROXY_DEPLOYMENT_STARTED_AT"] == .string(Self.startedAt))
        #expect(p.id == "/nginx-blue")
        #expect(p.colour == "blue")
        #expect((p.servicePort, p.frontendPort, p.targetInstances, p.instances) == (10001, 10000, 3, 1))
        #expect(p.replaces == "/nginx-green")
    }

    @Test func theFirstDeployIsBlueOnTheAppsOwnPort() throws {
        let p = try BlueGreen.prepare(try definition("1-nginx.json"), current: nil, initialInstances: 1, startedAt: Self.startedAt)
        #expect(p.id == "/nginx-blue")
        #expect((p.servicePort, p.frontendPort, p.targetInstances, p.instances) == (10000, 10000, 5, 5))
        #expect(p.app["container"]?["docker"]?["portMappings"]?.arrayValue?.first?["servicePort"] == .int(10000))
        #expect(p.app["labels"]?["HAPROXY_DEPLOYMENT_NEW_INSTANCES"] == .string("0"))
        #expect(p.replaces == nil)
    }

    @Test func afterTheAlternatePortComesTheMainOneAgain() throws {
        let blue = MarathonApp(id: "/nginx-blue", labels: ["HAPROXY_DEPLOYMENT_GROUP": "nginx", "HAPROXY_DEPLOYMENT_COLOUR": "blue",
                                                           "HAPROXY_0_PORT": "10000"],
                               instances: 4, servicePorts: [10001])
        let p = try BlueGreen.prepare(try definition("1-nginx.json"), current: blue, initialInstances: 2, startedAt: Self.startedAt)
        #expect(p.id == "/nginx-green")
        #expect((p.servicePort, p.frontendPort, p.targetInstances, p.instances) == (10000, 10000, 4, 2))
        // More initial instances than the target: the target.
        let q = try BlueGreen.prepare(try definition("1-nginx.json"), current: blue, initialInstances: 9, startedAt: Self.startedAt)
        #expect(q.instances == 4)
    }

    @Test(arguments: [
        (#"{"id": "x", "instances": 1}"#, "no labels"),
        (#"{"id": "x", "labels": {"HAPROXY_DEPLOYMENT_ALT_PORT": "10001"}}"#, "HAPROXY_DEPLOYMENT_GROUP"),
        (#"{"id": "x", "labels": {"HAPROXY_DEPLOYMENT_GROUP": "x"}}"#, "HAPROXY_DEPLOYMENT_ALT_PORT"),
        (#"{"id": "x", "labels": {"HAPROXY_DEPLOYMENT_GROUP": "x", "HAPROXY_DEPLOYMENT_ALT_PORT": "port"}}"#, "not a port number"),
        (#"{"id": "x", "labels": {"HAPROXY_DEPLOYMENT_GROUP": "x y", "HAPROXY_DEPLOYMENT_ALT_PORT": "10001"}}"#, "HAPROXY_DEPLOYMENT_GROUP"),
        (#"{"id": "x", "labels": {"HAPROXY_DEPLOYMENT_GROUP": "x", "HAPROXY_DEPLOYMENT_ALT_PORT": "10001"}}"#, "no service port"),
        (#"{"id": "x", "portDefinitions": [{"port": 10001}], "labels": {"HAPROXY_DEPLOYMENT_GROUP": "x", "HAPROXY_DEPLOYMENT_ALT_PORT": "10001"}}"#, "different ports"),
        (#"{"labels": {}}"#, "\"id\""),
        (#"[1]"#, "not a JSON object"),
    ] as [(String, String)])
    func badDefinitionsAreExplained(_ json: String, _ fragment: String) throws {
        #expect {
            _ = try BlueGreen.prepare(try JSONValue.parse(json), current: nil, initialInstances: 1, startedAt: Self.startedAt)
        } throws: { error in
            "\(error)".contains(fragment)
        }
    }

    @Test func deploysOfAGroupOldestFirst() {
        func app(_ id: String, _ group: String, _ at: String?) -> MarathonApp {
            var labels = ["HAPROXY_DEPLOYMENT_GROUP": group]
            if let at { labels["HAPROXY_DEPLOYMENT_STARTED_AT"] = at }
            return MarathonApp(id: id, labels: labels)
        }
        let apps = [app("/a-green", "a", "2026-03-01T12:00:00"), app("/b-blue", "b", nil), app("/a-blue", "a", "2026-03-01T11:00:00"),
                    app("/other", "/a", nil)]
        #expect(BlueGreen.deploys(of: "a", in: apps).map(\.id) == ["/a-blue", "/a-green"])
    }

    // MARK: - Steps

    static let check = MarathonHealthCheck(proto: .http, path: "/health", portIndex: 0)

    func colour(_ name: String, instances: Int, target: Int, running: Int, from: Int = 0, deployments: Int = 0,
                healthy: Bool = true) -> BlueGreen.Colour {
        let labels = ["HAPROXY_DEPLOYMENT_GROUP": "web", "HAPROXY_DEPLOYMENT_TARGET_INSTANCES": String(target),
                      "HAPROXY_DEPLOYMENT_NEW_INSTANCES": "0", "HAPROXY_DEPLOYMENT_COLOUR": name]
        let base = name == "blue" ? 31000 : 32000
        let tasks = (from..<(from + running)).map {
            MarathonTask(id: "web-\(name).\($0)", appId: "/web-\(name)", host: "127.0.0.1", ports: [base + $0], healthAlive: [healthy])
        }
        return BlueGreen.Colour(app: MarathonApp(id: "/web-\(name)", labels: labels, instances: instances, servicePorts: [10000],
                                                 healthChecks: [Self.check], tasks: tasks), deployments: deployments)
    }

    @Test func waitsForDeployments() {
        let old = colour("blue", instances: 3, target: 3, running: 3)
        #expect(BlueGreen.step(.init(old: old, new: colour("green", instances: 1, target: 3, running: 0, deployments: 1)))
                == .wait("a deployment of /web-green is in progress"))
        #expect(BlueGreen.step(.init(old: colour("blue", instances: 2, target: 3, running: 3, deployments: 1),
                                     new: colour("green", instances: 2, target: 3, running: 2)))
                == .wait("a deployment of /web-blue is in progress"))
    }

    /// A whole deploy of 3 instances without load balancers to watch: each step kills what the
    /// load balancers drain and grows the new colour as zdd.py does (1 → 2 → 3), then deletes.
    @Test func aWholeDeployStepByStep() {
        var s = BlueGreen.step(.init(old: colour("blue", instances: 3, target: 3, running: 3),
                                     new: colour("green", instances: 1, target: 3, running: 1)))
        #expect(s == .act(kill: ["web-blue.0"], scaleNewTo: 2))
        s = BlueGreen.step(.init(old: colour("blue", instances: 2, target: 3, running: 2, from: 1),
                                 new: colour("green", instances: 2, target: 3, running: 2)))
        #expect(s == .act(kill: ["web-blue.1"], scaleNewTo: 3))
        s = BlueGreen.step(.init(old: colour("blue", instances: 1, target: 3, running: 1, from: 2),
                                 new: colour("green", instances: 3, target: 3, running: 3)))
        #expect(s == .deleteOld)
        // Unhealthy new tasks: nothing drains, nothing grows.
        s = BlueGreen.step(.init(old: colour("blue", instances: 3, target: 3, running: 3),
                                 new: colour("green", instances: 1, target: 3, running: 1, healthy: false)))
        #expect(s == .wait("0 of 1 tasks of /web-green healthy"))
    }

    func stats(_ rows: [(Int, String, Int)]) -> [StatsServer] {
        rows.enumerated().map { i, r in
            StatsServer(backend: "web_10000", name: "s\(i + 1)", status: r.1, sessions: r.2, address: "127.0.0.1:\(r.0)")
        }
    }

    @Test func withLoadBalancersOldTasksAreKilledOnceDrainedOnEveryOne() {
        let old = colour("blue", instances: 3, target: 3, running: 3), new = colour("green", instances: 1, target: 3, running: 1)
        func step(_ a: [StatsServer]?, _ b: [StatsServer]?, expired: Bool = false) -> BlueGreen.Step {
            BlueGreen.step(.init(old: old, new: new, balancers: [.init(name: "lb1", servers: a), .init(name: "lb2", servers: b)],
                                 drainWaitExpired: expired))
        }
        let drained = stats([(31000, "DRAIN", 0), (31001, "UP", 1), (31002, "UP", 0), (32000, "UP", 0), (1, "MAINT", 0)])
        let busy = stats([(31000, "DRAIN", 2), (31001, "UP", 1), (31002, "UP", 0), (32000, "UP", 0)])
        let notYet = stats([(31000, "UP", 0), (31001, "UP", 1), (31002, "UP", 0), (32000, "UP", 0)])
        let newNotUp = stats([(31000, "DRAIN", 0), (31001, "UP", 0), (31002, "DOWN", 0), (32000, "DOWN", 0)])
        let missing = stats([(31000, "DRAIN", 0), (31001, "UP", 0), (31002, "UP", 0)])
        #expect(step(drained, drained) == .act(kill: ["web-blue.0"], scaleNewTo: 2))
        #expect(step(drained, nil) == .wait("lb2 has no backend for the group yet"))
        #expect(step(drained, missing) == .wait("lb2 does not route task web-green.0 (127.0.0.1:32000) yet"))
        #expect(step(drained, newNotUp) == .wait("lb2: 1 server(s) up, waiting for 3"))
        #expect(step(drained, notYet) == .wait("waiting for web-blue.0 to drain on the load balancers"))
        #expect(step(drained, busy) == .wait("waiting for web-blue.0 to drain on the load balancers"))
        // After --max-wait, set aside is enough (connections still open are cut by the kill's grace).
        #expect(step(drained, busy, expired: true) == .act(kill: ["web-blue.0"], scaleNewTo: 2))
        #expect(step(drained, notYet, expired: true) == .wait("waiting for web-blue.0 to drain on the load balancers"))
    }

    @Test(arguments: [
        // zdd.py's tests: (new, old, target, linear, expected)
        (10, 30, 30, 0, 15),
        (10, 8, 30, 0, 30),
        (1, 3, 3, 0, 2),
        (2, 2, 3, 0, 3),
        (1, 10, 10, 3, 4),
        (9, 10, 10, 3, 10),
    ] as [(Int, Int, Int, Int, Int)])
    func newColourGrowsAsZddPyGrowsIt(_ new: Int, _ old: Int, _ target: Int, _ linear: Int, _ expected: Int) {
        #expect(BlueGreen.nextInstances(new: new, old: old, target: target, linear: linear) == expected)
    }

    // MARK: - Stats pages

    @Test func statsCSVFromHAProxy26() throws {
        let servers = try StatsCSV.servers(try Fixture.text("stats-2.6-show-legends.csv"))
        #expect(servers.map(\.name) == ["s1", "s2", "s3"])
        #expect(servers.map(\.address) == ["127.0.0.1:31001", "127.0.0.1:31002", "127.0.0.1:1"])
        #expect(servers.map(\.status) == ["DOWN", "DRAIN", "MAINT"])
        #expect(servers.map(\.isDrained) == [false, true, true])
        #expect(servers.allSatisfy { $0.backend == "web_10000" })
    }

    @Test func statsCSVQuotedFieldsAndErrors() throws {
        let text = "# pxname,svname,qcur,scur,status,addr,\nweb,s1,0,3,\"UP 2/3\",\"10.0.0.1:80\",\nweb,BACKEND,0,3,UP,,\n"
        let s = try StatsCSV.servers(text)
        #expect(s == [StatsServer(backend: "web", name: "s1", status: "UP 2/3", sessions: 3, queued: 0, address: "10.0.0.1:80")])
        #expect(s[0].isUp)
        #expect(throws: StatsCSVError.self) { try StatsCSV.servers("<html>stats</html>") }
        #expect(throws: StatsCSVError.self) { try StatsCSV.servers("# pxname,svname,status\n") }
    }
}
