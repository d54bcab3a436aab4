import Testing
@testable import ServiceRouterCore

@Suite("Backoff")
struct BackoffTests {
    @Test func doublesUpToTheMaximumWithoutJitter() {
        var b = Backoff(initial: 0.5, maximum: 5, jitter: 0)
        let delays = (0..<7).map { _ in b.next(random: 0.9) }
        #expect(delays == [0.5, 1, 2, 4, 5, 5, 5])
        #expect(b.attempts == 7)
    }

    @Test func jitterSpansPlusMinusTheFraction() {
        var low = Backoff(initial: 1, maximum: 100, jitter: 0.2)
        var mid = low
        var high = low
        #expect(low.next(random: 0) == 0.8)
        #expect(mid.next(random: 0.5) == 1)
        #expect(abs(high.next(random: 0.999999) - 1.2) < 1e-5)
        #expect(low.next(random: 0) == 1.6)
    }

    @Test func jitterNeverExceedsTheMaximum() {
        var b = Backoff(initial: 1, maximum: 4, multiplier: 3, jitter: 0.5)
        for _ in 0..<20 {
            let d = b.next(random: 0.999)
            #expect(d <= 4 && d > 0)
        }
    }

    @Test func resetStartsOver() {
        var b = Backoff(initial: 0.5, maximum: 30, jitter: 0)
        for _ in 0..<5 { _ = b.next(random: 0) }
        #expect(b.next(random: 0) == 16)
        b.reset()
        #expect(b.attempts == 0)
        #expect(b.next(random: 0) == 0.5)
        #expect(b.next(random: 0) == 1)
    }

    @Test func badSettingsAreClamped() {
        var b = Backoff(initial: -1, maximum: 0.1, multiplier: 0.5, jitter: 7)
        #expect(b.initial == 0.5 && b.maximum == 0.5 && b.multiplier == 1 && b.jitter == 1)
        #expect(b.next(random: .nan) == 0.5)
        #expect(b.next(random: 5) == 0.5)
        #expect(b.next(random: -3) == 0)
    }
}
