import Foundation
import ServiceRouterCore
import ServiceRouterIO
@testable import ServiceRouterController
@testable import ServiceRouterCLI
import ServiceRouterTestSupport
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A real HAProxy 2.6 in master-worker mode, started the way operators (and the external checks)
/// start it: `haproxy -W -S master.sock -f cfg` with a minimal config (a stats socket, no
/// frontends). Stopped, with every process it forked, when the test ends.
typealias HAProxyHarness = HAProxyProcess

extension HAProxyProcess {
    /// Checked once per test process (`haproxy -v`), not once per test: suite conditions are
    /// evaluated for every test, synchronously, on the cooperative pool.
    static let isAvailable: Bool = isInstalled()

    convenience init(name: String) throws {
        try self.init()
    }

    var masterPath: String { masterSocketPath }
    var control: HAProxyProcessControl { control() }
    func workerPid() async throws -> Int { try await runtime.identity().pid }
}

/// A TCP port nobody listens on. Ports come from a process-wide counter in 12000-19999 (outside
/// the kernel's ephemeral range and the simulator's task ports), each checked free, so two tests
/// never pick the same one; HAProxy binds with SO_REUSEPORT and would otherwise silently share it.
func freePort() throws -> Int {
    for _ in 0..<8000 {
        let candidate = 12000 + portCounter.add(1, ordering: .relaxed).oldValue % 8000
        if (try? Listener.tcp(host: "0.0.0.0", port: candidate)) != nil { return candidate }
    }
    throw RuntimeError("no free port in 12000-19999")
}

private let portCounter = Atomic<Int>(Int(getpid()) * 37 % 8000)

/// A stand-in task: an HTTP listener on 127.0.0.1 answering every request with its id.
final class TaskServer: @unchecked Sendable {
    let id: String
    let listener: Listener
    var port: Int { listener.port }
    private let stopped = StopFlag()

    init(id: String) throws {
        self.id = id
        listener = try Listener.tcp(host: "127.0.0.1", port: 0)
        let l = listener, body = id, stopped = self.stopped
        Blocking.detach(name: "task-\(id)") {
            while !stopped.isSet {
                guard let conn = try? l.accept(timeout: 0.2) else { continue }
                Blocking.detach(name: "task-conn") { Self.serve(conn, body: body) }
            }
        }
    }

    /// Answers every request with the task id as body, plus what it saw (`X-Seen-Path`,
    /// `X-Seen-Host`, `X-Seen-Forwarded-For`). `/redirect` answers 302 to `http://<host>/login`.
    static func serve(_ conn: Connection, body: String) {
        var buffer: [UInt8] = []
        while let chunk = try? conn.read(timeout: 5) {
            buffer += chunk
            // Answer each complete request (keep-alive aware: requests end with CRLFCRLF, no body).
            while let end = find(buffer, [13, 10, 13, 10]) {
                let head = String(decoding: buffer[..<end], as: UTF8.self)
                buffer.removeFirst(end + 4)
                let lines = head.split(separator: "\r\n")
                let path = lines.first?.split(separator: " ").dropFirst().first.map(String.init) ?? "/"
                func header(_ name: String) -> String {
                    lines.dropFirst().first { $0.lowercased().hasPrefix(name + ":") }
                        .map { String($0.dropFirst(name.count + 1)).trimmingCharacters(in: .whitespaces) } ?? ""
                }
                let close = header("connection").lowercased() == "close"
                let payload = body + "\n"
                var status = "200 OK", extra = ""
                if path == "/redirect" {
                    status = "302 Found"
                    extra = "Location: http://\(header("host"))/login\r\n"
                }
                let response = "HTTP/1.1 \(status)\r\nContent-Length: \(payload.utf8.count)\r\nX-Task-Id: \(body)\r\n"
                    + "X-Seen-Path: \(path)\r\nX-Seen-Host: \(header("host"))\r\nX-Seen-Forwarded-For: \(header("x-forwarded-for"))\r\n"
                    + extra + (close ? "Connection: close\r\n" : "") + "\r\n" + payload
                guard (try? conn.write(response)) != nil else { return }
                if close { return }
            }
        }
    }

    static func find(_ hay: [UInt8], _ needle: [UInt8]) -> Int? {
        guard hay.count >= needle.count else { return nil }
        for i in 0...(hay.count - needle.count) where hay[i] == needle[0] {
            if Array(hay[i..<(i + needle.count)]) == needle { return i }
        }
        return nil
    }

    func stop() {
        stopped.set()
        listener.shutdown()
    }

    deinit { stop() }
}


/// One HTTP/1.1 GET over a fresh connection to 127.0.0.1; returns (status, body). Runs off the
/// cooperative pool: blocking there (2 threads on CI) starves every other test.
func httpGet(port: Int, path: String = "/", host: String? = nil, headers: [String: String] = [:], timeout: Double = 3) async throws -> (status: Int, body: String) {
    try await Blocking.run { try httpGetBlocking(port: port, path: path, host: host, headers: headers, timeout: timeout) }
}

/// The bodies (or `status N`) of `count` GETs over new connections.
func responses(port: Int, host: String? = nil, count: Int) async -> Set<String> {
    (try? await Blocking.run {
        var out = Set<String>()
        for _ in 0..<count {
            if let r = try? httpGetBlocking(port: port, host: host) { out.insert(r.status == 200 ? r.body : "status \(r.status)") }
        }
        return out
    }) ?? []
}

/// A full HTTP exchange (off the cooperative pool): status, headers (lower-cased names), body.
struct HTTPResult: Sendable {
    var status: Int
    var headers: [String: String]
    var body: String
}

func httpRequest(port: Int, path: String = "/", host: String? = nil, headers: [String: String] = [:],
                 address: String = "127.0.0.1", timeout: Double = 3) async throws -> HTTPResult {
    try await Blocking.run {
        let conn = try Connection.tcp(host: address, port: port, timeout: timeout)
        defer { conn.close() }
        var req = "GET \(path) HTTP/1.1\r\nHost: \(host ?? "127.0.0.1")\r\nConnection: close\r\n"
        for (k, v) in headers { req += "\(k): \(v)\r\n" }
        try conn.write(req + "\r\n")
        return try parseResponse(String(decoding: try conn.readToEnd(timeout: timeout), as: UTF8.self))
    }
}

func parseResponse(_ raw: String) throws -> HTTPResult {
    guard let split = raw.range(of: "\r\n\r\n") else { throw RuntimeError("incomplete HTTP response: \(raw.prefix(100))") }
    let lines = raw[..<split.lowerBound].split(separator: "\r\n")
    guard let first = lines.first, first.hasPrefix("HTTP/1."), let status = Int(first.split(separator: " ")[1]) else {
        throw RuntimeError("bad HTTP response: \(raw.prefix(100))")
    }
    var headers: [String: String] = [:]
    for l in lines.dropFirst() {
        guard let c = l.firstIndex(of: ":") else { continue }
        let name = l[..<c].lowercased()
        let value = l[l.index(after: c)...].trimmingCharacters(in: .whitespaces)
        headers[name] = headers[name].map { $0 + ", " + value } ?? value
    }
    return HTTPResult(status: status, headers: headers, body: String(raw[split.upperBound...]).trimmingCharacters(in: .whitespacesAndNewlines))
}

func httpGetBlocking(port: Int, path: String = "/", host: String? = nil, headers: [String: String] = [:], timeout: Double = 3) throws -> (status: Int, body: String) {
    let conn = try Connection.tcp(host: "127.0.0.1", port: port, timeout: timeout)
    defer { conn.close() }
    var req = "GET \(path) HTTP/1.1\r\nHost: \(host ?? "127.0.0.1")\r\nConnection: close\r\n"
    for (k, v) in headers { req += "\(k): \(v)\r\n" }
    try conn.write(req + "\r\n")
    let raw = String(decoding: try conn.readToEnd(timeout: timeout), as: UTF8.self)
    guard let line = raw.split(separator: "\r\n").first, line.hasPrefix("HTTP/1."),
          let status = Int(line.split(separator: " ")[1]) else {
        throw RuntimeError("bad HTTP response: \(raw.prefix(100))")
    }
    let body = raw.range(of: "\r\n\r\n").map { String(raw[$0.upperBound...]) } ?? ""
    return (status, body.trimmingCharacters(in: .whitespacesAndNewlines))
}

/// Marathon models for tests.
func testApp(_ id: String, servicePort: Int, tasks: [(String, Int)], labels: [String: String] = ["HAPROXY_GROUP": "external"],
             instances: Int? = nil, healthChecks: [MarathonHealthCheck] = []) -> MarathonApp {
    MarathonApp(id: id, labels: labels, instances: instances ?? tasks.count, version: "2026-01-01T00:00:00.000Z",
                configChangedAt: "2026-01-01T00:00:00.000Z", servicePorts: [servicePort], healthChecks: healthChecks,
                tasks: tasks.map { MarathonTask(id: $0.0, appId: id, host: "127.0.0.1", ports: [$0.1], state: .running) })
}
