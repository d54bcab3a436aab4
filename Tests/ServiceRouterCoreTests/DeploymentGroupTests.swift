import Testing
@testable import ServiceRouterCore
import ServiceRouterTestSupport

/// Blue/green deployment groups (`HAPROXY_DEPLOYMENT_*`): the colours are one service, labelled by
/// the oldest colour; old tasks drain as new ones become healthy; the slot count holds both
/// colours for the whole deploy.
@Suite struct DeploymentGroupTests {
    static let every = RoutingOptions(groups: ["*"], minSlots: 1)

    func build(_ apps: [MarathonApp], _ options: RoutingOptions = every, _ context: BuildContext = BuildContext()) -> DesiredState {
        DesiredStateBuilder.build(apps: apps, options: options, context: context)
    }

    static let check = MarathonHealthCheck(proto: .http, path: "/health", portIndex: 0, intervalSeconds: 5,
                                           timeoutSeconds: 2, maxConsecutiveFailures: 3)

    /// A colour as zdd creates it: group `web`, service port label 10000.
    func colour(_ name: String, startedAt: String?, instances: Int, target: Int?, newInstances: Int? = 0,
                tasks: [MarathonTask], labels extra: [String: String] = [:], checks: [MarathonHealthCheck] = []) -> MarathonApp {
        var labels = ["HAPROXY_DEPLOYMENT_GROUP": "web", "HAPROXY_0_PORT": "10000", "HAPROXY_DEPLOYMENT_ALT_PORT": "10001",
                      "HAPROXY_DEPLOYMENT_COLOUR": name]
        if let startedAt { labels["HAPROXY_DEPLOYMENT_STARTED_AT"] = startedAt }
        if let target { labels["HAPROXY_DEPLOYMENT_TARGET_INSTANCES"] = String(target) }
        if let newInstances { labels["HAPROXY_DEPLOYMENT_NEW_INSTANCES"] = String(newInstances) }
        labels.merge(extra) { _, b in b }
        return makeApp("/web-\(name)", ports: [name == "blue" ? 10000 : 10001], labels: labels, instances: instances,
                       configChangedAt: startedAt, healthChecks: checks, tasks: tasks)
    }

    func tasks(_ app: String, _ n: Int, from first: Int = 0, port: Int = 31000, state: TaskState = .running,
               health: [Bool]? = nil) -> [MarathonTask] {
        (first..<(first + n)).map { i in
            makeTask("web-\(app).\(i)", app: "/web-\(app)", host: "10.0.0.1", ports: [port + i], state: state, health: health)
        }
    }

    func draining(_ d: DesiredState) -> [String] {
        d.services.flatMap(\.servers).filter { $0.routing == .drain }.map(\.taskId).sorted()
    }

    // MARK: - marathon-lb's fixtures

    /// marathon-lb's test_zdd_app: green (older, 3 tasks) and blue (newer, 1 healthy task, no
    /// NEW_INSTANCES label, so a target of 1): one backend named after the group with all four
    /// tasks, and the first green task by id disabled — 10.0.6.25:31184 in marathon-lb's expected
    /// config.
    @Test func marathonLBsZddFixture() throws {
        let (apps, _) = try MarathonDecoding.apps(from: Fixture.data("zdd_apps.json"))
        let d = build(apps, RoutingOptions(groups: ["external"], minSlots: 1))
        let s = try #require(d.services.first)
        #expect(d.services.count == 1)
        #expect(s.appId == "/nginx")
        #expect(s.backend.text == "nginx_10000")
        #expect(s.servicePort.value == 10000)
        #expect(s.deploymentMembers == ["/nginx-green", "/nginx-blue"])
        #expect(s.healthCheck?.timeoutSeconds == 15, "the older colour's health check")
        #expect(s.servers.filter { $0.routing == .drain }.map(\.endpoint) == [ep("10.0.6.25", 31184)])
        #expect(s.servers.filter { $0.routing == .serve }.map(\.endpoint).sorted { $0.port.value < $1.port.value }
                == [ep("10.0.6.25", 16916), ep("10.0.6.25", 23336), ep("10.0.1.147", 25724)])
        // Two colours at the largest size (green's target, 20): 40 tasks plus headroom.
        #expect(s.minimumSlots == 50)
    }

    /// The Marathon 1.5 capture zdd's own tests start from: one colour alone is still the group's
    /// service, under the group's name, with room for the next colour.
    @Test func oneColourAloneIsTheGroupsService() throws {
        let (apps, _) = try MarathonDecoding.apps(from: Fixture.data("zdd_app_blue_marathon1.5.json"))
        let s = try #require(build(apps).services.first)
        #expect(s.backend.text == "nginx_10000")
        #expect(s.servers.count == 3)
        #expect(s.servers.allSatisfy { $0.routing == .serve })
    }

    // MARK: - Which colour gives the labels

    @Test func theOlderColourGivesLabelsPortsAndChecks() throws {
        let blue = colour("blue", startedAt: "2026-03-01T10:00:00.000000", instances: 2, target: 2,
                          tasks: tasks("blue", 2), labels: ["HAPROXY_0_VHOST": "old.example.com"])
        let green = colour("green", startedAt: "2026-03-01T11:00:00.000000", instances: 1, target: 2,
                           tasks: tasks("green", 1, port: 32000), labels: ["HAPROXY_0_VHOST": "new.example.com", "HAPROXY_0_PORT": "10005"],
                           checks: [Self.check])
        let s = try #require(build([green, blue]).services.first)
        #expect(s.vhosts.map(\.text) == ["old.example.com"])
        #expect(s.servicePort.value == 10000)
        #expect(s.healthCheck == nil, "blue has no health check")
        #expect(s.appLabels["HAPROXY_DEPLOYMENT_COLOUR"] == "blue")
        #expect(s.servers.map(\.taskId) == ["web-blue.0", "web-blue.1", "web-green.0"])
    }

    @Test(arguments: [
        // (blue started, green started, expected older)
        ("2026-03-01T10:00:00", "2026-03-01T11:00:00", "blue"),
        ("2026-03-01T12:00:00", "2026-03-01T11:00:00", "green"),
        // Zones are honoured: 12:00+02:00 is 10:00Z.
        ("2026-03-01T12:00:00+02:00", "2026-03-01T11:00:00Z", "blue"),
        // Without a start time an app is the oldest (marathon-lb: datetime.min).
        (nil, "2026-03-01T11:00:00", "blue"),
        ("2026-03-01T11:00:00", nil, "green"),
        // Same time: the smaller app id.
        ("2026-03-01T11:00:00", "2026-03-01T11:00:00.000", "blue"),
    ] as [(String?, String?, String)])
    func olderByStartTime(_ blueAt: String?, _ greenAt: String?, _ older: String) throws {
        let blue = colour("blue", startedAt: blueAt, instances: 1, target: 1, tasks: [], labels: ["HAPROXY_0_VHOST": "blue.example.com"])
        let green = colour("green", startedAt: greenAt, instances: 1, target: 1, tasks: [], labels: ["HAPROXY_0_VHOST": "green.example.com"])
        let s = try #require(build([blue, green]).services.first)
        #expect(s.vhosts.map(\.text) == ["\(older).example.com"])
        #expect(s.deploymentMembers.first == "/web-\(older)")
    }

    // MARK: - Draining

    /// A deploy of 3 instances, step by step as zdd drives it: each healthy new task lets one old
    /// task drain; never fewer than the target serve.
    @Test(arguments: [
        // (old instances, old running tasks, new healthy tasks, expected drained old tasks)
        (3, 3, 0, 0),
        (3, 3, 1, 1),
        (3, 3, 2, 2),
        (3, 3, 3, 3),
        (2, 2, 1, 0),   // zdd killed one drained task (scale=true): 2 + 1 serve, none may drain
        (2, 2, 2, 1),
        (1, 1, 3, 1),
        (0, 0, 3, 0),
    ] as [(Int, Int, Int, Int)])
    func drainsAsNewTasksBecomeHealthy(_ oldInstances: Int, _ oldTasks: Int, _ healthy: Int, _ drained: Int) {
        let blue = colour("blue", startedAt: "2026-03-01T10:00:00", instances: oldInstances, target: 3, tasks: tasks("blue", oldTasks))
        let green = colour("green", startedAt: "2026-03-01T11:00:00", instances: 3, target: 3,
                           tasks: tasks("green", healthy, port: 32000, health: [true]) + tasks("green", 3 - healthy, from: healthy, port: 32000, health: [false]),
                           checks: [Self.check])
        let d = build([blue, green])
        #expect(draining(d) == Array(tasks("blue", oldTasks).map(\.id).prefix(drained)))
        // Every new task is in the backend (without --health-check, healthy or not), and the old
        // tasks left serving plus the healthy new ones never fall below the target.
        let serving = d.services.flatMap(\.servers).filter { $0.routing == .serve }
        #expect(serving.count == oldTasks - drained + 3)
        #expect(oldTasks - drained + healthy >= min(3, oldTasks + healthy))
    }

    @Test func withoutNewInstancesLabelTheTargetIsOne() {
        // marathon-lb: target_instances = 1 unless the new colour carries HAPROXY_DEPLOYMENT_NEW_INSTANCES.
        let blue = colour("blue", startedAt: "2026-03-01T10:00:00", instances: 3, target: 3, tasks: tasks("blue", 3))
        let green = colour("green", startedAt: "2026-03-01T11:00:00", instances: 2, target: 3, newInstances: nil,
                           tasks: tasks("green", 2, port: 32000))
        // H = 2, bound = 2 + 3 - 1 = 4: two old tasks drain.
        #expect(draining(build([blue, green])) == ["web-blue.0", "web-blue.1"])
    }

    @Test func withoutHealthChecksRunningNewTasksCount() {
        let blue = colour("blue", startedAt: "2026-03-01T10:00:00", instances: 2, target: 2, tasks: tasks("blue", 2))
        let green = colour("green", startedAt: "2026-03-01T11:00:00", instances: 2, target: 2,
                           tasks: tasks("green", 1, port: 32000) + tasks("green", 1, from: 1, port: 32000, state: .staging))
        // One running (the staging one does not count, nor does the requested instance count).
        #expect(draining(build([blue, green])) == ["web-blue.0"])
    }

    @Test func missingHealthResultsCountWhenLastKnownHealthy() {
        let blue = colour("blue", startedAt: "2026-03-01T10:00:00", instances: 2, target: 2, tasks: tasks("blue", 2))
        let green = colour("green", startedAt: "2026-03-01T11:00:00", instances: 2, target: 2,
                           tasks: tasks("green", 2, port: 32000, health: nil), checks: [Self.check])
        #expect(draining(build([blue, green])).isEmpty, "no results, nothing known: not healthy")
        let remembered = BuildContext(lastKnownHealth: ["web-green.0": true, "web-green.1": true])
        #expect(draining(build([blue, green], Self.every, remembered)) == ["web-blue.0", "web-blue.1"])
    }

    @Test func oldTasksAlreadyDrainingAreNotCounted() {
        // web-blue.0 is being killed (TASK_KILLING: drains anyway). With 2 healthy new tasks and a
        // target of 3, one more old task may drain — not two.
        let blue = colour("blue", startedAt: "2026-03-01T10:00:00", instances: 2, target: 3,
                          tasks: tasks("blue", 1, state: .killing) + tasks("blue", 2, from: 1))
        let green = colour("green", startedAt: "2026-03-01T11:00:00", instances: 2, target: 3,
                           tasks: tasks("green", 2, port: 32000))
        #expect(draining(build([blue, green])) == ["web-blue.0", "web-blue.1"])
    }

    @Test func drainingIsTheSameWhateverTheAppOrder() {
        let blue = colour("blue", startedAt: "2026-03-01T10:00:00", instances: 3, target: 3, tasks: tasks("blue", 3).shuffled())
        let green = colour("green", startedAt: "2026-03-01T11:00:00", instances: 2, target: 3, tasks: tasks("green", 2, port: 32000))
        let first = build([blue, green])
        #expect(first.services == build([green, blue]).services)
        #expect(draining(first) == ["web-blue.0", "web-blue.1"])
    }

    @Test func threeColoursTheNewestIsNew() {
        let blue = colour("blue", startedAt: "2026-03-01T10:00:00", instances: 1, target: 2, tasks: tasks("blue", 1))
        var green = colour("green", startedAt: "2026-03-01T11:00:00", instances: 1, target: 2, tasks: tasks("green", 1, port: 32000))
        green.labels["HAPROXY_0_VHOST"] = "x.example.com"
        let red = makeApp("/web-red", ports: [10002], labels: ["HAPROXY_DEPLOYMENT_GROUP": "web", "HAPROXY_0_PORT": "10000",
                                                            "HAPROXY_DEPLOYMENT_STARTED_AT": "2026-03-01T12:00:00",
                                                            "HAPROXY_DEPLOYMENT_TARGET_INSTANCES": "2", "HAPROXY_DEPLOYMENT_NEW_INSTANCES": "0"],
                          instances: 2, tasks: [makeTask("web-red.0", app: "/web-red", ports: [33000]), makeTask("web-red.1", app: "/web-red", ports: [33001])])
        let d = build([red, green, blue])
        let s = d.services[0]
        #expect(d.services.count == 1)
        #expect(s.deploymentMembers == ["/web-blue", "/web-green", "/web-red"])
        #expect(s.servers.count == 4)
        // Old: blue + green (2 instances, 2 serving); H = 2; bound = 2 + 2 - 2 = 2.
        #expect(draining(d) == ["web-blue.0", "web-green.0"])
    }

    // MARK: - Slots

    /// From one colour alone, through every step of a deploy to the new colour alone, the slot
    /// count the group needs never grows: no step reloads for slots.
    @Test func slotMinimumHoldsForTheWholeDeploy() {
        func slots(_ apps: [MarathonApp]) -> Int { build(apps, RoutingOptions(groups: ["*"], minSlots: 1)).services[0].minimumSlots }
        let steady = colour("blue", startedAt: "2026-03-01T10:00:00", instances: 4, target: 4, tasks: tasks("blue", 4))
        let before = slots([steady])
        var steps: [[MarathonApp]] = []
        // zdd: new colour from 1 instance to the target (4), old colour scaled down as it drains.
        for (newInstances, oldInstances) in [(1, 4), (2, 3), (3, 2), (4, 1), (4, 0)] {
            let blue = colour("blue", startedAt: "2026-03-01T10:00:00", instances: oldInstances, target: 4, tasks: tasks("blue", oldInstances))
            let green = colour("green", startedAt: "2026-03-01T11:00:00", instances: newInstances, target: 4,
                               tasks: tasks("green", newInstances, port: 32000))
            steps.append([blue, green])
        }
        steps.append([colour("green", startedAt: "2026-03-01T11:00:00", instances: 4, target: 4, tasks: tasks("green", 4, port: 32000))])
        for step in steps {
            let s = build(step, RoutingOptions(groups: ["*"], minSlots: 1)).services[0]
            #expect(s.minimumSlots <= before, "\(step.map { "\($0.id)×\($0.instances)" })")
            #expect(s.servers.count <= before)
        }
        // Both colours at full size fit, with headroom: 2 × 4 + 2.
        #expect(before == 10)
        // An ungrouped app of the same size needs fewer (its rolling restart only).
        #expect(slots([makeApp("/plain", instances: 4, tasks: tasks("blue", 4))]) == 10)
    }

    // MARK: - Bad labels

    @Test(arguments: [
        ("HAPROXY_DEPLOYMENT_TARGET_INSTANCES", "three"),
        ("HAPROXY_DEPLOYMENT_NEW_INSTANCES", "-1"),
        ("HAPROXY_DEPLOYMENT_STARTED_AT", "yesterday"),
        ("HAPROXY_DEPLOYMENT_STARTED_AT", "2026-02-30T10:00:00"),
        ("HAPROXY_DEPLOYMENT_GROUP", "we b"),
        ("HAPROXY_DEPLOYMENT_GROUP", "/"),
        ("HAPROXY_DEPLOYMENT_GROUP", "a;b"),
    ] as [(String, String)])
    func anInvalidLabelLeavesOnlyThatColourOut(_ key: String, _ value: String) throws {
        let blue = colour("blue", startedAt: "2026-03-01T10:00:00", instances: 2, target: 2, tasks: tasks("blue", 2))
        var green = colour("green", startedAt: "2026-03-01T11:00:00", instances: 1, target: 2, tasks: tasks("green", 1, port: 32000))
        green.labels[key] = value
        let other = makeApp("/other", ports: [10010], tasks: [makeTask("other.0", app: "/other", ports: [34000])])
        let d = build([blue, green, other])
        #expect(d.services.map(\.backend.text) == ["other_10010", "web_10000"])
        let s = try #require(d.services.first { $0.backend.text == "web_10000" })
        #expect(s.deploymentMembers == ["/web-blue"])
        #expect(s.servers.allSatisfy { $0.routing == .serve })
        let error = try #require(d.diagnostics.first { $0.appId == "/web-green" })
        #expect(error.level == .error)
        #expect(error.message.hasPrefix("app skipped: invalid \(key)="), "\(error)")
    }

    // MARK: - The fast path

    @Test func theFastPathRebuildsAGroupFromAllItsColours() throws {
        let blue = colour("blue", startedAt: "2026-03-01T10:00:00", instances: 2, target: 2, tasks: tasks("blue", 2))
        let green = colour("green", startedAt: "2026-03-01T11:00:00", instances: 1, target: 2, tasks: tasks("green", 1, port: 32000))
        let current = build([blue, green]).services
        // One more green task: rebuilt from both colours, the servers are those a full build gives.
        var grown = green
        grown.instances = 2
        grown.tasks = tasks("green", 2, port: 32000)
        let result = FastPath.rebuild([blue, grown], current: current, routing: Self.every, health: [:], resolvedHosts: [:])
        let full = build([blue, grown]).services
        #expect(try result.get().map(\.servers) == full.map(\.servers))
        #expect(try result.get().map(\.backend) == current.map(\.backend))
    }

    // MARK: - Start times

    @Test(arguments: [
        ("2016-02-01T14:13:42.499089", "2016-02-01T14:13:42.499089Z", true),
        ("2016-02-01T14:13:42", "2016-02-01T14:13:42.000000", true),
        ("2016-02-01T16:13:42+02:00", "2016-02-01T14:13:42Z", true),
        ("2016-02-01 14:13:42", "2016-02-01T14:13:42", true),
        ("2016-02-01T14:13", "2016-02-01T14:13:00", true),
    ] as [(String, String, Bool)])
    func startTimesNameInstants(_ a: String, _ b: String, _ same: Bool) throws {
        let x = try #require(DeploymentTimestamp(a)), y = try #require(DeploymentTimestamp(b))
        #expect((x == y) == same)
    }

    @Test func startTimesOrderAndRoundTrip() throws {
        let a = try #require(DeploymentTimestamp("2016-02-01T14:13:42.499089"))
        let b = try #require(DeploymentTimestamp("2016-02-01T14:13:42.5"))
        #expect(a < b)
        #expect(DeploymentTimestamp("2016-13-01T00:00:00") == nil)
        #expect(DeploymentTimestamp("2016-02-01T14:13:42+") == nil)
        #expect(DeploymentTimestamp("") == nil)
        let text = DeploymentTimestamp.text(secondsSince1970: 1_454_336_022.499089)
        #expect(text == "2016-02-01T14:13:42.499088" || text == "2016-02-01T14:13:42.499089")
        #expect(DeploymentTimestamp.text(secondsSince1970: 951_782_400) == "2000-02-29T00:00:00.000000")
    }
}
