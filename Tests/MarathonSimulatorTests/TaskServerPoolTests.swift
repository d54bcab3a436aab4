#if canImport(Glibc)
import Glibc
#endif
import Foundation
import ServiceRouterCore
import ServiceRouterIO
import Testing
@testable import MarathonSimulator

/// The epoll worker loop directly, without an engine: many listeners spread over few workers.
@Suite struct TaskServerPoolTests {
    struct Held: Sendable {
        let token: TaskServerPool.Token
        let port: Int
        let taskId: String
    }

    static func hold(_ pool: TaskServerPool, count: Int, prefix: String) throws -> [Held] {
        try (0..<count).map { i in
            let listener = try HostPorts.listen(ip: "127.0.0.1", range: 21000...32000)
            let taskId = "\(prefix).instance-\(i)._app.1"
            return Held(token: pool.hold(listener, taskId: taskId, healthPath: "/health"), port: listener.port, taskId: taskId)
        }
    }

    @Test func manyListenersServeThenRefuseOnceRemoved() async throws {
        let pool = TaskServerPool(threads: 2, logger: .silent)
        defer { pool.stop() }
        let held = try Self.hold(pool, count: 600, prefix: "many")
        #expect(pool.listenerCount == 600)
        for h in held { pool.activate(h.token) }
        // Every listener answers with its own task id (no warm-up: registration is immediate).
        for h in held {
            let r = try await RawHTTP.get(port: h.port, "/x")
            #expect(r.status == 200 && r.text == "\(h.taskId)\n" && r.headers["X-Task-Id"] == h.taskId)
        }
        // Half of them go away: refused at once, while the other half still serve.
        let (gone, kept) = (held.filter { $0.port % 2 == 0 }, held.filter { $0.port % 2 != 0 })
        for h in gone { pool.remove(h.token) }
        #expect(pool.listenerCount == kept.count)
        for h in gone { #expect(RawHTTP.refuses(port: h.port), "port \(h.port) still accepts after remove") }
        for h in kept.prefix(50) { #expect(try await RawHTTP.get(port: h.port, "/").text == "\(h.taskId)\n") }
    }

    @Test func removeClosesOpenKeepAliveConnections() async throws {
        let pool = TaskServerPool(threads: 1, logger: .silent)
        defer { pool.stop() }
        let h = try Self.hold(pool, count: 1, prefix: "ka")[0]
        pool.activate(h.token)
        let bytes = try await Blocking.run { () -> [UInt8] in
            let c = try Connection.tcp(host: "127.0.0.1", port: h.port)
            defer { c.close() }
            try c.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            var got: [UInt8] = []
            while RawHTTP.headEnd(got) == nil, let chunk = try c.read(timeout: 5) { got += chunk }
            #expect(pool.connectionCount == 1)
            pool.remove(h.token)
            // The server side closes: the read ends instead of hanging on the kept-alive connection.
            return try got + c.readToEnd(timeout: 5)
        }
        #expect(String(decoding: bytes, as: UTF8.self).hasPrefix("HTTP/1.1 200 OK"))
        #expect(pool.connectionCount == 0)
    }

    /// More pipelined answers than the client's small receive buffer takes: the worker must
    /// wait for EPOLLOUT and finish the output once the client reads.
    @Test func stuckOutputIsFlushedWhenTheClientReads() async throws {
        let pool = TaskServerPool(threads: 1, logger: .silent)
        defer { pool.stop() }
        let h = try Self.hold(pool, count: 1, prefix: "stuck")[0]
        pool.activate(h.token)
        let requests = 120
        let text = try await Blocking.run { () -> String in
            let c = try Connection.tcp(host: "127.0.0.1", port: h.port)
            defer { c.close() }
            var small: Int32 = 2048
            _ = setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
            var batch = String(repeating: "GET /p HTTP/1.1\r\nHost: x\r\n\r\n", count: requests - 1)
            batch += "GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            try c.write(batch)
            usleep(200_000)  // let the server fill both buffers before anything is read
            return String(decoding: try c.readToEnd(timeout: 10), as: UTF8.self)
        }
        #expect(text.components(separatedBy: "HTTP/1.1 200 OK").count - 1 == requests)
        #expect(text.contains("Connection: close"))
    }

    @Test func unhealthyAnswers503OnTheHealthPathOnlyAndStopEndsServing() async throws {
        let pool = TaskServerPool(threads: 2, logger: .silent)
        let h = try Self.hold(pool, count: 1, prefix: "hc")[0]
        pool.activate(h.token)
        pool.setHealthy(h.token, false)
        #expect(try await RawHTTP.get(port: h.port, "/health").status == 503)
        #expect(try await RawHTTP.get(port: h.port, "/health").text == "unhealthy \(h.taskId)\n")
        #expect(try await RawHTTP.get(port: h.port, "/other").status == 200)
        pool.stop()
        #expect(pool.listenerCount == 0)
        #expect(RawHTTP.refuses(port: h.port))
    }
}
