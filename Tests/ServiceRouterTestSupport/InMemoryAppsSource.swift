import ServiceRouterCore
import ServiceRouterIO
import Synchronization

/// Marathon's `/v2/apps` in memory: tests set what a fetch returns, make fetches fail, or hold
/// them (a slow Marathon) until released.
public final class InMemoryAppsSource: AppsSource {
    private struct State {
        var apps: [MarathonApp]
        var failure: String?
        var held = false
        var waiting: [CheckedContinuation<Void, Never>] = []
        var fetches = 0
        var inFlight = 0
    }
    private let state: Mutex<State>

    public init(_ apps: [MarathonApp] = []) { state = Mutex(State(apps: apps)) }

    public func set(_ apps: [MarathonApp]) { state.withLock { $0.apps = apps } }
    public func update(_ body: (inout [MarathonApp]) -> Void) { state.withLock { body(&$0.apps) } }
    /// Fetches fail with this reason until healed (nil).
    public func fail(_ reason: String?) { state.withLock { $0.failure = reason } }
    /// Fetches started from now on wait for `release()` before they answer.
    public func hold() { state.withLock { $0.held = true } }
    public func release() {
        let waiting = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.held = false
            defer { s.waiting = [] }
            return s.waiting
        }
        for w in waiting { w.resume() }
    }
    /// Fetches begun so far, and those waiting for `release()` now.
    public var fetches: Int { state.withLock { $0.fetches } }
    public var waitingFetches: Int { state.withLock { $0.waiting.count } }

    public func fetchApps() async throws -> AppsSnapshot {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                s.fetches += 1
                if s.held { s.waiting.append(c); return false }
                return true
            }
            if now { c.resume() }
        }
        // What Marathon answers is what it has when the answer is made, not when it was asked.
        let (apps, failure) = state.withLock { ($0.apps, $0.failure) }
        if let failure { throw AppsSourceError("Marathon unavailable: \(failure)") }
        return AppsSnapshot(apps: apps)
    }
}

/// Resolves names from a fixed table only (nothing leaves the machine) and records every name it
/// was asked for.
public final class StaticResolver: HostResolving {
    private let table: [String: String]
    private let asked = Mutex<Set<String>>([])
    public init(_ table: [String: String] = [:]) { self.table = table }
    public var names: Set<String> { asked.withLock { $0 } }
    public func resolve(_ hosts: Set<String>) async -> [String: IPAddress] {
        asked.withLock { $0.formUnion(hosts) }
        var out: [String: IPAddress] = [:]
        for h in hosts { if let ip = table[h].flatMap({ try? IPAddress($0) }) { out[h] = ip } }
        return out
    }
}

/// Ports held by "another process", for the bind check before a reload.
public final class InMemoryPorts: PortProbing {
    private let busy = Mutex<Set<Int>>([])
    public init() {}
    public func hold(_ port: Int) { _ = busy.withLock { $0.insert(port) } }
    public func free(_ port: Int) { _ = busy.withLock { $0.remove(port) } }
    public func problem(binding bind: ConfigBind) -> String? {
        busy.withLock { $0.contains(bind.port) } ? "\(bind) is already in use by another process" : nil
    }
}
