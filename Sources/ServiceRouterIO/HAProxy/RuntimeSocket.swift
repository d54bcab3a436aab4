import ServiceRouterCore

/// One command's reply.
public struct RuntimeReply: Sendable, Equatable {
    public var command: RuntimeCommand
    public var text: String
    /// nil when HAProxy accepted the command; else what it said.
    public var failure: String?

    public init(command: RuntimeCommand, text: String, failure: String?) {
        self.command = command
        self.text = text
        self.failure = failure
    }
}

public struct RuntimeSocketError: Error, CustomStringConvertible, Sendable {
    public var socket: String
    public var reason: String
    public init(socket: String, reason: String) {
        self.socket = socket
        self.reason = reason
    }
    public var description: String { "runtime socket \(socket): \(reason)" }
}

/// The runtime API edge: HAProxy's admin stats socket.
public protocol RuntimeAPI: Sendable {
    /// Sends the commands (batched on as few connections as possible) and returns one reply per
    /// command, in order. Throws when the socket cannot be reached or the replies cannot be matched
    /// to the commands.
    func execute(_ commands: [RuntimeCommand]) async throws -> [RuntimeReply]
    /// Sends one raw line (operator use: `servicerouter socket`) and returns HAProxy's raw answer.
    func raw(_ line: String) async throws -> String
    var path: String { get }
}

/// HAProxy's admin socket over a Unix stream socket, in non-interactive mode: one line per
/// connection, commands joined with `;`, every reply ended by an empty line.
public struct UnixRuntimeSocket: RuntimeAPI {
    public let path: String
    public var timeout: Double
    /// Commands per line/connection. HAProxy 2.6 accepted 4,000 `set server` commands (180 KB) on one
    /// line here but reset the connection at 20,000; 500 keeps lines around 25 KB.
    public var commandsPerConnection: Int

    public init(path: String, timeout: Double = 5, commandsPerConnection: Int = 500) {
        self.path = path
        self.timeout = timeout
        self.commandsPerConnection = commandsPerConnection
    }

    public func execute(_ commands: [RuntimeCommand]) async throws -> [RuntimeReply] {
        guard !commands.isEmpty else { return [] }
        let path = self.path, timeout = self.timeout, chunk = max(1, commandsPerConnection)
        return try await Blocking.run {
            var out: [RuntimeReply] = []
            out.reserveCapacity(commands.count)
            var start = 0
            while start < commands.count {
                let batch = Array(commands[start..<min(commands.count, start + chunk)])
                out += try Self.exchange(batch, path: path, timeout: timeout)
                start += chunk
            }
            return out
        }
    }

    /// Every live server, read on the calling thread (for code that runs on a thread of its own,
    /// like the status endpoint's loop).
    public func liveStateBlocking() throws -> LiveState {
        let reply = try Self.exchange([.showServersState(backend: nil)], path: path, timeout: timeout)[0]
        do { return try RuntimeReplyParsers.serversState(reply.text) } catch {
            throw RuntimeSocketError(socket: path, reason: "\(error)")
        }
    }

    static func exchange(_ batch: [RuntimeCommand], path: String, timeout: Double) throws -> [RuntimeReply] {
        let line = batch.map(\.text).joined(separator: ";") + "\n"
        let conn: Connection
        do { conn = try Connection.unix(path: path, timeout: timeout) } catch {
            throw RuntimeSocketError(socket: path, reason: "cannot connect: \(error)")
        }
        defer { conn.close() }
        var splitter = RuntimeReplySplitter()
        do {
            try conn.write(line)
            while splitter.replies.count < batch.count, let chunk = try conn.read(timeout: timeout) {
                splitter.feed(chunk)
            }
        } catch {
            throw RuntimeSocketError(socket: path, reason: "exchange failed after \(splitter.replies.count) of \(batch.count) replies: \(error)")
        }
        guard splitter.replies.count == batch.count else {
            throw RuntimeSocketError(socket: path, reason: "expected \(batch.count) replies, got \(splitter.replies.count) (unterminated: \(ValidationError.quoted(splitter.pending)))")
        }
        return zip(batch, splitter.replies).map { cmd, text in
            RuntimeReply(command: cmd, text: text, failure: cmd.failure(in: text))
        }
    }

    public func raw(_ line: String) async throws -> String {
        let path = self.path, timeout = self.timeout
        return try await Blocking.run {
            let conn: Connection
            do { conn = try Connection.unix(path: path, timeout: timeout) } catch {
                throw RuntimeSocketError(socket: path, reason: "cannot connect: \(error)")
            }
            defer { conn.close() }
            try conn.write(line.hasSuffix("\n") ? line : line + "\n")
            conn.shutdownWrite()
            return String(decoding: try conn.readToEnd(timeout: timeout), as: UTF8.self)
        }
    }
}

extension RuntimeAPI {
    /// Reads the live servers (all backends, or only the given ones).
    public func liveState(backends: [ProxyName]? = nil) async throws -> LiveState {
        let commands = Self.serversStateCommands(backends)
        guard !commands.isEmpty else { return LiveState() }
        return try mergedServersState(try await execute(commands))
    }

    /// The live servers and the identity of the worker that reported them, read on one connection
    /// (while fewer than `commandsPerConnection` commands): for a moment after a reload the
    /// replaced worker may still answer some connections, and state read from it must not pass
    /// for the new worker's. With `maps`, also those vhost maps (a map HAProxy has not loaded is
    /// absent from the result).
    public func liveView(backends: [ProxyName]? = nil, maps: [MapFile] = []) async throws -> LiveView {
        let state = Self.serversStateCommands(backends)
        let replies = try await execute([.showInfo] + state + maps.map { .showMap(file: $0) })
        let identity = try identity(replies[0])
        let servers = try mergedServersState(replies[1..<(1 + state.count)])
        var live: [String: [MapKeyValue]] = [:]
        for (file, reply) in zip(maps, replies.dropFirst(1 + state.count)) where reply.failure == nil {
            if let entries = RuntimeCommand.mapEntries(reply.text) { live[file.path] = entries }
        }
        return LiveView(identity: identity, servers: servers, maps: live)
    }

    private static func serversStateCommands(_ backends: [ProxyName]?) -> [RuntimeCommand] {
        backends.map { $0.map { .showServersState(backend: $0) } } ?? [.showServersState(backend: nil)]
    }

    private func mergedServersState(_ replies: some Sequence<RuntimeReply>) throws -> LiveState {
        var states: [LiveState] = []
        for reply in replies {
            // "Can't find backend." for a backend that is not live: it simply has no servers.
            if reply.failure != nil { continue }
            do {
                states.append(try RuntimeReplyParsers.serversState(reply.text))
            } catch {
                throw RuntimeSocketError(socket: path, reason: "\(error)")
            }
        }
        // One reply (every backend at once) is already grouped; only several are merged.
        if states.count == 1 { return states[0] }
        var servers: [LiveServer] = []
        for state in states {
            for name in state.backendOrder { servers += state.backends[name] ?? [] }
        }
        return LiveState(servers: servers)
    }

    /// Which process is serving, and which config structure it loaded.
    public func identity() async throws -> HAProxyIdentity {
        return try identity(try await execute([.showInfo])[0])
    }

    private func identity(_ info: RuntimeReply) throws -> HAProxyIdentity {
        guard let identity = HAProxyIdentity(info: RuntimeReplyParsers.info(info.text)) else {
            throw RuntimeSocketError(socket: path, reason: "show info has no Pid: \(ValidationError.quoted(String(info.text.prefix(80))))")
        }
        return identity
    }
}
