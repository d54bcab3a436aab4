/// Who HAProxy's workers run as. Started as root, HAProxy keeps root in its workers unless the
/// config says `user`/`group`; Debian's packaged config says `haproxy`/`haproxy`, and so does
/// servicerouter's, by default, when it runs as root (see `--haproxy-user`). The master stays root
/// (it binds the ports and re-reads the config on reloads); the workers drop to this identity
/// once the listening sockets, the admin socket, the maps and the certificates are open.
public struct WorkerIdentity: Sendable, Equatable {
    public var user: String
    public var group: String

    /// Names as `useradd` takes them: a letter or `_`, then letters, digits, `_`, `-`, `.`; at
    /// most 32 bytes (they go into a config line).
    public init(user: String, group: String) throws {
        for (field, name) in [("--haproxy-user", user), ("--haproxy-group", group)] where !Self.isName(name) {
            throw ValidationError(field: field, value: name, reason: "a user or group name: a letter or _, then letters, digits, _ . - (at most 32)")
        }
        self.user = user
        self.group = group
    }

    static func isName(_ s: String) -> Bool {
        let u = Array(s.utf8)
        guard let first = u.first, u.count <= 32 else { return false }
        let letter: (UInt8) -> Bool = { ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x5F }
        return letter(first) && u.allSatisfy { letter($0) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x2E }
    }

    /// The `global` section that sets it; nil when the rendered HEAD sets a user or group itself
    /// (`user`, `uid`, `group`, `gid`): the operator's own choice stands, and HAProxy refuses a
    /// second one.
    public func section(afterHead head: String) -> String? {
        for line in head.split(separator: "\n") {
            let word = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).first
            if let word, ["user", "uid", "group", "gid"].contains(word) { return nil }
        }
        return "\nglobal\n  user \(user)\n  group \(group)\n"
    }
}
