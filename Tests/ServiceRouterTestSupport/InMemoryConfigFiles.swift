import ServiceRouterCore
import ServiceRouterIO
import Synchronization

/// The config files (live config, candidate, last good, rejected, map files) in memory, with
/// write faults on demand. `InMemoryHAProxy` loads from it on a reload, as HAProxy loads from disk.
public final class InMemoryConfigFiles: ConfigFiles {
    public let path: String
    public var rejectedPath: String { path + ".rejected" }
    public var candidatePath: String { path + ".candidate" }
    public var lastGoodPath: String { path + ".last-good" }

    private struct State {
        var files: [String: String] = [:]
        var fault: String?
        var writes = 0
    }
    private let state = Mutex(State())

    public init(path: String = "/in-memory/haproxy.cfg", config: String? = nil) {
        self.path = path
        if let config { state.withLock { $0.files[path] = config } }
    }

    /// Every write fails with `reason` until healed (nil).
    public func setFault(_ reason: String?) { state.withLock { $0.fault = reason } }
    /// Successful writes so far (any file).
    public var writes: Int { state.withLock { $0.writes } }

    public func file(_ path: String) -> String? { state.withLock { $0.files[path] } }
    public var config: String? { file(path) }
    public var allFiles: [String: String] { state.withLock { $0.files } }

    private func write(_ path: String, _ text: String) throws {
        try state.withLock { s in
            if let fault = s.fault { throw ConfigFileError(path: path, operation: "write", reason: fault) }
            s.files[path] = text
            s.writes += 1
        }
    }

    public func read() -> String? { file(path) }
    public func holds(_ text: String) -> Bool { file(path) == text }
    public func writeCandidate(_ text: String) throws -> String {
        try write(candidatePath, text)
        return candidatePath
    }
    public func installCandidate() throws {
        try state.withLock { s in
            if let fault = s.fault { throw ConfigFileError(path: path, operation: "rename", reason: fault) }
            guard let candidate = s.files.removeValue(forKey: candidatePath) else {
                throw ConfigFileError(path: path, operation: "rename", reason: "no candidate")
            }
            if let current = s.files[path] { s.files[lastGoodPath] = current }
            s.files[path] = candidate
            s.writes += 1
        }
    }
    public func rejectCandidate() {
        state.withLock { s in
            if let c = s.files.removeValue(forKey: candidatePath) { s.files[rejectedPath] = c }
        }
    }
    public func restoreLastGood() throws {
        guard let good = file(lastGoodPath) else { return }
        try state.withLock { s in
            if let fault = s.fault { throw ConfigFileError(path: path, operation: "write", reason: fault) }
            s.files[rejectedPath] = s.files[path]
            s.files[path] = good
        }
    }
    public func replace(with text: String) throws { try write(path, text) }
    public func readFile(_ path: String) -> String? { file(path) }
    public func replaceFile(_ path: String, with text: String) throws { try write(path, text) }
}
