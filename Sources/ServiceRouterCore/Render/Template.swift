/// A config template with marathon-lb's names and `{placeholder}` syntax.
///
/// Formatted templates follow Python's `str.format` as marathon-lb used it: `{name}` is replaced,
/// `{{`/`}}` are literal braces, and an unknown `{name}` is an error. Templates marathon-lb never
/// formatted (HEAD, the frontend heads, the option blocks) keep every brace literal; in those only
/// servicerouter's own documented placeholders (e.g. `{httpPort}`) are replaced.
public struct Template: Sendable, Equatable {
    public let name: String
    public let text: String
    public let formatted: Bool
    /// The text compiled (nil: not ASCII, rendered Character by Character).
    public let segments: [Segment]?

    public init(name: String, text: String, formatted: Bool) {
        self.name = name
        self.text = text
        self.formatted = formatted
        segments = Self.compile(text, formatted: formatted)
    }

    public static func == (a: Template, b: Template) -> Bool {
        a.name == b.name && a.text == b.text && a.formatted == b.formatted
    }

    public struct RenderError: Error, Sendable, Equatable, CustomStringConvertible {
        public var template: String
        public var reason: String
        public var description: String { "template \(template): \(reason)" }
    }

    public func render(_ values: [String: String]) throws -> String {
        if let fast = try renderASCII(values) { return fast }
        return try renderCharacters(values)
    }

    /// Any text, Character by Character (`renderASCII` is the same on ASCII text, faster).
    func renderCharacters(_ values: [String: String]) throws -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count + 64)
        var i = text.startIndex
        let end = text.endIndex
        while i < end {
            let c = text[i]
            if c == "{" {
                let next = text.index(after: i)
                if formatted, next < end, text[next] == "{" {
                    out.append("{")
                    i = text.index(after: next)
                    continue
                }
                if let close = text[next...].firstIndex(of: "}") {
                    let name = text[next..<close]
                    if Self.isIdentifier(name) {
                        if let v = values[String(name)] {
                            out += v
                            i = text.index(after: close)
                            continue
                        }
                        if formatted {
                            throw RenderError(template: self.name, reason: "unknown placeholder {\(name)}")
                        }
                    }
                }
                out.append("{")
                i = next
            } else if c == "}", formatted {
                let next = text.index(after: i)
                out.append("}")
                i = (next < end && text[next] == "}") ? text.index(after: next) : next
            } else {
                out.append(c)
                i = text.index(after: i)
            }
        }
        return out
    }

    /// ASCII letters, digits and `_`, not starting with a digit. On bytes: `Character.isLetter`
    /// looks up Unicode properties, and this runs for every placeholder of every server line.
    static func isIdentifier(_ s: Substring) -> Bool {
        var first = true
        for b in s.utf8 {
            let letter = (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x5F
            guard letter || (!first && b >= 0x30 && b <= 0x39) else { return false }
            first = false
        }
        return !first
    }

    /// The placeholders a template uses (for validation and docs).
    public var placeholders: [String] {
        var out: [String] = []
        var rest = Substring(text)
        while let open = rest.firstIndex(of: "{") {
            let after = rest[rest.index(after: open)...]
            if after.first == "{" { rest = after.dropFirst(); continue }
            guard let close = after.firstIndex(of: "}") else { break }
            let name = after[..<close]
            if Self.isIdentifier(name), !out.contains(String(name)) { out.append(String(name)) }
            rest = after[after.index(after: close)...]
        }
        return out
    }
}
