/// What `haproxy -c` said about a candidate config: the messages, and which lines and proxies
/// they name, so the services at fault can be found.
public struct ConfigCheckOutput: Sendable, Equatable {
    public var alerts: [String]
    public var lines: [Int]
    public var proxies: [String]

    public init(alerts: [String], lines: [Int], proxies: [String]) {
        self.alerts = alerts
        self.lines = lines
        self.proxies = proxies
    }

    /// Parses HAProxy 2.6's `[ALERT] ... parsing [<file>:<line>] : ...` and `... proxy '<name>' ...`
    /// messages. Only `[ALERT]` lines count.
    public static func parse(_ output: String) -> ConfigCheckOutput {
        var out = ConfigCheckOutput(alerts: [], lines: [], proxies: [])
        for raw in output.split(separator: "\n") where raw.contains("[ALERT]") {
            let line = String(raw)
            if line.contains("Error(s) found in configuration file") || line.contains("Fatal errors found") { continue }
            out.alerts.append(line)
            if let open = line.range(ofLiteral: "parsing ["), let close = line[open.upperBound...].firstIndex(of: "]") {
                let inside = line[open.upperBound..<close]
                if let colon = inside.lastIndex(of: ":"), let n = Int(inside[inside.index(after: colon)...]) { out.lines.append(n) }
            }
            for marker in ["roxy '", "ackend '", "rontend '"] {
                var rest = Substring(line)
                while let r = rest.range(ofLiteral: marker) {
                    let after = rest[r.upperBound...]
                    guard let end = after.firstIndex(of: "'") else { break }
                    out.proxies.append(String(after[..<end]))
                    rest = after[end...]
                }
            }
        }
        return out
    }
}

extension RenderedConfig {
    /// The backends (services) a config line or a proxy name belongs to: the line's own
    /// `frontend`/`backend`/`userlist` section, or, inside the shared frontends, the backend a rule
    /// names. Lines of servicerouter's own sections map to nothing.
    public func services(atLines lines: [Int], proxies: [String], among names: Set<ProxyName>) -> Set<ProxyName> {
        var out = Set<ProxyName>()
        for p in proxies {
            if let n = try? ProxyName(p), names.contains(n) { out.insert(n) }
        }
        guard !lines.isEmpty else { return out }
        let all = text.split(separator: "\n", omittingEmptySubsequences: false)
        for number in lines where number >= 1 && number <= all.count {
            // The section header above the line.
            var section: Substring = ""
            for i in stride(from: number - 1, through: 0, by: -1) where !all[i].hasPrefix(" ") && !all[i].isEmpty {
                section = all[i]
                break
            }
            let words = section.split(separator: " ")
            if words.count == 2, ["frontend", "backend"].contains(words[0]), let n = try? ProxyName(String(words[1])), names.contains(n) {
                out.insert(n)
                continue
            }
            if words.count == 2, words[0] == "userlist", words[1].hasPrefix("user_"),
               let n = try? ProxyName(String(words[1].dropFirst(5))), names.contains(n) {
                out.insert(n)
                continue
            }
            // A rule in a shared frontend: the backends it names, as whole words (a name that is
            // part of another, `bo_1000` in `bo_10000`, is not named by it).
            let tokens = all[number - 1].utf8.split { !ProxyName.allowed($0) }
            for w in tokens { if let n = try? ProxyName(String(decoding: w, as: UTF8.self)), names.contains(n) { out.insert(n) } }
        }
        return out
    }
}
