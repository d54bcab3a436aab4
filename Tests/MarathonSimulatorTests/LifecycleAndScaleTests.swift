import Foundation
import ServiceRouterCore
import ServiceRouterIO
import Testing
@testable import MarathonSimulator

/// Ports with a socket in LISTEN state on this machine (from /proc/net/tcp).
func listeningPorts() -> Set<Int> {
    // /proc files report size 0: read to the end, not a stat-sized buffer.
    guard let data = FileHandle(forReadingAtPath: "/proc/net/tcp")?.readDataToEndOfFile() else { return [] }
    let text = String(decoding: data, as: UTF8.self)
    var out = Set<Int>()
    for line in text.split(separator: "\n").dropFirst() {
        let fields = line.split(separator: " ")
        guard fields.count > 3, fields[3] == "0A", let colon = fields[1].lastIndex(of: ":"),
              let port = Int(fields[1][fields[1].index(after: colon)...], radix: 16) else { continue }
        out.insert(port)
    }
    return out
}

func residentMegabytes() -> Double {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
          let kb = Double(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
    return kb / 1024
}

// Serialized: the 10,000-task test cycles through the whole host port range, which would make
// "this port is closed now" checks of the other test racy.
@Suite(.serialized) struct LifecycleAndScaleTests {
    @Test func stopLeavesNoListenerAndNoConnection() async throws {
        let sim = try await MarathonSimulator.start(.init(heartbeatInterval: 0.1))
        try await sim.createApp(AppSpec(id: "/a", instances: 3))
        try await sim.createApp(AppSpec(id: "/b", instances: 2, network: .bridge, portMappings: [.init(containerPort: 80)],
                                        dockerImage: "nginx"))
        let taskPorts = await sim.allTasks().flatMap(\.listenPorts)
        #expect(taskPorts.count == 5)
        let ours = Set(taskPorts + [sim.port])
        #expect(ours.isSubset(of: listeningPorts()))
        let reader = try SSEReader(port: sim.port)
        #expect(await reader.read { $0.events.count == 1 })
        // An idle keep-alive connection to a task and one to the REST API.
        let taskConn = try Connection.tcp(host: "127.0.0.1", port: taskPorts[0])
        try taskConn.write("GET / HTTP/1.1\r\n\r\n")
        _ = try taskConn.read(timeout: 2)
        let restConn = try Connection.tcp(host: "127.0.0.1", port: sim.port)
        try restConn.write("GET /ping HTTP/1.1\r\n\r\n")
        _ = try restConn.read(timeout: 2)

        let started = Monotonic.now()
        sim.stop()
        let took = Monotonic.now() - started
        print("stop() took \(String(format: "%.3f", took)) s")
        #expect(listeningPorts().isDisjoint(with: ours))
        for port in ours { #expect(RawHTTP.refuses(port: port)) }
        #expect(await reader.readUntilClosed(timeout: 20))
        #expect(try taskConn.readToEnd(timeout: 1).isEmpty)
        #expect(try restConn.readToEnd(timeout: 1).isEmpty)
        #expect(sim.taskListenerCount == 0)
        #expect(sim.eventStreamCount == 0)
        taskConn.close()
        restConn.close()
    }

    @Test func refusesToBindOutsideLoopback() async {
        await #expect(throws: SimulatorError.self) { _ = try await MarathonSimulator.start(.init(host: "0.0.0.0")) }
    }

    /// 1,000 apps × 10 tasks: measured and printed, not asserted (machines differ).
    @Test func thousandAppsTimesTenTasks() async throws {
        let rssBefore = residentMegabytes()
        let t0 = Monotonic.now()
        let sim = try await MarathonSimulator.start(.init(heartbeatInterval: nil))
        let specs = SimulatorCommand.demoApps(count: 1000, tasksPerApp: 10)
        try await sim.createApps(specs)
        let started = Monotonic.now() - t0
        let rssAfter = residentMegabytes()
        let tasks = await sim.allTasks()
        #expect(tasks.count == 10_000)
        #expect(sim.taskListenerCount == 10_000)
        #expect(tasks.allSatisfy { $0.state == .running && $0.healthy == true })
        #expect(sim.deploymentCount == 0)

        let t1 = Monotonic.now()
        let response = try await RawHTTP.request("GET", port: sim.port, "/v2/apps?embed=apps.tasks", timeout: 30)
        let fetched = Monotonic.now() - t1
        let decoded = try MarathonDecoding.apps(from: response.body)
        #expect(decoded.apps.count == 1000)
        #expect(decoded.apps.reduce(0) { $0 + $1.tasks.count } == 10_000)

        // A sample of tasks really answer.
        for t in stride(from: 0, to: tasks.count, by: 997).map({ tasks[$0] }) {
            #expect(try await RawHTTP.get(port: t.ports[0], "/").text == "\(t.id)\n")
        }
        let t2 = Monotonic.now()
        sim.stop()
        let stopped = Monotonic.now() - t2
        #expect(RawHTTP.refuses(port: tasks[0].ports[0]))
        #expect(RawHTTP.refuses(port: tasks[9_999].ports[0]))
        print(String(format: "scale: 1000 apps x 10 tasks started in %.2f s; RSS %.0f MB -> %.0f MB (+%.0f MB); "
                     + "GET /v2/apps?embed=apps.tasks %.2f s, %d bytes; stop %.2f s",
                     started, rssBefore, rssAfter, rssAfter - rssBefore, fetched, response.body.count, stopped))
    }
}
