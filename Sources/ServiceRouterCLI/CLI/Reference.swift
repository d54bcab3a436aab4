import MarathonSimulator
import ServiceRouterCore

/// A command's `--help`: the same text `docs/cli.md` is generated from (a test keeps them equal).
public struct CommandHelp: Sendable {
    public var name: String
    public var summary: String
    public var usage: String
    public var specs: [FlagSpec]

    public var text: String { ArgumentParser.help(command: name, summary: summary, usage: usage, specs: specs) }
}

/// Generated references: `docs/cli.md` and `docs/templates.md`.
public enum Reference {
    public static var commands: [CommandHelp] {
        [OnceCommand.help(.once), RunCommand.help, OnceCommand.help(.plan), OnceCommand.help(.render), OnceCommand.help(.status),
         ZDDCommand.help, SocketCommand.help, TemplatesCommand.help, DocsCommand.help, DemoCommand.help]
    }

    public static func cliMarkdown() -> String {
        var s = """
        # Command-line reference

        <!-- Generated from the commands' --help by `servicerouter docs --write docs`; a test keeps it in step. -->

        `servicerouter <command> [options]`. Every command answers `--help`; an unknown option or a bad value
        prints one line on standard error and exits with status 2. Flags marked *repeatable* may be given several
        times. Exit status: 0 success, 1 a failure (HAProxy or Marathon), 2 a usage error.

        | Command | What it does |
        |---|---|

        """
        for c in ServiceRouterMain.commands { s += "| `\(c.name)` | \(c.summary) |\n" }
        for c in commands {
            s += "\n## `\(c.name)`\n\n```\n\(c.text)```\n"
        }
        s += "\n## `sim`\n\n```\n\(SimulatorCommand.usage)\n```\n"
        return s
    }

    public static func templatesMarkdown() -> String {
        var s = """
        # Templates

        <!-- Generated from the built-in templates by `servicerouter docs --write docs`; a test keeps it in step. -->

        servicerouter renders haproxy.cfg from templates with marathon-lb's names. Override one by putting a file
        named after it in the directory given to `--templates-dir`, or with an environment variable of the same
        name (`\\n` for a newline; the environment wins, as in marathon-lb). `servicerouter templates --write DIR`
        writes every default into DIR; `haproxy/templates/` in the repository holds the same files. The container
        image passes `$MESOS_SANDBOX/templates` as `--templates-dir` when that directory exists, as marathon-lb's
        image copied it.

        Both sources treat a name alike. One of the templates only marathon-lb has (listed at the end) is refused
        from either, with servicerouter exiting 2 and naming it. A file in `--templates-dir` with any other
        `HAPROXY_` name that is not a template is refused with the closest template name; such an environment
        variable gets a warning with the closest name (the environment holds other things).

        `HAPROXY_GLOBAL_DEFAULT_OPTIONS` (marathon-lb's: comma-separated option names, default
        `redispatch,http-server-close,dontlognull`) sets the `option` lines of the default `HAPROXY_HEAD`; with
        `HAPROXY_HEAD` overridden it changes nothing, and a warning says so.

        Per-app overrides with `HAPROXY_{n}_<TEMPLATE>` labels are honoured only with `--enable-label-templates`
        (they let whoever deploys an app write arbitrary HAProxy config), and only for the templates marked
        *per app* below. Whatever the templates say, each backend keeps its slots: a server line must start with
        `server {serverName} {host_ipv4}:{port}` or the service is left out with an error.

        **Placeholders.** In *formatted* templates `{name}` is replaced, `{{`/`}}` are literal braces (Python's
        `str.format`, as in marathon-lb), and an unknown `{name}` is refused when the template is loaded. In the
        others every brace is literal and only the placeholders listed are replaced.

        """
        let perApp = LabelParser.overridableTemplates
        for e in DefaultTemplates.all {
            let t = Template(name: e.name, text: e.text, formatted: e.formatted)
            let placeholders = t.placeholders.isEmpty ? "none" : t.placeholders.map { "`{\($0)}`" }.joined(separator: ", ")
            s += "\n## `\(e.name)`\n\n\(e.summary)\n\n"
            s += "- \(e.formatted ? "formatted" : "not formatted"); \(perApp.contains(e.name) ? "per app (`HAPROXY_{n}_\(e.name.dropFirst(8))`)" : "global")\n"
            s += "- placeholders: \(placeholders)\n\n"
            s += e.text.isEmpty ? "Default: empty.\n" : "```\n\(e.text.hasSuffix("\n") ? e.text : e.text + "\n")```\n"
        }
        s += "\n## Templates only marathon-lb has\n\nAn override of one of these (file, environment variable) is refused; as an app label (`HAPROXY_{n}_…`) it gets a warning.\n\n| Template | Why, and what to use |\n|---|---|\n"
        for t in DefaultTemplates.marathonLBOnly { s += "| `\(t.name)` | \(t.why) |\n" }
        return s
    }
}
