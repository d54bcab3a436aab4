import FoundationEssentials
import ServiceRouterIO
import Synchronization

/// The simulator's role (leader or standby) and the request faults armed by tests.
final class ControlState: Sendable {
    struct Role: Sendable {
        /// nil: this instance is the leader.
        var leaderURL: String?
        var redirectStatus: Int
    }

    private struct Faults {
        var failCount = 0
        var failStatus = 503
        var hangCount = 0
        var hangSeconds = 0.0
    }

    private let role: Mutex<Role>
    private let faults = Mutex(Faults())

    init(leaderURL: String?, redirectStatus: Int) {
        role = Mutex(Role(leaderURL: leaderURL, redirectStatus: redirectStatus))
    }

    var currentRole: Role { role.withLock { $0 } }

    func becomeStandby(leaderURL: String, redirectStatus: Int) {
        var url = leaderURL
        while url.hasSuffix("/") { url.removeLast() }
        role.withLock { $0 = Role(leaderURL: url, redirectStatus: redirectStatus) }
    }

    func becomeLeader() {
        role.withLock { $0.leaderURL = nil }
    }

    func failNext(_ count: Int, status: Int) {
        faults.withLock { f in
            f.failCount = max(0, count)
            f.failStatus = status
        }
    }

    func hangNext(_ count: Int, seconds: Double) {
        faults.withLock { f in
            f.hangCount = max(0, count)
            f.hangSeconds = max(0, seconds)
        }
    }

    func clearFaults() {
        faults.withLock { $0 = Faults() }
    }

    /// Takes one armed fault for the current request, if any: a hang, then a failure.
    func takeFault() -> (hang: Double?, failStatus: Int?) {
        faults.withLock { f in
            var hang: Double?
            var fail: Int?
            if f.hangCount > 0 {
                f.hangCount -= 1
                hang = f.hangSeconds
            }
            if f.failCount > 0 {
                f.failCount -= 1
                fail = f.failStatus
            }
            return (hang, fail)
        }
    }
}
