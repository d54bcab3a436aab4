import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import ServiceRouterCore
import ServiceRouterIO
import ServiceRouterController
import Synchronization

/// HTTP load through HAProxy for the demo, the benchmarks and end-to-end tests: one thread per
/// target, at a bounded rate, for a bounded time. Loopback only.
///
/// A request fails when it gets no complete response or a status other than 200. Like every HTTP
/// client, a keep-alive connection the server closed while idle is retried once on a new
/// connection before anything counts as failed.
public final class LoadGenerator: Sendable {
    public struct Target: Sendable, Equatable {
        public var name: String
        public var port: Int
        /// The Host header (vhost routing); nil: `127.0.0.1`.
        public var host: String?
        /// Reuse one connection (keep-alive) or open one per request.
        public var keepAlive: Bool
        public var path: String
        /// Where to connect (HAProxy's bind address; `127.0.0.1` for `*`).
        public var address: String

        public init(name: String, port: Int, host: String? = nil, keepAlive: Bool, path: String = "/", address: String = "127.0.0.1") {
            self.name = name
            self.address = address == "*" ? "127.0.0.1" : address
            self.port = port
            self.host = host
            self.keepAlive = keepAlive
            self.path = path
        }
    }

    public struct Counts: Sendable, Equatable {
        public var ok = 0
        public var failed = 0
        public var lastFailure: String?
        /// Responses per task (the `X-Task-Id` header the simulator's tasks send).
        public var byTask: [String: Int] = [:]
        public var total: Int { ok + failed }
    }

    private let counts: Mutex<[Counts]>
    public let targets: [Target]
    private let stopFlag = StopFlag()
    private let finished: [StopFlag]
    private let ratePerTarget: Double
    private let deadline: Double
    private let trackTasks: Bool

    /// - Parameters:
    ///   - ratePerTarget: requests per second per target (bounded load).
    ///   - maxDuration: the generator stops by itself after this many seconds.
    public init(targets: [Target], ratePerTarget: Double = 50, maxDuration: Double = 3600, trackTasks: Bool = false) {
        self.targets = targets
        self.counts = Mutex(targets.map { _ in Counts() })
        self.finished = targets.map { _ in StopFlag() }
        self.ratePerTarget = max(0.1, min(ratePerTarget, 10_000))
        self.deadline = Monotonic.now() + max(0, maxDuration)
        self.trackTasks = trackTasks
    }

    public func start() {
        for (i, t) in targets.enumerated() {
            Blocking.detach(name: "load-\(t.name)") { [self] in
                self.loop(i, t)
                self.finished[i].set()
            }
        }
    }

    /// Stops every worker and waits (bounded) for them to finish.
    @discardableResult
    public func stop(timeout: Double = 5) -> [String: Counts] {
        stopFlag.set()
        let until = Monotonic.now() + timeout
        while finished.contains(where: { !$0.isSet }) && Monotonic.now() < until { usleep(5_000) }
        return snapshot()
    }

    /// `stop` without blocking the caller's thread.
    public func finish(timeout: Double = 5) async -> [String: Counts] {
        (try? await Blocking.run { [self] in self.stop(timeout: timeout) }) ?? snapshot()
    }

    public func snapshot() -> [String: Counts] {
        let all = counts.withLock { $0 }
        var out: [String: Counts] = [:]
        for (i, t) in targets.enumerated() { out[t.name] = all[i] }
        return out
    }

    public var totals: Counts {
        var c = Counts()
        for v in counts.withLock({ $0 }) {
            c.ok += v.ok
            c.failed += v.failed
            if v.lastFailure != nil { c.lastFailure = v.lastFailure }
        }
        return c
    }

    private func loop(_ index: Int, _ target: Target) {
        let interval = 1 / ratePerTarget
        var next = Monotonic.now()
        var connection: Connection?
        while !stopFlag.isSet && Monotonic.now() < deadline {
            let now = Monotonic.now()
            if next > now { usleep(useconds_t(min(next - now, 0.05) * 1e6)); continue }
            next = max(next + interval, now - 1)
            let result = Self.request(target, reusing: &connection)
            counts.withLock { all in
                switch result {
                case .success(let task):
                    all[index].ok += 1
                    if trackTasks, let task { all[index].byTask[task, default: 0] += 1 }
                case .failure(let reason):
                    all[index].failed += 1
                    all[index].lastFailure = reason.description
                }
            }
            if !target.keepAlive { connection = nil }
        }
        connection?.close()
    }

    /// One GET to `t` (on `connection` when it is open, which is kept for the next request unless
    /// the response closes it): the `X-Task-Id` of a 200 answer, or why there was none. Blocking.
    public static func request(_ t: Target, reusing connection: inout Connection?) -> Result<String?, LoadFailure> {
        let reused = connection != nil
        switch exchange(t, &connection) {
        case .failure(let f) where reused && f.beforeResponse:
            // The server closed an idle keep-alive connection: retry once, as clients do.
            return exchange(t, &connection)
        case let other:
            return other
        }
    }

    public struct LoadFailure: Error, CustomStringConvertible, Sendable {
        public var description: String
        /// Nothing of a response arrived (the request may not have been processed).
        public var beforeResponse: Bool
    }

    private static func exchange(_ t: Target, _ connection: inout Connection?) -> Result<String?, LoadFailure> {
        var gotBytes = false
        do {
            if connection == nil { connection = try Connection.tcp(host: t.address, port: t.port, timeout: 2) }
            guard let conn = connection else { throw LoadFailure(description: "no connection", beforeResponse: true) }
            let request = "GET \(t.path) HTTP/1.1\r\nHost: \(t.host ?? "127.0.0.1")\r\n" + (t.keepAlive ? "" : "Connection: close\r\n") + "\r\n"
            try conn.write(request)
            var parser = HTTPResponseParser()
            var status = 0
            var taskId: String?
            var closeAfter = !t.keepAlive
            while true {
                let chunk = try conn.read(timeout: 5)
                let parts: [HTTPResponsePart]
                if let chunk {
                    gotBytes = true
                    parts = try parser.feed(chunk)
                } else {
                    guard gotBytes else { throw LoadFailure(description: "connection closed before a response", beforeResponse: true) }
                    parts = try parser.finish()
                    closeAfter = true
                }
                for part in parts {
                    switch part {
                    case .head(let h):
                        status = h.status
                        taskId = h.headers["X-Task-Id"]
                        if h.headers["Connection"]?.lowercased() == "close" { closeAfter = true }
                    case .body: break
                    case .end:
                        if closeAfter { connection = nil }
                        return status == 200 ? .success(taskId) : .failure(LoadFailure(description: "HTTP \(status)", beforeResponse: false))
                    }
                }
                if chunk == nil { throw LoadFailure(description: "connection closed mid-response", beforeResponse: false) }
            }
        } catch let f as LoadFailure {
            connection = nil
            return .failure(f)
        } catch {
            connection = nil
            return .failure(LoadFailure(description: "\(error)", beforeResponse: !gotBytes))
        }
    }
}
