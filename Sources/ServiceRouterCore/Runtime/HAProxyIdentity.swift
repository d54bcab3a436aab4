/// Identifies the HAProxy worker behind the socket: a new pid or start time means a restart or a
/// reload, and `structureHash` says which generated config it runs (nil: not one of ours).
public struct HAProxyIdentity: Sendable, Equatable {
    public var pid: Int
    public var startTime: Int
    public var structureHash: String?

    public init(pid: Int, startTime: Int, structureHash: String?) {
        self.pid = pid
        self.startTime = startTime
        self.structureHash = structureHash
    }

    /// From `show info`'s fields; nil without a `Pid`.
    public init?(info fields: [String: String]) {
        guard let pid = fields["Pid"].flatMap({ Int($0) }) else { return nil }
        self.init(pid: pid, startTime: fields["Start_time_sec"].flatMap { Int($0) } ?? 0,
                  structureHash: RenderedConfig.structureHash(info: fields))
    }
}

/// What the controller reads back from HAProxy before planning: which worker answered, its
/// servers, and the vhost maps it has loaded (by file; absent: that map is not loaded).
public struct LiveView: Sendable, Equatable {
    public var identity: HAProxyIdentity
    public var servers: LiveState
    public var maps: [String: [MapKeyValue]]

    public init(identity: HAProxyIdentity, servers: LiveState, maps: [String: [MapKeyValue]] = [:]) {
        self.identity = identity
        self.servers = servers
        self.maps = maps
    }

    /// Addresses HAProxy has in service now.
    public var servingEndpoints: Set<Endpoint> {
        var out = Set<Endpoint>()
        for servers in servers.backends.values {
            for s in servers where s.admin == .ready { if let e = s.endpoint { out.insert(e) } }
        }
        return out
    }
}
