import Foundation
import Testing
import ServiceRouterCore
@testable import ServiceRouter

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
}
