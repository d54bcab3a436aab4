/// A small command-line parser (no packages): flags with values, repeatable flags, boolean
/// switches, `--flag=value`, and positional arguments. Errors are one line for the user.
public struct UsageError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

public struct FlagSpec: Sendable {
    public enum Kind: Sendable { case value, repeatable, multiValue, switchFlag }
    public var names: [String]
    public var kind: Kind
    public var valueName: String
    public var help: String
    public var defaultText: String?

    public init(_ names: [String], _ kind: Kind, value: String = "VALUE", help: String, default defaultText: String? = nil) {
        self.names = names
        self.kind = kind
        self.valueName = value
        self.help = help
        self.defaultText = defaultText
    }

    public var canonical: String { names.first { $0.hasPrefix("--") } ?? names[0] }
}

public struct ParsedArguments: Sendable {
    public var values: [String: [String]] = [:]
    public var switches: Set<String> = []
    public var positional: [String] = []

    public func string(_ flag: String) -> String? { values[flag]?.last }
    public func strings(_ flag: String) -> [String] { values[flag] ?? [] }
    public func has(_ flag: String) -> Bool { switches.contains(flag) || values[flag] != nil }

    public func int(_ flag: String, default d: Int, range: ClosedRange<Int>) throws -> Int {
        guard let s = string(flag) else { return d }
        guard let v = Int(s), range.contains(v) else {
            throw UsageError("\(flag): expected an integer in \(range.lowerBound)...\(range.upperBound), got '\(s)'")
        }
        return v
    }

    public func double(_ flag: String, default d: Double, range: ClosedRange<Double>) throws -> Double {
        guard let s = string(flag) else { return d }
        guard let v = Double(s), v.isFinite, range.contains(v) else {
            throw UsageError("\(flag): expected a number in \(range.lowerBound)...\(range.upperBound), got '\(s)'")
        }
        return v
    }
}

public enum ArgumentParser {
    public static func parse(_ args: [String], specs: [FlagSpec], allowPositional: Bool = false) throws -> ParsedArguments {
        var byName: [String: FlagSpec] = [:]
        for s in specs { for n in s.names { byName[n] = s } }
        var out = ParsedArguments()
        var i = 0
        var onlyPositional = false
        while i < args.count {
            let arg = args[i]
            i += 1
            if onlyPositional || !arg.hasPrefix("-") || arg == "-" {
                guard allowPositional else { throw UsageError("unexpected argument '\(arg)' (see --help)") }
                out.positional.append(arg)
                continue
            }
            if arg == "--" { onlyPositional = true; continue }
            var name = arg
            var inline: String?
            if arg.hasPrefix("--"), let eq = arg.firstIndex(of: "=") {
                name = String(arg[..<eq])
                inline = String(arg[arg.index(after: eq)...])
            }
            guard let spec = byName[name] else {
                throw UsageError("unknown option '\(name)' (see --help)")
            }
            let key = spec.canonical
            switch spec.kind {
            case .switchFlag:
                if inline != nil { throw UsageError("\(name) takes no value") }
                out.switches.insert(key)
            case .value, .repeatable:
                let v: String
                if let inline { v = inline } else {
                    guard i < args.count else { throw UsageError("\(name) needs a value (\(spec.valueName))") }
                    v = args[i]
                    i += 1
                }
                if spec.kind == .value { out.values[key] = [v] } else { out.values[key, default: []].append(v) }
            case .multiValue:
                // marathon-lb's nargs='+': `--marathon URL1 URL2`, also repeatable.
                var got: [String] = inline.map { [$0] } ?? []
                while inline == nil, i < args.count, !args[i].hasPrefix("-") {
                    got.append(args[i])
                    i += 1
                }
                guard !got.isEmpty else { throw UsageError("\(name) needs at least one value (\(spec.valueName))") }
                out.values[key, default: []] += got
            }
        }
        return out
    }

    /// `--help` text for a command.
    public static func help(command: String, summary: String, usage: String, specs: [FlagSpec]) -> String {
        var s = "\(summary)\n\nUsage: \(usage)\n\nOptions:\n"
        for spec in specs {
            var left = "  " + spec.names.joined(separator: ", ")
            if spec.kind != .switchFlag { left += " \(spec.valueName)" }
            var help = spec.help
            if let d = spec.defaultText { help += " (default: \(d))" }
            if spec.kind == .repeatable || spec.kind == .multiValue { help += " [repeatable]" }
            if left.count < 34 {
                s += left + String(repeating: " ", count: 34 - left.count) + help + "\n"
            } else {
                s += left + "\n" + String(repeating: " ", count: 34) + help + "\n"
            }
        }
        return s
    }
}
