import Foundation
import ServiceRouterCore
import ServiceRouterIO
import Synchronization
import Testing

@Suite struct HTTPServerTests {
    @Test func keepAliveAndPipelinedRequestsOnOneConnection() async throws {
        let count = Atomic<Int>(0)
        let server = try HTTPServer.start { request in
            count.add(1, ordering: .relaxed)
            return .text("\(request.method) \(request.path) \(request.body.count)\n")
        }
        defer { server.stop() }
        let port = server.port
        let text = try await Blocking.run { () -> String in
            let c = try Connection.tcp(host: "127.0.0.1", port: port)
            defer { c.close() }
            try c.write("GET /one HTTP/1.1\r\nHost: x\r\n\r\n")
            var got: [UInt8] = []
            while !String(decoding: got, as: UTF8.self).hasSuffix("GET /one 0\n") {
                guard let chunk = try c.read(timeout: 2) else { break }
                got += chunk
            }
            try c.write("POST /two HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /three HTTP/1.1\r\nConnection: close\r\n\r\n")
            got += try c.readToEnd(timeout: 2)
            return String(decoding: got, as: UTF8.self)
        }
        #expect(text.components(separatedBy: "HTTP/1.1 200 OK\r\n").count == 4)
        #expect(text.contains("POST /two 3\n"))
        #expect(text.hasSuffix("GET /three 0\n"))
        #expect(text.contains("Connection: close\r\n"))
        let handled = count.load(ordering: .relaxed)
        #expect(handled == 3)
    }

    @Test func badRequestsGetTheParserStatusAndAClose() async throws {
        let server = try HTTPServer.start(options: .init(limits: .init(maxHeadBytes: 1024, maxBodyBytes: 10))) { _ in .text("ok") }
        defer { server.stop() }
        let big = try await RawHTTP.request("POST", port: server.port, "/", body: String(repeating: "x", count: 11))
        #expect(big.status == 413)
        let huge = try await RawHTTP.get(port: server.port, "/" + String(repeating: "a", count: 2000))
        #expect(huge.status == 431)
    }

    @Test func expectContinueIsAnswered() async throws {
        let server = try HTTPServer.start { request in .text(String(decoding: request.body, as: UTF8.self)) }
        defer { server.stop() }
        let port = server.port
        let text = try await Blocking.run { () -> String in
            let c = try Connection.tcp(host: "127.0.0.1", port: port)
            defer { c.close() }
            try c.write("PUT / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n")
            let interim = try c.read(timeout: 2) ?? []
            try c.write("hello")
            return String(decoding: interim + (try c.readToEnd(timeout: 2)), as: UTF8.self)
        }
        #expect(text.hasPrefix("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"))
        #expect(text.hasSuffix("hello"))
    }

    @Test func connectionCapAnswers503() async throws {
        let server = try HTTPServer.start(options: .init(maxConnections: 1)) { _ in .text("ok") }
        defer { server.stop() }
        let port = server.port
        let first = try Connection.tcp(host: "127.0.0.1", port: port)
        defer { first.close() }
        try first.write("GET / HTTP/1.1\r\n\r\n")
        _ = try await Blocking.run { [first = UncheckedConnection(first)] in try first.value.read(timeout: 2) }
        let second = try await RawHTTP.get(port: port, "/")
        #expect(second.status == 503)
    }

    @Test func streamWriterSeesTheClientLeave() async throws {
        let sawClose = Atomic<Bool>(false)
        let server = try HTTPServer.start { _ in
            .stream(200, HTTPHeaders([("Content-Type", "text/plain")])) { writer in
                writer.write("hello\n")
                let deadline = Monotonic.now() + 5
                while Monotonic.now() < deadline && writer.isOpen { usleep(10_000) }
                sawClose.store(!writer.isOpen, ordering: .relaxed)
            }
        }
        defer { server.stop() }
        let port = server.port
        let head = try await Blocking.run { () -> String in
            let c = try Connection.tcp(host: "127.0.0.1", port: port)
            try c.write("GET /s HTTP/1.1\r\n\r\n")
            let bytes = try c.read(timeout: 2) ?? []
            c.close()
            return String(decoding: bytes, as: UTF8.self)
        }
        #expect(head.contains("Connection: close\r\n"))
        #expect(!head.lowercased().contains("content-length"))
        let deadline = Monotonic.now() + 3
        while Monotonic.now() < deadline && !sawClose.load(ordering: .relaxed) { try await Task.sleep(nanoseconds: 10_000_000) }
        let closed = sawClose.load(ordering: .relaxed)
        #expect(closed)
    }

    @Test func stopClosesEveryConnectionPromptly() async throws {
        let server = try HTTPServer.start { request in
            if request.path == "/stream" {
                return .stream(200, HTTPHeaders()) { writer in
                    let deadline = Monotonic.now() + 30
                    while Monotonic.now() < deadline && writer.isOpen { usleep(20_000) }
                }
            }
            return .text("ok")
        }
        let port = server.port
        let idle = try Connection.tcp(host: "127.0.0.1", port: port)
        try idle.write("GET / HTTP/1.1\r\n\r\n")
        _ = try idle.read(timeout: 2)
        let stream = try Connection.tcp(host: "127.0.0.1", port: port)
        try stream.write("GET /stream HTTP/1.1\r\n\r\n")
        _ = try stream.read(timeout: 2)
        #expect(server.openConnectionCount == 2)
        // stop() returns once every connection is closed (its own bound: 1 s).
        server.stop()
        #expect(server.openConnectionCount == 0)
        #expect(try idle.readToEnd(timeout: 1).isEmpty)
        #expect(try stream.readToEnd(timeout: 1).isEmpty)
        #expect(RawHTTP.refuses(port: port))
        idle.close()
        stream.close()
    }
}
