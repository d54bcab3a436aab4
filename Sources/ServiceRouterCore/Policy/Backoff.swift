/// Exponential backoff with jitter for reconnect loops. Pure: the caller passes the random number,
/// so tests can pin it.
///
/// Delay n (from 0) is `initial × multiplierⁿ`, capped at `maximum`, then scaled by a factor drawn
/// uniformly from [1 − jitter, 1 + jitter) and capped at `maximum` again. The jitter keeps many
/// servicerouter instances from reconnecting to a recovering Marathon leader in lockstep.
public struct Backoff: Sendable, Equatable {
    public let initial: Double
    public let maximum: Double
    public let multiplier: Double
    public let jitter: Double
    /// Delays handed out since the last reset.
    public private(set) var attempts = 0
    private var base: Double

    /// Out-of-range settings are clamped rather than trapped: they come from the command line.
    public init(initial: Double = 0.5, maximum: Double, multiplier: Double = 2, jitter: Double = 0.2) {
        let initial = initial.isFinite && initial > 0 ? initial : 0.5
        self.initial = initial
        self.maximum = maximum.isFinite ? max(initial, maximum) : max(initial, 60)
        self.multiplier = multiplier.isFinite ? max(1, multiplier) : 2
        self.jitter = jitter.isFinite ? min(1, max(0, jitter)) : 0
        self.base = initial
    }

    /// The delay before the next attempt, in seconds. `random` is in [0, 1).
    public mutating func next(random: Double) -> Double {
        let r = random.isFinite ? min(max(random, 0), 1) : 0.5
        let delay = min(maximum, base * (1 - jitter + 2 * jitter * r))
        base = min(maximum, base * multiplier)
        attempts += 1
        return max(0, delay)
    }

    /// Back to `initial`, after a connection that worked.
    public mutating func reset() {
        base = initial
        attempts = 0
    }
}

/// When the event stream reconnects. Exponential back-off with jitter; a connection resets it
/// only once it stayed up for `healthyAfter` seconds, so a stream that delivers a few bytes and
/// breaks (a proxy cutting streams, a line too long to parse) backs off like one that never
/// connects instead of reconnecting — and refetching `/v2/apps` — at full speed forever.
public struct ReconnectPolicy: Sendable, Equatable {
    public private(set) var backoff: Backoff
    public let healthyAfter: Double
    private var connectedAt: Double?

    public init(initial: Double = 0.5, maximum: Double, healthyAfter: Double = 10) {
        backoff = Backoff(initial: initial, maximum: maximum)
        self.healthyAfter = healthyAfter.isFinite ? max(0, healthyAfter) : 10
    }

    /// The stream answered 200 at `now`.
    public mutating func connected(at now: Double) { connectedAt = now }

    /// The stream ended (or could not be opened) at `now`: the delay before the next attempt,
    /// and whether the connection had been healthy (then the same Marathon is tried again).
    public mutating func disconnected(at now: Double, random: Double) -> (delay: Double, wasHealthy: Bool) {
        let healthy = connectedAt.map { now - $0 >= healthyAfter } ?? false
        connectedAt = nil
        if healthy { backoff.reset() }
        return (backoff.next(random: random), healthy)
    }
}
