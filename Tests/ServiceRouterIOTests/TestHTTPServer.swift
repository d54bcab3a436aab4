import Foundation
import Synchronization
import ServiceRouterCore
@testable import ServiceRouterIO

/// A request as the test server saw it.
struct RecordedRequest: Sendable {
    var method: String
    /// Path and query, as sent.
    var target: String
    var headers: HTTPHeaders
    /// Which connection (0-based, in accept order) carried it.
    var connection: Int

    var path: String { String(target.split(separator: "?", maxSplits: 1).first ?? "") }
    var queryItems: [URLQueryItem] { URLComponents(string: "http://x" + target)?.queryItems ?? [] }
}

/// The server side of one connection, handed to a behaviour on the connection's own thread.
final class Peer {
    let connection: Connection
    let server: TestHTTPServer

    init(connection: Connection, server: TestHTTPServer) {
        self.connection = connection
        self.server = server
    }

    func send(_ text: String) { send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) { try? connection.write(bytes) }

    /// A complete response with Content-Length.
    func respond(_ status: Int, _ reason: String = "", headers: [(String, String)] = [], body: String = "") {
        var text = "HTTP/1.1 \(status) \(reason)\r\n"
        for (n, v) in headers { text += "\(n): \(v)\r\n" }
        text += "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body
        send(text)
    }

    /// Marathon's event stream head: no length, no chunking, close-delimited.
    func startEventStream() {
        send("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\nServer: Jetty(9.3.z)\r\n\r\n")
    }

    /// Waits up to `seconds`, returning early (false) if the server stops or the client hangs up.
    @discardableResult
    func pause(_ seconds: Double) -> Bool {
        let end = Monotonic.now() + seconds
        while Monotonic.now() < end {
            if server.isStopped { return false }
            do {
                if try connection.read(timeout: min(0.02, max(0.001, end - Monotonic.now()))) == nil {
                    server.noteClientClosed()
                    return false
                }
            } catch is TimeoutError {
                continue
            } catch {
                server.noteClientClosed()
                return false
            }
        }
        return true
    }

    /// Says nothing until the server stops or the client hangs up.
    func hang() { while pause(0.05) {} }
}

/// A tiny HTTP/1.1 server on 127.0.0.1 (ephemeral port) for tests. Each connection runs
/// `behaviour` on its own thread; requests are recorded.
final class TestHTTPServer: Sendable {
    typealias Behaviour = @Sendable (RecordedRequest, Peer) -> Void

    let listener: Listener
    private let behaviour: Behaviour
    private let stopped = Atomic<Bool>(false)
    private let recorded = Mutex<[RecordedRequest]>([])
    private let accepted = Atomic<Int>(0)
    private let clientCloses = Mutex<[Double]>([])

    init(_ behaviour: @escaping Behaviour) throws {
        listener = try Listener.tcp(host: "127.0.0.1", port: 0)
        self.behaviour = behaviour
        Blocking.detach(name: "test-http-accept") { [self] in acceptLoop() }
    }

    deinit { stop() }

    var port: Int { listener.port }
    var url: URL { URL(string: "http://127.0.0.1:\(port)")! }
    func url(_ pathAndQuery: String) -> URL { URL(string: "http://127.0.0.1:\(port)\(pathAndQuery)")! }

    var requests: [RecordedRequest] { recorded.withLock { $0 } }
    var connectionCount: Int { accepted.load(ordering: .relaxed) }
    /// Monotonic times at which a client closed a connection the server was holding open.
    var clientClosedAt: [Double] { clientCloses.withLock { $0 } }
    var isStopped: Bool { stopped.load(ordering: .relaxed) }

    func stop() {
        if !stopped.exchange(true, ordering: .relaxed) { listener.shutdown() }
    }

    func noteClientClosed() { clientCloses.withLock { $0.append(Monotonic.now()) } }

    private func acceptLoop() {
        while !isStopped {
            guard let connection = try? listener.accept(timeout: 0.05) else { continue }
            let index = accepted.wrappingAdd(1, ordering: .relaxed).oldValue
            let handoff = Handoff(connection)
            Blocking.detach(name: "test-http-conn") { [self] in serve(handoff.take(), index: index) }
        }
    }

    private func serve(_ connection: Connection, index: Int) {
        defer { connection.close() }
        guard let request = readRequest(connection, index: index) else { return }
        recorded.withLock { $0.append(request) }
        behaviour(request, Peer(connection: connection, server: self))
    }

    private func readRequest(_ connection: Connection, index: Int) -> RecordedRequest? {
        var buffer: [UInt8] = []
        let terminator: [UInt8] = [13, 10, 13, 10]
        let deadline = Monotonic.now() + 5
        while Monotonic.now() < deadline, !isStopped {
            if buffer.count >= 4, let end = buffer.indices.dropLast(3).first(where: { Array(buffer[$0..<($0 + 4)]) == terminator }) {
                let lines = String(decoding: buffer[..<end], as: UTF8.self).components(separatedBy: "\r\n")
                let parts = lines[0].split(separator: " ")
                guard parts.count == 3 else { return nil }
                var headers = HTTPHeaders()
                for line in lines.dropFirst() {
                    guard let colon = line.firstIndex(of: ":") else { continue }
                    headers.add(String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
                }
                return RecordedRequest(method: String(parts[0]), target: String(parts[1]), headers: headers, connection: index)
            }
            do {
                guard let chunk = try connection.read(timeout: 0.05) else { return nil }
                buffer += chunk
            } catch is TimeoutError {
                continue
            } catch {
                return nil
            }
        }
        return nil
    }
}

/// Moves a connection to the thread that serves it (only that thread uses it afterwards).
private final class Handoff: @unchecked Sendable {
    private var connection: Connection?
    init(_ connection: Connection) { self.connection = connection }
    func take() -> Connection {
        defer { connection = nil }
        return connection!
    }
}

/// A port with nothing listening on it (bound, then closed).
/// A port nobody listens on, from a counter in 20000-20999: outside the kernel's ephemeral range
/// (where every other test's listeners get their ports) and the simulator's task ports, so a port
/// handed out here is not grabbed by another test between the check and its use.
func closedPort() throws -> Int {
    for _ in 0..<1000 {
        let candidate = 20000 + closedPortCounter.add(1, ordering: .relaxed).oldValue % 1000
        if (try? Listener.tcp(host: "0.0.0.0", port: candidate)) != nil { return candidate }
    }
    throw TimeoutError("find a free port", target: "20000-20999")
}

private let closedPortCounter = Atomic<Int>(Int(getpid()) * 13 % 1000)

/// Runs `body` with a time limit; nil when it did not finish in time (it is then cancelled).
func withTimeLimit<T: Sendable>(_ seconds: Double, _ body: @escaping @Sendable () async throws -> T) async throws -> T? {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try? await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
            return nil
        }
        defer { group.cancelAll() }
        return try await group.next() ?? nil
    }
}

/// A flag shared between a test and its server's threads.
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set() { value.store(true, ordering: .relaxed) }
}

/// Runs slow blocking setup (key generation, child processes) on a thread of its own, so that it
/// never blocks the cooperative pool the timing-sensitive tests run on.
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Blocking.detach(name: "test-setup") { continuation.resume(with: Result { try body() }) }
    }
}
