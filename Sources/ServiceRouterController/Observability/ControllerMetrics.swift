import FoundationEssentials
import ServiceRouterCore
import ServiceRouterIO
import Synchronization

/// What the controller exposes on `--listen`: counters, gauges, the apply-latency histogram, and the
/// last known desired and live state per backend. Updated by the reconciler and the controller,
/// read by the HTTP endpoint's threads.
public final class ControllerMetrics: Sendable {
    struct State {
        var eventsByType: [String: Int] = [:]
        var fullPasses = 0
        var commandsSent = 0
        var commandsFailed = 0
        var reloadsByReason: [String: Int] = [:]
        var reloadFailures = 0
        var invalidConfigs = 0
        var appsSkipped = 0
        var marathonConnected = false
        var everConnected = false
        var haproxyReachable = false
        var lastSuccessfulSync: Double?
        /// Why HAProxy cannot take the desired state (a reload that keeps failing, a port of the
        /// shared frontends in use...): set by a failed pass, cleared by a successful one.
        var degraded: String?
        var bindConflicts = 0
        var servicesLeftOutForBinds = 0
        var servicesLeftOutRejected = 0
        var latency = Histogram(bounds: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5])
        /// The last plan and live servers of each backend; `/status` and the slot gauges are made
        /// from them when asked for (at 10,000 tasks, formatting 25,000 slots on every pass cost
        /// more than the pass's own planning).
        var backends: [ProxyName: BackendSnapshot] = [:]
    }

    private let state = Mutex(State())
    let started = Monotonic.now()

    public init() {}

    /// Reloads done so far (all reasons).
    public var reloadCount: Int { state.withLock { $0.reloadsByReason.values.reduce(0, +) } }

    /// Full passes begun so far, and runtime commands sent (benchmarks, tests).
    public var fullPasses: Int { state.withLock { $0.fullPasses } }
    public var commandsSent: Int { state.withLock { $0.commandsSent } }

    func fullPass() { state.withLock { $0.fullPasses += 1 } }
    /// Counts an input by Marathon event type. Label values come from a fixed set (the types
    /// servicerouter subscribes to, plus `other`), so no input can grow the metric's cardinality.
    public func input(_ input: ControllerInput) {
        switch input {
        case .statusUpdate: event("status_update_event")
        case .healthChanged: event("health_status_changed_event")
        case .structureChanged(let type): event(Self.eventTypes.contains(type) ? type : "other")
        case .connected: marathon(connected: true)
        case .disconnected: marathon(connected: false)
        case .resync, .reapply: break
        }
    }

    static let eventTypes = Set(MarathonEvent.subscribedTypes)

    private func event(_ type: String) { state.withLock { $0.eventsByType[type, default: 0] += 1 } }
    func commands(sent: Int, failed: Int) { state.withLock { $0.commandsSent += sent; $0.commandsFailed += failed } }
    func reload(reason: String) { state.withLock { $0.reloadsByReason[reason, default: 0] += 1 } }
    func reloadFailed() { state.withLock { $0.reloadFailures += 1 } }
    func invalidConfig() { state.withLock { $0.invalidConfigs += 1 } }
    func skippedApps(_ n: Int) { state.withLock { $0.appsSkipped = n } }
    func marathon(connected: Bool) { state.withLock { $0.marathonConnected = connected; if connected { $0.everConnected = true } } }
    func haproxy(reachable: Bool) { state.withLock { $0.haproxyReachable = reachable } }
    func synced(at t: Double) { state.withLock { $0.lastSuccessfulSync = t; $0.degraded = nil } }
    func degraded(_ why: String) { state.withLock { $0.degraded = why } }
    func bindConflicts(_ n: Int) { state.withLock { $0.bindConflicts += n } }
    func leftOut(bindConflicts: Int, rejected: Int) {
        state.withLock { $0.servicesLeftOutForBinds = bindConflicts; $0.servicesLeftOutRejected = rejected }
    }
    /// Why the controller is degraded, if it is.
    public var degradedReason: String? { state.withLock { $0.degraded } }
    func applied(latency: Double) { state.withLock { $0.latency.observe(latency) } }

    /// Records desired and live slots of planned backends (all of them after a full pass).
    func backends(_ plan: ReconcilePlan, live: LiveState, replaceAll: Bool) {
        var fresh = [ProxyName: BackendSnapshot](minimumCapacity: plan.backends.count)
        for b in plan.backends {
            fresh[b.backend] = BackendSnapshot(slotCount: b.slotCount, slots: b.slots,
                                               live: (live.backends[b.backend] ?? []).compactMap(LiveSlot.init))
        }
        state.withLock { s in
            if replaceAll { s.backends = fresh } else { s.backends.merge(fresh) { $1 } }
        }
    }

    /// What `/status` shows of a live slot: kept instead of the whole `LiveServer`, so the snapshot
    /// of 25,000 slots (held between passes) stays small and shares nothing with the pass's state.
    struct LiveSlot: Sendable {
        var slot: Int32
        var port: Int32
        var address: String
        var adminFlags: UInt8
        var operationalState: UInt8

        init?(_ l: LiveServer) {
            guard let n = SlotPlanner.slotNumber(l.name), let slot = Int32(exactly: n), let port = Int32(exactly: l.port),
                  let flags = UInt8(exactly: l.adminFlags), let op = UInt8(exactly: l.operationalState) else { return nil }
            self.slot = slot
            self.port = port
            address = l.address
            adminFlags = flags
            operationalState = op
        }

    }

    struct BackendSnapshot: Sendable {
        var slotCount: Int
        var slots: [DesiredServer?]
        var live: [LiveSlot]

        var used: Int { slots.reduce(0) { $0 + ($1 == nil ? 0 : 1) } }

        /// `fresh`: what HAProxy has now, when it was just read; else the last pass's read.
        func status(_ backend: ProxyName, fresh: [LiveSlot]? = nil) -> BackendStatus {
            let live = fresh ?? self.live
            var liveBySlot = [Int: LiveSlot](minimumCapacity: live.count)
            for l in live where liveBySlot[Int(l.slot)] == nil { liveBySlot[Int(l.slot)] = l }
            return BackendStatus(
                backend: backend.text,
                slots: (0..<slotCount).map { i in
                    let l = liveBySlot[i + 1]
                    let d = i < slots.count ? slots[i] : nil
                    return BackendStatus.Slot(
                        slot: "s\(i + 1)", desiredTask: d?.taskId, desiredAddress: d.map { "\($0.endpoint)" },
                        desiredState: d.map { $0.routing == .serve ? "ready" : "drain" } ?? "maint",
                        liveAddress: l.map { "\($0.address):\($0.port)" }, liveAdmin: l.map { LiveServer.admin(flags: Int($0.adminFlags)).rawValue },
                        liveOperational: l.map { LiveServer.operationalName(Int($0.operationalState)) })
                })
        }
    }

    struct BackendStatus: Sendable, Encodable {
        struct Slot: Sendable, Encodable {
            var slot: String
            var desiredTask: String?
            var desiredAddress: String?
            var desiredState: String
            var liveAddress: String?
            var liveAdmin: String?
            var liveOperational: String?
        }
        var backend: String
        var slots: [Slot]
    }

    // MARK: - Exposition

    /// Prometheus text format 0.0.4.
    public func prometheus(now: Double = Monotonic.now()) -> String {
        let s = state.withLock { $0 }
        var out = ""
        func family(_ name: String, _ type: String, _ help: String, _ samples: [(labels: [(String, String)], value: Double)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for sample in samples {
                let labels = sample.labels.isEmpty ? "" : "{" + sample.labels.map { "\($0.0)=\"\(Self.escape($0.1))\"" }.joined(separator: ",") + "}"
                out += "\(name)\(labels) \(Self.format(sample.value))\n"
            }
        }
        family("servicerouter_events_total", "counter", "Marathon events received, by event type.",
               s.eventsByType.sorted { $0.key < $1.key }.map { ([("type", $0.key)], Double($0.value)) })
        family("servicerouter_runtime_commands_total", "counter", "Runtime API commands sent to HAProxy.", [([], Double(s.commandsSent))])
        family("servicerouter_runtime_commands_failed_total", "counter", "Runtime API commands HAProxy rejected or that could not be sent.",
               [([], Double(s.commandsFailed))])
        family("servicerouter_reloads_total", "counter", "HAProxy reloads, by reason.",
               s.reloadsByReason.sorted { $0.key < $1.key }.map { ([("reason", $0.key)], Double($0.value)) })
        family("servicerouter_reload_failures_total", "counter", "Reloads HAProxy did not complete.", [([], Double(s.reloadFailures))])
        family("servicerouter_invalid_configs_total", "counter", "Candidate configs haproxy -c rejected (never loaded).", [([], Double(s.invalidConfigs))])
        family("servicerouter_apps_skipped", "gauge", "Apps left out of the last pass for bad input.", [([], Double(s.appsSkipped))])
        family("servicerouter_services_left_out", "gauge", "Services left out of the last full pass, by reason.",
               [([("reason", "port_in_use")], Double(s.servicesLeftOutForBinds)), ([("reason", "config_rejected")], Double(s.servicesLeftOutRejected))])
        family("servicerouter_bind_conflicts_total", "counter", "Binds found in use by another process before a reload.", [([], Double(s.bindConflicts))])
        family("servicerouter_degraded", "gauge", "1 while HAProxy cannot take the desired state (see /healthz for why).", [([], s.degraded == nil ? 0 : 1)])
        family("servicerouter_marathon_connected", "gauge", "1 while the Marathon event stream is connected.", [([], s.marathonConnected ? 1 : 0)])
        family("servicerouter_haproxy_reachable", "gauge", "1 while HAProxy's runtime socket answers.", [([], s.haproxyReachable ? 1 : 0)])
        family("servicerouter_seconds_since_last_sync", "gauge", "Seconds since the last successful full pass (-1: none yet).",
               [([], s.lastSuccessfulSync.map { max(0, now - $0) } ?? -1)])
        var slotSamples: [(labels: [(String, String)], value: Double)] = []
        for (name, b) in s.backends.sorted(by: { $0.key.text < $1.key.text }) {
            let used = b.used
            slotSamples.append(([("backend", name.text), ("state", "used")], Double(used)))
            slotSamples.append(([("backend", name.text), ("state", "free")], Double(b.slotCount - used)))
        }
        family("servicerouter_slots", "gauge", "Server slots per backend, used by a task or free.", slotSamples)
        out += "# HELP servicerouter_apply_latency_seconds Event received to HAProxy acknowledging the runtime commands (fast path).\n"
        out += "# TYPE servicerouter_apply_latency_seconds histogram\n"
        var cumulative = 0
        for (i, bound) in s.latency.bounds.enumerated() {
            cumulative += s.latency.counts[i]
            out += "servicerouter_apply_latency_seconds_bucket{le=\"\(Self.format(bound))\"} \(cumulative)\n"
        }
        out += "servicerouter_apply_latency_seconds_bucket{le=\"+Inf\"} \(s.latency.count)\n"
        out += "servicerouter_apply_latency_seconds_sum \(Self.format(s.latency.sum))\n"
        out += "servicerouter_apply_latency_seconds_count \(s.latency.count)\n"
        return out
    }

    /// `/healthz`: healthy while connected to Marathon and HAProxy, or within `grace` seconds of
    /// start-up or of the last successful pass.
    public func health(now: Double = Monotonic.now(), grace: Double = 60) -> (healthy: Bool, reason: String) {
        let s = state.withLock { $0 }
        if let why = s.degraded { return (false, "degraded: \(why)") }
        if s.marathonConnected && s.haproxyReachable { return (true, "ok") }
        if now - started < grace { return (true, "starting") }
        if let last = s.lastSuccessfulSync, now - last < grace, s.haproxyReachable { return (true, "recently synced") }
        var why: [String] = []
        if !s.marathonConnected { why.append("Marathon event stream not connected") }
        if !s.haproxyReachable { why.append("HAProxy runtime socket not answering") }
        return (false, why.joined(separator: "; "))
    }

    /// `/status`: desired vs live per backend, as JSON. `live` is HAProxy's state read just now
    /// (the live columns then show what HAProxy has at this moment, not at the last pass), or
    /// why it could not be read.
    public func statusJSON(live: Result<LiveState, RuntimeSocketError>? = nil) -> [UInt8] {
        struct Body: Encodable {
            var marathonConnected: Bool
            var haproxyReachable: Bool
            /// "now": the live columns were read for this answer; else why not, and they are the
            /// last full pass's or fast path's read.
            var live: String
            var degraded: String?
            var backends: [BackendStatus]
        }
        let s = state.withLock { $0 }
        var fresh: [ProxyName: [LiveSlot]]?
        var liveNote = "as of the last pass"
        switch live {
        case .success(let state)?:
            fresh = state.backends.mapValues { $0.compactMap(LiveSlot.init) }
            liveNote = "now"
        case .failure(let e)?:
            liveNote = "as of the last pass (HAProxy could not be read now: \(e.reason))"
        case nil:
            break
        }
        let body = Body(marathonConnected: s.marathonConnected, haproxyReachable: s.haproxyReachable, live: liveNote,
                        degraded: s.degraded,
                        backends: s.backends.map { name, snapshot in snapshot.status(name, fresh: fresh.map { $0[name] ?? [] }) }
                            .sorted { $0.backend < $1.backend })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return Array((try? encoder.encode(body)) ?? Data("{}".utf8))
    }

    static func escape(_ v: String) -> String {
        v.replacingAll("\\", with: "\\\\").replacingAll("\"", with: "\\\"").replacingAll("\n", with: "\\n")
    }

    static func format(_ v: Double) -> String {
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return String(v)
    }
}

struct Histogram: Sendable {
    var bounds: [Double]
    var counts: [Int]
    var count = 0
    var sum = 0.0

    init(bounds: [Double]) {
        self.bounds = bounds
        counts = Array(repeating: 0, count: bounds.count)
    }

    mutating func observe(_ v: Double) {
        count += 1
        sum += v
        if let i = bounds.firstIndex(where: { v <= $0 }) { counts[i] += 1 }
    }
}

/// The `--listen` endpoint: `/metrics`, `/healthz`, `/status`. Exposes no secrets (no URLs with
/// credentials, no config text).
public enum StatusEndpoint {
    /// `readLive` reads HAProxy's servers now, for `/status` (bounded by its socket timeout).
    public static func start(host: String, port: Int, metrics: ControllerMetrics, logger: Logger, grace: Double = 60,
                             readLive: (@Sendable () -> Result<LiveState, RuntimeSocketError>)? = nil) throws -> StatusServer {
        try StatusServer.start(host: host, port: port) { request in
            guard request.method == "GET" || request.method == "HEAD" else {
                return .text("method not allowed\n", status: 405)
            }
            switch request.path {
            case "/metrics":
                return .bytes(Array(metrics.prometheus().utf8), contentType: "text/plain; version=0.0.4; charset=utf-8")
            case "/healthz":
                let (ok, reason) = metrics.health(grace: grace)
                return .text(reason + "\n", status: ok ? 200 : 503)
            case "/status":
                return .json(metrics.statusJSON(live: readLive?()))
            default:
                return .text("not found: try /metrics, /healthz or /status\n", status: 404)
            }
        }
    }
}
