#if canImport(Glibc)
import Glibc
#endif
import ServiceRouterCore

/// `--haproxy-user` / `--haproxy-group`, and their default: started as root, servicerouter writes
/// `user haproxy` / `group haproxy` (what Debian's packaged haproxy.cfg says) so that HAProxy's
/// workers do not run as root; `--haproxy-user root` keeps root. Not root: nothing is written
/// (HAProxy could not switch users anyway).
enum WorkerIdentityChoice {
    /// The identity to write, and a warning when root stays root by default.
    static func resolve(user: String?, group: String?, euid: uid_t = geteuid()) throws -> (WorkerIdentity?, String?) {
        guard let user else {
            guard euid == 0 else {
                if group != nil { throw UsageError("--haproxy-group needs --haproxy-user") }
                return (nil, nil)
            }
            guard userExists("haproxy") else {
                if group != nil { throw UsageError("--haproxy-group needs --haproxy-user (there is no user haproxy here)") }
                return (nil, "running as root: HAProxy's workers will run as root, because there is no user haproxy here; --haproxy-user USER picks one (--haproxy-user root keeps root and silences this)")
            }
            return (try identity("haproxy", group: group), nil)
        }
        if user == "root" {
            if let group, group != "root" { throw UsageError("--haproxy-group \(group) with --haproxy-user root: give a user too") }
            return (nil, nil)
        }
        guard userExists(user) else { throw UsageError("--haproxy-user: no user \(user) here (HAProxy's workers would not start)") }
        return (try identity(user, group: group), nil)
    }

    static func identity(_ user: String, group: String?) throws -> WorkerIdentity {
        let chosen: String
        if let group {
            guard groupExists(group) else { throw UsageError("--haproxy-group: no group \(group) here") }
            chosen = group
        } else if groupExists(user) {
            chosen = user
        } else if let primary = primaryGroup(of: user) {
            chosen = primary
        } else {
            throw UsageError("--haproxy-user \(user): cannot find its group; give --haproxy-group")
        }
        do { return try WorkerIdentity(user: user, group: chosen) } catch { throw UsageError("\(error)") }
    }

    static func userExists(_ name: String) -> Bool { getpwnam(name) != nil }
    static func groupExists(_ name: String) -> Bool { getgrnam(name) != nil }
    static func primaryGroup(of user: String) -> String? {
        guard let pw = getpwnam(user), let gr = getgrgid(pw.pointee.pw_gid), let name = gr.pointee.gr_name else { return nil }
        return String(cString: name)
    }
}
