import Foundation
import ServiceRouterCore
import ServiceRouterIO
import Testing
@testable import MarathonSimulator

@Suite struct EventStreamTests {
    @Test func framingIsJettysCRLFWithAttachedFirstAndNoChunking() async throws {
        try await withSimulator { sim in
            let reader = try SSEReader(port: sim.port)
            #expect(await reader.read { $0.events.count >= 1 }, "closed=\(reader.closed) got=\(reader.text.debugDescription)")
            #expect(reader.head.hasPrefix("HTTP/1.1 200 OK\r\n"))
            let head = reader.head.lowercased()
            #expect(head.contains("content-type: text/event-stream"))
            #expect(head.contains("connection: close"))
            #expect(!head.contains("transfer-encoding"))
            #expect(!head.contains("content-length"))
            #expect(reader.body.hasPrefix("event: event_stream_attached\r\ndata: {\"remoteAddress\":\"127.0.0.1\",\"eventType\":\"event_stream_attached\",\"timestamp\":\""))
            #expect(reader.body.hasSuffix("\"}\r\n\r\n"))

            try await sim.createApp(AppSpec(id: "/evt", instances: 1))
            #expect(await reader.read { $0.eventTypes().contains("deployment_success") })
            let types = reader.eventTypes()
            #expect(Array(types.prefix(4)) == ["event_stream_attached", "api_post_event", "group_change_success", "deployment_info"])
            for t in ["status_update_event", "instance_changed_event", "deployment_step_success", "deployment_success"] {
                #expect(types.contains(t))
            }
            // Every line ends in CRLF: no bare LF anywhere.
            let body = Array(reader.body.utf8)
            for (i, b) in body.enumerated() where b == 0x0A { #expect(i > 0 && body[i - 1] == 0x0D) }
            let statuses = reader.events.filter { $0.type == "status_update_event" }.compactMap { try? JSONValue.parse($0.data) }
            #expect(statuses.compactMap { $0["taskStatus"]?.stringValue } == ["TASK_STAGING", "TASK_RUNNING"])
            let running = try #require(statuses.last?.objectValue)
            #expect(running.keys == ["slaveId", "taskId", "taskStatus", "message", "appId", "host", "ipAddresses", "ports",
                                     "version", "eventType", "timestamp"])
            let task = await sim.tasks("/evt")[0]
            #expect(running["ports"] == .ints(task.ports))
            #expect(running["appId"] == "/evt")
        }
    }

    @Test func heartbeatIsABareCRLF() async throws {
        try await withSimulator(.init(heartbeatInterval: 0.2)) { sim in
            let reader = try SSEReader(port: sim.port)
            #expect(await reader.read(timeout: 20) { $0.body.hasSuffix("\r\n\r\n\r\n\r\n") }, "closed=\(reader.closed) got=\(reader.text.debugDescription)")
            #expect(reader.eventTypes() == ["event_stream_attached"])
            // After the attached event only bare CRLFs: no `:` comment lines, no data.
            let afterAttached = reader.body.components(separatedBy: "}\r\n\r\n").last ?? ""
            #expect(!afterAttached.isEmpty)
            #expect(afterAttached.replacingOccurrences(of: "\r\n", with: "").isEmpty)
        }
    }

    @Test func noHeartbeatWhenDisabled() async throws {
        try await withSimulator { sim in
            let reader = try SSEReader(port: sim.port)
            #expect(await reader.read { $0.events.count == 1 })
            let before = reader.bytes.count
            await reader.read(timeout: 0.5) { _ in false }
            #expect(reader.bytes.count == before)
        }
    }

    @Test func eventTypeFiltersAreRepeatable() async throws {
        try await withSimulator { sim in
            let reader = try SSEReader(port: sim.port, query: "?event_type=status_update_event&event_type=health_status_changed_event")
            let all = try SSEReader(port: sim.port)
            #expect(await all.read { $0.events.count >= 1 })
            // A filter that does not name event_stream_attached hides it, as in Marathon.
            try await sim.createApp(AppSpec(id: "/filtered", instances: 1, healthChecks: [.init()]))
            #expect(await reader.read { $0.eventTypes().contains("health_status_changed_event") })
            #expect(Set(reader.eventTypes()) == ["status_update_event", "health_status_changed_event"])
            let health = try #require(reader.events.first { $0.type == "health_status_changed_event" })
            let json = try JSONValue.parse(health.data)
            let task = await sim.tasks("/filtered")[0]
            #expect(json.objectValue?.keys == ["appId", "instanceId", "version", "alive", "eventType", "timestamp"])
            #expect(json["instanceId"]?.stringValue == task.instanceId)
            #expect(json["alive"] == true)
        }
    }

    @Test func wrongOrMissingAcceptIs405() async throws {
        try await withSimulator { sim in
            for accept in [nil, "application/json", "text/event-stream, application/json", "*/*"] as [String?] {
                let headers = accept.map { [("Accept", $0)] } ?? []
                let r = try await RawHTTP.get(port: sim.port, "/v2/events", headers: headers)
                #expect(r.status == 405, "Accept: \(accept ?? "none")")
            }
        }
    }

    @Test func slowConsumerMoreThan1024EventsBehindIsDisconnected() async throws {
        try await withSimulator(.init(heartbeatInterval: nil, eventBacklogLimit: 1024)) { sim in
            let reader = try SSEReader(port: sim.port)
            #expect(await reader.read { $0.events.count == 1 })
            #expect(sim.eventStreamCount == 1)
            // The reader stops reading; socket buffers fill (a few MB), then the backlog grows.
            let payload = JSONValue.string(String(repeating: "x", count: 4000))
            for i in 0..<6000 {
                sim.bus.publish("status_update_event") { ["n": .int(i), "pad": payload] }
                if sim.eventStreamCount == 0 { break }
            }
            try await sim.waitUntil(timeout: 5, "the slow consumer to be dropped") { $0.eventStreamCount == 0 }
            #expect(await reader.readUntilClosed(timeout: 20))
        }
    }

    @Test func dropClosesEveryStream() async throws {
        try await withSimulator { sim in
            let a = try SSEReader(port: sim.port)
            let b = try SSEReader(port: sim.port)
            #expect(await a.read { $0.events.count >= 1 })
            #expect(await b.read { $0.events.count >= 1 })
            sim.dropEventStreams()
            #expect(await a.readUntilClosed())
            #expect(await b.readUntilClosed())
            #expect(sim.eventStreamCount == 0)
        }
    }

    @Test func silentStreamStaysOpenWithoutEventsOrHeartbeats() async throws {
        try await withSimulator(.init(heartbeatInterval: 0.1)) { sim in
            let reader = try SSEReader(port: sim.port)
            #expect(await reader.read { $0.events.count == 1 })
            sim.silenceEventStreams()
            await reader.readUntilQuiet()
            let before = reader.bytes.count
            try await sim.createApp(AppSpec(id: "/quiet", instances: 1))
            await reader.read(timeout: 0.6) { _ in false }
            #expect(reader.bytes.count == before)
            #expect(!reader.closed)
            sim.silenceEventStreams(false)
            try await sim.scale("/quiet", instances: 2)
            #expect(await reader.read { $0.eventTypes().contains("status_update_event") })
        }
    }

    @Test func cutStreamSendsHalfAnEventThenCloses() async throws {
        try await withSimulator { sim in
            let reader = try SSEReader(port: sim.port)
            #expect(await reader.read { $0.events.count == 1 })
            let before = reader.body
            sim.cutEventStreamsMidEvent()
            try await sim.createApp(AppSpec(id: "/cut", instances: 1))
            #expect(await reader.readUntilClosed())
            let tail = String(reader.body.dropFirst(before.count))
            #expect(tail.hasPrefix("event: api_post_event\r\ndata: {"))
            #expect(!tail.hasSuffix("\r\n\r\n"))
            #expect(reader.events.count == 1)
        }
    }

    @Test func streamsAreClosedWhenTheSimulatorStops() async throws {
        let sim = try await MarathonSimulator.start(.init(heartbeatInterval: nil))
        let reader = try SSEReader(port: sim.port)
        #expect(await reader.read { $0.events.count == 1 })
        sim.stop()
        #expect(await reader.readUntilClosed(timeout: 20))
    }
}
