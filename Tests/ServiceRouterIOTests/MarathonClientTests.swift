import Foundation
import Synchronization
import Testing
import ServiceRouterCore
@testable import ServiceRouterIO
import ServiceRouterTestSupport

private let credentials = BasicCredentials(user: "marathon", password: "hunter2:with:colons")
private let expectedAuthorization = "Basic " + Data("marathon:hunter2:with:colons".utf8).base64EncodedString()

private func makeClient(_ urls: [URL], streamTimeout: Double = 5, maxBackoff: Double = 30, random: Double = 0.5,
                        logger: Logger = .silent, time: any TimeSource = SystemTime(), healthyAfter: Double = 10) throws -> MarathonClient {
    MarathonClient(endpoints: try MarathonEndpoints(urls: urls, credentials: credentials),
                   http: HTTPClient(connectTimeout: 5), requestTimeout: 30, streamTimeout: streamTimeout,
                   maxBackoff: maxBackoff, healthyAfter: healthyAfter, logger: logger, time: time, random: { random })
}

/// A happening and when it was seen (monotonic seconds).
private struct Seen: Sendable {
    var happening: StreamHappening
    var at: Double
}

private final class Recorder: Sendable {
    private let items = Mutex<[Seen]>([])
    func add(_ h: StreamHappening) { items.withLock { $0.append(Seen(happening: h, at: Monotonic.now())) } }
    var all: [Seen] { items.withLock { $0 } }
}

/// Consumes `client.events()` until `done` holds or `timeout` passes, then cancels the consumer
/// (which must stop the client).
private func collect(_ client: MarathonClient, timeout: Double = 60,
                     until done: @escaping @Sendable ([StreamHappening]) -> Bool) async throws -> [Seen] {
    let recorder = Recorder()
    _ = try await withTimeLimit(timeout) {
        for await happening in client.events() {
            recorder.add(happening)
            if done(recorder.all.map(\.happening)) { return true }
        }
        return false
    }
    return recorder.all
}

private func count(_ list: [StreamHappening], _ predicate: (StreamHappening) -> Bool) -> Int {
    list.filter(predicate).count
}

private func isDisconnect(_ h: StreamHappening) -> Bool {
    if case .disconnected = h { return true }
    return false
}

private func isAttached(_ h: StreamHappening) -> Bool { h == .event(.streamAttached) }

private func disconnects(_ seen: [Seen]) -> [(reason: String, retryIn: Double)] {
    seen.compactMap {
        if case .disconnected(let reason, let retryIn) = $0.happening { return (reason, retryIn) }
        return nil
    }
}

private let attachedEvent = "event: event_stream_attached\r\ndata: {\"remoteAddress\":\"127.0.0.1\",\"eventType\":\"event_stream_attached\",\"timestamp\":\"2018-09-03T18:03:45.685Z\"}\r\n\r\n"

@Suite("MarathonClient")
struct MarathonClientTests {
    // MARK: credentials and endpoints

    @Test func credentialsFromTextAndFile() throws {
        #expect(try BasicCredentials(text: " user:pa:ss \n") == BasicCredentials(user: "user", password: "pa:ss"))
        #expect(try BasicCredentials(text: "user:") == BasicCredentials(user: "user", password: ""))
        #expect(throws: MarathonConfigurationError.self) { try BasicCredentials(text: "no-colon") }
        #expect(throws: MarathonConfigurationError.self) { try BasicCredentials(text: ":password-only") }

        let file = FileManager.default.temporaryDirectory.appendingPathComponent("creds-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data("  admin:t0p:secret  \r\nsecond line ignored\n".utf8).write(to: file)
        #expect(try BasicCredentials(file: file.path) == BasicCredentials(user: "admin", password: "t0p:secret"))
        try Data("topsecretwithoutcolon\n".utf8).write(to: file)
        #expect { try BasicCredentials(file: file.path) } throws: { !"\($0)".contains("topsecret") }
        #expect(throws: MarathonConfigurationError.self) { try BasicCredentials(file: "/nonexistent/creds") }
    }

    @Test func secretsNeverPrint() throws {
        let c = BasicCredentials(user: "admin", password: "hunter2")
        #expect(!"\(c)".contains("hunter2") && !String(reflecting: c).contains("hunter2"))
        let endpoints = try MarathonEndpoints(list: "http://admin:hunter2@m1:8080, https://m2:8443/marathon")
        #expect(endpoints.credentials == c)
        #expect(endpoints.urls.map(\.absoluteString) == ["http://m1:8080", "https://m2:8443/marathon"])
        #expect(!"\(endpoints)".contains("hunter2"))
        #expect(throws: MarathonConfigurationError.self) { try MarathonEndpoints(list: "ftp://m1") }
        #expect(throws: MarathonConfigurationError.self) { try MarathonEndpoints(list: " , ") }
    }

    // MARK: snapshots

    @Test func fetchAppsSendsAuthAcceptAndEmbed() async throws {
        let server = try TestHTTPServer { _, peer in peer.respond(200, "OK", body: #"{"apps":[]}"#) }
        defer { server.stop() }
        let (data, from) = try await makeClient([server.url]).fetchApps()
        #expect(String(decoding: data, as: UTF8.self) == #"{"apps":[]}"#)
        #expect(from == server.url("/v2/apps?embed=apps.tasks&embed=apps.deployments"))
        let seen = try #require(server.requests.first)
        #expect(seen.method == "GET")
        #expect(seen.target == "/v2/apps?embed=apps.tasks&embed=apps.deployments")
        #expect(seen.headers["Accept"] == "application/json")
        #expect(seen.headers["Authorization"] == expectedAuthorization)
    }

    @Test func fetchAppsFollowsRedirectsToTheLeaderWithCredentials() async throws {
        let leader = try TestHTTPServer { request, peer in
            if request.path == "/v2/apps" {
                peer.respond(302, "Found", headers: [("Location", "/leader/v2/apps?embed=apps.tasks")])
            } else {
                peer.respond(200, body: #"{"apps":[{"id":"/a"}]}"#)
            }
        }
        defer { leader.stop() }
        let standby = try TestHTTPServer { request, peer in
            peer.respond(307, "Temporary Redirect", headers: [("Location", leader.url(request.target).absoluteString)])
        }
        defer { standby.stop() }
        let (data, from) = try await makeClient([standby.url]).fetchApps()
        #expect(String(decoding: data, as: UTF8.self).contains("/a"))
        #expect(from == leader.url("/leader/v2/apps?embed=apps.tasks"))
        #expect(leader.requests.map(\.target) == ["/v2/apps?embed=apps.tasks&embed=apps.deployments",
                                                 "/leader/v2/apps?embed=apps.tasks"])
        #expect((standby.requests + leader.requests).allSatisfy { $0.headers["Authorization"] == expectedAuthorization })
    }

    @Test func fetchAppsTriesEachURLInTurn() async throws {
        let refused = try closedPort()
        let notLeader = try TestHTTPServer { _, peer in peer.respond(503, "Service Unavailable", body: #"{"message":"no leader"}"#) }
        defer { notLeader.stop() }
        let good = try TestHTTPServer { _, peer in peer.respond(200, body: "{}") }
        defer { good.stop() }
        let client = try makeClient([URL(string: "http://127.0.0.1:\(refused)")!, notLeader.url, good.url])
        let (_, from) = try await client.fetchApps()
        #expect(from.port == good.port)
        #expect(notLeader.requests.count == 1)
    }

    @Test func fetchAppsFailureNamesEveryURLAndStatusButNoSecret() async throws {
        let refused = try closedPort()
        let unauthorized = try TestHTTPServer { _, peer in peer.respond(401, "Unauthorized", body: "Invalid username or password.") }
        defer { unauthorized.stop() }
        let sink = MemoryLogSink()
        let client = try makeClient([URL(string: "http://127.0.0.1:\(refused)")!, unauthorized.url],
                                    logger: Logger(minimum: .debug, sink: sink))
        await #expect { try await client.fetchApps() } throws: { error in
            let text = "\(error)"
            return text.contains("127.0.0.1:\(refused)") && text.contains("HTTP 401 Unauthorized")
                && text.contains("127.0.0.1:\(unauthorized.port)/v2/apps") && !text.contains("hunter2")
        }
        #expect(sink.contains(.warning, "401"))
        #expect(!sink.all.contains { "\($0)".contains("hunter2") || "\($0)".contains(expectedAuthorization) })
    }

    @Test func redirectLoopsStopAfterThreeHops() async throws {
        let server = try TestHTTPServer { _, peer in peer.respond(307, headers: [("Location", "/v2/apps")]) }
        defer { server.stop() }
        await #expect { try await makeClient([server.url]).fetchApps() } throws: { "\($0)".contains("more than 3 redirects") }
        #expect(server.requests.count == 4)
    }

    @Test func basePathIsKept() async throws {
        let server = try TestHTTPServer { _, peer in peer.respond(200, body: "{}") }
        defer { server.stop() }
        _ = try await makeClient([server.url("/marathon/")]).fetchApps()
        #expect(server.requests.first?.path == "/marathon/v2/apps")
    }

    // MARK: event stream

    @Test func decodesMarathonFramingWithHeartbeatsAndSplitWrites() async throws {
        let server = try TestHTTPServer { _, peer in
            peer.startEventStream()
            peer.send(attachedEvent)
            peer.send("\r\n")  // Marathon's heartbeat: a bare blank line
            peer.send("event: status_update_event\r\ndata: {\"taskId\":\"web.1\",\"appId\":\"/web\",\"taskSt")
            peer.pause(0.02)
            peer.send("atus\":\"TASK_RUNNING\",\"host\":\"10.0.0.5\",\"ports\":[31001],\"eventType\":\"status_update_event\"}\r")
            peer.pause(0.02)
            peer.send("\n\r\n\r\n")
            // `event:` cut off from its `data:` by a blank line: dispatched as "message".
            peer.send("event: health_status_changed_event\r\n\r\ndata: {\"appId\":\"/web\",\"instanceId\":\"web.marathon-1\",\"alive\":true,\"eventType\":\"health_status_changed_event\"}\r\n\r\n")
            peer.hang()
        }
        defer { server.stop() }
        let seen = try await collect(try makeClient([server.url])) { $0.count >= 4 }
        let eventsURL = seen.first.flatMap { if case .connected(let u) = $0.happening { u } else { nil } }
        #expect(seen.map(\.happening) == [
            .connected(try #require(eventsURL)),
            .event(.streamAttached),
            .event(.statusUpdate(StatusUpdate(taskId: "web.1", appId: "/web", taskStatus: .running, host: "10.0.0.5",
                                              ports: [31001]))),
            .event(.healthChanged(HealthChange(appId: "/web", instanceId: "web.marathon-1", alive: true))),
        ])
        let request = try #require(server.requests.first)
        #expect(request.path == "/v2/events")
        #expect(request.queryItems.map(\.name).allSatisfy { $0 == "event_type" })
        #expect(request.queryItems.map(\.value) == MarathonEvent.subscribedTypes)
        #expect(request.headers.values("Accept") == ["text/event-stream"])
        #expect(request.headers["Authorization"] == expectedAuthorization)
    }

    @Test func errorStatusesDisconnectWithReasonsAndReconnect() async throws {
        let server = try TestHTTPServer { request, peer in
            switch request.connection {
            case 0: peer.respond(405, "Method Not Allowed")
            case 1: peer.respond(401, "Unauthorized")
            default:
                peer.startEventStream()
                peer.send(attachedEvent)
                peer.hang()
            }
        }
        defer { server.stop() }
        let seen = try await collect(try makeClient([server.url], maxBackoff: 0.5)) { $0.contains(where: isAttached) }
        let reasons = disconnects(seen)
        #expect(reasons.count == 2)
        #expect(reasons.first?.reason.contains("HTTP 405 Method Not Allowed") == true)
        #expect(reasons.last?.reason.contains("HTTP 401 Unauthorized") == true)
        #expect(reasons.map(\.retryIn) == [0.5, 0.5])
        #expect(!reasons.contains { $0.reason.contains("hunter2") })
        #expect(server.connectionCount == 3)
    }

    @Test func streamCutMidEventReconnects() async throws {
        let server = try TestHTTPServer { request, peer in
            peer.startEventStream()
            peer.send(attachedEvent)
            if request.connection == 0 {
                peer.send("event: status_update_event\r\ndata: {\"taskId\":")
                return  // the connection closes here
            }
            peer.hang()
        }
        defer { server.stop() }
        let seen = try await collect(try makeClient([server.url])) { count($0, isAttached) >= 2 }
        let happenings = seen.map(\.happening)
        #expect(count(happenings, isAttached) == 2)
        #expect(happenings.count == 5)  // connected, attached, disconnected, connected, attached
        let reason = try #require(disconnects(seen).first)
        #expect(reason.reason.contains("middle of an event"))
        #expect(reason.retryIn == 0.5)
        #expect(!happenings.contains { if case .undecodable = $0 { true } else { false } })
    }

    @Test func silenceLongerThanTheStreamTimeoutIsADeadStream() async throws {
        let lastSent = Recorder()
        let server = try TestHTTPServer { request, peer in
            peer.startEventStream()
            peer.send(attachedEvent)
            if request.connection == 0 {
                lastSent.add(.event(.streamAttached))
                peer.hang()  // silent: no heartbeats
                return
            }
            // Heartbeats every 0.2 s for 3 s keep a 1.5 s timeout at bay (even on a busy machine);
            // then an event.
            for _ in 0..<15 where peer.pause(0.2) { peer.send("\r\n") }
            peer.send("data: {\"appId\":\"/gone\",\"eventType\":\"app_terminated_event\"}\r\n\r\n")
            peer.hang()
        }
        defer { server.stop() }
        let terminated = StreamHappening.event(.appChanged(appId: "/gone", eventType: "app_terminated_event"))
        let seen = try await collect(try makeClient([server.url], streamTimeout: 1.5)) {
            $0.contains(terminated)
        }
        let happenings = seen.map(\.happening)
        #expect(happenings.last == terminated)
        #expect(count(happenings, isDisconnect) == 1)
        // Timed on the server's side (its own threads), from the last byte sent to the hang-up.
        let silenceFrom = try #require(lastSent.all.first?.at)
        let hangUp = try #require(server.clientClosedAt.first)
        #expect(hangUp - silenceFrom >= 1.45, "declared dead after only \(hangUp - silenceFrom) s")
        #expect(disconnects(seen).first?.reason.contains("no data for 1.5 s (--stream-timeout 1.5;") == true)
        #expect(server.connectionCount == 2)
    }

    @Test func streamFollowsRedirectToTheLeader() async throws {
        let leader = try TestHTTPServer { _, peer in
            peer.startEventStream()
            peer.send(attachedEvent)
            peer.hang()
        }
        defer { leader.stop() }
        let standby = try TestHTTPServer { request, peer in
            peer.respond(307, headers: [("Location", leader.url(request.target).absoluteString)])
        }
        defer { standby.stop() }
        let seen = try await collect(try makeClient([standby.url])) { $0.contains(where: isAttached) }
        guard case .connected(let url) = seen.first?.happening else {
            Issue.record("not connected: \(seen.map(\.happening))")
            return
        }
        #expect(url.port == leader.port)
        let atLeader = try #require(leader.requests.first)
        #expect(atLeader.headers["Authorization"] == expectedAuthorization)
        #expect(atLeader.headers["Accept"] == "text/event-stream")
        #expect(atLeader.target == standby.requests.first?.target)
    }

    @Test func triesTheNextURLWhenOneIsDown() async throws {
        let refused = try closedPort()
        let server = try TestHTTPServer { _, peer in
            peer.startEventStream()
            peer.send(attachedEvent)
            peer.hang()
        }
        defer { server.stop() }
        let client = try makeClient([URL(string: "http://127.0.0.1:\(refused)")!, server.url])
        let seen = try await collect(client) { $0.contains(where: isAttached) }
        #expect(disconnects(seen).count == 1)
        #expect(disconnects(seen).first?.reason.contains("127.0.0.1:\(refused)") == true)
    }

    /// The reconnect delay grows while connections fail or break at once (a stream that delivers
    /// a few bytes and breaks must not reconnect at full speed forever), and starts over only after
    /// a connection that stayed up `healthyAfter` seconds. Time is a manual clock: the delays are
    /// the client's decisions, not measurements.
    @Test func backoffGrowsUntilAConnectionStaysHealthy() async throws {
        let time = ManualTime()
        let release = Flag()
        let server = try TestHTTPServer { request, peer in
            switch request.connection {
            case 2:
                peer.startEventStream()
                peer.send(attachedEvent)  // then closed at once: it worked, but not for long
            case 4:
                peer.startEventStream()
                peer.send(attachedEvent)
                while !release.isSet && peer.pause(0.02) {}
            default:
                peer.respond(500, "Server Error")
            }
        }
        defer { server.stop() }
        let client = try makeClient([server.url], maxBackoff: 4, time: time, healthyAfter: 10)
        var delays: [Double] = []
        var connections = 0
        for await happening in client.events() {
            switch happening {
            case .connected:
                connections += 1
                if connections == 2 {
                    // The second stream (connection 4) stays up for 10 s of the manual clock.
                    time.advance(by: 10)
                    release.set()
                }
            case .disconnected(_, let retryIn):
                delays.append(retryIn)
                guard delays.count < 6 else { break }
                // Once the client sleeps, its back-off is over.
                try await eventually("the client to wait \(retryIn) s") { !time.sleepers.isEmpty }
                time.advance(to: time.sleepers[0])
            default:
                break
            }
            if delays.count == 6 { break }
        }
        #expect(delays == [0.5, 1, 2, 4, 0.5, 1])
    }

    @Test func undecodableEventsAreReportedAndTheStreamGoesOn() async throws {
        let server = try TestHTTPServer { _, peer in
            peer.startEventStream()
            peer.send("event: status_update_event\r\ndata: {not json\r\n\r\n")
            peer.send(attachedEvent)
            peer.hang()
        }
        defer { server.stop() }
        let seen = try await collect(try makeClient([server.url])) { $0.contains(where: isAttached) }
        guard seen.count == 3, case .undecodable(let reason) = seen[1].happening else {
            Issue.record("unexpected: \(seen.map(\.happening))")
            return
        }
        #expect(reason.contains("status_update_event"))
    }

    @Test func cancellingTheConsumerClosesTheStream() async throws {
        let server = try TestHTTPServer { _, peer in
            peer.startEventStream()
            peer.send(attachedEvent)
            peer.hang()
        }
        defer { server.stop() }
        let client = try makeClient([server.url], time: ManualTime())
        let attached = Flag(), ended = Flag()
        let consumer = Task {
            for await happening in client.events(finished: { ended.set() }) where isAttached(happening) { attached.set() }
        }
        try await eventually("the stream attached") { attached.isSet }
        consumer.cancel()
        await consumer.value
        try await eventually("the reconnect loop to end") { ended.isSet }
        try await eventually("the connection closed") { !server.clientClosedAt.isEmpty }
        #expect(server.connectionCount == 1, "nothing reconnects after the loop ended")
    }

    @Test func cancellingDuringBackoffEndsTheLoop() async throws {
        let server = try TestHTTPServer { _, peer in peer.respond(503) }
        defer { server.stop() }
        // A manual clock that never moves: the client waits in its back-off until cancelled.
        let time = ManualTime()
        let client = try makeClient([server.url], maxBackoff: 30, time: time)
        let disconnected = Flag(), ended = Flag()
        let consumer = Task {
            for await happening in client.events(finished: { ended.set() }) where isDisconnect(happening) { disconnected.set() }
        }
        try await eventually("the first failure") { disconnected.isSet }
        try await eventually("the client in its back-off") { !time.sleepers.isEmpty }
        consumer.cancel()
        await consumer.value
        try await eventually("the reconnect loop to end") { ended.isSet }
        #expect(server.connectionCount == 1)
        #expect(time.sleepers.isEmpty, "the back-off sleep was cancelled, not left behind")
    }
}
