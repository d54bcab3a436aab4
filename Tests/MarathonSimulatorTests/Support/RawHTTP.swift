import Foundation
import ServiceRouterCore
import ServiceRouterIO
@testable import MarathonSimulator

/// A deliberately plain HTTP/1.1 client over the project's sockets: the tests look at raw bytes.
struct RawResponse: Sendable {
    var status: Int
    var headers: HTTPHeaders
    var body: [UInt8]
    var text: String { String(decoding: body, as: UTF8.self) }
    func json() throws -> JSONValue { try JSONValue.parse(body) }
}

struct RawHTTPError: Error, CustomStringConvertible {
    var description: String
}

enum RawHTTP {
    static func basic(_ user: String, _ password: String) -> (String, String) {
        ("Authorization", "Basic " + Data("\(user):\(password)".utf8).base64EncodedString())
    }

    static func request(_ method: String, port: Int, _ target: String, headers: [(String, String)] = [],
                        body: String? = nil, host: String = "127.0.0.1", timeout: Double = 5) async throws -> RawResponse {
        try await Blocking.run {
            let c = try Connection.tcp(host: host, port: port, timeout: timeout)
            defer { c.close() }
            var text = "\(method) \(target) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\n"
            for (k, v) in headers { text += "\(k): \(v)\r\n" }
            if let body { text += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n" }
            text += "\r\n" + (body ?? "")
            try c.write(text)
            return try parse(try c.readToEnd(timeout: timeout), method: method)
        }
    }

    static func get(port: Int, _ target: String, headers: [(String, String)] = []) async throws -> RawResponse {
        try await request("GET", port: port, target, headers: headers)
    }

    static func parse(_ bytes: [UInt8], method: String = "GET") throws -> RawResponse {
        guard let end = headEnd(bytes) else { throw RawHTTPError(description: "no complete head in \(bytes.count) bytes") }
        let head = String(decoding: bytes[..<end], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else {
            throw RawHTTPError(description: "bad status line in \(head)")
        }
        var headers = HTTPHeaders()
        for line in lines where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.add(String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        var body = Array(bytes[(end + 4)...])
        if let length = headers["Content-Length"].flatMap(Int.init), body.count >= length { body = Array(body.prefix(length)) }
        return RawResponse(status: status, headers: headers, body: body)
    }

    static func headEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 0...(bytes.count - 4) where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 {
            return i
        }
        return nil
    }

    /// True when nothing accepts on `host:port` (connection refused).
    static func refuses(port: Int, host: String = "127.0.0.1") -> Bool {
        do {
            let c = try Connection.tcp(host: host, port: port, timeout: 1)
            c.close()
            return false
        } catch let e as SystemError {
            return e.code == ECONNREFUSED
        } catch {
            return false
        }
    }
}

/// A raw `/v2/events` reader: collects bytes and lets a test wait for what it expects.
final class SSEReader: @unchecked Sendable {
    // @unchecked: used by one test task at a time; the connection never crosses threads concurrently.
    let connection: Connection
    private(set) var bytes: [UInt8] = []
    private(set) var closed = false

    init(port: Int, query: String = "", accept: String? = "text/event-stream", extraHeaders: [(String, String)] = []) throws {
        connection = try Connection.tcp(host: "127.0.0.1", port: port, timeout: 5)
        var text = "GET /v2/events\(query) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        if let accept { text += "Accept: \(accept)\r\n" }
        for (k, v) in extraHeaders { text += "\(k): \(v)\r\n" }
        text += "\r\n"
        try connection.write(text)
    }

    deinit { connection.close() }

    var text: String { String(decoding: bytes, as: UTF8.self) }

    /// The body after the response head.
    var body: String {
        guard let end = RawHTTP.headEnd(bytes) else { return "" }
        return String(decoding: bytes[(end + 4)...], as: UTF8.self)
    }

    var head: String {
        guard let end = RawHTTP.headEnd(bytes) else { return "" }
        return String(decoding: bytes[..<end], as: UTF8.self)
    }

    /// Complete events in the body: (type, data JSON text).
    var events: [(type: String, data: String)] {
        body.components(separatedBy: "\r\n\r\n").compactMap { block in
            let lines = block.components(separatedBy: "\r\n").filter { !$0.isEmpty }
            guard let e = lines.first(where: { $0.hasPrefix("event: ") }), let d = lines.first(where: { $0.hasPrefix("data: ") }),
                  (try? JSONValue.parse(String(d.dropFirst(6)))) != nil else { return nil }
            return (String(e.dropFirst(7)), String(d.dropFirst(6)))
        }
    }

    func eventTypes() -> [String] { events.map(\.type) }

    /// Reads until `condition` holds, the peer closes, or `timeout` passes; returns whether it held.
    @discardableResult
    func read(timeout: Double = 20, until condition: (SSEReader) -> Bool) async -> Bool {
        let deadline = Monotonic.now() + timeout
        while Monotonic.now() < deadline {
            if condition(self) { return true }
            if closed { return false }
            let conn = UncheckedConnection(connection)
            let result = (try? await Blocking.run { () -> ReadResult in
                do {
                    guard let chunk = try conn.value.read(timeout: 0.05) else { return .eof }
                    return .data(chunk)
                } catch is TimeoutError {
                    return .timeout
                } catch {
                    return .eof
                }
            }) ?? .eof
            switch result {
            case .data(let chunk): bytes += chunk
            case .eof: closed = true
            case .timeout: break
            }
        }
        return condition(self)
    }

    /// Reads until nothing new arrived for `quiet` seconds (or `timeout` passes).
    func readUntilQuiet(quiet: Double = 0.3, timeout: Double = 5) async {
        let deadline = Monotonic.now() + timeout
        while Monotonic.now() < deadline && !closed {
            let before = bytes.count
            await read(timeout: quiet) { $0.bytes.count != before }
            if bytes.count == before { return }
        }
    }

    /// Reads until the peer closes (or timeout); true when it closed.
    func readUntilClosed(timeout: Double = 20) async -> Bool {
        await read(timeout: timeout) { $0.closed }
        return closed
    }
}

enum ReadResult: Sendable {
    case data([UInt8])
    case eof
    case timeout
}

struct UncheckedConnection: @unchecked Sendable {
    let value: Connection
    init(_ value: Connection) { self.value = value }
}

/// A simulator for one test, stopped at the end.
func withSimulator<T>(_ options: MarathonSimulator.Options = .init(heartbeatInterval: nil, killGracePeriod: 0.2),
                      _ body: (MarathonSimulator) async throws -> T) async throws -> T {
    let sim = try await MarathonSimulator.start(options)
    do {
        let result = try await body(sim)
        sim.stop()
        return result
    } catch {
        sim.stop()
        throw error
    }
}
