#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import ServiceRouterCore
import Synchronization

/// A request as the server hands it to a handler.
public struct HTTPServerRequest: Sendable {
    public var head: ParsedHTTPRequest
    /// The client's IP address (numeric), or "" when unknown.
    public var remoteAddress: String

    public init(head: ParsedHTTPRequest, remoteAddress: String = "") {
        self.head = head
        self.remoteAddress = remoteAddress
    }

    public var method: String { head.method }
    public var target: String { head.target }
    public var path: String { head.path }
    public var headers: HTTPHeaders { head.headers }
    public var body: [UInt8] { head.body }
    public func queryValues(_ name: String) -> [String] { head.queryValues(name) }
    public func queryValue(_ name: String) -> String? { head.queryValue(name) }
}

/// What a handler answers: a complete body, or a stream written by a closure on the
/// connection's own thread (server-sent events, long downloads).
public struct HTTPServerResponse: Sendable {
    public enum Body: Sendable {
        case bytes([UInt8])
        /// The server writes the head with `Connection: close` and no length, runs the closure,
        /// then closes the connection. The closure should return soon after `isOpen` turns false.
        case stream(@Sendable (StreamWriter) -> Void)
    }

    public var status: Int
    public var headers: HTTPHeaders
    public var body: Body

    public init(status: Int, headers: HTTPHeaders = HTTPHeaders(), body: Body = .bytes([])) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public static func stream(_ status: Int, _ headers: HTTPHeaders,
                              _ writer: @escaping @Sendable (StreamWriter) -> Void) -> HTTPServerResponse {
        HTTPServerResponse(status: status, headers: headers, body: .stream(writer))
    }

    public static func bytes(_ body: [UInt8], status: Int = 200, contentType: String,
                             headers: HTTPHeaders = HTTPHeaders()) -> HTTPServerResponse {
        var h = headers
        h.set("Content-Type", contentType)
        return HTTPServerResponse(status: status, headers: h, body: .bytes(body))
    }

    public static func text(_ text: String, status: Int = 200, headers: HTTPHeaders = HTTPHeaders()) -> HTTPServerResponse {
        bytes(Array(text.utf8), status: status, contentType: "text/plain; charset=utf-8", headers: headers)
    }

    public static func json(_ body: [UInt8], status: Int = 200, headers: HTTPHeaders = HTTPHeaders()) -> HTTPServerResponse {
        bytes(body, status: status, contentType: "application/json", headers: headers)
    }

    /// The standard reason phrase for `status` ("" when unknown: the status line stays valid).
    public static func reason(_ status: Int) -> String {
        switch status {
        case 100: "Continue"
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 204: "No Content"
        case 301: "Moved Permanently"
        case 302: "Found"
        case 303: "See Other"
        case 304: "Not Modified"
        case 307: "Temporary Redirect"
        case 308: "Permanent Redirect"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 406: "Not Acceptable"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 413: "Payload Too Large"
        case 415: "Unsupported Media Type"
        case 422: "Unprocessable Entity"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        case 505: "HTTP Version Not Supported"
        default: ""
        }
    }
}

/// The writing end of a streamed response. Owned by the connection's thread; `close()` and
/// `isOpen` may be called from any thread.
public final class StreamWriter: Sendable {
    private let fd: Int32
    /// false once the stream is finished, aborted, or the server stops: after that `fd` must not
    /// be touched (the server may have closed and the kernel reused it).
    private let open = Mutex<Bool>(true)

    init(fd: Int32) { self.fd = fd }

    /// Writes all of `bytes`; false when the client went away or the stream was closed.
    @discardableResult
    public func write(_ bytes: [UInt8]) -> Bool {
        guard open.withLock({ $0 }) else { return false }
        if Connection.sendAll(fd, bytes) != nil {
            close()
            return false
        }
        return true
    }

    @discardableResult
    public func write(_ text: String) -> Bool { write(Array(text.utf8)) }

    /// False once the client closed its side, the stream was closed, or the server is stopping.
    public var isOpen: Bool {
        open.withLock { isOpen in
            guard isOpen else { return false }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN) | pollReadHangUp, revents: 0)
            guard Glibc.poll(&pfd, 1, 0) > 0 else { return true }
            if pfd.revents & (Int16(POLLHUP) | Int16(POLLERR) | pollReadHangUp | Int16(POLLNVAL)) != 0 {
                return false
            }
            // Readable: either the peer closed (recv returns 0) or it sent bytes we ignore.
            var byte: UInt8 = 0
            let n = recv(fd, &byte, 1, Int32(MSG_PEEK) | Int32(MSG_DONTWAIT))
            return n != 0
        }
    }

    /// Ends the stream: a write blocked on a full socket buffer returns at once.
    public func close() {
        open.withLock { isOpen in
            if isOpen {
                isOpen = false
                _ = Glibc.shutdown(fd, Int32(SHUT_RDWR))
            }
        }
    }

    /// Called by the server before it closes the descriptor.
    fileprivate func finish() {
        open.withLock { $0 = false }
    }
}

/// A small threaded HTTP/1.1 server: an accept loop on its own thread, one thread per
/// connection, keep-alive and pipelining, bounded request size and connection count.
/// Generic on purpose: the simulator's REST API and event stream, task listeners, and a
/// Prometheus `/metrics` endpoint all sit on it.
public final class HTTPServer: Sendable {
    public struct Options: Sendable {
        public var limits: HTTPRequestParser.Limits
        /// Connections beyond this get a 503 and are closed.
        public var maxConnections: Int
        /// An idle keep-alive connection is closed after this long (Jetty's default is 30 s).
        public var idleTimeout: Double
        /// A request whose bytes trickle in for longer than this gets a 408.
        public var requestTimeout: Double
        public var name: String
        public var logger: Logger

        public init(limits: HTTPRequestParser.Limits = .init(), maxConnections: Int = 512, idleTimeout: Double = 30,
                    requestTimeout: Double = 10, name: String = "http", logger: Logger = .silent) {
            self.limits = limits
            self.maxConnections = maxConnections
            self.idleTimeout = idleTimeout
            self.requestTimeout = requestTimeout
            self.name = name
            self.logger = logger
        }
    }

    public typealias Handler = @Sendable (HTTPServerRequest) -> HTTPServerResponse

    /// How often blocked loops look at the stop flag: bounds how long stop() waits.
    static let pollInterval = 0.1
    /// Bodies from this size on are written after the head instead of being copied behind it
    /// (accepted connections have TCP_NODELAY, so the split costs no delay).
    static let separateBodyWrite = 64 * 1024

    public let port: Int
    public let host: String
    private let options: Options
    private let handler: Handler
    private let listener: Mutex<Listener?>
    private let listenerFD: Int32
    private let registry = Mutex(Registry())

    private struct Registry {
        var stopping = false
        var acceptLoopRunning = true
        var nextID = 0
        /// Open connections by id: stop() shuts each down to wake its thread.
        var connections: [Int: Int32] = [:]
        var writers: [Int: StreamWriter] = [:]
    }

    private init(listener: Listener, host: String, options: Options, handler: @escaping Handler) {
        self.listener = Mutex(listener)
        self.listenerFD = listener.fd
        self.port = listener.port
        self.host = host
        self.options = options
        self.handler = handler
    }

    /// Binds `host:port` (port 0: an ephemeral port, read it back from `port`) and starts serving.
    public static func start(host: String = "127.0.0.1", port: Int = 0, options: Options = Options(),
                             handler: @escaping Handler) throws -> HTTPServer {
        let listener = try Listener.tcp(host: host, port: port)
        let server = HTTPServer(listener: listener, host: host, options: options, handler: handler)
        let box = UncheckedBox(listener)
        Blocking.detach(name: "\(options.name)-accept:\(listener.port)") { server.acceptLoop(box.value) }
        return server
    }

    /// `http://host:port`
    public var url: String { "http://\(host):\(port)" }

    public var openConnectionCount: Int { registry.withLock { $0.connections.count } }

    /// Stops accepting, closes every connection (streams see `isOpen == false`), and waits up to
    /// `timeout` seconds for the connection threads to finish.
    public func stop(timeout: Double = 1) {
        let writers = registry.withLock { r -> [StreamWriter]? in
            guard !r.stopping else { return nil }
            r.stopping = true
            for fd in r.connections.values { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }
            return Array(r.writers.values)
        }
        // Stopped before: the listener may be closed and its descriptor number reused.
        guard let writers else { return }
        _ = Glibc.shutdown(listenerFD, Int32(SHUT_RDWR))
        for w in writers { w.close() }
        let deadline = Monotonic.now() + timeout
        while Monotonic.now() < deadline {
            let done = registry.withLock { !$0.acceptLoopRunning && $0.connections.isEmpty }
            if done { break }
            usleep(5_000)
        }
        listener.withLock { $0 = nil }
    }

    private var isStopping: Bool { registry.withLock { $0.stopping } }

    private func acceptLoop(_ listener: Listener) {
        defer { registry.withLock { $0.acceptLoopRunning = false } }
        while !isStopping {
            let connection: Connection
            do {
                guard let c = try listener.accept(timeout: Self.pollInterval) else { continue }
                connection = c
            } catch {
                if isStopping { return }
                options.logger.warning("accept failed", [("server", options.name), ("error", "\(error)")])
                usleep(10_000)
                continue
            }
            let id: Int? = registry.withLock { r in
                guard !r.stopping, r.connections.count < options.maxConnections else { return nil }
                r.nextID += 1
                r.connections[r.nextID] = connection.fd
                return r.nextID
            }
            guard let id else {
                let box = UncheckedBox(connection)
                Blocking.detach(name: "\(options.name)-reject") {
                    try? box.value.write(Self.head(status: 503, headers: HTTPHeaders(), length: 0, keepAlive: false))
                    Self.drainBeforeClose(box.value)
                    box.value.close()
                }
                continue
            }
            let box = UncheckedBox(connection)
            Blocking.detach(name: "\(options.name)-conn") { [self] in
                serve(box.value, id: id)
                registry.withLock { r in
                    r.connections[id] = nil
                    r.writers[id] = nil
                }
                box.value.close()
            }
        }
    }

    private func serve(_ connection: Connection, id: Int) {
        let remote = Self.peerAddress(fd: connection.fd)
        var parser = HTTPRequestParser(limits: options.limits)
        var waitingSince = Monotonic.now()
        // Bounded: every pass either handles a request, reads bytes, or advances toward a timeout.
        while true {
            switch parser.next() {
            case .needMoreData:
                if isStopping { return }
                let chunk: [UInt8]?
                do {
                    chunk = try connection.read(timeout: Self.pollInterval)
                } catch is TimeoutError {
                    let waited = Monotonic.now() - waitingSince
                    if parser.isIdle {
                        if waited > options.idleTimeout { return }
                    } else if waited > options.requestTimeout {
                        try? connection.write(Self.head(status: 408, headers: HTTPHeaders(), length: 0, keepAlive: false))
                        return
                    }
                    continue
                } catch {
                    return
                }
                guard let chunk else { return }
                parser.append(chunk)
            case .sendContinue:
                guard (try? connection.write("HTTP/1.1 100 Continue\r\n\r\n")) != nil else { return }
            case .error(let error):
                options.logger.debug("bad request", [("server", options.name), ("error", error.description)])
                let body = Array((error.description + "\n").utf8)
                var headers = HTTPHeaders()
                headers.set("Content-Type", "text/plain; charset=utf-8")
                try? connection.write(Self.head(status: error.status, headers: headers, length: body.count, keepAlive: false) + body)
                Self.drainBeforeClose(connection)
                return
            case .request(let head):
                let response = handler(HTTPServerRequest(head: head, remoteAddress: remote))
                switch response.body {
                case .bytes(let body):
                    let keepAlive = head.keepAlive && !isStopping
                    var bytes = Self.head(status: response.status, headers: response.headers, length: body.count,
                                          keepAlive: keepAlive, http10: head.version.minor == 0)
                    var written = true
                    if head.method == "HEAD" {
                        written = (try? connection.write(bytes)) != nil
                    } else if body.count < Self.separateBodyWrite {
                        bytes += body
                        written = (try? connection.write(bytes)) != nil
                    } else {
                        // Megabytes (a simulated /v2/apps): no copy of the body behind the head.
                        written = (try? connection.write(bytes)) != nil && (try? connection.write(body)) != nil
                    }
                    guard written, keepAlive else { return }
                    waitingSince = Monotonic.now()
                case .stream(let body):
                    let writer = StreamWriter(fd: connection.fd)
                    let accepted = registry.withLock { r -> Bool in
                        guard !r.stopping else { return false }
                        r.writers[id] = writer
                        return true
                    }
                    guard accepted else { return }
                    defer { writer.finish() }
                    var headers = response.headers
                    headers.set("Connection", "close")
                    guard writer.write(Self.head(status: response.status, headers: headers, length: nil, keepAlive: false)) else {
                        return
                    }
                    body(writer)
                    return
                }
            }
        }
    }

    /// Closing a socket with unread input makes the kernel send a reset, which can reach the
    /// client before our error response: stop writing and drain briefly (bounded) before closing.
    static func drainBeforeClose(_ connection: Connection) {
        connection.shutdownWrite()
        let deadline = Monotonic.now() + 0.5
        var drained = 0
        while Monotonic.now() < deadline && drained < 1 << 20 {
            guard let chunk = try? connection.read(timeout: max(0.01, deadline - Monotonic.now())) else { break }
            drained += chunk.count
        }
    }

    /// Status line and headers. `length` nil: no Content-Length (a stream ended by close).
    static func head(status: Int, headers: HTTPHeaders, length: Int?, keepAlive: Bool, http10: Bool = false) -> [UInt8] {
        var text = "HTTP/1.1 \(status) \(HTTPServerResponse.reason(status))\r\n"
        var h = headers
        if let length, !h.contains("Content-Length") { h.set("Content-Length", String(length)) }
        if !keepAlive {
            h.set("Connection", "close")
        } else if http10 {
            h.set("Connection", "keep-alive")
        }
        for field in h { text += "\(field.name): \(field.value)\r\n" }
        text += "\r\n"
        return Array(text.utf8)
    }

    static func peerAddress(fd: Int32) -> String {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &len) }
        }
        guard rc == 0 else { return "" }
        return SocketAddress(storage: storage, length: len).ip
    }
}

/// POLLRDHUP (Linux): the peer shut down its writing side. Glibc's module does not export it.
private let pollReadHangUp: Int16 = 0x2000

/// Hands a non-Sendable object to exactly one other thread, which owns it from then on.
private struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
