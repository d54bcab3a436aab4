import FoundationEssentials
import ServiceRouterCore
import ServiceRouterIO
import ServiceRouterController

/// `servicerouter socket`: the runtime socket by hand, like `socat stdio`, plus a readable slot table.
enum SocketCommand {
    static let specs: [FlagSpec] = [
        FlagSpec(["--haproxy-socket"], .value, value: "PATH", help: "HAProxy's admin stats socket", default: "/var/run/haproxy/admin.sock"),
        FlagSpec(["--timeout"], .value, value: "SECONDS", help: "how long to wait for HAProxy's reply", default: "5"),
    ] + Flags.help

    static var help: CommandHelp {
        CommandHelp(name: "socket", summary: """
            Send commands to HAProxy's runtime API and print the replies.
              servicerouter socket show info            one command (arguments joined by spaces)
              servicerouter socket < commands.txt       one command per line from standard input
              servicerouter socket servers [BACKEND]    `show servers state` as a table with decoded states
            """,
                    usage: "servicerouter socket [options] [COMMAND...]", specs: specs)
    }

    static func run(_ args: [String]) async throws -> Int32 {
        let a = try ArgumentParser.parse(args, specs: specs, allowPositional: true)
        if a.has("--help") {
            printOut(help.text)
            return 0
        }
        let socket = UnixRuntimeSocket(path: a.string("--haproxy-socket") ?? "/var/run/haproxy/admin.sock",
                                       timeout: try a.double("--timeout", default: 5, range: 0.1...600))
        if a.positional.first == "servers" {
            guard a.positional.count <= 2 else { throw UsageError("socket servers takes at most one BACKEND") }
            let backend = try a.positional.dropFirst().first.map { name -> ProxyName in
                do { return try ProxyName(name) } catch { throw UsageError("\(error)") }
            }
            let live = try await socket.liveState(backends: backend.map { [$0] })
            printOut(serversTable(live))
            return 0
        }
        if !a.positional.isEmpty {
            let line = a.positional.joined(separator: " ")
            guard !line.contains(where: \.isNewline) else { throw UsageError("a command may not contain a newline") }
            Console.standardOutput(try await socket.raw(line))
            return 0
        }
        while let line = readLine() {
            let trimmed = line.trimmingWhitespace()
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            Console.standardOutput(try await socket.raw(trimmed))
        }
        return 0
    }

    static func serversTable(_ live: LiveState) -> String {
        var rows: [[String]] = [["BACKEND", "SLOT", "ADDRESS", "ADMIN", "OPERATIONAL", "WEIGHT", "ADMIN_FLAGS"]]
        for b in live.backendOrder {
            for s in live.backends[b] ?? [] {
                rows.append([b.text, s.name.text, "\(s.address):\(s.port)", s.admin.rawValue, s.operationalName,
                             "\(s.userWeight)/\(s.initialWeight)", "0x" + String(s.adminFlags, radix: 16)])
            }
        }
        return PlanPrinter.table(rows)
    }
}
