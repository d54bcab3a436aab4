import Foundation
import Testing
import ServiceRouterCore
@testable import ServiceRouterIO
import ServiceRouterTestSupport

/// The `--listen` endpoint's server: one thread whatever the clients do; idle and slow clients
/// cannot keep a probe out.
@Suite struct StatusServerTests {
    func start(_ o: StatusServer.Options = .init()) throws -> StatusServer {
        try StatusServer.start(host: "127.0.0.1", port: 0, options: o) { request in
            request.path == "/healthz" ? .text("ok\n") : .text("not found\n", status: 404)
        }
    }

    func get(_ port: Int, _ path: String = "/healthz") async throws -> String {
        try await Blocking.run {
            let c = try Connection.tcp(host: "127.0.0.1", port: port, timeout: 10)
            defer { c.close() }
            try c.write("GET \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return String(decoding: try c.readToEnd(timeout: 10), as: UTF8.self)
        }
    }

    /// Threads of this process whose name starts with `prefix` (the server names its one thread
    /// "status:<port>"; threads of other components are not counted).
    static func threads(named prefix: String) -> Int {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        return tasks.filter { ((try? String(contentsOfFile: "/proc/self/task/\($0)/comm", encoding: .utf8)) ?? "").hasPrefix(prefix) }.count
    }

    @Test func idleConnectionsBeyondTheLimitDoNotKeepAProbeOut() async throws {
        var o = StatusServer.Options()
        o.maxConnections = 16
        let server = try start(o)
        defer { server.stop() }
        // Twice the limit of idle connections, held open.
        let idle = try await Blocking.run { try (0..<32).map { _ in try Connection.tcp(host: "127.0.0.1", port: server.port, timeout: 10) } }
        defer { idle.forEach { $0.close() } }
        let answer = try await get(server.port)
        #expect(answer.hasPrefix("HTTP/1.1 200 OK"), "\(answer)")
    }

    @Test func aThousandConnectionsUseNoThreadEach() async throws {
        let server = try start()
        defer { server.stop() }
        let held = try await Blocking.run { try (0..<1000).map { _ in try Connection.tcp(host: "127.0.0.1", port: server.port, timeout: 10) } }
        #expect(try await get(server.port).hasPrefix("HTTP/1.1 200 OK"))
        // One thread per server (other tests run servers too), never one per connection.
        #expect(Self.threads(named: "status:") < 50, "\(Self.threads(named: "status:")) server threads for 1000 connections")
        held.forEach { $0.close() }
    }

    @Test func aRequestTricklingInIsCutAtTheRequestTimeout() async throws {
        var o = StatusServer.Options()
        o.requestTimeout = 0.5
        let server = try start(o)
        defer { server.stop() }
        // One byte at a time, forever (bounded here): the server closes the connection.
        let closed = try await Blocking.run { () -> Bool in
            let c = try Connection.tcp(host: "127.0.0.1", port: server.port, timeout: 10)
            defer { c.close() }
            for byte in Array("GET /healthz HTTP/1.1\r\nX-Slow: ".utf8) + Array(repeating: UInt8(ascii: "a"), count: 600) {
                guard (try? c.write([byte])) != nil else { return true }
                do {
                    if try c.read(timeout: 0.1) == nil { return true }  // the server closed the connection
                } catch is TimeoutError {
                    continue
                } catch {
                    return true
                }
            }
            return false
        }
        #expect(closed, "the trickling request was not cut")
        #expect(try await get(server.port).hasPrefix("HTTP/1.1 200 OK"))
    }

    @Test func keepAliveAndPipelinedRequestsAreAnswered() async throws {
        let server = try start()
        defer { server.stop() }
        let text = try await Blocking.run { () -> String in
            let c = try Connection.tcp(host: "127.0.0.1", port: server.port, timeout: 10)
            defer { c.close() }
            try c.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /other HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return String(decoding: try c.readToEnd(timeout: 10), as: UTF8.self)
        }
        #expect(text.contains("HTTP/1.1 200 OK") && text.contains("HTTP/1.1 404 Not Found"), "\(text)")
    }
}
