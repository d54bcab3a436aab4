/// Templates compiled once into literal bytes and placeholders, rendered straight into a byte
/// buffer: at 10,000 tasks one config renders 25,000 server lines, and scanning each template's
/// text again (with a dictionary of values per line) was most of a cold render. Same output as
/// `renderCharacters` on ASCII text (where a Character is a byte, except "\r\n", copied byte by
/// byte with the same result); any other text takes the Character path.
extension Template {
    public enum Segment: Sendable, Equatable {
        case literal([UInt8])
        /// `{name}`: the value, or (in a template marathon-lb never formatted) the text itself.
        case field(String)
    }

    /// nil when the template text is not ASCII.
    static func compile(_ text: String, formatted: Bool) -> [Segment]? {
        var source = text
        return source.withUTF8 { t -> [Segment]? in
            guard !t.contains(where: { $0 >= 0x80 }) else { return nil }
            var segments: [Segment] = []
            var literal: [UInt8] = []
            func flush() {
                if !literal.isEmpty { segments.append(.literal(literal)) }
                literal = []
            }
            let end = t.count
            var i = 0
            while i < end {
                let c = t[i]
                if c == 0x7B {  // "{"
                    let next = i + 1
                    if formatted, next < end, t[next] == 0x7B {
                        literal.append(0x7B)
                        i = next + 1
                        continue
                    }
                    if let close = t[next...].firstIndex(of: 0x7D), isIdentifier(bytes: t[next..<close]) {  // "}"
                        flush()
                        segments.append(.field(String(decoding: t[next..<close], as: UTF8.self)))
                        i = close + 1
                        continue
                    }
                    literal.append(0x7B)
                    i = next
                } else if c == 0x7D, formatted {
                    literal.append(0x7D)
                    i = (i + 1 < end && t[i + 1] == 0x7D) ? i + 2 : i + 1
                } else {
                    literal.append(c)
                    i += 1
                }
            }
            flush()
            return segments
        }
    }

    /// Renders the compiled segments; nil when the template is not ASCII.
    func renderASCII(_ values: [String: String]) throws -> String? {
        guard let segments else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count + 64)
        try render(segments, into: &out) { values[$0] }
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the rendered `segments` to `out`, asking `value` for each placeholder.
    func render(_ segments: [Segment], into out: inout [UInt8], value: (String) -> String?) throws {
        for s in segments {
            switch s {
            case .literal(let bytes): out.append(contentsOf: bytes)
            case .field(let name):
                if let v = value(name) {
                    out.append(contentsOf: v.utf8)
                } else if formatted {
                    throw RenderError(template: self.name, reason: "unknown placeholder {\(name)}")
                } else {
                    // Never formatted by marathon-lb: braces are literal.
                    out.append(0x7B)
                    out.append(contentsOf: name.utf8)
                    out.append(0x7D)
                }
            }
        }
    }

    /// `isIdentifier` on bytes.
    static func isIdentifier(bytes: Slice<UnsafeBufferPointer<UInt8>>) -> Bool {
        var first = true
        for b in bytes {
            let letter = (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x5F
            guard letter || (!first && b >= 0x30 && b <= 0x39) else { return false }
            first = false
        }
        return !first
    }
}
