#if canImport(Glibc)
import Glibc
#endif
import ServiceRouterCore
import Synchronization

/// The controller's own HTTP endpoint (`--listen`: /metrics, /healthz, /status): one thread and a
/// `poll` loop, whatever the number of clients, so it can neither be starved nor exhaust threads.
/// - At most `maxConnections` connections; one more evicts the connection idle longest, so idle
///   clients never keep a liveness probe out.
/// - A request must arrive whole within `requestTimeout` seconds of its first byte (slow clients
///   cannot hold a connection open byte by byte); idle keep-alive connections close after
///   `idleTimeout`.
/// - Handlers run on the loop thread: they must be quick (they are: counters, and reads bounded
///   by their own timeouts).
public final class StatusServer: Sendable {
    public struct Options: Sendable {
        public var maxConnections = 128
        public var idleTimeout = 10.0
        public var requestTimeout = 5.0
        public var limits = HTTPRequestParser.Limits(maxHeadBytes: 16 * 1024, maxHeaderCount: 50, maxBodyBytes: 0)
        public init() {}
    }

    public typealias Handler = @Sendable (HTTPServerRequest) -> HTTPServerResponse

    public let port: Int
    public let host: String
    private let wake: (read: Int32, write: Int32)
    private let running = Atomic<Bool>(true)
    private let finished = Mutex<Bool>(false)

    /// Binds and starts the loop thread; throws when the address cannot be bound or no thread can
    /// be started (never a crash).
    public static func start(host: String, port: Int, options: Options = Options(), handler: @escaping Handler) throws -> StatusServer {
        let listener = try Listener.tcp(host: host, port: port, backlog: 128)
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw SystemError("pipe", target: "status server") }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC); _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        _ = fcntl(listener.fd, F_SETFL, fcntl(listener.fd, F_GETFL) | O_NONBLOCK)
        let server = StatusServer(port: listener.port, host: host, wake: (fds[0], fds[1]))
        let loop = Loop(listener: listener, wake: fds[0], options: options, handler: handler)
        let box = LoopBox(loop)
        do {
            try Blocking.start(name: "status:\(listener.port)") {
                box.loop.run(while: { server.running.load(ordering: .acquiring) })
                server.finished.withLock { $0 = true }
            }
        } catch {
            for fd in fds { close(fd) }
            throw error
        }
        return server
    }

    private init(port: Int, host: String, wake: (read: Int32, write: Int32)) {
        self.port = port
        self.host = host
        self.wake = wake
    }

    /// Stops the loop (every connection closed) and waits a moment for it.
    public func stop() {
        guard running.exchange(false, ordering: .acquiringAndReleasing) else { return }
        var byte: UInt8 = 1
        _ = write(wake.write, &byte, 1)
        for _ in 0..<200 where !finished.withLock({ $0 }) { usleep(5_000) }
        close(wake.write)
    }

    private final class LoopBox: @unchecked Sendable {
        let loop: Loop
        init(_ loop: Loop) { self.loop = loop }
    }

    /// The loop's state, owned by its thread alone.
    private final class Loop {
        struct Client {
            let connection: Connection
            var parser: HTTPRequestParser
            var output: [UInt8] = []
            var closeAfterWrite = false
            /// When the request being read began (its first byte), or when the connection went idle.
            var since: Double
            var reading = false
            let remote: String
        }
        let listener: Listener
        let wake: Int32
        let options: Options
        let handler: Handler
        var clients: [Int32: Client] = [:]

        init(listener: Listener, wake: Int32, options: Options, handler: @escaping Handler) {
            self.listener = listener
            self.wake = wake
            self.options = options
            self.handler = handler
        }

        func run(while running: () -> Bool) {
            defer {
                for c in clients.values { c.connection.close() }
                clients = [:]
                close(wake)
            }
            while running() {
                var fds = [pollfd(fd: listener.fd, events: Int16(POLLIN), revents: 0), pollfd(fd: wake, events: Int16(POLLIN), revents: 0)]
                let order = Array(clients.keys)
                for fd in order {
                    let c = clients[fd]!
                    fds.append(pollfd(fd: fd, events: Int16(c.output.isEmpty ? POLLIN : POLLOUT), revents: 0))
                }
                let now = Monotonic.now()
                let timeoutMs = Int32(max(10, min(1000, nextTimeout(now: now) * 1000)))
                let n = poll(&fds, nfds_t(fds.count), timeoutMs)
                if n < 0 && errno != EINTR { usleep(10_000) }
                if fds[1].revents != 0 { return }
                for (i, fd) in order.enumerated() where fds[i + 2].revents != 0 { service(fd, revents: fds[i + 2].revents) }
                if fds[0].revents & Int16(POLLIN) != 0 { acceptAll() }
                expire(now: Monotonic.now())
            }
        }

        func nextTimeout(now: Double) -> Double {
            var next = 1.0
            for c in clients.values {
                let limit = c.reading ? options.requestTimeout : options.idleTimeout
                next = min(next, c.since + limit - now)
            }
            return next
        }

        func acceptAll() {
            while true {
                let fd = accept(listener.fd, nil, nil)
                if fd < 0 { return }  // EAGAIN (drained), EMFILE/ENFILE (out of descriptors): try again later
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
                if clients.count >= options.maxConnections, let idlest = clients.min(by: { rank($0.value) < rank($1.value) })?.key {
                    drop(idlest)
                }
                let connection = Connection(fd: fd, peer: "status client")
                clients[fd] = Client(connection: connection, parser: HTTPRequestParser(limits: options.limits),
                                     since: Monotonic.now(), remote: HTTPServer.peerAddress(fd: fd))
            }
        }

        /// Which connection to evict first: idle ones, the longest idle first.
        func rank(_ c: Client) -> (Int, Double) { (c.reading || !c.output.isEmpty ? 1 : 0, c.since) }

        func drop(_ fd: Int32) {
            clients.removeValue(forKey: fd)?.connection.close()
        }

        func expire(now: Double) {
            for (fd, c) in clients {
                let limit = c.reading ? options.requestTimeout : options.idleTimeout
                if now - c.since > limit { drop(fd) }
            }
        }

        func service(_ fd: Int32, revents: Int16) {
            guard var c = clients[fd] else { return }
            if revents & Int16(POLLERR | POLLNVAL) != 0 { return drop(fd) }
            if !c.output.isEmpty {
                let n = c.output.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n < 0 { return errno == EAGAIN ? () : drop(fd) }
                c.output.removeFirst(n)
                if c.output.isEmpty && c.closeAfterWrite { return drop(fd) }
                clients[fd] = c
                if !c.output.isEmpty { return }
            } else {
                var buffer = [UInt8](repeating: 0, count: 16 * 1024)
                let n = buffer.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress, $0.count, 0) }
                if n == 0 || (n < 0 && errno != EAGAIN) { return drop(fd) }
                if n > 0 {
                    if !c.reading {
                        c.reading = true
                        c.since = Monotonic.now()
                    }
                    c.parser.append(buffer[..<n])
                }
            }
            // Answer every complete request (one at a time: the next waits for the output to drain).
            while c.output.isEmpty && !c.closeAfterWrite {
                switch c.parser.next() {
                case .needMoreData:
                    if c.parser.isIdle { c.reading = false }
                    clients[fd] = c
                    return
                case .sendContinue:
                    c.output = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)
                case .error(let error):
                    var headers = HTTPHeaders()
                    headers.set("Content-Type", "text/plain; charset=utf-8")
                    let body = Array((error.description + "\n").utf8)
                    c.output = HTTPServer.head(status: error.status, headers: headers, length: body.count, keepAlive: false) + body
                    c.closeAfterWrite = true
                case .request(let head):
                    let response = handler(HTTPServerRequest(head: head, remoteAddress: c.remote))
                    var body: [UInt8] = []
                    if case .bytes(let b) = response.body { body = b }
                    c.output = HTTPServer.head(status: response.status, headers: response.headers, length: body.count,
                                               keepAlive: head.keepAlive, http10: head.version.minor == 0)
                    if head.method != "HEAD" { c.output += body }
                    c.closeAfterWrite = !head.keepAlive
                    c.reading = false
                    c.since = Monotonic.now()
                }
            }
            clients[fd] = c
        }
    }
}
