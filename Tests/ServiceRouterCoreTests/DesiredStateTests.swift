import Testing
@testable import ServiceRouterCore

/// From Marathon apps to the desired HAProxy state: task selection, health, modes, networking,
/// conflicts and diagnostics.
@Suite struct DesiredStateTests {
    static let every = RoutingOptions(groups: ["*"], minSlots: 1)

    func build(_ apps: [MarathonApp], _ options: RoutingOptions = every, _ context: BuildContext = BuildContext()) -> DesiredState {
        DesiredStateBuilder.build(apps: apps, options: options, context: context)
    }

    func diagnostics(_ d: DesiredState, _ kind: Diagnostic.Kind, app: String? = nil) -> [Diagnostic] {
        d.diagnostics.filter { $0.kind == kind && (app == nil || $0.appId == app) }
    }

    static let httpCheck = MarathonHealthCheck(proto: .http, path: "/health", portIndex: 0, intervalSeconds: 5,
                                               timeoutSeconds: 2, maxConsecutiveFailures: 3)

    // MARK: - Task states

    /// The documented rule, written out independently of the implementation.
    static let expectedRouting: [TaskState: TaskRouting] = [
        .running: .serve,
        .killing: .drain, .unreachable: .drain, .lost: .drain,
        .staging: .none, .starting: .none,
        .finished: .none, .failed: .none, .killed: .none, .error: .none, .dropped: .none,
        .gone: .none, .goneByOperator: .none, .unknown: .none,
    ]

    @Test func theRuleCoversEveryState() {
        #expect(Set(Self.expectedRouting.keys) == Set(TaskState.allCases))
    }

    @Test(arguments: TaskState.allCases)
    func taskStateRouting(_ state: TaskState) throws {
        let expected = try #require(Self.expectedRouting[state])
        #expect(state.routing == expected)
        let app = makeApp("/web", tasks: [makeTask("web.1", app: "/web", host: "10.0.0.1", ports: [31001], state: state)])
        let s = try #require(build([app]).services.first)
        switch expected {
        case .serve: #expect(s.servers == [server("web.1", "10.0.0.1", 31001, .serve)])
        case .drain: #expect(s.servers == [server("web.1", "10.0.0.1", 31001, .drain)])
        case .none: #expect(s.servers == [])
        }
    }

    @Test(arguments: TaskState.allCases)
    func terminalStates(_ state: TaskState) {
        let terminal: Set<TaskState> = [.finished, .failed, .killed, .error, .dropped, .gone, .goneByOperator, .unknown]
        #expect(state.isTerminal == terminal.contains(state))
    }

    @Test func taskWithoutStateServes() throws {
        let app = makeApp("/web", tasks: [makeTask("web.1", app: "/web", state: nil)])
        #expect(build([app]).services.first?.servers == [server("web.1", "10.0.0.1", 31000)])
    }

    @Test func drainingTasksKeepTheirSlotUnderHealthChecks() throws {
        let app = makeApp("/web", healthChecks: [Self.httpCheck], tasks: [
            makeTask("web.1", app: "/web", ports: [31001], state: .killing, health: [false]),
            makeTask("web.2", app: "/web", ports: [31002], state: .unreachable, health: nil),
        ])
        let s = try #require(build([app], RoutingOptions(groups: ["*"], healthCheck: true)).services.first)
        #expect(s.servers.map(\.routing) == [.drain, .drain])
    }

    // MARK: - --health-check

    @Test func healthCheckRule() throws {
        let tasks = [
            makeTask("t1", app: "/web", ports: [31001], health: [true]),
            makeTask("t2", app: "/web", ports: [31002], health: [true, false]),
            makeTask("t3", app: "/web", ports: [31003], health: [false]),
            makeTask("t4", app: "/web", ports: [31004], health: nil),
            makeTask("t5", app: "/web", ports: [31005], health: nil),
            makeTask("t6", app: "/web", ports: [31006], health: nil),
            makeTask("t7", app: "/web", ports: [31007], health: nil),
            makeTask("t8", app: "/web", ports: [31008], health: [true, true]),
        ]
        let app = makeApp("/web", healthChecks: [Self.httpCheck], tasks: tasks)
        let context = BuildContext(
            lastKnownHealth: ["t4": true, "t5": false, "t3": true],
            liveServing: [ep("10.0.0.1", 31005), ep("10.0.0.1", 31006)])
        let checked = try #require(build([app], RoutingOptions(groups: ["*"], healthCheck: true), context).services.first)
        // t1, t8: all results alive. t2, t3: a result is not alive (a remembered health does not override a
        // present result). t4: no results, last known healthy. t5: last known unhealthy wins over
        // liveServing. t6: no results, nothing remembered, HAProxy serves it: kept. t7: unknown: excluded.
        #expect(checked.servers.map(\.taskId) == ["t1", "t4", "t6", "t8"])

        let unchecked = try #require(build([app], RoutingOptions(groups: ["*"], healthCheck: false), context).services.first)
        #expect(unchecked.servers.map(\.taskId) == ["t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8"])
    }

    @Test func liveServingOnlyAppliesToTheSameEndpoint() throws {
        let app = makeApp("/web", healthChecks: [Self.httpCheck], tasks: [makeTask("t1", app: "/web", ports: [31001], health: nil)])
        let context = BuildContext(liveServing: [ep("10.0.0.1", 31002), ep("10.0.0.2", 31001)])
        #expect(build([app], RoutingOptions(groups: ["*"], healthCheck: true), context).services.first?.servers == [])
    }

    @Test func tasksOfAppsWithoutHealthChecksAreUnaffected() throws {
        let app = makeApp("/web", tasks: [
            makeTask("t1", app: "/web", ports: [31001], health: [false]),
            makeTask("t2", app: "/web", ports: [31002], health: nil),
        ])
        let s = try #require(build([app], RoutingOptions(groups: ["*"], healthCheck: true)).services.first)
        #expect(s.servers.map(\.taskId) == ["t1", "t2"])
    }

    @Test func healthObservationsAreOnlyWhatThePayloadSays() {
        let app = makeApp("/web", tasks: [
            makeTask("t1", app: "/web", health: [true]), makeTask("t2", app: "/web", health: [true, false]),
            makeTask("t3", app: "/web", health: nil),
        ])
        #expect(DesiredStateBuilder.healthObservations([app]) == ["t1": true, "t2": false])
    }

    // MARK: - Strict mode, ENABLED, groups

    @Test(arguments: [
        (false, nil, true), (false, "true", true), (false, "false", false), (false, "no", false),
        (true, nil, false), (true, "true", true), (true, "yes", true), (true, "false", false),
    ] as [(Bool, String?, Bool)])
    func strictModeAndEnabled(_ strict: Bool, _ enabled: String?, _ routed: Bool) {
        var labels: [String: String] = [:]
        labels["HAPROXY_0_ENABLED"] = enabled
        let app = makeApp("/web", labels: labels, tasks: [makeTask("t1", app: "/web")])
        let d = build([app], RoutingOptions(groups: ["*"], strictMode: strict))
        #expect(d.services.map(\.appId) == (routed ? ["/web"] : []))
    }

    @Test func strictModeIsPerPort() {
        let app = makeApp("/web", ports: [10000, 10001], labels: ["HAPROXY_1_ENABLED": "true"],
                          tasks: [makeTask("t1", app: "/web", ports: [31000, 31001])])
        let d = build([app], RoutingOptions(groups: ["*"], strictMode: true))
        #expect(d.services.map(\.backend.text) == ["web_10001"])
        #expect(d.services.first?.portIndex == 1)
        #expect(d.services.first?.servers.map(\.endpoint) == [ep("10.0.0.1", 31001)])
    }

    @Test func groups() {
        let apps = [
            makeApp("/ext", ports: [10001], labels: ["HAPROXY_GROUP": "external"]),
            makeApp("/int", ports: [10002], labels: ["HAPROXY_GROUP": "internal"]),
            makeApp("/both", ports: [10003], labels: ["HAPROXY_GROUP": "internal, external"]),
            makeApp("/none", ports: [10004]),
            makeApp("/split", ports: [10005, 10006], labels: ["HAPROXY_GROUP": "external", "HAPROXY_1_GROUP": "internal"]),
        ]
        #expect(build(apps, RoutingOptions(groups: ["external"])).services.map(\.backend.text)
                == ["both_10003", "ext_10001", "split_10005"])
        #expect(build(apps, RoutingOptions(groups: ["internal"])).services.map(\.backend.text)
                == ["both_10003", "int_10002", "split_10006"])
        #expect(build(apps, RoutingOptions(groups: ["external", "internal"])).services.count == 5)
        #expect(build(apps, RoutingOptions(groups: ["*"])).services.count == 6, "* includes apps without a group")
        #expect(build(apps, RoutingOptions(groups: ["other"])).services.isEmpty)
        #expect(build([makeApp("/star", labels: ["HAPROXY_GROUP": "*"])], RoutingOptions(groups: ["external"])).services.isEmpty,
                "an app's own `*` is just a group name")
    }

    // MARK: - Mode resolution

    func onlyService(_ app: MarathonApp, _ options: RoutingOptions = every) throws -> (Service, DesiredState) {
        let d = build([app], options)
        let s = try #require(d.services.first, "\(d.diagnostics)")
        #expect(d.services.count == 1)
        return (s, d)
    }

    @Test func httpHealthCheckMeansHTTP() throws {
        let (s, _) = try onlyService(makeApp("/web", healthChecks: [Self.httpCheck]))
        #expect(s.mode == .http)
        let hc = try #require(s.healthCheck)
        #expect(hc.kind == .http(path: "/health"))
        #expect(hc.intervalSeconds == 5)
        #expect(hc.timeoutSeconds == 2)
        #expect(hc.fall == 4, "marathon-lb: maxConsecutiveFailures + 1")
        #expect(hc.port == nil)
        #expect(hc.source == Self.httpCheck)
    }

    @Test(arguments: [
        // (check protocol, MODE label, vhost, expected mode, expected check kind)
        (MarathonHealthCheck.CheckProtocol.mesosHTTP, nil, nil, ServiceLabels.Mode.tcp, HealthCheckSpec.Kind.tcp),
        (.https, nil, nil, .tcp, .tcp),
        (.tcp, nil, nil, .tcp, .tcp),
        (.mesosTCP, nil, "x.com", .http, .tcp),
        (.http, "tcp", nil, .tcp, .tcp),
        (.tcp, "http", nil, .http, .tcp),
        (.https, "http", nil, .http, .http(path: "/health")),
        (.mesosHTTP, nil, "x.com", .http, .http(path: "/health")),
    ] as [(MarathonHealthCheck.CheckProtocol, String?, String?, ServiceLabels.Mode, HealthCheckSpec.Kind)])
    func modeResolution(_ proto: MarathonHealthCheck.CheckProtocol, _ modeLabel: String?, _ vhost: String?,
                        _ mode: ServiceLabels.Mode, _ kind: HealthCheckSpec.Kind) throws {
        var labels: [String: String] = [:]
        labels["HAPROXY_0_MODE"] = modeLabel
        labels["HAPROXY_0_VHOST"] = vhost
        var check = Self.httpCheck
        check.proto = proto
        let (s, _) = try onlyService(makeApp("/web", labels: labels, healthChecks: [check]))
        #expect(s.mode == mode)
        #expect(s.healthCheck?.kind == kind)
    }

    @Test func modeWithoutHealthCheck() throws {
        #expect(try onlyService(makeApp("/a")).0.mode == .tcp)
        #expect(try onlyService(makeApp("/a", labels: ["HAPROXY_0_VHOST": "a.com"])).0.mode == .http)
        #expect(try onlyService(makeApp("/a", labels: ["HAPROXY_0_MODE": "http"])).0.mode == .http)
        #expect(try onlyService(makeApp("/a")).0.healthCheck == nil)
    }

    @Test func tcpModeDropsVhostsWithAWarning() throws {
        let (s, d) = try onlyService(makeApp("/web", labels: ["HAPROXY_0_MODE": "tcp", "HAPROXY_0_VHOST": "a.com,b.com",
                                                              "HAPROXY_0_PATH": "/p"]))
        #expect(s.mode == .tcp)
        #expect(s.vhosts == [])
        #expect(s.labels.path == nil)
        let w = try #require(diagnostics(d, .badLabel, app: "/web").first)
        #expect(w.level == .warning)
        #expect(w.message.contains("HAPROXY_0_VHOST ignored"))
    }

    @Test func commandAndUnknownChecksAreIgnored() throws {
        let command = MarathonHealthCheck(proto: .command, portIndex: 0)
        let other = MarathonHealthCheck(proto: .other, portIndex: 0)
        let (s, _) = try onlyService(makeApp("/web", healthChecks: [command, other]))
        #expect(s.healthCheck == nil)
        #expect(s.mode == .tcp)
    }

    @Test func healthCheckChoicePerPort() throws {
        let forPort1 = MarathonHealthCheck(proto: .tcp, portIndex: 1)
        let app = makeApp("/web", ports: [10000, 10001], healthChecks: [forPort1])
        let d = build([app])
        #expect(d.services.map { $0.healthCheck?.kind } == [nil, .tcp])
        // A check with an explicit port applies to every port (marathon-lb), with that port.
        let explicit = MarathonHealthCheck(proto: .http, path: "/", portIndex: nil, port: 8081)
        let d2 = build([makeApp("/web", ports: [10000, 10001], healthChecks: [explicit, forPort1])])
        #expect(d2.services.map { $0.healthCheck?.port?.value } == [8081, 8081])
        #expect(d2.services.map(\.mode) == [.http, .http])
    }

    @Test(arguments: [
        (MarathonHealthCheck(proto: .http, path: "/a b", portIndex: 0), "healthChecks.path"),
        (MarathonHealthCheck(proto: .http, path: "/", portIndex: 0, intervalSeconds: 0), "healthChecks.intervalSeconds"),
        (MarathonHealthCheck(proto: .tcp, portIndex: 0, timeoutSeconds: 86_401), "healthChecks.timeoutSeconds"),
        (MarathonHealthCheck(proto: .tcp, portIndex: 0, maxConsecutiveFailures: -1), "healthChecks.maxConsecutiveFailures"),
        (MarathonHealthCheck(proto: .tcp, portIndex: 0, maxConsecutiveFailures: Int.max), "healthChecks.maxConsecutiveFailures"),
        (MarathonHealthCheck(proto: .tcp, portIndex: 0, intervalSeconds: Int.min), "healthChecks.intervalSeconds"),
        (MarathonHealthCheck(proto: .tcp, portIndex: 0, port: 70000), "healthChecks.port"),
    ])
    func invalidHealthCheckSkipsTheApp(_ check: MarathonHealthCheck, _ field: String) throws {
        let d = build([makeApp("/bad", healthChecks: [check]), makeApp("/good", ports: [10001])])
        #expect(d.services.map(\.appId) == ["/good"])
        let e = try #require(diagnostics(d, .badLabel, app: "/bad").first)
        #expect(e.level == .error)
        #expect(e.message.contains(field), "\(e.message)")
    }

    // MARK: - Networking

    @Test func ipPerTaskUsesTheTaskIPAndContainerPorts() throws {
        var app = makeApp("/ipt", ports: [10000, 10001], tasks: [
            makeTask("ipt.1", app: "/ipt", host: "agent1", ports: [31000, 31001], ips: ["10.1.0.5"]),
            makeTask("ipt.2", app: "/ipt", host: "agent1", ports: [], ips: ["not-an-ip", "FE80::0:7"]),
            makeTask("ipt.3", app: "/ipt", host: "agent2", ports: [31002, 31003], ips: []),
        ])
        app.networking = .ipPerTask
        app.containerPorts = [8080, 9090]
        #expect(DesiredStateBuilder.hostsToResolve([app]).isEmpty, "IP-per-task needs no agent resolution")
        let d = build([app])
        #expect(d.services.map(\.backend.text) == ["ipt_10000", "ipt_10001"])
        #expect(d.services[0].servers == [server("ipt.1", "10.1.0.5", 8080), server("ipt.2", "fe80::7", 8080)])
        #expect(d.services[1].servers.map(\.endpoint) == [ep("10.1.0.5", 9090), ep("fe80::7", 9090)])
        let skipped = diagnostics(d, .skippedTask, app: "/ipt")
        #expect(skipped.count == 2, "one per port of ipt.3")
        #expect(skipped.allSatisfy { $0.message.contains("ipt.3") && $0.message.contains("no usable IP address") })
    }

    @Test func ipPerTaskWithoutContainerPortsUsesTaskPorts() throws {
        var app = makeApp("/ipt", tasks: [makeTask("ipt.1", app: "/ipt", ports: [4000], ips: ["10.1.0.5"])])
        app.networking = .ipPerTask
        #expect(build([app]).services.first?.servers.map(\.endpoint) == [ep("10.1.0.5", 4000)])
    }

    @Test func hostNetworkingResolvesAgentNames() throws {
        let app = makeApp("/web", ports: [10000, 10001], tasks: [
            makeTask("w.1", app: "/web", host: "10.0.0.9", ports: [31000, 31001]),
            makeTask("w.2", app: "/web", host: "agent1", ports: [31002, 31003]),
            makeTask("w.3", app: "/web", host: "agent2.example", ports: [31004, 31005]),
            makeTask("w.4", app: "/web", host: "", ports: [31006, 31007]),
            makeTask("w.5", app: "/web", host: "10.0.0.9", ports: [31008]),
            makeTask("w.6", app: "/web", host: "10.0.0.9", ports: [0, 70000]),
            makeTask("w.7", app: "/web", host: "2001:db8::1", ports: [31010, 31011]),
        ])
        #expect(DesiredStateBuilder.hostsToResolve([app]) == ["agent1", "agent2.example"])
        let d = build([app], Self.every, BuildContext(resolvedHosts: ["agent1": ip("10.0.0.7")]))
        #expect(d.services[0].servers == [server("w.1", "10.0.0.9", 31000), server("w.2", "10.0.0.7", 31002),
                                          server("w.5", "10.0.0.9", 31008), server("w.7", "2001:db8::1", 31010)])
        #expect(d.services[1].servers.map(\.taskId) == ["w.1", "w.2", "w.7"])
        let unresolvable = diagnostics(d, .unresolvable, app: "/web")
        #expect(unresolvable.count == 2)
        #expect(unresolvable.allSatisfy { $0.message.contains("w.3") && $0.message.contains(#""agent2.example""#) })
        #expect(unresolvable.allSatisfy { $0.level == .warning })
        let skipped = diagnostics(d, .skippedTask, app: "/web").map(\.message)
        #expect(skipped.filter { $0.contains("w.4") && $0.contains("no host") }.count == 2)
        #expect(skipped.contains { $0.contains("w.5") && $0.contains("port index 1") })
        #expect(skipped.filter { $0.contains("w.6") && $0.contains("no valid port") }.count == 2)
    }

    @Test(arguments: ["agent1", "agent2.example", "ip-10-0-1-7.ec2.internal", "mesos_agent.local", "agent.example.", "a",
                      String(repeating: "a", count: 63) + ".example"])
    func plausibleHostNamesAreLookedUp(_ host: String) {
        #expect(DesiredStateBuilder.isHostName(host))
        #expect(DesiredStateBuilder.hostsToResolve([makeApp("/web", tasks: [makeTask("w.1", app: "/web", host: host)])]) == [host])
    }

    @Test(arguments: ["", ".", "agent one", "10.0.0.1; shutdown sessions", "agent\nset server x/s1 state maint", "$(touch x)", "`id`",
                      "a|b", "-oProxyCommand=x", "agent..example", ".agent", "agent#1", "ägent", "agent/1", "a:b",
                      String(repeating: "a", count: 64) + ".example", String(repeating: "a.", count: 127) + "a"])
    func anythingElseIsSkippedWithoutALookup(_ host: String) {
        #expect(!DesiredStateBuilder.isHostName(host))
        let app = makeApp("/web", tasks: [makeTask("w.1", app: "/web", host: host)])
        #expect(DesiredStateBuilder.hostsToResolve([app]).isEmpty)
        let d = build([app])
        #expect(d.services[0].servers.isEmpty)
        #expect(d.diagnostics.contains { $0.appId == "/web" && $0.message.contains("w.1") && !$0.message.contains("\n") })
    }

    @Test func twoTasksOnOneAddressKeepTheFirst() throws {
        let app = makeApp("/web", tasks: [makeTask("b", app: "/web", ports: [31000]), makeTask("a", app: "/web", ports: [31000])])
        let d = build([app])
        #expect(d.services.first?.servers == [server("b", "10.0.0.1", 31000)])
        #expect(diagnostics(d, .skippedTask).first?.message.contains("task a has the same address 10.0.0.1:31000") == true)
    }

    @Test func serversAreSortedByTaskId() throws {
        let app = makeApp("/web", tasks: (1...5).reversed().map { makeTask("web.\($0)", app: "/web", ports: [31000 + $0]) })
        #expect(build([app]).services.first?.servers.map(\.taskId) == ["web.1", "web.2", "web.3", "web.4", "web.5"])
    }

    // MARK: - Names and ports

    @Test func serviceNamesAndOrder() throws {
        let d = build([makeApp("/z", ports: [10001]), makeApp("/group/app", ports: [10002, 10003]), makeApp("/a.b-c", ports: [10004])])
        #expect(d.services.map(\.backend.text) == ["a.b-c_10004", "group_app_10002", "group_app_10003", "z_10001"])
        #expect(d.services.map(\.portIndex) == [0, 0, 1, 0])
        #expect(d.service(named: pname("z_10001"))?.appId == "/z")
        #expect(try DesiredStateBuilder.backendName(appId: "/x/y", servicePort: 80).text == "x_y_80")
        #expect(throws: ValidationError.self) { try DesiredStateBuilder.backendName(appId: "/a b", servicePort: 80) }
    }

    @Test func appIdThatCannotNameABackendIsSkipped() throws {
        let d = build([makeApp("/ok", ports: [10001]), makeApp("/bad;id", ports: [10002]), makeApp("/bäd", ports: [10003])])
        #expect(d.services.map(\.appId) == ["/ok"])
        #expect(diagnostics(d, .badLabel).map(\.appId) == ["/bad;id", "/bäd"])
    }

    @Test func portLabelReplacesTheServicePort() throws {
        let (s, _) = try onlyService(makeApp("/web", ports: [10000], labels: ["HAPROXY_0_PORT": "8080"]))
        #expect(s.servicePort.value == 8080)
        #expect(s.backend.text == "web_8080")
    }

    @Test func portIndexWithoutServicePortIsReported() throws {
        let d = build([makeApp("/web", ports: [0, 10001]), makeApp("/fixed", ports: [0], labels: ["HAPROXY_0_PORT": "9000"])])
        #expect(d.services.map(\.backend.text) == ["fixed_9000", "web_10001"])
        let w = try #require(diagnostics(d, .badApp, app: "/web").first)
        #expect(w.message.contains("port index 0 has no service port (0)"))
        #expect(w.message.contains("HAPROXY_0_PORT"))
    }

    @Test func appWithoutServicePortsHasNoService() {
        let d = build([makeApp("/noports", ports: [], tasks: [makeTask("n.1", app: "/noports")])])
        #expect(d.services.isEmpty)
    }

    // MARK: - Invalid labels

    @Test func oneInvalidLabelSkipsTheWholeApp() throws {
        let apps = [
            makeApp("/good", ports: [10001], labels: ["HAPROXY_0_VHOST": "good.example.com"]),
            makeApp("/bad", ports: [10002, 10003], labels: ["HAPROXY_0_VHOST": "bad.example.com", "HAPROXY_1_BALANCE": "bogus"]),
            makeApp("/alsogood", ports: [10004], labels: ["HAPROXY_5_PORT": "not used: no port index 5"]),
        ]
        let d = build(apps)
        #expect(d.services.map(\.appId) == ["/alsogood", "/good"])
        let e = try #require(diagnostics(d, .badLabel, app: "/bad").first)
        #expect(d.diagnostics.filter { $0.appId == "/bad" }.count == 1)
        #expect(e.level == .error)
        #expect(e.message.hasPrefix("app skipped: invalid HAPROXY_1_BALANCE=\"bogus\": balance must be one of"))
        #expect(e.description.hasPrefix("/bad: app skipped"))
    }

    @Test func invalidLabelIsReportedEvenWhenThePortIsNotInTheGroup() throws {
        let d = build([makeApp("/bad", labels: ["HAPROXY_GROUP": "internal", "HAPROXY_0_PORT": "x"])], RoutingOptions(groups: ["external"]))
        #expect(d.services.isEmpty)
        #expect(diagnostics(d, .badLabel, app: "/bad").count == 1)
    }

    // MARK: - minimumSlots

    @Test(arguments: [
        // (instances, maximumOverCapacity, --min-slots, expected)
        // peak = ceil(instances × (1 + over)); slots = max(minSlots, peak + max(2, peak / 4)).
        (3, 1.0, 8, 8), (10, 0.5, 8, 18), (10, 0.0, 8, 12), (10, 1.0, 1, 25), (0, 1.0, 8, 8), (0, 1.0, 0, 0),
        (3, 0.5, 1, 7), (100, 0.1, 8, 137), (1000, 0.1, 8, 1375), (7, 0.3, 1, 12), (5, -1.0, 1, 7),
        (5, .infinity, 1, 12), (5, .nan, 1, 12), (-2, 1.0, 1, 1), (1_000_000, 1.0, 8, 100_000),
        (Int.max, 1.0, 8, 100_000), (5, 1e300, 8, 100_000),
    ] as [(Int, Double, Int, Int)])
    func minimumSlots(_ instances: Int, _ overCapacity: Double, _ minSlots: Int, _ expected: Int) throws {
        let app = makeApp("/web", instances: instances, maximumOverCapacity: overCapacity)
        let (s, _) = try onlyService(app, RoutingOptions(groups: ["*"], minSlots: minSlots))
        #expect(s.minimumSlots == expected)
    }

    // MARK: - Conflicts

    @Test func servicePortConflictOldestConfigWins() throws {
        let d = build([
            makeApp("/a", ports: [10000], configChangedAt: "2020-01-01T00:00:00.000Z"),
            makeApp("/b", ports: [10000], configChangedAt: "2019-01-01T00:00:00.000Z"),
        ])
        #expect(d.services.map(\.appId) == ["/b"])
        let c = try #require(diagnostics(d, .conflict, app: "/a").first)
        #expect(c.level == .warning)
        #expect(c.message.contains("service port 10000 is also claimed by /b, which keeps it"))
    }

    @Test func servicePortConflictIncumbentWins() throws {
        let apps = [
            makeApp("/a", ports: [10000], configChangedAt: "2020-01-01T00:00:00.000Z"),
            makeApp("/b", ports: [10000], configChangedAt: "2019-01-01T00:00:00.000Z"),
        ]
        let d = build(apps, Self.every, BuildContext(incumbentBackends: [pname("a_10000")]))
        #expect(d.services.map(\.appId) == ["/a"])
        #expect(diagnostics(d, .conflict, app: "/b").count == 1)
        // Order of the input does not matter.
        #expect(build(apps.reversed(), Self.every, BuildContext(incumbentBackends: [pname("a_10000")])).services.map(\.appId) == ["/a"])
    }

    @Test func servicePortConflictSameAgeSmallerIdWins() throws {
        let t = "2020-01-01T00:00:00.000Z"
        let d = build([makeApp("/b", configChangedAt: t), makeApp("/c", configChangedAt: t), makeApp("/a", configChangedAt: t)])
        #expect(d.services.map(\.appId) == ["/a"])
        #expect(diagnostics(d, .conflict).compactMap(\.appId).sorted() == ["/b", "/c"])
        // Without any date, the smaller id wins too; an app with a date beats one without.
        #expect(build([makeApp("/b"), makeApp("/a")]).services.map(\.appId) == ["/a"])
        #expect(build([makeApp("/a"), makeApp("/b", configChangedAt: t)]).services.map(\.appId) == ["/b"])
    }

    @Test func portLabelConflictsWithAnotherAppsServicePort() throws {
        let d = build([
            makeApp("/a", ports: [10000], labels: ["HAPROXY_0_PORT": "10001"], configChangedAt: "2019"),
            makeApp("/b", ports: [10001], configChangedAt: "2020"),
        ])
        #expect(d.services.map(\.backend.text) == ["a_10001"])
    }

    @Test func reservedPortsAreRefused() throws {
        let options = RoutingOptions(groups: ["*"], reservedPorts: [80, 9091])
        let d = build([makeApp("/a", ports: [80]), makeApp("/b", ports: [10000, 9091])], options)
        #expect(d.services.map(\.backend.text) == ["b_10000"])
        let errors = diagnostics(d, .conflict)
        #expect(errors.count == 2)
        #expect(errors.allSatisfy { $0.level == .error && $0.message.contains("shared frontends") })
    }

    @Test func vhostConflictOlderKeepsItOthersKeepTheirService() throws {
        let d = build([
            makeApp("/new", ports: [10001], labels: ["HAPROXY_0_VHOST": "x.com, y.com"], configChangedAt: "2021"),
            makeApp("/old", ports: [10002], labels: ["HAPROXY_0_VHOST": "x.com"], configChangedAt: "2020"),
        ])
        #expect(d.services.map(\.backend.text) == ["new_10001", "old_10002"])
        #expect(d.services[0].vhosts.map(\.text) == ["y.com"])
        #expect(d.services[1].vhosts.map(\.text) == ["x.com"])
        let c = try #require(diagnostics(d, .conflict, app: "/new").first)
        #expect(c.message == "vhost x.com is already routed to /old; removed from new_10001")
    }

    @Test func vhostConflictHigherWeightWins() throws {
        let d = build([
            makeApp("/new", ports: [10001], labels: ["HAPROXY_0_VHOST": "x.com", "HAPROXY_0_BACKEND_WEIGHT": "5"], configChangedAt: "2021"),
            makeApp("/old", ports: [10002], labels: ["HAPROXY_0_VHOST": "x.com"], configChangedAt: "2020"),
        ], Self.every, BuildContext(incumbentBackends: [pname("old_10002")]))
        #expect(d.services.map { $0.vhosts.map(\.text) } == [["x.com"], []])
        #expect(diagnostics(d, .conflict, app: "/old").count == 1)
    }

    @Test func vhostWithPathConflicts() throws {
        let d = build([
            makeApp("/a", ports: [10001], labels: ["HAPROXY_0_VHOST": "x.com", "HAPROXY_0_PATH": "/api"], configChangedAt: "2020"),
            makeApp("/b", ports: [10002], labels: ["HAPROXY_0_VHOST": "x.com", "HAPROXY_0_PATH": "/api"], configChangedAt: "2019"),
            makeApp("/c", ports: [10003], labels: ["HAPROXY_0_VHOST": "x.com", "HAPROXY_0_PATH": "/web"], configChangedAt: "2018"),
            makeApp("/d", ports: [10004], labels: ["HAPROXY_0_VHOST": "x.com"], configChangedAt: "2021"),
        ])
        #expect(d.services.map { $0.vhosts.map(\.text) } == [[], ["x.com"], ["x.com"], ["x.com"]],
                "same vhost+path: the older keeps it; other paths and the plain vhost do not conflict")
        #expect(diagnostics(d, .conflict).map(\.appId) == ["/a"])
        #expect(diagnostics(d, .conflict).first?.message.contains("x.com/api") == true)
    }

    // MARK: - Duplicates and the rest

    @Test func duplicateAppIdsUseTheFirst() throws {
        let d = build([makeApp("/dup", ports: [10000]), makeApp("/other", ports: [10005]), makeApp("/dup", ports: [10001])])
        #expect(d.services.map(\.backend.text) == ["dup_10000", "other_10005"])
        let w = try #require(diagnostics(d, .badApp, app: "/dup").first)
        #expect(w.level == .warning)
        #expect(w.message.contains("duplicate app id"))
    }

    @Test func serviceCarriesTheAppsLabelsAndAge() throws {
        let labels = ["HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "a.com", "other": "x"]
        let (s, _) = try onlyService(makeApp("/web", labels: labels, configChangedAt: "2020"))
        #expect(s.appLabels == labels)
        #expect(s.configChangedAt == "2020")
        #expect(s.labels.groups == ["external"])
    }

    @Test func buildIsIndependentOfAppOrder() {
        let apps = [
            makeApp("/a", ports: [10000], labels: ["HAPROXY_0_VHOST": "x.com"], tasks: [makeTask("a.1", app: "/a")]),
            makeApp("/b", ports: [10000], tasks: [makeTask("b.1", app: "/b")]),
            makeApp("/c", ports: [10001], labels: ["HAPROXY_0_VHOST": "x.com"], tasks: [makeTask("c.1", app: "/c", ports: [31001])]),
            makeApp("/d", ports: [10002], labels: ["HAPROXY_0_PORT": "zz"]),
        ]
        let first = build(apps)
        var rng = SplitMix64(seed: 7)
        for _ in 0..<20 {
            let shuffled = apps.shuffled(using: &rng)
            let d = build(shuffled)
            #expect(d.services == first.services)
            #expect(Set(d.diagnostics.map(\.description)) == Set(first.diagnostics.map(\.description)))
        }
    }

    @Test func fixturesBuild() throws {
        let (apps, _) = try MarathonDecoding.apps(from: Fixture.data("zdd_apps.json"))
        let d = build(apps, RoutingOptions(groups: ["external"], minSlots: 4))
        // Both colours share HAPROXY_DEPLOYMENT_GROUP=nginx: one service, as marathon-lb's
        // test_zdd_app renders it (DeploymentGroupTests has the details).
        #expect(d.services.map(\.backend.text) == ["nginx_10000"])
        let s = d.services[0]
        #expect(s.mode == .http)
        #expect(s.servers.map(\.endpoint) == [ep("10.0.1.147", 25724), ep("10.0.6.25", 31184), ep("10.0.6.25", 16916), ep("10.0.6.25", 23336)])
        #expect(d.diagnostics.isEmpty, "\(d.diagnostics)")
    }
}
