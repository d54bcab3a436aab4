/// Marathon's `label=` selector for GET /v2/apps: comma-separated requirements, all of which
/// must hold: `key`, `key==value`, `key!=value`, `key in (a, b)`, `key notin (a, b)`.
/// A backslash escapes the next character (so values may contain `,` or `=`).
struct LabelSelector: Sendable, Equatable {
    enum Requirement: Sendable, Equatable {
        case exists(String)
        case equals(String, String)
        case notEquals(String, String)
        case isIn(String, Set<String>)
        case notIn(String, Set<String>)
    }

    var requirements: [Requirement]

    init?(_ text: String) {
        var parts: [String] = []
        var current = ""
        var depth = 0
        var escaped = false
        for c in text {
            if escaped {
                current.append("\\")
                current.append(c)
                escaped = false
                continue
            }
            switch c {
            case "\\": escaped = true
            case "(": depth += 1; current.append(c)
            case ")": depth -= 1; current.append(c)
            case "," where depth == 0:
                parts.append(current)
                current = ""
            default: current.append(c)
            }
        }
        parts.append(current)
        var reqs: [Requirement] = []
        for raw in parts {
            let part = raw.trimmingCharacters(in: " ")
            if part.isEmpty { continue }
            if let r = part.range(ofLiteral: "!=") {
                reqs.append(.notEquals(Self.unescape(part[..<r.lowerBound]), Self.unescape(part[r.upperBound...])))
            } else if let r = part.range(ofLiteral: "==") {
                reqs.append(.equals(Self.unescape(part[..<r.lowerBound]), Self.unescape(part[r.upperBound...])))
            } else if let r = part.range(ofLiteral: " notin ") {
                reqs.append(.notIn(Self.unescape(part[..<r.lowerBound]), Self.set(part[r.upperBound...])))
            } else if let r = part.range(ofLiteral: " in ") {
                reqs.append(.isIn(Self.unescape(part[..<r.lowerBound]), Self.set(part[r.upperBound...])))
            } else if part.contains(" ") || part.contains("=") {
                return nil
            } else {
                reqs.append(.exists(Self.unescape(Substring(part))))
            }
        }
        requirements = reqs
    }

    func matches(_ labels: [String: String]) -> Bool {
        requirements.allSatisfy { r in
            switch r {
            case .exists(let k): labels[k] != nil
            case .equals(let k, let v): labels[k] == v
            case .notEquals(let k, let v): labels[k] != v
            case .isIn(let k, let vs): labels[k].map { vs.contains($0) } ?? false
            case .notIn(let k, let vs): labels[k].map { !vs.contains($0) } ?? true
            }
        }
    }

    private static func unescape(_ s: Substring) -> String {
        var out = ""
        var escaped = false
        for c in s.trimmingCharacters(in: " ") {
            if escaped { out.append(c); escaped = false } else if c == "\\" { escaped = true } else { out.append(c) }
        }
        return out
    }

    private static func set(_ s: Substring) -> Set<String> {
        var body = s.trimmingCharacters(in: " ")
        if body.hasPrefix("(") { body.removeFirst() }
        if body.hasSuffix(")") { body.removeLast() }
        return Set(body.split(separator: ",").map { unescape($0) })
    }
}

extension StringProtocol {
    fileprivate func trimmingCharacters(in char: Character) -> String {
        var s = Substring(self)
        while s.first == char { s.removeFirst() }
        while s.last == char { s.removeLast() }
        return String(s)
    }
}
