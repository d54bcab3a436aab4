import FoundationEssentials
import ServiceRouterCore
import ServiceRouterIO

public struct RunSettings: Sendable {
    /// Full resync from `/v2/apps?embed=apps.tasks` at least this often (seconds).
    public var resyncInterval: Double = 300
    /// How often slot changes made through the runtime API are written to the config file.
    public var fileSyncInterval: Double = 1
    /// Upper bound of the retry delay when Marathon or HAProxy is unreachable.
    public var maxBackoff: Double = 30
    /// How often HAProxy's identity (pid, start time, loaded structure) is checked, so a restart
    /// behind our back is noticed and the whole state re-applied even when no event arrives.
    public var haproxyCheckInterval: Double = 2
    public init() {}
}

/// `servicerouter run`: the long-running controller. Inputs (events, timers, signals) go through a
/// coalescing queue; one applier takes a batch at a time: task changes through the fast path
/// (runtime API only), everything else through a full pass.
public final class Controller: Sendable {
    public let reconciler: Reconciler
    let source: any AppsSource
    public let queue: InputQueue
    let logger: Logger
    let settings: RunSettings
    private let stopping = StopFlag()
    private let stats = ControllerStats()
    private let retry = RetryTimer()

    public init(reconciler: Reconciler, source: any AppsSource, logger: Logger, settings: RunSettings = RunSettings(),
                queue: InputQueue = InputQueue()) {
        self.reconciler = reconciler
        self.source = source
        self.queue = queue
        self.logger = logger
        self.settings = settings
    }

    /// Asks the controller to stop after the batch in flight (SIGTERM/SIGINT).
    public func stop() {
        stopping.set()
        queue.poke()
    }

    public var isStopping: Bool { stopping.isSet }
    public var latencies: ControllerStats { stats }

    /// Runs until `stop()`. `inputs` is the event stream, already mapped to controller inputs.
    public func run(inputs: AsyncStream<ControllerInput>) async {
        queue.push(.resync("start-up"))
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [queue, metrics = reconciler.metrics] in
                for await input in inputs {
                    switch input {
                    case .statusUpdate: metrics.event("status_update_event")
                    case .healthChanged: metrics.event("health_status_changed_event")
                    case .structureChanged(let type): metrics.event(type)
                    case .connected: metrics.marathon(connected: true)
                    case .disconnected: metrics.marathon(connected: false)
                    case .resync, .reapply: break
                    }
                    queue.push(input)
                }
            }
            group.addTask { [queue, settings, reconciler, stopping] in
                var nextResync = Monotonic.now() + settings.resyncInterval
                var nextFileSync = Monotonic.now() + settings.fileSyncInterval
                var nextCheck = Monotonic.now() + settings.haproxyCheckInterval
                while !Task.isCancelled && !stopping.isSet {
                    try? await Task.sleep(nanoseconds: 100_000_000)
                    let now = Monotonic.now()
                    if now >= nextResync {
                        queue.push(.resync("periodic resync (every \(Int(settings.resyncInterval)) s)"))
                        nextResync = now + settings.resyncInterval
                    }
                    if now >= nextFileSync {
                        await reconciler.writeConfigIfDirty()
                        nextFileSync = now + settings.fileSyncInterval
                    }
                    if now >= nextCheck {
                        if let change = await reconciler.haproxyChanged() {
                            queue.push(.reapply(change))
                        }
                        nextCheck = Monotonic.now() + settings.haproxyCheckInterval
                    }
                    if let due = queue.nextDeadline, due <= now { queue.poke() }
                }
            }
            await applyLoop()
            retry.cancel()
            group.cancelAll()
        }
        await reconciler.writeConfigIfDirty()
        logger.info("controller stopped")
    }

    private func applyLoop() async {
        var retryDelay = 0.5
        for await _ in queue.wakeups {
            if stopping.isSet { break }
            let batch = queue.drain()
            if batch.isEmpty { continue }
            let ok = await apply(batch)
            if ok {
                retryDelay = 0.5
            } else {
                // Marathon or HAProxy unreachable: keep the desired state, try again later. One
                // retry at a time: a failure while an earlier-or-equal retry is pending (events,
                // the watchdog) waits for it, so retries back off instead of multiplying.
                let delay = retryDelay * Double.random(in: 0.8...1.2)
                let queue = self.queue
                if retry.schedule(after: delay, { queue.push(.resync("retry after a failure")) }) {
                    retryDelay = min(retryDelay * 2, settings.maxBackoff)
                    logger.info("will retry", [("in_s", delay.fixed(1))])
                }
            }
            if stopping.isSet { break }
        }
    }

    /// Applies one batch; false when it could not be applied (and should be retried).
    private func apply(_ batch: InputQueue.Batch) async -> Bool {
        if let reason = batch.reapply, batch.resync == nil, batch.statusUpdates.isEmpty, batch.healthChanges.isEmpty {
            // HAProxy changed, Marathon did not: re-apply the model we have.
            let report = await reconciler.fullSync(reason: reason)
            return report.error == nil
        }
        if let reason = batch.resync {
            // A fresh snapshot reflects every event that arrived before it: the batch's task
            // changes need not be replayed.
            await reconciler.snapshotPass(running: true)
            do {
                // Scoped: the snapshot is dropped before the pass (the model keeps what it needs).
                let fetched = try await source.fetchApps()
                await reconciler.replaceApps(fetched.apps, skipped: fetched.skipped)
            } catch {
                await reconciler.snapshotPass(running: false)
                logger.error("cannot fetch apps from Marathon; HAProxy keeps its current state", [("reason", "\(error)")])
                return false
            }
            let report = await reconciler.fullSync(reason: reason)
            await reconciler.snapshotPass(running: false)
            return report.error == nil
        }
        let cpuAtStart = CPUClock.process()
        var affected = Set<String>()
        var unknown: String?
        for u in batch.statusUpdates {
            if await reconciler.applyStatusUpdate(u) { affected.insert(u.appId) } else { unknown = u.appId }
        }
        for h in batch.healthChanges {
            if await reconciler.applyHealthChange(appId: h.appId, instanceId: h.instanceId, alive: h.alive) {
                affected.insert(h.appId)
            } else {
                unknown = h.appId
            }
        }
        if let unknown {
            // Marathon knows something we do not (a new app, or a task of one): fetch soon.
            queue.push(.structureChanged("event for unknown app or task \(unknown)"))
        }
        guard !affected.isEmpty else {
            if let reason = batch.reapply {
                return await reconciler.fullSync(reason: reason).error == nil
            }
            return true
        }
        switch await reconciler.flush(appIds: affected) {
        case .done:
            record(batch, cpu: CPUClock.process() - cpuAtStart)
            return true
        case .needsFullSync(var why):
            if let r = batch.reapply { why += "; \(r)" }
            logger.info("fast path not enough; full pass on the current model", [("why", why)])
            let report = await reconciler.fullSync(reason: why)
            return report.error == nil
        case .needsSnapshot(var why):
            // Grown on the current model, the backend would fit only the tasks seen so far, and
            // grow again (a second reload) when the snapshot after the scale-up arrives. Sized
            // from Marathon's instance count, it grows once.
            if let r = batch.reapply { why += "; \(r)" }
            logger.info("fast path not enough; full pass on a fresh snapshot", [("why", why)])
            await reconciler.snapshotPass(running: true)
            do {
                let fetched = try await source.fetchApps()
                await reconciler.replaceApps(fetched.apps, skipped: fetched.skipped)
            } catch {
                logger.warning("cannot fetch apps from Marathon; full pass on the current model", [("reason", "\(error)")])
            }
            let report = await reconciler.fullSync(reason: why)
            await reconciler.snapshotPass(running: false)
            return report.error == nil
        }
    }

    private func record(_ batch: InputQueue.Batch, cpu: Double) {
        guard let t = batch.oldestEventAt else { return }
        let latency = Monotonic.now() - t
        stats.record(latency, events: batch.events, cpu: cpu)
        reconciler.metrics.applied(latency: latency)
    }
}

/// At most one pending retry, at the earliest time asked for.
final class RetryTimer: Sendable {
    private struct State {
        var task: Task<Void, Never>?
        var deadline = 0.0
        var generation = 0
    }
    private let state = Mutex(State())

    /// Runs `fire` after `delay` seconds, unless a retry is already due by then (false: nothing
    /// new scheduled). A pending retry due later is replaced.
    func schedule(after delay: Double, now: Double = Monotonic.now(), _ fire: @escaping @Sendable () -> Void) -> Bool {
        state.withLock { s in
            if s.task != nil, s.deadline <= now + delay { return false }
            s.task?.cancel()
            s.generation += 1
            s.deadline = now + delay
            let generation = s.generation
            s.task = Task { [self] in
                try? await Task.sleep(nanoseconds: UInt64(delay * 1e9))
                let due = state.withLock { s in
                    guard s.generation == generation, s.task != nil else { return false }
                    s.task = nil
                    return true
                }
                if due { fire() }
            }
            return true
        }
    }

    func cancel() {
        state.withLock { s in
            s.task?.cancel()
            s.task = nil
            s.generation += 1
        }
    }
}

/// Event-to-applied latencies (seconds) of fast-path batches (from the oldest event of a batch
/// arriving to HAProxy acknowledging its runtime commands), batch sizes, and the process CPU
/// time each batch took (model update, read-back, plan, commands; anything else the process ran
/// meanwhile is included, so it is exact only when the controller is otherwise idle).
public final class ControllerStats: Sendable {
    private struct State {
        var latencies: [Double] = []
        var cpuTimes: [Double] = []
        var batches = 0
        var events = 0
    }
    private let state = Mutex(State())

    func record(_ latency: Double, events: Int, cpu: Double = 0) {
        state.withLock {
            $0.batches += 1
            $0.events += events
            if $0.latencies.count >= 100_000 {
                $0.latencies.removeFirst($0.latencies.count / 2)
                $0.cpuTimes.removeFirst($0.cpuTimes.count / 2)
            }
            $0.latencies.append(latency)
            $0.cpuTimes.append(cpu)
        }
    }

    public var batches: Int { state.withLock { $0.batches } }
    public var events: Int { state.withLock { $0.events } }
    public var latencies: [Double] { state.withLock { $0.latencies } }
    /// Process CPU seconds per fast-path batch, in the order of `latencies`.
    public var cpuTimes: [Double] { state.withLock { $0.cpuTimes } }
    public func reset() { state.withLock { $0 = State() } }
}

import Synchronization

extension Controller {
    /// The controller's inputs from Marathon's event stream, as `run` maps them (for embedders:
    /// the demo, benchmarks and tests).
    public static func inputs(from stream: AsyncStream<StreamHappening>, logger: Logger) -> AsyncStream<ControllerInput> {
        RunCommand.controllerInputs(stream, logger: logger)
    }
}
