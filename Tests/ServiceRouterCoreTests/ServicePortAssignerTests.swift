import Testing
@testable import ServiceRouterCore

/// Service ports for IP-per-task apps without any (marathon-lb's `ServicePortAssigner`). The
/// expected ports were computed with marathon-lb's algorithm (Python's hashlib), so an operator
/// moving from marathon-lb keeps the same ports.
@Suite struct ServicePortAssignerTests {
    @Test func sha1KnownAnswers() {
        func hex(_ s: String) -> String { SHA1.hash(Array(s.utf8)).map { String($0, radix: 16).leftPadded(2) }.joined() }
        #expect(hex("abc") == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(hex("") == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        #expect(hex(String(repeating: "a", count: 100)) == "7f9000257a4918d7072655ea468540cdcbd42e0c")
    }

    @Test func portsAreMarathonLBs() {
        var a = ServicePortAssigner(range: 10000...10020)
        #expect([500, 501, 502].map { a.port(appId: "/app-1", containerPort: $0) } == [10007, 10000, 10008])
        #expect([500, 501, 502].map { a.port(appId: "/app-2", containerPort: $0) } == [10001, 10020, 10016])
        // The same key within a pass: the same port.
        #expect(a.port(appId: "/app-1", containerPort: 501) == 10000)
        var b = ServicePortAssigner(range: 20000...29999)
        #expect(b.port(appId: "/ipt/web", containerPort: 8080) == 22100)
        #expect(b.port(appId: "/ipt/web", containerPort: 9090) == 29715)
    }

    @Test func aClashDependsOnTheOrder() {
        // /app-2 first: its second port (10008) is free; /app-1's third port then clashes with it.
        var a = ServicePortAssigner(range: 10000...10020)
        #expect([500, 501, 502].map { a.port(appId: "/app-2", containerPort: $0) } == [10001, 10008, 10016])
        #expect([500, 501, 502].map { a.port(appId: "/app-1", containerPort: $0) } == [10007, 10000, 10010])
    }

    @Test func anExhaustedRangeGivesNoPort() {
        var a = ServicePortAssigner(range: 10000...10020)
        let ports = (500..<524).map { a.port(appId: "/big", containerPort: $0) }
        #expect(ports == [10012, 10009, 10019, 10007, 10008, 10004, 10014, 10015, 10000, 10016, 10010, 10018, 10020, 10013,
                          10003, 10005, 10001, 10002, 10006, 10017, 10011, nil, nil, nil])
    }

    func ipApp(_ id: String, servicePorts: [Int], containerPorts: [Int], labels: [String: String] = [:]) -> MarathonApp {
        MarathonApp(id: id, labels: labels, instances: 1, servicePorts: servicePorts, containerPorts: containerPorts, networking: .ipPerTask,
                    tasks: [MarathonTask(id: "\(id.dropFirst()).1", appId: id, host: "agent1", ipAddresses: ["10.9.0.5"])])
    }

    @Test func buildGivesIPPerTaskAppsWithoutServicePortsTheirPorts() throws {
        let options = RoutingOptions(groups: ["*"], minSlots: 1, ipPerTaskServicePorts: 20000...29999)
        let apps = [
            ipApp("/ipt/web", servicePorts: [], containerPorts: [8080, 9090]),          // pre-1.5 ipAddress.discovery
            ipApp("/ipt/mapped", servicePorts: [0], containerPorts: [8080]),          // portMappings without servicePort
            ipApp("/ipt/given", servicePorts: [10500], containerPorts: [8080]),       // Marathon gave one: kept
            ipApp("/ipt/label", servicePorts: [], containerPorts: [8080], labels: ["HAPROXY_0_PORT": "10600"]),
        ]
        let d = DesiredStateBuilder.build(apps: apps, options: options)
        let ports = Dictionary(d.services.map { ("\($0.appId)#\($0.portIndex)", $0.servicePort.value) }) { a, _ in a }
        #expect(ports["/ipt/web#0"] == 22100)
        #expect(ports["/ipt/web#1"] == 29715)
        #expect(ports["/ipt/given#0"] == 10500)
        #expect(ports["/ipt/label#0"] == 10600, "HAPROXY_{n}_PORT still wins")
        #expect(ports["/ipt/mapped#0"] != nil)
        #expect((20000...29999).contains(ports["/ipt/mapped#0"] ?? 0))
        let web = try #require(d.services.first { $0.appId == "/ipt/web" && $0.portIndex == 1 })
        #expect(web.servers.map(\.endpoint) == [Endpoint(ip: try IPAddress("10.9.0.5"), port: try Port(9090))])
        // Deterministic: the same answer in any order, and in another instance.
        #expect(DesiredStateBuilder.build(apps: apps.reversed(), options: options).services == d.services)
        // Without the range, such apps have no service: as before.
        let without = DesiredStateBuilder.build(apps: apps, options: RoutingOptions(groups: ["*"], minSlots: 1))
        #expect(without.services.map(\.appId) == ["/ipt/given"])
    }

    @Test func anExhaustedRangeIsAWarningForThatAppOnly() throws {
        let options = RoutingOptions(groups: ["*"], minSlots: 1, ipPerTaskServicePorts: 20000...20001)
        let apps = [ipApp("/a", servicePorts: [], containerPorts: [1, 2, 3]), ipApp("/b", servicePorts: [10500], containerPorts: [80])]
        let d = DesiredStateBuilder.build(apps: apps, options: options)
        #expect(d.services.filter { $0.appId == "/a" }.count == 2)
        #expect(d.services.contains { $0.appId == "/b" })
        #expect(d.diagnostics.contains { $0.appId == "/a" && $0.message.contains("widen the range") })
    }
}

private extension String {
    func leftPadded(_ n: Int) -> String { String(repeating: "0", count: max(0, n - count)) + self }
}
