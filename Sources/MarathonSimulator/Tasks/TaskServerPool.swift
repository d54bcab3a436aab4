#if canImport(Glibc)
import CEpoll
import Glibc
#endif
import FoundationEssentials
import ServiceRouterCore
import ServiceRouterIO
import Synchronization

/// Serves every simulated task's HTTP listener from a few threads, so 10,000 tasks cost 10,000
/// listening descriptors and no thread each. Each worker owns a share of the listeners and their
/// connections and one epoll instance (through the CEpoll target: Glibc's Swift module has no
/// epoll): a listener is added when it starts serving and deleted before it closes, a connection
/// when it is accepted, so a request costs the same however many tasks there are. EPOLLOUT is
/// asked for only while a response is stuck in a full socket buffer.
///
/// A task answers any request with 200 and `<taskId>\n` plus an `X-Task-Id` header; its health
/// path answers 503 while its health is failed on purpose.
final class TaskServerPool: Sendable {
    struct Token: Hashable, Sendable {
        let worker: Int
        let id: UInt64
    }

    private let workers: [Worker]
    private let nextWorker = Atomic<Int>(0)

    init(threads: Int, logger: Logger) {
        Self.raiseDescriptorLimit()
        let count = max(1, min(threads, 16))
        workers = (0..<count).map { Worker(index: $0, logger: logger) }
        for w in workers { w.start() }
    }

    /// 10,000 tasks need 10,000 listening descriptors: lift the soft limit to the hard one.
    static func raiseDescriptorLimit() {
        var limit = rlimit()
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        if getrlimit(resource, &limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            _ = setrlimit(resource, &limit)
        }
    }

    /// Takes ownership of `listener`; it does not accept connections until `activate`.
    func hold(_ listener: Listener, taskId: String, healthPath: String) -> Token {
        let i = (nextWorker.add(1, ordering: .relaxed).oldValue & Int.max) % workers.count
        return workers[i].hold(listener, taskId: taskId, healthPath: healthPath)
    }

    /// Starts serving: a process that came up.
    func activate(_ token: Token) { workers[token.worker].setServing(token.id, true) }

    func setHealthy(_ token: Token, _ healthy: Bool) { workers[token.worker].setHealthy(token.id, healthy) }

    /// Closes the listener and its connections: a process that exited. Connects fail at once.
    func remove(_ token: Token) { workers[token.worker].remove(token.id) }

    /// Stops the worker threads and closes every descriptor. Returns within ~0.3 s.
    func stop() {
        for w in workers { w.requestStop() }
        for w in workers { w.join(timeout: 1) }
    }

    var listenerCount: Int { workers.reduce(0) { $0 + $1.listenerCount } }
    var connectionCount: Int { workers.reduce(0) { $0 + $1.connectionCount } }
}

private final class Worker: Sendable {
    let index: Int
    let logger: Logger
    let state = Mutex(WorkerState())
    /// The worker's epoll instance. Other threads add and delete listeners in it directly
    /// (epoll_ctl is thread-safe); the worker thread alone waits on it.
    let epoll: Int32
    /// Wakes `epoll_wait` for stop().
    let wakeRead: Int32
    let wakeWrite: Int32
    let wakePending = Atomic<Bool>(false)

    static let maxConnectionsPerWorker = 4096
    static let idleTimeout = 60.0
    /// The event token of the wake pipe; listener and connection ids start at 1 and are never
    /// reused, so an event for a descriptor closed meanwhile finds no entry and is dropped.
    static let wakeToken: UInt64 = 0
    static let maxEvents: Int32 = 256

    init(index: Int, logger: Logger) {
        self.index = index
        self.logger = logger
        epoll = epoll_create1(CEPOLL_CLOEXEC)
        if epoll < 0 { logger.error("task server epoll_create1 failed", [("errno", "\(errno)")]) }
        var fds: [Int32] = [0, 0]
        if pipe(&fds) == 0 {
            for fd in fds {
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            }
            wakeRead = fds[0]
            wakeWrite = fds[1]
        } else {
            wakeRead = -1
            wakeWrite = -1
        }
        if wakeRead >= 0 {
            control(CEPOLL_CTL_ADD, fd: wakeRead, events: CEPOLL_IN, token: Self.wakeToken, what: "wake pipe")
        }
    }

    func start() {
        Blocking.detach(name: "sim-tasks-\(index)") { self.loop() }
    }

    /// Coalesced: one byte in the pipe is enough however many changes come before the worker runs.
    func wake() {
        guard wakePending.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return }
        var b: UInt8 = 1
        _ = Glibc.write(wakeWrite, &b, 1)
    }

    /// epoll_ctl with a warning that names the descriptor's role when it fails.
    @discardableResult
    private func control(_ op: Int32, fd: Int32, events: UInt32, token: UInt64, what: String) -> Bool {
        if cepoll_ctl(epoll, op, fd, events, token) == 0 { return true }
        let opName = op == CEPOLL_CTL_ADD ? "add" : op == CEPOLL_CTL_DEL ? "delete" : "modify"
        logger.warning("task server epoll_ctl failed", [("op", opName), ("of", what), ("fd", "\(fd)"), ("errno", "\(errno)")])
        return false
    }

    func hold(_ listener: Listener, taskId: String, healthPath: String) -> TaskServerPool.Token {
        let fd = listener.fd
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        let id = state.withLock { s -> UInt64 in
            s.nextID += 1
            // Stopped: the listener is dropped (and closed) right away instead of being served.
            guard !s.stopping else { return s.nextID }
            s.listeners[s.nextID] = ListenerEntry(listener: UncheckedListener(listener), taskId: taskId,
                                                  headerValue: taskId, healthPath: healthPath)
            return s.nextID
        }
        return TaskServerPool.Token(worker: index, id: id)
    }

    /// Serving listeners are in the epoll set; held ones (a task still staging) are not, so
    /// their connects wait in the backlog.
    func setServing(_ id: UInt64, _ on: Bool) {
        state.withLock { s in
            guard var l = s.listeners[id], !s.stopping, l.serving != on else { return }
            let fd = l.listener.value.fd
            if on {
                guard control(CEPOLL_CTL_ADD, fd: fd, events: CEPOLL_IN, token: id, what: "listener") else { return }
            } else {
                control(CEPOLL_CTL_DEL, fd: fd, events: 0, token: id, what: "listener")
            }
            l.serving = on
            s.listeners[id] = l
        }
    }

    func setHealthy(_ id: UInt64, _ healthy: Bool) {
        state.withLock { $0.listeners[id]?.healthy = healthy }
    }

    func remove(_ id: UInt64) {
        state.withLock { s in
            guard let entry = s.listeners.removeValue(forKey: id) else { return }
            // Out of the epoll set before the descriptor closes (when `entry` goes).
            if entry.serving {
                control(CEPOLL_CTL_DEL, fd: entry.listener.value.fd, events: 0, token: id, what: "listener")
            }
            // Shut down first: a connect racing with the close gets a refusal, never a hang.
            entry.listener.value.shutdown()
            for (cid, c) in s.connections where c.listenerID == id {
                close(connectionID: cid, c, state: &s)
            }
        }
    }

    func requestStop() {
        state.withLock { $0.stopping = true }
        wake()
    }

    func join(timeout: Double) {
        let deadline = Monotonic.now() + timeout
        while Monotonic.now() < deadline {
            if state.withLock({ $0.exited }) { break }
            usleep(2_000)
        }
        state.withLock { s in
            for (id, c) in s.connections { close(connectionID: id, c, state: &s) }
            for (id, l) in s.listeners {
                if l.serving { control(CEPOLL_CTL_DEL, fd: l.listener.value.fd, events: 0, token: id, what: "listener") }
                l.listener.value.shutdown()
            }
            s.listeners = [:]
        }
    }

    // The wake pipe and the epoll descriptor live as long as the worker: a late wake() or
    // setServing() after stop must never use a descriptor number the process has since reused.
    deinit {
        Glibc.close(wakeRead)
        Glibc.close(wakeWrite)
        if epoll >= 0 { Glibc.close(epoll) }
    }

    var listenerCount: Int { state.withLock { $0.listeners.count } }
    var connectionCount: Int { state.withLock { $0.connections.count } }

    private func loop() {
        let eventSize = Int(cepoll_event_size())
        let events = UnsafeMutableRawPointer.allocate(byteCount: eventSize * Int(Self.maxEvents), alignment: 16)
        var lastSweep = Monotonic.now()
        defer {
            events.deallocate()
            state.withLock { $0.exited = true }
        }
        while true {
            if state.withLock({ $0.stopping }) { return }
            // The timeout only paces the idle sweep: every change that needs the worker sooner
            // is an epoll event (or the wake pipe, for stop).
            let n = cepoll_wait(epoll, events, Self.maxEvents, 250)
            if n < 0 && errno != EINTR {
                logger.warning("task server epoll_wait failed", [("errno", "\(errno)")])
                usleep(10_000)
                continue
            }
            if n > 0 {
                state.withLock { s in
                    for i in 0..<Int32(n) {
                        let token = cepoll_event_token(events, i)
                        let ready = cepoll_event_events(events, i)
                        if token == Self.wakeToken {
                            wakePending.store(false, ordering: .releasing)
                            var sink = [UInt8](repeating: 0, count: 256)
                            while Glibc.read(wakeRead, &sink, sink.count) > 0 {}
                        } else if s.listeners[token] != nil {
                            acceptAll(listenerID: token, state: &s)
                        } else if s.connections[token] != nil {
                            service(connectionID: token, events: ready, state: &s)
                        }
                        // Neither: its descriptor was removed after epoll_wait returned.
                    }
                }
            }
            let now = Monotonic.now()
            if now - lastSweep > 1 {
                lastSweep = now
                state.withLock { s in
                    for (id, c) in s.connections where now - c.lastActive > Self.idleTimeout {
                        close(connectionID: id, c, state: &s)
                    }
                }
            }
        }
    }

    /// Out of the epoll set, then closed and forgotten.
    private func close(connectionID id: UInt64, _ c: ConnectionState, state s: inout WorkerState) {
        control(CEPOLL_CTL_DEL, fd: c.fd, events: 0, token: id, what: "connection")
        Glibc.close(c.fd)
        s.connections[id] = nil
    }

    private func acceptAll(listenerID: UInt64, state s: inout WorkerState) {
        guard let l = s.listeners[listenerID], l.serving else { return }
        for _ in 0..<64 {
            let fd = Glibc.accept(l.listener.value.fd, nil, nil)
            if fd < 0 { return }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            if s.connections.count >= Self.maxConnectionsPerWorker {
                Glibc.close(fd)
                continue
            }
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            s.nextID += 1
            guard control(CEPOLL_CTL_ADD, fd: fd, events: CEPOLL_IN, token: s.nextID, what: "connection") else {
                Glibc.close(fd)
                continue
            }
            s.connections[s.nextID] = ConnectionState(fd: fd, listenerID: listenerID)
        }
    }

    private func service(connectionID id: UInt64, events: UInt32, state s: inout WorkerState) {
        guard let c = s.connections[id] else { return }
        var close = false
        if events & CEPOLL_ERR != 0 { close = true }
        if !close && events & (CEPOLL_IN | CEPOLL_HUP) != 0 {
            var buffer = [UInt8](repeating: 0, count: 16 * 1024)
            let n = buffer.withUnsafeMutableBytes { recv(c.fd, $0.baseAddress, $0.count, 0) }
            if n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) {
                close = true
            } else if n > 0 {
                c.lastActive = Monotonic.now()
                c.parser.append(buffer[0..<n])
                respond(c, listener: s.listeners[c.listenerID])
            }
        }
        if !close && !c.output.isEmpty {
            let sent = c.output.withUnsafeBytes { send(c.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent > 0 {
                c.output.removeFirst(sent)
            } else if sent < 0 && errno != EAGAIN && errno != EINTR {
                close = true
            }
        }
        if !close && c.output.isEmpty && c.closeAfterOutput { close = true }
        if close {
            self.close(connectionID: id, c, state: &s)
            return
        }
        // EPOLLOUT only while output is stuck in a full socket buffer (level-triggered: asking
        // for it with nothing to send would wake the worker in a loop).
        if c.output.isEmpty == c.pollsForWrite {
            c.pollsForWrite = !c.output.isEmpty
            let interest = CEPOLL_IN | (c.pollsForWrite ? CEPOLL_OUT : 0)
            if !control(CEPOLL_CTL_MOD, fd: c.fd, events: interest, token: id, what: "connection") {
                self.close(connectionID: id, c, state: &s)
            }
        }
    }

    /// Answers every complete request in the connection's buffer (pipelining included).
    private func respond(_ c: ConnectionState, listener: ListenerEntry?) {
        for _ in 0..<128 {
            switch c.parser.next() {
            case .needMoreData:
                return
            case .sendContinue:
                c.output += Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)
            case .error(let e):
                c.output += Array("HTTP/1.1 \(e.status) \(HTTPServerResponse.reason(e.status))\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8)
                c.closeAfterOutput = true
                return
            case .request(let r):
                guard let listener else {
                    c.closeAfterOutput = true
                    return
                }
                let failing = !listener.healthy && r.path == listener.healthPath
                let status = failing ? 503 : 200
                let body = failing ? "unhealthy \(listener.taskId)\n" : "\(listener.taskId)\n"
                var head = "HTTP/1.1 \(status) \(HTTPServerResponse.reason(status))\r\n"
                head += "Content-Type: text/plain; charset=utf-8\r\nX-Task-Id: \(listener.headerValue)\r\n"
                head += "Content-Length: \(body.utf8.count)\r\n"
                if !r.keepAlive { head += "Connection: close\r\n" }
                head += "\r\n"
                c.output += Array(head.utf8)
                if r.method != "HEAD" { c.output += Array(body.utf8) }
                if !r.keepAlive {
                    c.closeAfterOutput = true
                    return
                }
            }
        }
    }
}

/// Listener is a class owned by exactly one worker's table; only that table's lock holder uses it.
private struct UncheckedListener: @unchecked Sendable {
    let value: Listener
    init(_ value: Listener) { self.value = value }
}

private struct ListenerEntry {
    let listener: UncheckedListener
    let taskId: String
    let headerValue: String
    let healthPath: String
    var serving = false
    var healthy = true
}

/// One accepted connection; touched only under its worker's lock.
private final class ConnectionState {
    let fd: Int32
    let listenerID: UInt64
    var parser = HTTPRequestParser(limits: .init(maxHeadBytes: 16 * 1024, maxHeaderCount: 100, maxBodyBytes: 64 * 1024))
    var output: [UInt8] = []
    var closeAfterOutput = false
    /// EPOLLOUT is in the connection's interest set.
    var pollsForWrite = false
    var lastActive = Monotonic.now()

    init(fd: Int32, listenerID: UInt64) {
        self.fd = fd
        self.listenerID = listenerID
    }
}

private struct WorkerState: @unchecked Sendable {
    // @unchecked: holds ConnectionState objects, which never leave the worker's Mutex.
    var listeners: [UInt64: ListenerEntry] = [:]
    var connections: [UInt64: ConnectionState] = [:]
    var nextID: UInt64 = 0
    var stopping = false
    var exited = false
}
