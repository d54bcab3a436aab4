import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import ServiceRouterCore
@testable import ServiceRouterIO
import ServiceRouterTestSupport

private func clientError(_ error: any Error) -> HTTPClientError? { error as? HTTPClientError }

private func client(ca: String?) -> HTTPClient { HTTPClient(connectTimeout: 5, caCertificateFile: ca) }

/// TLS set-up and failure modes that need no TLS server.
@Suite("TLS")
struct TLSTests {
    @Test func missingLibraryIsNamed() {
        #expect {
            _ = try OpenSSL(libssl: "libssl.so.999", libcrypto: OpenSSL.libcrypto)
        } throws: { error in
            (error as? TLSError)?.kind == .libraryUnavailable && "\(error)".contains("cannot load libssl.so.999")
        }
    }

    @Test func systemLibraryLoads() throws {
        _ = try OpenSSL.shared.get()
        _ = try TLSContext(caFile: nil)
    }

    @Test func unusableCAFileIsReportedBeforeConnecting() async throws {
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("no-certs-\(UUID().uuidString).pem")
        try Data("not a certificate\n".utf8).write(to: empty)
        defer { try? FileManager.default.removeItem(at: empty) }
        for file in ["/nonexistent/ca.pem", empty.path] {
            #expect {
                try HTTPClient(caCertificateFile: file).checkTLSConfiguration()
            } throws: { error in
                clientError(error)?.kind == .tls && "\(error)".contains("cannot load CA certificates")
                    && "\(error)".contains(file)
            }
            // .tls, not .connect: nothing listens on the port, and the CA is looked at first.
            let url = URL(string: "https://127.0.0.1:\(try closedPort())/v2/apps")!
            await #expect { try await HTTPClient(caCertificateFile: file).send(HTTPRequest(url: url), timeout: 5) }
                throws: { clientError($0)?.kind == .tls }
        }
        // The option only concerns https.
        let plain = try TestHTTPServer { _, peer in peer.respond(200) }
        defer { plain.stop() }
        #expect(try await HTTPClient(caCertificateFile: "/nonexistent/ca.pem").send(HTTPRequest(url: plain.url), timeout: 5).status == 200)
        // Without a CA file there is nothing to check (plain-http setups must not need libssl).
        try HTTPClient().checkTLSConfiguration()
    }

    @Test func silentServerTimesOutTheHandshake() async throws {
        // A listener that never accepts: the kernel completes TCP, nobody answers the ClientHello.
        let listener = try Listener.tcp(host: "127.0.0.1", port: 0)
        let start = Monotonic.now()
        let url = URL(string: "https://127.0.0.1:\(listener.port)/")!
        await #expect { try await HTTPClient(connectTimeout: 0.4).send(HTTPRequest(url: url), timeout: 10) }
            throws: { clientError($0)?.kind == .connect && "\($0)".contains("TLS handshake timed out") }
        let elapsed = Monotonic.now() - start
        #expect(elapsed >= 0.35 && elapsed < 30, "took \(elapsed) s")
    }

    @Test func plainHTTPServerOnAnHTTPSURLIsATLSError() async throws {
        let listener = try Listener.tcp(host: "127.0.0.1", port: 0)
        let stop = StopFlag()
        defer { stop.set() }
        Blocking.detach(name: "plain-on-https") {
            while !stop.isSet {
                guard let connection = try? listener.accept(timeout: 0.05) else { continue }
                _ = try? connection.read(timeout: 1)
                try? connection.write("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                connection.close()
            }
        }
        let url = URL(string: "https://127.0.0.1:\(listener.port)/")!
        await #expect { try await HTTPClient().send(HTTPRequest(url: url), timeout: 5) } throws: { error in
            clientError(error)?.kind == .tls && "\(error)".contains("TLS handshake failed")
        }
    }

    @Test func ipLiteralsAreRecognised() {
        #expect(TLSConnection.isIPAddress("127.0.0.1") && TLSConnection.isIPAddress("::1"))
        #expect(!TLSConnection.isIPAddress("localhost") && !TLSConnection.isIPAddress("10.0.0.1.example.com"))
    }

    /// Without the guard, writing to a pipe nobody reads kills the test process with SIGPIPE.
    @Test func sigpipeFromAWriteIsSwallowed() throws {
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        Glibc.close(fds[0])
        defer { Glibc.close(fds[1]) }
        let (rc, error) = withoutSIGPIPE { () -> (Int, Int32) in
            let byte: [UInt8] = [1]
            let rc = Glibc.write(fds[1], byte, 1)
            return (rc, errno)
        }
        #expect(rc == -1 && error == EPIPE)
        var pending = sigset_t()
        sigpending(&pending)
        #expect(sigismember(&pending, SIGPIPE) == 0)
    }
}

/// Real TLS against HAProxy, with a throwaway CA (see `TLSTestSupport.swift`).
@Suite("HTTPS through OpenSSL", .enabled(if: hasHAProxy, "needs haproxy and /usr/bin/openssl"))
struct HTTPSTests {
    @Test func customCAIsTrustedWithSNIForNamesAndIPCheckForAddresses() async throws {
        try await withHTTPS { pki, frontend, _ in
            try client(ca: pki.caPath).checkTLSConfiguration()
            let byName = try await client(ca: pki.caPath).send(HTTPRequest(url: frontend.url("/ok", host: "localhost")), timeout: 10)
            #expect(byName.status == 200)
            #expect(byName.text.hasPrefix("ok sni=localhost proto=TLSv1."), "\(byName.text)")
            let byAddress = try await client(ca: pki.caPath).send(HTTPRequest(url: frontend.url("/ok")), timeout: 10)
            #expect(byAddress.status == 200)
            #expect(byAddress.text.hasPrefix("ok sni= proto=TLSv1."), "no SNI for an address: \(byAddress.text)")
        }
    }

    @Test func systemTrustStoreRejectsThePrivateCA() async throws {
        try await withHTTPS { _, frontend, _ in
            await #expect {
                try await client(ca: nil).send(HTTPRequest(url: frontend.url("/ok", user: "marathon")), timeout: 10)
            } throws: { error in
                let text = "\(error)"
                return clientError(error)?.kind == .tls && text.contains("certificate verify failed")
                    && text.contains("unable to get local issuer certificate") && !text.contains("hunter2")
            }
        }
    }

    @Test func certificateForOtherNamesIsRejected() async throws {
        try await withHTTPS { pki, frontend, _ in
            // Same CA, so only the name check can fail these.
            let wrongByName = frontend.url("/ok", host: "localhost", port: frontend.wrongPort)
            await #expect { try await client(ca: pki.caPath).send(HTTPRequest(url: wrongByName), timeout: 10) }
                throws: { clientError($0)?.kind == .tls && "\($0)".contains("hostname mismatch") }
            let wrongByAddress = frontend.url("/ok", port: frontend.wrongPort)
            await #expect { try await client(ca: pki.caPath).send(HTTPRequest(url: wrongByAddress), timeout: 10) }
                throws: { clientError($0)?.kind == .tls && "\($0)".contains("IP address mismatch") }
        }
    }

    @Test func largeChunkedBodyArrivesWhole() async throws {
        let body = String((0..<200_000).map { _ in "abcdefghij".randomElement()! })
        try await withHTTPS({ _, peer in
            peer.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
            for piece in stride(from: 0, to: body.utf8.count, by: 50_000) {
                let part = Array(body.utf8)[piece..<min(piece + 50_000, body.utf8.count)]
                peer.send(String(part.count, radix: 16) + "\r\n")
                peer.send(Array(part) + Array("\r\n".utf8))
            }
            peer.send("0\r\n\r\n")
        }) { pki, frontend, _ in
            let response = try await client(ca: pki.caPath).send(HTTPRequest(url: frontend.url("/big")), timeout: 10)
            #expect(response.status == 200)
            #expect(response.text == body)
        }
    }

    @Test func streamDeliversChunksAsSentAndTheIdleTimeoutStillFires() async throws {
        let firstSeen = Flag()
        try await withHTTPS({ _, peer in
            peer.startEventStream()
            peer.send("event: one\r\ndata: 1\r\n\r\n")
            // Wait (heartbeating, so the idle timer does not fire) until the consumer saw the first
            // event: it is an async task that may wait for a cooperative thread under load.
            let deadline = Monotonic.now() + 60
            while !firstSeen.isSet, Monotonic.now() < deadline, peer.pause(0.1) { peer.send("\r\n") }
            peer.send("event: two\r\ndata: 2\r\n\r\n")
            // 3 s of blank-line heartbeats every 0.15 s (far inside the 1.5 s idle timeout), then silence.
            let end = Monotonic.now() + 3
            while Monotonic.now() < end, peer.pause(0.15) { peer.send("\r\n") }
            peer.hang()
        }) { pki, frontend, _ in
            let start = Monotonic.now()
            let stream = client(ca: pki.caPath).stream(HTTPRequest(url: frontend.url("/v2/events")), idleTimeout: 1.5)
            var status: Int?
            var body: [UInt8] = []
            await #expect {
                for try await part in stream {
                    switch part {
                    case .head(let head): status = head.status
                    case .body(let bytes): body += bytes; firstSeen.set()
                    case .end: break
                    }
                }
            } throws: { clientError($0)?.kind == .idle }
            let elapsed = Monotonic.now() - start
            #expect(status == 200)
            let text = String(decoding: body, as: UTF8.self)
            #expect(text.hasPrefix("event: one\r\ndata: 1\r\n\r\n"))
            #expect(text.contains("\r\nevent: two\r\ndata: 2\r\n\r\n\r\n"), "the second event came after the first was seen, then heartbeats")
            #expect(elapsed > 3, "idle timeout after \(elapsed) s: heartbeats held it off")
        }
    }

    @Test func cancellingAnHTTPSStreamClosesItPromptly() async throws {
        try await withHTTPS({ _, peer in
            peer.startEventStream()
            peer.send("data: {}\r\n\r\n")
            // HAProxy notices that its client left only when it writes to it: heartbeats make it
            // pass the hang-up on to this backend.
            while peer.pause(0.05) { peer.send("\r\n") }
        }) { pki, frontend, backend in
            let gotData = Flag()
            let stream = client(ca: pki.caPath).stream(HTTPRequest(url: frontend.url("/v2/events")), idleTimeout: 30)
            let consumer = Task {
                for try await part in stream { if case .body = part { gotData.set() } }
            }
            try await eventually("data arrived") { gotData.isSet }
            consumer.cancel()
            _ = await consumer.result
            try await eventually("the backend connection closed after the cancel") { !backend.clientClosedAt.isEmpty }
        }
    }

    @Test func marathonClientOverHTTPSWithCustomCAAndBasicAuth() async throws {
        try await withHTTPS({ request, peer in
            if request.path == "/v2/apps" {
                peer.respond(200, "OK", headers: [("Content-Type", "application/json")], body: #"{"apps":[]}"#)
            } else {
                peer.startEventStream()
                peer.send("event: event_stream_attached\r\ndata: {\"remoteAddress\":\"127.0.0.1\",\"eventType\":\"event_stream_attached\",\"timestamp\":\"2018-09-03T18:03:45.685Z\"}\r\n\r\n")
                peer.hang()
            }
        }) { pki, frontend, backend in
            let credentials = BasicCredentials(user: "marathon", password: "s3cret")
            let marathon = MarathonClient(endpoints: try MarathonEndpoints(urls: [frontend.url("", host: "localhost")],
                                                                           credentials: credentials),
                                          http: client(ca: pki.caPath), requestTimeout: 10, streamTimeout: 10)
            let (data, from) = try await marathon.fetchApps()
            #expect(String(decoding: data, as: UTF8.self) == #"{"apps":[]}"#)
            #expect(from.scheme == "https" && from.host == "localhost" && from.path == "/v2/apps")
            let attached = try await withTimeLimit(60) { () -> Bool in
                for await happening in marathon.events() where happening == .event(.streamAttached) { return true }
                return false
            }
            #expect(attached == true)
            let seen = backend.requests
            #expect(seen.map(\.path) == ["/v2/apps", "/v2/events"])
            #expect(seen.allSatisfy { $0.headers["Authorization"] == credentials.authorization })
            #expect(seen.first?.target == "/v2/apps?embed=apps.tasks&embed=apps.deployments")
        }
    }

    /// `TLSConnection` on its own: `Connection`'s contract (timeouts, nil at a clean end).
    @Test func tlsConnectionKeepsTheConnectionContract() async throws {
        try await withHTTPS { pki, frontend, _ in
            // Blocking calls, off the shared pool; expectations are checked back here.
            let (version, timedOut, waited, text) = try await offPool { () -> (String, Bool, Double, String) in
                let context = try TLSContext(caFile: pki.caPath)
                let tcp = try Connection.tcp(host: "127.0.0.1", port: frontend.port, timeout: 5)
                let tls = try TLSConnection(tcp, context: context, serverName: "localhost", timeout: 5)
                defer { tls.close() }
                let start = Monotonic.now()
                var timedOut = false
                do { _ = try tls.read(max: 100, timeout: 0.2) } catch is TimeoutError { timedOut = true }
                let waited = Monotonic.now() - start
                try tls.write(Array("GET /ok HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".utf8))
                var received: [UInt8] = []
                while let chunk = try tls.read(max: 7, timeout: 5) { received += chunk }  // nil: close_notify
                return (tls.version, timedOut, waited, String(decoding: received, as: UTF8.self))
            }
            #expect(version.hasPrefix("TLSv1."))
            #expect(timedOut && waited >= 0.19, "waited \(waited) s")
            #expect(text.hasPrefix("HTTP/1.1 200"), "\(text)")
            #expect(text.hasSuffix("ok sni=localhost proto=\(version)"), "\(text)")
        }
    }
}
