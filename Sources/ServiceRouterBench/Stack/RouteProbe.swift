import Foundation
import ServiceRouterController
import ServiceRouterCLI
import ServiceRouterCore
import ServiceRouterIO
import Synchronization

/// Sends requests through HAProxy back to back on one keep-alive connection (HAProxy balances
/// each request of an http connection on its own) and records, for each, when it was sent and
/// which task answered (`X-Task-Id`). Bounded in count and time.
final class RouteProbe: Sendable {
    struct Sample: Sendable {
        var sentAt: Double
        var taskId: String?
    }

    private struct State {
        var samples: [Sample] = []
        var answered = 0
        var failed = 0
        var lastFailure: String?
    }

    let port: Int
    let host: String
    private let state = Mutex(State())
    private let stopFlag = StopFlag()
    private let done = StopFlag()
    private let maxRequests: Int
    private let deadline: Double
    private let interval: Double

    /// - Parameters:
    ///   - interval: pause between requests (0.5 ms: about 1,000–1,500 requests a second).
    init(port: Int, host: String, interval: Double = 0.0005, maxRequests: Int = 2_000_000, maxDuration: Double) {
        self.port = port
        self.host = host
        self.interval = interval
        self.maxRequests = maxRequests
        self.deadline = Monotonic.now() + maxDuration
    }

    func start() {
        Blocking.detach(name: "route-probe") { [self] in
            var connection: Connection?
            var sent = 0
            while !stopFlag.isSet && sent < maxRequests && Monotonic.now() < deadline {
                let at = Monotonic.now()
                let result = request(&connection)
                sent += 1
                state.withLock { s in
                    switch result {
                    case .success(let task):
                        s.samples.append(Sample(sentAt: at, taskId: task))
                        s.answered += 1
                    case .failure(let f):
                        s.failed += 1
                        s.lastFailure = f.description
                    }
                }
                if interval > 0 { usleep(useconds_t(interval * 1e6)) }
            }
            connection?.close()
            done.set()
        }
    }

    func stop() async {
        stopFlag.set()
        _ = try? await Blocking.run { [done] in
            let until = Monotonic.now() + 5
            while !done.isSet && Monotonic.now() < until { usleep(2_000) }
        }
    }

    var failed: Int { state.withLock { $0.failed } }
    var lastFailure: String? { state.withLock { $0.lastFailure } }
    /// Requests answered with 200 so far.
    var count: Int { state.withLock { $0.answered } }

    /// The first request sent at or after `since` that `taskId` answered.
    func firstSeen(_ taskId: String, since: Double) -> Double? {
        state.withLock { s in
            // Samples are in send order: binary-search the start, then scan.
            var lo = 0, hi = s.samples.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if s.samples[mid].sentAt < since { lo = mid + 1 } else { hi = mid }
            }
            for i in lo..<s.samples.count where s.samples[i].taskId == taskId { return s.samples[i].sentAt }
            return nil
        }
    }

    /// The last request `taskId` answered, if any was sent at or after `since`.
    func lastSeen(_ taskId: String, since: Double) -> Double? {
        state.withLock { s in
            for sample in s.samples.reversed() {
                if sample.sentAt < since { return nil }
                if sample.taskId == taskId { return sample.sentAt }
            }
            return nil
        }
    }

    /// The time of the newest sample.
    var newest: Double? { state.withLock { $0.samples.last?.sentAt } }

    /// Drops samples older than `before` (bounded memory over long runs).
    func trim(before: Double) {
        state.withLock { s in
            if let i = s.samples.firstIndex(where: { $0.sentAt >= before }), i > 0 { s.samples.removeFirst(i) }
        }
    }

    /// One request on the probe's keep-alive connection (the load generator's client).
    private func request(_ connection: inout Connection?) -> Result<String?, LoadGenerator.LoadFailure> {
        LoadGenerator.request(.init(name: "route probe", port: port, host: host, keepAlive: true), reusing: &connection)
    }
}
