#if canImport(Glibc)
import Glibc
#endif
import ServiceRouterCore

/// Whether an address and port can be bound now: `haproxy -c` cannot see a port another process
/// holds, and a reload onto a config that binds it fails as a whole. The edge the reconciler asks
/// before a reload (an in-memory double stands in for it in tests).
public protocol PortProbing: Sendable {
    /// Why `bind` cannot be bound (e.g. "Address already in use"), or nil when it can.
    func problem(binding bind: ConfigBind) -> String?
}

/// Tries to bind and listen, then closes at once. A port HAProxy itself holds fails too: callers
/// only probe binds the running HAProxy does not have.
public struct SystemPortProbe: PortProbing {
    public init() {}

    public func problem(binding bind: ConfigBind) -> String? {
        let host = bind.address == "*" ? "0.0.0.0" : bind.address
        do {
            _ = try Listener.tcp(host: host, port: bind.port, backlog: 1)
            return nil
        } catch let e as SystemError where e.code == EADDRINUSE {
            return "\(bind) is already in use by another process"
        } catch let e as SystemError where e.code == EADDRNOTAVAIL {
            return "\(bind): the address is not on this machine"
        } catch {
            // EACCES and the like say nothing about HAProxy, which binds as root: it decides.
            return nil
        }
    }
}
