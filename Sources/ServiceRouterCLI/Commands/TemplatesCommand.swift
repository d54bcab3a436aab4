import FoundationEssentials
import ServiceRouterCore

/// `servicerouter templates`: lists the templates, or writes the defaults into a directory so an
/// operator can edit copies and point `--templates-dir` at them.
enum TemplatesCommand {
    static let specs: [FlagSpec] = [
        FlagSpec(["--write"], .value, value: "DIR", help: "write every default template into DIR (one file per template)"),
    ] + Flags.help

    static var help: CommandHelp {
        CommandHelp(name: "templates", summary: "List the config templates (marathon-lb names), or write their defaults to a directory.",
                    usage: "servicerouter templates [--write DIR]", specs: specs)
    }

    static func run(_ args: [String]) async throws -> Int32 {
        let a = try ArgumentParser.parse(args, specs: specs)
        if a.has("--help") {
            printOut(help.text)
            return 0
        }
        if let dir = a.string("--write") {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            for e in DefaultTemplates.all {
                try e.text.write(toFile: dir + "/" + e.name, atomically: true, encoding: .utf8)
            }
            printOut("wrote \(DefaultTemplates.all.count) templates to \(dir)")
            return 0
        }
        for e in DefaultTemplates.all {
            let t = Template(name: e.name, text: e.text, formatted: e.formatted)
            printOut("\(e.name)  placeholders: \(t.placeholders.isEmpty ? "-" : t.placeholders.joined(separator: ", "))\n    \(e.summary)")
        }
        return 0
    }
}
