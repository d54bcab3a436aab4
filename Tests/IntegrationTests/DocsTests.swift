import Foundation
import Testing
import ServiceRouterCore
@testable import ServiceRouterController
@testable import ServiceRouterCLI
import ServiceRouterTestSupport

/// The references in docs/ are generated from the code or checked against it, so they cannot drift.
@Suite struct DocsTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func doc(_ name: String) throws -> String {
        try String(contentsOf: Self.root.appendingPathComponent("docs/" + name), encoding: .utf8)
    }

    @Test func cliReferenceMatchesHelp() throws {
        #expect(try doc("cli.md") == Reference.cliMarkdown(), "run `servicerouter docs --write docs`")
    }

    @Test func templatesReferenceMatchesTheBuiltInTemplates() throws {
        #expect(try doc("templates.md") == Reference.templatesMarkdown(), "run `servicerouter docs --write docs`")
    }

    @Test func everyLabelIsDocumented() throws {
        let labels = try doc("labels.md")
        for name in LabelParser.knownLabels {
            #expect(labels.contains("`HAPROXY_{n}_\(name)`"), "docs/labels.md lacks HAPROXY_{n}_\(name)")
        }
        #expect(labels.contains("`HAPROXY_GROUP`"))
    }

    /// docs/reliability.md names its tests as `Suite.test` (or a whole `Suite`): each must exist.
    @Test func reliabilityTableNamesExistingTests() throws {
        let doc = try doc("reliability.md")
        var sources = ""
        let tests = Self.root.appendingPathComponent("Tests")
        for case let url as URL in FileManager.default.enumerator(at: tests, includingPropertiesForKeys: nil) ?? .init()
            where url.pathExtension == "swift" {
            sources += try String(contentsOf: url, encoding: .utf8)
        }
        let names = try Regex(#"`([A-Z][A-Za-z]+)(\.([a-z][A-Za-z0-9]+))?`"#)
        var checked = 0
        for row in doc.split(separator: "\n") where row.hasPrefix("| ") {
            for match in row.matches(of: names) {
                guard let suite = match.output[1].substring.map(String.init), suite.hasSuffix("Tests") || suite == "MarathonClient" else { continue }
                let suiteExists = sources.contains("struct \(suite) ") || sources.contains("@Suite(\"\(suite)\"")
                #expect(suiteExists, "docs/reliability.md: no suite \(suite)")
                if let test = match.output[3].substring {
                    let testExists = sources.contains("func \(test)(")
                    #expect(testExists, "docs/reliability.md: no test \(suite).\(test)")
                }
                checked += 1
            }
        }
        #expect(checked > 40)
    }

    @Test func everyFlagIsInTheMigrationGuideOrCLIReference() throws {
        let guide = try doc("migrating-from-marathon-lb.md")
        // marathon-lb's flags: each is mapped (same name, replaced, or not needed).
        for flag in ["--marathon", "--group", "--haproxy-config", "--command", "--sse", "--health-check", "--strict-mode",
                     "--auth-credentials", "--marathon-auth-credential-file", "--marathon-ca-cert", "--ssl-certs",
                     "--dont-bind-http-https", "--haproxy-map", "--dry", "--max-backoff", "--log-format", "--log-level",
                     "--skip-validation", "--max-reload-retries", "--reload-interval", "--group-https-by-vhost",
                     "--min-serv-port-ip-per-task", "--lru-cache-capacity", "--archive-versions", "--syslog-socket",
                     "--dcos-auth-credentials", "--longhelp", "--skip-config-cleanup"] {
            #expect(guide.contains("`\(flag)`"), "the migration guide does not mention \(flag)")
        }
    }

    /// marathon-lb's flags as its users pass them: each is one `run` knows (accepted, ignored with
    /// a warning, or refused with its own message), never "unknown option" (exit 2 with nothing to
    /// go on), and the guide names each of servicerouter's own flags.
    static let marathonLBFlags = [
        "--longhelp", "--marathon", "-m", "--haproxy-config", "--group", "--command", "-c", "--max-reload-retries",
        "--reload-interval", "--strict-mode", "--sse", "-s", "--archive-versions", "--health-check", "-H",
        "--lru-cache-capacity", "--haproxy-map", "--dont-bind-http-https", "--group-https-by-vhost", "--ssl-certs",
        "--skip-validation", "--skip-config-cleanup", "--dry", "-d", "--max-backoff", "--syslog-socket", "--log-format",
        "--log-level", "--marathon-auth-credential-file", "--auth-credentials", "--dcos-auth-credentials", "--marathon-ca-cert",
    ]

    @Test func everyMarathonLBFlagIsKnownToRun() {
        let names = Set(RunCommand.specs.flatMap(\.names))
        for flag in Self.marathonLBFlags {
            #expect(names.contains(flag), "`servicerouter run \(flag)` would exit 2 as an unknown option")
        }
        // --min-serv-port-ip-per-task and --max-serv-port-ip-per-task come with the IP-per-task
        // service ports (built on another branch); add them to marathonLBFlags once they are here.
    }

    @Test func theMigrationGuideNamesEveryFlagOfRunAndOnce() throws {
        let guide = try doc("migrating-from-marathon-lb.md")
        let flags = Set((RunCommand.specs + OnceCommand.specs(.once)).map(\.canonical)).subtracting(["--help", "--version"])
        for flag in flags.sorted() {
            #expect(guide.contains("`\(flag)") || guide.contains("`run \(flag)"), "docs/migrating-from-marathon-lb.md does not mention \(flag)")
        }
        // Its claims about defaults that differ from marathon-lb's.
        #expect(guide.contains("`--max-backoff` (default 300 s) | same meaning, **default 30 s**"))
        #expect(RunCommand.specs.first { $0.canonical == "--max-backoff" }?.defaultText == "30")
        #expect(!guide.contains("not needed: servicerouter waits"), "ignored flags are said to be ignored, with a warning")
    }

    /// The operator docs describe flags that exist.
    @Test func noDocSaysListenDoesNotExist() throws {
        for name in ["operations.md", "migrating-from-marathon-lb.md"] {
            #expect(!(try doc(name)).contains("no `--listen` flag"), "\(name)")
        }
    }
}
