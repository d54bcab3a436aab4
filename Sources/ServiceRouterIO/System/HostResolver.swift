import ServiceRouterCore
import Synchronization

/// Resolves task host names to IPs (the runtime API takes IPs only). Cached with a TTL so an agent
/// whose address changes is picked up again (marathon-lb cached forever).
public protocol HostResolving: Sendable {
    func resolve(_ hosts: Set<String>) async -> [String: IPAddress]
}

public final class CachingHostResolver: HostResolving {
    private struct Entry { var ip: IPAddress?; var expires: Double }
    private let cache = Mutex<[String: Entry]>([:])
    private let ttl: Double
    private let negativeTTL: Double
    private let lookup: @Sendable (String) throws -> [String]

    public init(ttl: Double = 60, negativeTTL: Double = 5,
                lookup: @escaping @Sendable (String) throws -> [String] = { try Resolver.addresses(of: $0) }) {
        self.ttl = ttl
        self.negativeTTL = negativeTTL
        self.lookup = lookup
    }

    public func resolve(_ hosts: Set<String>) async -> [String: IPAddress] {
        let now = Monotonic.now()
        var out: [String: IPAddress] = [:]
        var missing: [String] = []
        cache.withLock { c in
            for h in hosts {
                if let e = c[h], e.expires > now {
                    if let ip = e.ip { out[h] = ip }
                } else {
                    missing.append(h)
                }
            }
        }
        guard !missing.isEmpty else { return out }
        let lookup = self.lookup, toLookUp = missing
        let resolved: [(String, IPAddress?)] = (try? await Blocking.run {
            toLookUp.sorted().map { h in (h, (try? lookup(h))?.lazy.compactMap { try? IPAddress($0) }.first) }
        }) ?? missing.map { ($0, nil) }
        let ttl = self.ttl, negativeTTL = self.negativeTTL
        cache.withLock { c in
            for (h, ip) in resolved {
                c[h] = Entry(ip: ip, expires: now + (ip == nil ? negativeTTL : ttl))
                if let ip { out[h] = ip }
            }
            if c.count > 100_000 { c = c.filter { $0.value.expires > now } }
        }
        return out
    }
}
