import ServiceRouterCore
import ServiceRouterIO
import Synchronization

public struct RunSettings: Sendable {
    /// Full resync from `/v2/apps?embed=apps.tasks` at least this often (seconds).
    public var resyncInterval: Double = 300
    /// Runtime changes reach the config file at most this long after they were applied (the
    /// first change after a quiet period is written at once).
    public var fileSyncInterval: Double = 1
    /// Upper bound of the retry delay after a failed fetch or pass.
    public var maxBackoff: Double = 30
    /// How often HAProxy's identity (pid, start time, loaded structure) is checked, so a restart
    /// behind our back is noticed and the whole state re-applied even when no event arrives.
    public var haproxyCheckInterval: Double = 2
    /// Structural events (app definitions, deployments) wait this long for more of their burst
    /// before the snapshot fetch: a vhost move is applied this much after its event at the least.
    public var structuralDebounce: Double = 0.05
    public init() {}
}

/// `servicerouter run`: the long-running controller. One loop owns every decision: it takes a
/// batch of inputs, pushes task events through the fast path (runtime API only), runs full
/// passes, and sleeps until the next input or deadline (no tick). A snapshot fetch runs beside
/// the loop, never in front of it: events that arrive meanwhile reach HAProxy at once, and are
/// applied again on top of the snapshot when it comes.
public final class Controller: Sendable {
    public let reconciler: Reconciler
    public let queue: InputQueue
    /// The loop's decisions, newest last (bounded): tests and `/status` read them.
    public let activity = ControllerActivity()
    let source: any AppsSource
    let logger: Logger
    let settings: RunSettings
    let time: any TimeSource
    let random: @Sendable () -> Double
    private let stopping = StopFlag()
    private let stats = ControllerStats()
    private let fetchInFlight = Atomic<Bool>(false)
    private let passes = Atomic<Int>(0)

    public init(reconciler: Reconciler, source: any AppsSource, logger: Logger, settings: RunSettings = RunSettings(),
                queue: InputQueue? = nil, time: any TimeSource = SystemTime(),
                random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }) {
        self.reconciler = reconciler
        self.source = source
        self.queue = queue ?? InputQueue(debounce: settings.structuralDebounce, time: time)
        self.logger = logger
        self.settings = settings
        self.time = time
        self.random = random
    }

    /// Asks the controller to stop after the batch in flight (SIGTERM/SIGINT).
    public func stop() {
        stopping.set()
        queue.poke()
    }

    public var isStopping: Bool { stopping.isSet }

    /// Nothing to do and nothing under way: the loop sleeps, no input waits, no debounced resync
    /// is pending and no snapshot is being fetched (tests wait for it before asserting that
    /// something did *not* happen).
    public var isIdle: Bool {
        guard case .waiting = activity.last else { return false }
        return queue.isQuiet && queue.nextDeadline == nil && !fetchInFlight.load(ordering: .acquiring)
    }

    /// Full passes run so far.
    public var fullPasses: Int { passes.load(ordering: .acquiring) }
    public var latencies: ControllerStats { stats }

    /// Runs until `stop()`. `inputs` is the event stream, already mapped to controller inputs.
    public func run(inputs: AsyncStream<ControllerInput>) async {
        queue.push(.resync("start-up"))
        await withDiscardingTaskGroup { group in
            group.addTask { [queue, metrics = reconciler.metrics] in
                for await input in inputs {
                    metrics.input(input)
                    queue.push(input)
                }
            }
            var loop = Loop(now: time.now(), settings: settings)
            await run(&loop, group: &group)
            group.cancelAll()
        }
        // Whatever the runtime API changed is on disk before the process exits.
        await reconciler.rewriteConfigIfDirty()
        logger.info("controller stopped")
    }

    /// The loop's own state: deadlines and the fetch in flight.
    struct Loop {
        var nextResync: Double
        var nextCheck: Double
        var lastFileWrite = -Double.infinity
        var retryAt: Double?
        var backoff: Backoff
        var fetching: String?
        var fetchAgain: String?
        let settings: RunSettings

        init(now: Double, settings: RunSettings) {
            self.settings = settings
            nextResync = now + settings.resyncInterval
            nextCheck = now + settings.haproxyCheckInterval
            backoff = Backoff(initial: 0.5, maximum: settings.maxBackoff)
        }
    }

    private func run(_ loop: inout Loop, group: inout DiscardingTaskGroup) async {
        while !stopping.isSet {
            var batch = queue.drain()
            let now = time.now()
            if now >= loop.nextResync {
                batch.resync = batch.resync ?? "periodic resync (every \(Int(settings.resyncInterval)) s)"
                loop.nextResync = now + settings.resyncInterval
            }
            if let at = loop.retryAt, now >= at {
                loop.retryAt = nil
                batch.resync = batch.resync ?? "retry after a failure"
            }
            var fetched = queue.takeFetched()
            await handle(batch, fetched: &fetched, &loop, group: &group)
            if time.now() >= loop.nextCheck {
                if let change = await reconciler.haproxyChanged() { await fullPass(change, &loop) }
                loop.nextCheck = time.now() + settings.haproxyCheckInterval
            }
            var fileDue: Double?
            if await reconciler.fileDirty {
                let due = loop.lastFileWrite + settings.fileSyncInterval
                if time.now() >= due {
                    await reconciler.rewriteConfigIfDirty()
                    loop.lastFileWrite = time.now()
                    activity.record(.configRewritten)
                } else {
                    fileDue = due
                }
            }
            if stopping.isSet { break }
            let deadline = [loop.nextResync, loop.nextCheck, loop.retryAt, queue.nextDeadline, fileDue].compactMap { $0 }.min()
            activity.record(.waiting(until: deadline))
            await queue.signal.wait(until: deadline, time: time)
        }
    }

    private func handle(_ batch: InputQueue.Batch, fetched: inout InputQueue.Fetched?, _ loop: inout Loop, group: inout DiscardingTaskGroup) async {
        let cpuAtStart = CPUClock.process()
        var affected = Set<String>()
        var unknown: String?
        for event in batch.events {
            switch await reconciler.apply(event) {
            case .changed(let app): affected.insert(app)
            case .unknown(let app): unknown = unknown ?? app
            case .unchanged, .stale: break
            }
        }
        var snapshotCoversEvents = false
        if case .snapshot = fetched { snapshotCoversEvents = true }
        // A snapshot's full pass covers the batch's events: they are in the model's journal and
        // were applied over it.
        if !snapshotCoversEvents, !affected.isEmpty, await reconciler.hasSnapshot {
            switch await reconciler.fastPath(appIds: affected) {
            case .done(let commands):
                record(batch, cpu: CPUClock.process() - cpuAtStart)
                activity.record(.fastPath(commands: commands))
            case .needsFullPass(let why):
                activity.record(.fastPathMissed(why))
                if why.wantsSnapshot {
                    // Sized from Marathon's instance count, a scaled-up backend grows once. A fetch
                    // already in flight answers with that count too.
                    logger.info("fast path not enough; full pass on a fresh snapshot", [("why", why.description)])
                    if loop.fetching == nil { startFetch(why.description, &loop, group: &group) }
                } else {
                    logger.info("fast path not enough; full pass on the current model", [("why", why.description)])
                    await fullPass(why.description, &loop)
                }
            }
        }
        let fetchAnswered = fetched != nil
        if fetchAnswered { await snapshotArrived(&fetched, &loop, group: &group) }
        // Marathon knows something we do not (a new app, or a task of one): fetch soon. A fetch
        // in flight replays the event over its answer and asks again if that did not help.
        if let unknown, loop.fetching == nil, !fetchAnswered {
            queue.push(.structureChanged("event for unknown app or task \(unknown)"))
        }
        if let reason = batch.reapply { await fullPass(reason, &loop) }
        if let reason = batch.resync { startFetch(reason, &loop, group: &group) }
    }

    /// Fetches a snapshot beside the loop; its answer comes back through the queue.
    private func startFetch(_ reason: String, _ loop: inout Loop, group: inout DiscardingTaskGroup) {
        guard loop.fetching == nil else {
            loop.fetchAgain = loop.fetchAgain ?? reason
            return
        }
        loop.fetching = reason
        fetchInFlight.store(true, ordering: .releasing)
        activity.record(.fetchStarted(reason))
        let reconciler = self.reconciler, source = self.source, queue = self.queue
        group.addTask {
            await reconciler.beginSnapshot()
            do {
                queue.deliver(.snapshot(try await source.fetchApps()))
            } catch {
                queue.deliver(.failed("\(error)"))
            }
        }
    }

    private func snapshotArrived(_ fetched: inout InputQueue.Fetched?, _ loop: inout Loop, group: inout DiscardingTaskGroup) async {
        let reason = loop.fetching ?? "resync"
        loop.fetching = nil
        defer { if loop.fetching == nil { fetchInFlight.store(false, ordering: .releasing) } }
        // The snapshot is handed to the model and dropped before the pass: at 10,000 tasks the
        // decoded payload and the model must not both be alive while the pass runs.
        switch await takeSnapshot(&fetched) {
        case .failure(let why):
            await reconciler.abandonSnapshot()
            logger.error("cannot fetch apps from Marathon; HAProxy keeps its current state", [("reason", why.description)])
            activity.record(.fetchFailed(why.description))
            scheduleRetry(&loop)
        case .success(let again):
            if await fullPass(reason, &loop) {
                loop.backoff.reset()
                loop.retryAt = nil
            }
            if again { loop.fetchAgain = loop.fetchAgain ?? "events named apps the snapshot did not have" }
        }
        if let next = loop.fetchAgain {
            loop.fetchAgain = nil
            startFetch(next, &loop, group: &group)
        }
    }

    /// The model takes the snapshot; true when another snapshot should follow.
    private func takeSnapshot(_ fetched: inout InputQueue.Fetched?) async -> Result<Bool, AppsSourceError> {
        switch fetched.take() {
        case .snapshot(let snapshot)?: .success(await reconciler.replace(with: snapshot))
        case .failed(let why)?: .failure(AppsSourceError(why))
        case nil: .success(false)
        }
    }

    /// One full pass on the current model; false (and a retry scheduled) when it failed.
    @discardableResult
    private func fullPass(_ reason: String, _ loop: inout Loop) async -> Bool {
        let report = await reconciler.fullPass(reason: reason)
        passes.add(1, ordering: .releasing)
        activity.record(.fullPass(reason: reason, reloaded: report.reloaded, error: report.error))
        guard report.error == nil || report.error == .noSnapshot else {
            scheduleRetry(&loop)
            return false
        }
        return report.error == nil
    }

    /// One retry pending at a time, at the earliest time asked for; the delay backs off.
    private func scheduleRetry(_ loop: inout Loop) {
        let delay = loop.backoff.next(random: random())
        let at = time.now() + delay
        if let pending = loop.retryAt, pending <= at { return }
        loop.retryAt = at
        logger.info("will retry", [("in_s", delay.fixed(1))])
        activity.record(.retryScheduled(after: delay))
    }

    private func record(_ batch: InputQueue.Batch, cpu: Double) {
        guard let t = batch.oldestEventAt else { return }
        let latency = time.now() - t
        stats.record(latency, events: batch.inputs, cpu: cpu)
        reconciler.metrics.applied(latency: latency)
    }
}

/// What the loop decided, as values (bounded: the newest 1,000).
public final class ControllerActivity: Sendable {
    public enum Entry: Sendable, Equatable {
        case fastPath(commands: Int)
        case fastPathMissed(FullPassReason)
        case fullPass(reason: String, reloaded: Bool, error: PassError?)
        case fetchStarted(String)
        case fetchFailed(String)
        case retryScheduled(after: Double)
        case configRewritten
        /// The loop sleeps until this deadline or the next input.
        case waiting(until: Double?)
    }
    private let entries = Mutex<[Entry]>([])
    private let counter = Atomic<Int>(0)

    func record(_ e: Entry) {
        counter.add(1, ordering: .relaxed)
        entries.withLock { list in
            if list.count >= 1_000 { list.removeFirst(500) }
            list.append(e)
        }
    }

    public var all: [Entry] { entries.withLock { $0 } }
    public var last: Entry? { entries.withLock { $0.last } }
    /// Entries recorded so far (monotonic, unlike `all`).
    public var count: Int { counter.load(ordering: .relaxed) }
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
