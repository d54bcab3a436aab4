import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import ServiceRouterCore
import ServiceRouterIO
import ServiceRouterController
import ServiceRouterBuildInfo

/// Entry point of the `servicerouter` executable: picks the command, parses its flags, runs it.
public enum ServiceRouterMain {
    public static let version = "0.1.0"
    /// The commit the binary was built from (see BuildInfoPlugin).
    public static var commit: String { BuildInfo.commit }
    /// What `--version` prints.
    public static var versionLine: String { "servicerouter \(version) (commit \(commit))" }

    static let commands: [(name: String, summary: String)] = [
        ("once", "one full pass: fetch Marathon, then runtime commands or one validated reload (cron-friendly)"),
        ("run", "run continuously on Marathon's event stream, with periodic resyncs"),
        ("plan", "show what `once` would do: runtime commands, whether and why it would reload, the config diff"),
        ("render", "print the haproxy.cfg servicerouter would write"),
        ("status", "per backend: slot → task, address, HAProxy state, Marathon state"),
        ("zdd", "blue/green deploy of an app through Marathon (marathon-lb's zdd.py), with no HAProxy reload"),
        ("socket", "send runtime-API commands to HAProxy and print the replies; `socket servers [BACKEND]` for a slot table"),
        ("templates", "list the config templates, or write their defaults to a directory"),
        ("docs", "print the command-line reference, or regenerate docs/cli.md and docs/templates.md"),
        ("sse", "marathon-lb's image mode `sse`: the same as run"),
        ("poll", "marathon-lb's image mode `poll`: the same as once"),
        ("sim", "run the Marathon simulator (for tests, demos and benchmarks)"),
        ("demo", "start HAProxy, the simulator and the controller, and churn tasks under traffic"),
    ]

    public static func run(_ arguments: [String]) async -> Never {
        let code = await dispatch(Array(arguments.dropFirst()))
        exit(code)
    }

    public static func dispatch(_ args: [String]) async -> Int32 {
        guard let first = args.first else {
            print(usage())
            return 2
        }
        let rest = Array(args.dropFirst())
        // `servicerouter run --version` (any command but sim, whose options are its own): the
        // version, before any other option is looked at.
        if first != "sim", commands.contains(where: { $0.name == first }), rest.prefix(while: { $0 != "--" }).contains("--version") {
            print(versionLine)
            return 0
        }
        do {
            switch first {
            case "-h", "--help", "help": print(usage()); return 0
            case "--version", "version": print(versionLine); return 0
            case "once": return try await OnceCommand.run(rest, mode: .once)
            case "plan": return try await OnceCommand.run(rest, mode: .plan)
            case "render": return try await OnceCommand.run(rest, mode: .render)
            case "status": return try await OnceCommand.run(rest, mode: .status)
            case "socket": return try await SocketCommand.run(rest)
            case "zdd": return try await ZDDCommand.run(rest)
            case "run", "sse": return try await RunCommand.run(rest)
            case "poll": return try await OnceCommand.run(rest, mode: .once)
            case "templates": return try await TemplatesCommand.run(rest)
            case "docs": return try await DocsCommand.run(rest)
            case "sim": return try await SimCommand.run(rest)
            case "demo": return try await DemoCommand.run(rest)
            default:
                throw UsageError("unknown command '\(first)' (commands: \(commands.map(\.name).joined(separator: ", ")))")
            }
        } catch let e as UsageError {
            Console.standardError("servicerouter: \(e.message)\n")
            return 2
        } catch {
            Console.standardError("servicerouter: \(error)\n")
            return 1
        }
    }

    static func usage() -> String {
        var s = "servicerouter \(version): keeps HAProxy in step with Marathon through HAProxy's runtime API,\nreloading only when frontends change.\n\nUsage: servicerouter <command> [options]\n\nCommands:\n"
        for c in commands { s += "  " + c.name.padded(toLength: 10) + c.summary + "\n" }
        s += "\n`servicerouter <command> --help` lists a command's options. Docs: docs/cli.md."
        return s
    }
}

func printOut(_ s: String) {
    Console.standardOutput(s.hasSuffix("\n") ? s : s + "\n")
}
