import FoundationEssentials

/// `servicerouter docs --write DIR`: regenerates the generated references (`cli.md`,
/// `templates.md`) from the code, so they cannot drift from `--help` and the built-in templates.
enum DocsCommand {
    static let specs: [FlagSpec] = [
        FlagSpec(["--write"], .value, value: "DIR", help: "write cli.md and templates.md into DIR (default: print cli.md)"),
    ] + Flags.help

    static var help: CommandHelp {
        CommandHelp(name: "docs", summary: "Print the command-line reference, or write the generated references (cli.md, templates.md) into a directory.",
                    usage: "servicerouter docs [--write DIR]", specs: specs)
    }

    static func run(_ args: [String]) async throws -> Int32 {
        let a = try ArgumentParser.parse(args, specs: specs)
        if a.has("--help") {
            printOut(help.text)
            return 0
        }
        guard let dir = a.string("--write") else {
            printOut(Reference.cliMarkdown())
            return 0
        }
        try Reference.cliMarkdown().write(toFile: dir + "/cli.md", atomically: true, encoding: .utf8)
        try Reference.templatesMarkdown().write(toFile: dir + "/templates.md", atomically: true, encoding: .utf8)
        printOut("wrote \(dir)/cli.md and \(dir)/templates.md")
        return 0
    }
}
