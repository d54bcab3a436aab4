import Foundation
import Synchronization
import Testing
import ServiceRouterCore
@testable import ServiceRouterIO
import ServiceRouterTestSupport

/// Collects a stream's parts; `onBody` sees each body chunk as it arrives.
private func drain(_ stream: HTTPStream, onBody: (([UInt8]) -> Void)? = nil) async throws
    -> (head: HTTPResponseHead?, body: [UInt8], ended: Bool) {
    var head: HTTPResponseHead?
    var body: [UInt8] = []
    var ended = false
    for try await part in stream {
        switch part {
        case .head(let h): head = h
        case .body(let b): body += b; onBody?(b)
        case .end: ended = true
        }
    }
    return (head, body, ended)
}

private func clientError(_ error: any Error) -> HTTPClientError? { error as? HTTPClientError }

private func client(maxBodyBytes: Int = 256 << 20) -> HTTPClient {
    HTTPClient(connectTimeout: 2, maxBodyBytes: maxBodyBytes)
}

@Suite("HTTPClient")
struct HTTPClientTests {
    // MARK: one-shot

    @Test func fixedResponse() async throws {
        let server = try TestHTTPServer { _, peer in
            peer.respond(200, "OK", headers: [("Content-Type", "application/json"), ("X-Marathon-Leader", "http://m1:8080")],
                         body: #"{"apps":[]}"#)
        }
        defer { server.stop() }
        var request = HTTPRequest(url: server.url("/v2/apps?embed=apps.tasks&embed=apps.deployments"))
        request.headers.add("Accept", "application/json")
        let response = try await client().send(request, timeout: 5)
        #expect(response.status == 200)
        #expect(response.text == #"{"apps":[]}"#)
        #expect(response.headers["x-marathon-leader"] == "http://m1:8080")
        let seen = try #require(server.requests.first)
        #expect(seen.method == "GET")
        #expect(seen.target == "/v2/apps?embed=apps.tasks&embed=apps.deployments")
        #expect(seen.headers.values("Accept") == ["application/json"])
        #expect(seen.headers["Host"] == "127.0.0.1:\(server.port)")
        #expect(seen.headers["User-Agent"] == "servicerouter")
    }

    @Test func rawRequestIsWellFormed() async throws {
        let server = try TestHTTPServer { _, peer in peer.respond(204) }
        defer { server.stop() }
        var request = HTTPRequest(method: "POST", url: server.url("/x"), body: Array("hello".utf8))
        request.headers.add("X-One", "1")
        let response = try await HTTPClient().send(request, timeout: 5)
        #expect(response.status == 204 && response.body.isEmpty)
        let seen = try #require(server.requests.first)
        #expect(seen.method == "POST")
        #expect(seen.headers["Content-Length"] == "5")
        #expect(seen.headers["Connection"] == "close")
        #expect(seen.headers["X-One"] == "1")
    }

    @Test func chunkedAndCloseDelimitedBodies() async throws {
        let server = try TestHTTPServer { request, peer in
            if request.path == "/chunked" {
                peer.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nWiki\r\n")
                peer.pause(0.02)
                peer.send("5\r\npedia\r\n0\r\n\r\n")
            } else {
                peer.send("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil ")
                peer.pause(0.02)
                peer.send("close")
            }
        }
        defer { server.stop() }
        let c = client()
        #expect(try await c.send(HTTPRequest(url: server.url("/chunked")), timeout: 5).text == "Wikipedia")
        #expect(try await c.send(HTTPRequest(url: server.url("/close")), timeout: 5).text == "until close")
    }

    @Test func errorStatusesAndRedirectsAreReturnedNotFollowed() async throws {
        let server = try TestHTTPServer { request, peer in
            if request.path == "/moved" {
                peer.respond(307, "Temporary Redirect", headers: [("Location", "/elsewhere")])
            } else {
                peer.respond(503, "Service Unavailable", body: #"{"message":"not the leader"}"#)
            }
        }
        defer { server.stop() }
        let c = client()
        let moved = try await c.send(HTTPRequest(url: server.url("/moved")), timeout: 5)
        #expect(moved.status == 307)
        #expect(moved.headers["Location"] == "/elsewhere")
        let failed = try await c.send(HTTPRequest(url: server.url("/v2/apps")), timeout: 5)
        #expect(failed.status == 503)
        #expect(failed.text.contains("not the leader"))
        #expect(server.requests.map(\.path) == ["/moved", "/v2/apps"])
    }

    @Test func bodyLimit() async throws {
        let server = try TestHTTPServer { _, peer in peer.respond(200, body: String(repeating: "x", count: 5000)) }
        defer { server.stop() }
        await #expect { try await client(maxBodyBytes: 1000).send(HTTPRequest(url: server.url), timeout: 5) }
            throws: { clientError($0)?.kind == .bodyTooLarge }
        #expect(try await client(maxBodyBytes: 5000).send(HTTPRequest(url: server.url), timeout: 5).body.count == 5000)
    }

    @Test func hangingServerTimesOut() async throws {
        let server = try TestHTTPServer { _, peer in peer.hang() }
        defer { server.stop() }
        let start = Monotonic.now()
        await #expect { try await client().send(HTTPRequest(url: server.url), timeout: 0.3) }
            throws: { clientError($0)?.kind == .timeout }
        let elapsed = Monotonic.now() - start
        #expect(elapsed >= 0.25 && elapsed < 30, "took \(elapsed) s")
    }

    @Test func slowTrickleStillHitsTheOverallTimeout() async throws {
        // One byte every 0.1 s never trips an idle timer; the whole-exchange timeout must still fire.
        let server = try TestHTTPServer { _, peer in
            peer.send("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            while peer.pause(0.1) { peer.send("x") }
        }
        defer { server.stop() }
        await #expect { try await client().send(HTTPRequest(url: server.url), timeout: 0.5) }
            throws: { clientError($0)?.kind == .timeout }
    }

    @Test func refusedConnectionNamesTheRedactedURL() async throws {
        let port = try closedPort()
        let url = URL(string: "http://admin:s3cret@127.0.0.1:\(port)/v2/apps")!
        await #expect {
            try await HTTPClient().send(HTTPRequest(url: url), timeout: 2)
        } throws: { error in
            let text = "\(error)"
            return clientError(error)?.kind == .connect && !text.contains("s3cret") && text.contains("127.0.0.1:\(port)/v2/apps")
        }
    }

    /// swift-corelibs-foundation's URLSession (once used for https) trapped ("Transfer completed, but
    /// there's no response", NativeProtocol.swift:240) on a chunked response with trailers.
    @Test func chunkedTrailers() async throws {
        let server = try TestHTTPServer { _, peer in
            peer.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n")
        }
        defer { server.stop() }
        let stream = HTTPClient().stream(HTTPRequest(url: server.url), idleTimeout: 5)
        var trailers: HTTPHeaders?
        var body: [UInt8] = []
        for try await part in stream {
            switch part {
            case .head: break
            case .body(let b): body += b
            case .end(let t): trailers = t
            }
        }
        #expect(body == Array("abc".utf8))
        #expect(trailers == ["X-Trailer": "t"])
    }

    @Test func truncatedBodyIsAnError() async throws {
        let server = try TestHTTPServer { _, peer in peer.send("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort") }
        defer { server.stop() }
        await #expect { try await HTTPClient().send(HTTPRequest(url: server.url), timeout: 5) }
            throws: { clientError($0)?.kind == .invalidResponse }
    }

    @Test func userInfoBecomesBasicAuthAndStaysOffTheWire() async throws {
        let server = try TestHTTPServer { _, peer in peer.respond(200) }
        defer { server.stop() }
        let url = URL(string: "http://marathon:p%40ss@127.0.0.1:\(server.port)/v2/info")!
        _ = try await client().send(HTTPRequest(url: url), timeout: 5)
        let seen = try #require(server.requests.first)
        #expect(seen.headers["Authorization"] == "Basic " + Data("marathon:p@ss".utf8).base64EncodedString())
        #expect(seen.target == "/v2/info")
        #expect(url.redacted == "http://127.0.0.1:\(server.port)/v2/info")
    }

    @Test func headerInjectionIsRefused() async throws {
        var request = HTTPRequest(url: URL(string: "http://127.0.0.1:1/")!)
        request.headers.add("X-Evil", "a\r\nInjected: yes")
        await #expect { try await HTTPClient().send(request, timeout: 1) } throws: { clientError($0)?.kind == .invalidRequest }
        let ftp = HTTPRequest(url: URL(string: "ftp://127.0.0.1/")!)
        await #expect { try await HTTPClient().send(ftp, timeout: 1) } throws: { clientError($0)?.kind == .invalidRequest }
    }

    // MARK: streaming

    @Test func bodyChunksArriveAsTheyAreSent() async throws {
        // The server sends the second chunk only after the client has seen the first one.
        let firstSeen = Flag()
        let server = try TestHTTPServer { _, peer in
            peer.startEventStream()
            peer.send("event: one\r\ndata: 1\r\n\r\n")
            // Generous: the consumer is an async task and may wait for a cooperative thread while
            // CPU-heavy tests run beside it.
            let deadline = Monotonic.now() + 60
            while !firstSeen.isSet, Monotonic.now() < deadline, peer.pause(0.01) {}
            peer.send("event: two\r\ndata: 2\r\n\r\n")
        }
        defer { server.stop() }
        let stream = client().stream(HTTPRequest(url: server.url("/v2/events")), idleTimeout: 60)
        let result = try await drain(stream) { _ in firstSeen.set() }
        #expect(result.head?.status == 200)
        #expect(result.head?.headers["Content-Type"] == "text/event-stream")
        #expect(String(decoding: result.body, as: UTF8.self) == "event: one\r\ndata: 1\r\n\r\nevent: two\r\ndata: 2\r\n\r\n")
        #expect(result.ended)
        #expect(firstSeen.isSet)
    }

    @Test func silenceTripsTheIdleTimeoutButHeartbeatsDoNot() async throws {
        let server = try TestHTTPServer { _, peer in
            peer.startEventStream()
            // 3 s of blank-line heartbeats every 0.15 s (far inside the 1.5 s idle timeout, even on
            // a busy machine), then silence.
            let end = Monotonic.now() + 3
            while Monotonic.now() < end, peer.pause(0.15) { peer.send("\r\n") }
            peer.hang()
        }
        defer { server.stop() }
        let start = Monotonic.now()
        let stream = client().stream(HTTPRequest(url: server.url), idleTimeout: 1.5)
        await #expect { _ = try await drain(stream) } throws: { clientError($0)?.kind == .idle }
        // Heartbeats held the idle timer off: it fired only after they stopped.
        let elapsed = Monotonic.now() - start
        #expect(elapsed > 3, "idle timeout after \(elapsed) s")
    }

    @Test func cancellingTheConsumerClosesTheConnectionPromptly() async throws {
        let server = try TestHTTPServer { _, peer in
            peer.startEventStream()
            peer.send("data: {}\r\n\r\n")
            peer.hang()
        }
        defer { server.stop() }
        let gotData = Flag()
        let stream = client().stream(HTTPRequest(url: server.url), idleTimeout: 30)
        let consumer = Task { _ = try? await drain(stream) { _ in gotData.set() } }
        try await eventually("data arrived") { gotData.isSet }
        consumer.cancel()
        await consumer.value
        try await eventually("the connection closed after the cancel") { !server.clientClosedAt.isEmpty }
    }

    @Test func explicitCancelEndsTheStream() async throws {
        let server = try TestHTTPServer { _, peer in
            peer.startEventStream()
            peer.hang()
        }
        defer { server.stop() }
        let stream = HTTPClient().stream(HTTPRequest(url: server.url), idleTimeout: 30)
        var iterator = stream.makeAsyncIterator()
        guard case .head = try await iterator.next() else { Issue.record("no head"); return }
        stream.cancel()
        try await eventually("the connection closed after cancel()") { !server.clientClosedAt.isEmpty }
    }
}
