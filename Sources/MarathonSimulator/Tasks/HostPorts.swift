import ServiceRouterIO
import Synchronization

/// Host ports for task listeners. Binding port 0 makes the kernel search its ephemeral range
/// for a free port, which slows down (linear in the ports already bound) once thousands are
/// in use; binding an explicit port is a hash lookup. So tasks take ports from a range of their
/// own, like a Mesos agent's offered `ports` resource, and fall back to port 0 when it is full.
/// The default range (21000–32000, `MarathonSimulator.Options.hostPortRange`) sits between the
/// service ports (10000–20000, which HAProxy binds) and Linux's ephemeral range (32768+), so the
/// kernel never hands these ports to outgoing connections.
enum HostPorts {
    /// Shared by every simulator in the process so two of them rarely try the same port.
    private static let cursor = Atomic<Int>(0)

    static func listen(ip: String, range: ClosedRange<Int>?) throws -> Listener {
        if let range {
            for _ in 0..<64 {
                let n = cursor.add(1, ordering: .relaxed).oldValue & Int.max
                let port = range.lowerBound + n % range.count
                if let listener = try? Listener.tcp(host: ip, port: port, backlog: 128) { return listener }
            }
        }
        return try Listener.tcp(host: ip, port: 0, backlog: 128)
    }
}
