#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import ServiceRouterCore
import ServiceRouterIO
import Synchronization

/// Serves every simulated task's HTTP listener from a few threads, so 10,000 tasks cost 10,000
/// listening descriptors and no thread each. Each worker owns a share of the listeners and their
/// connections and runs one `poll()` loop (Glibc's module has no epoll; at ~2,500 descriptors
/// per worker poll is cheap enough).
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
    /// Wakes `poll` when the descriptor set changed.
    let wakeRead: Int32
    let wakeWrite: Int32
    let wakePending = Atomic<Bool>(false)
    /// Newly activated listeners are added at most this often: starting 10,000 tasks must not
    /// rebuild and poll the whole descriptor set once per task.
    static let activationBatchInterval = 0.02

    static let maxConnectionsPerWorker = 4096
    static let idleTimeout = 60.0

    init(index: Int, logger: Logger) {
        self.index = index
        self.logger = logger
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

    func setServing(_ id: UInt64, _ on: Bool) {
        state.withLock { s in
            s.listeners[id]?.serving = on
            s.pendingActivations = true
        }
        wake()
    }

    func setHealthy(_ id: UInt64, _ healthy: Bool) {
        state.withLock { $0.listeners[id]?.healthy = healthy }
    }

    func remove(_ id: UInt64) {
        state.withLock { s in
            guard let entry = s.listeners.removeValue(forKey: id) else { return }
            // Shut down first: a connect racing with the close gets a refusal, never a hang.
            entry.listener.value.shutdown()
            for (cid, c) in s.connections where c.listenerID == id {
                Glibc.close(c.fd)
                s.connections[cid] = nil
            }
            s.dirty = true
        }
        wake()
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
            for c in s.connections.values { Glibc.close(c.fd) }
            s.connections = [:]
            for l in s.listeners.values { l.listener.value.shutdown() }
            s.listeners = [:]
        }
    }

    // The wake pipe lives as long as the worker: a late wake() after stop must never write
    // into a descriptor number the process has since reused.
    deinit {
        Glibc.close(wakeRead)
        Glibc.close(wakeWrite)
    }

    var listenerCount: Int { state.withLock { $0.listeners.count } }
    var connectionCount: Int { state.withLock { $0.connections.count } }

    private func loop() {
        var pfds: [pollfd] = []
        var tokens: [Token] = []
        var lastSweep = Monotonic.now()
        var lastRebuild = 0.0
        defer { state.withLock { $0.exited = true } }
        while true {
            var timeout: Int32 = 100
            let stop = state.withLock { s -> Bool in
                if s.stopping { return true }
                let now = Monotonic.now()
                let activationsDue = s.pendingActivations && now - lastRebuild >= Self.activationBatchInterval
                if s.pendingActivations && !activationsDue { timeout = 5 }
                if s.dirty || activationsDue {
                    s.dirty = false
                    s.pendingActivations = false
                    lastRebuild = now
                    pfds.removeAll(keepingCapacity: true)
                    tokens.removeAll(keepingCapacity: true)
                    pfds.append(pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0))
                    tokens.append(.wake)
                    for (id, l) in s.listeners where l.serving {
                        pfds.append(pollfd(fd: l.listener.value.fd, events: Int16(POLLIN), revents: 0))
                        tokens.append(.listener(id))
                    }
                    for (id, c) in s.connections {
                        c.pollsForWrite = !c.output.isEmpty
                        let events = c.output.isEmpty ? Int16(POLLIN) : Int16(POLLIN) | Int16(POLLOUT)
                        pfds.append(pollfd(fd: c.fd, events: events, revents: 0))
                        tokens.append(.connection(id))
                    }
                }
                return false
            }
            if stop { return }
            for i in pfds.indices { pfds[i].revents = 0 }
            let n = pfds.withUnsafeMutableBufferPointer { Glibc.poll($0.baseAddress, nfds_t($0.count), timeout) }
            if n < 0 && errno != EINTR {
                logger.warning("task server poll failed", [("errno", "\(errno)")])
                usleep(10_000)
                continue
            }
            if n > 0 {
                if pfds[0].revents != 0 {
                    wakePending.store(false, ordering: .releasing)
                    var sink = [UInt8](repeating: 0, count: 256)
                    while Glibc.read(wakeRead, &sink, sink.count) > 0 {}
                }
                state.withLock { s in
                    for i in 1..<pfds.count where pfds[i].revents != 0 {
                        switch tokens[i] {
                        case .wake: break
                        case .listener(let id): acceptAll(listenerID: id, state: &s)
                        case .connection(let id): service(connectionID: id, revents: pfds[i].revents, state: &s)
                        }
                    }
                }
            }
            let now = Monotonic.now()
            if now - lastSweep > 1 {
                lastSweep = now
                state.withLock { s in
                    for (id, c) in s.connections where now - c.lastActive > Self.idleTimeout {
                        Glibc.close(c.fd)
                        s.connections[id] = nil
                        s.dirty = true
                    }
                }
            }
        }
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
            s.connections[s.nextID] = ConnectionState(fd: fd, listenerID: listenerID)
            s.dirty = true
        }
    }

    private func service(connectionID id: UInt64, revents: Int16, state s: inout WorkerState) {
        guard let c = s.connections[id] else { return }
        var close = false
        if revents & (Int16(POLLERR) | Int16(POLLNVAL)) != 0 { close = true }
        if !close && revents & (Int16(POLLIN) | Int16(POLLHUP)) != 0 {
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
        // Ask poll for POLLOUT only while output is stuck in a full socket buffer.
        if c.output.isEmpty == c.pollsForWrite { s.dirty = true }
        if !close && c.output.isEmpty && c.closeAfterOutput { close = true }
        if close {
            Glibc.close(c.fd)
            s.connections[id] = nil
            s.dirty = true
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

private enum Token {
    case wake
    case listener(UInt64)
    case connection(UInt64)
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
    var dirty = true
    var pendingActivations = false
    var stopping = false
    var exited = false
}
