/// `Template.render` on UTF-8 bytes, for templates whose text is ASCII (all of marathon-lb's and
/// ours). Rendering walked the text Character by Character (grapheme breaking for every byte):
/// at 10,000 tasks the 50,000 server-line renders of one config were most of a full pass. On ASCII
/// text a Character is a byte, except "\r\n" (one Character, two bytes), which this copies byte by
/// byte with the same result, so the output is identical; any other text takes the Character path.
extension Template {
    /// nil when the template text is not ASCII.
    func renderASCII(_ values: [String: String]) throws -> String? {
        var source = text
        return try source.withUTF8 { t -> String? in
            guard !t.contains(where: { $0 >= 0x80 }) else { return nil }
            var out: [UInt8] = []
            out.reserveCapacity(t.count + 64)
            let end = t.count
            var i = 0
            while i < end {
                let c = t[i]
                if c == 0x7B {  // "{"
                    let next = i + 1
                    if formatted, next < end, t[next] == 0x7B {
                        out.append(0x7B)
                        i = next + 1
                        continue
                    }
                    if let close = t[next...].firstIndex(of: 0x7D) {  // "}"
                        let name = t[next..<close]
                        if Self.isIdentifier(bytes: name) {
                            let key = String(decoding: name, as: UTF8.self)
                            if let v = values[key] {
                                out.append(contentsOf: v.utf8)
                                i = close + 1
                                continue
                            }
                            if formatted {
                                throw RenderError(template: self.name, reason: "unknown placeholder {\(key)}")
                            }
                        }
                    }
                    out.append(0x7B)
                    i = next
                } else if c == 0x7D, formatted {
                    out.append(0x7D)
                    i = (i + 1 < end && t[i + 1] == 0x7D) ? i + 2 : i + 1
                } else {
                    out.append(c)
                    i += 1
                }
            }
            return String(decoding: out, as: UTF8.self)
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
