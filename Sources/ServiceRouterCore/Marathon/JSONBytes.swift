/// A strict JSON reader over bytes (RFC 8259, UTF-8 only). Every deviation throws `GiveUp`.
struct JSONBytes {
    typealias GiveUp = FastAppsDecoding.GiveUp
    private let b: UnsafeBufferPointer<UInt8>
    private var i = 0
    private var depth = 0
    /// JSONDecoder stops at 512 levels; well below that is enough for Marathon's answers.
    static let maxDepth = 100

    init(_ bytes: UnsafeBufferPointer<UInt8>) { b = bytes }

    var atEnd: Bool { i == b.count }
    var peek: UInt8? { i < b.count ? b[i] : nil }

    mutating func skipSpace() {
        while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 }
    }

    private mutating func expect(_ c: UInt8) throws {
        skipSpace()
        guard i < b.count, b[i] == c else { throw GiveUp() }
        i += 1
    }

    /// An object key: its bytes in the document (keys with escapes give up; Marathon writes none).
    struct Key: Equatable {
        let bytes: UnsafeBufferPointer<UInt8>
        var string: String { String(decoding: bytes, as: UTF8.self) }

        static func == (a: Key, b: Key) -> Bool { a.bytes.elementsEqual(b.bytes) }

        static func ~= (pattern: StaticString, key: Key) -> Bool {
            let n = pattern.utf8CodeUnitCount
            guard n == key.bytes.count else { return false }
            let p = pattern.utf8Start
            for k in 0..<n where p[k] != key.bytes[k] { return false }
            return true
        }
    }

    /// `{ "key": value, ... }`: `body` must consume each value.
    mutating func object(_ body: (inout JSONBytes, Key) throws -> Void) throws {
        try expect(UInt8(ascii: "{"))
        depth += 1
        guard depth <= Self.maxDepth else { throw GiveUp() }
        skipSpace()
        if peek == UInt8(ascii: "}") {
            i += 1
        } else {
            while true {
                let key = try keyBytes()
                try expect(UInt8(ascii: ":"))
                try body(&self, key)
                skipSpace()
                guard let c = peek else { throw GiveUp() }
                i += 1
                if c == UInt8(ascii: "}") { break }
                guard c == UInt8(ascii: ",") else { throw GiveUp() }
            }
        }
        depth -= 1
    }

    mutating func array(_ element: (inout JSONBytes) throws -> Void) throws {
        try expect(UInt8(ascii: "["))
        depth += 1
        guard depth <= Self.maxDepth else { throw GiveUp() }
        skipSpace()
        if peek == UInt8(ascii: "]") {
            i += 1
        } else {
            while true {
                try element(&self)
                skipSpace()
                guard let c = peek else { throw GiveUp() }
                i += 1
                if c == UInt8(ascii: "]") { break }
                guard c == UInt8(ascii: ",") else { throw GiveUp() }
            }
        }
        depth -= 1
    }

    /// `null` → nil; anything else is read by `value`.
    mutating func nullable<T>(_ value: (inout JSONBytes) throws -> T) throws -> T? {
        skipSpace()
        if literal("null") { return nil }
        return try value(&self)
    }

    private mutating func literal(_ word: StaticString) -> Bool {
        let n = word.utf8CodeUnitCount
        guard i + n <= b.count else { return false }
        for k in 0..<n where b[i + k] != word.utf8Start[k] { return false }
        i += n
        return true
    }

    mutating func bool() throws -> Bool {
        skipSpace()
        if literal("true") { return true }
        if literal("false") { return false }
        throw GiveUp()
    }

    private mutating func keyBytes() throws -> Key {
        skipSpace()
        guard peek == UInt8(ascii: "\"") else { throw GiveUp() }
        i += 1
        let start = i
        while true {
            guard i < b.count else { throw GiveUp() }
            let c = b[i]
            if c == UInt8(ascii: "\"") { break }
            guard c >= 0x20, c < 0x80, c != UInt8(ascii: "\\") else { throw GiveUp() }
            i += 1
        }
        i += 1
        return Key(bytes: UnsafeBufferPointer(rebasing: b[start..<(i - 1)]))
    }

    mutating func string() throws -> String {
        skipSpace()
        guard peek == UInt8(ascii: "\"") else { throw GiveUp() }
        i += 1
        let start = i
        var plain = true  // no escape, all ASCII
        while true {
            guard i < b.count else { throw GiveUp() }
            let c = b[i]
            if c == UInt8(ascii: "\"") { break }
            guard c >= 0x20 else { throw GiveUp() }  // control characters must be escaped
            if c == UInt8(ascii: "\\") {
                plain = false
                i += 2  // the escaped character, checked when decoding below
                continue
            }
            if c >= 0x80 { plain = false }
            i += 1
        }
        let raw = UnsafeBufferPointer(rebasing: b[start..<i])
        i += 1
        if plain { return String(decoding: raw, as: UTF8.self) }
        return try Self.decodeString(raw)
    }

    /// Escapes resolved, UTF-8 validated.
    private static func decodeString(_ raw: UnsafeBufferPointer<UInt8>) throws -> String {
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var k = 0
        func hex4(_ at: Int) throws -> UInt32 {
            guard at + 4 <= raw.count else { throw GiveUp() }
            var v: UInt32 = 0
            for j in at..<(at + 4) {
                let c = raw[j]
                let d: UInt8
                switch c {
                case 0x30...0x39: d = c - 0x30
                case 0x41...0x46: d = c - 0x41 + 10
                case 0x61...0x66: d = c - 0x61 + 10
                default: throw GiveUp()
                }
                v = v << 4 | UInt32(d)
            }
            return v
        }
        while k < raw.count {
            let c = raw[k]
            guard c == UInt8(ascii: "\\") else {
                out.append(c)
                k += 1
                continue
            }
            guard k + 1 < raw.count else { throw GiveUp() }
            let e = raw[k + 1]
            k += 2
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4(k)
                k += 4
                if (0xD800...0xDBFF).contains(scalar) {
                    // A surrogate pair; a lone surrogate gives up.
                    guard k + 6 <= raw.count, raw[k] == UInt8(ascii: "\\"), raw[k + 1] == UInt8(ascii: "u") else { throw GiveUp() }
                    let low = try hex4(k + 2)
                    guard (0xDC00...0xDFFF).contains(low) else { throw GiveUp() }
                    k += 6
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(scalar) {
                    throw GiveUp()
                }
                guard let u = Unicode.Scalar(scalar) else { throw GiveUp() }
                out.append(contentsOf: String(u).utf8)
            default: throw GiveUp()
            }
        }
        guard let s = String(validating: out, as: UTF8.self) else { throw GiveUp() }
        return s
    }

    /// The text of a JSON number (grammar checked) and whether it is a plain integer.
    private mutating func number() throws -> (text: UnsafeBufferPointer<UInt8>, integer: Bool) {
        skipSpace()
        let start = i
        if peek == UInt8(ascii: "-") { i += 1 }
        func digits(_ r: inout JSONBytes) -> Int {
            let s = r.i
            while r.i < r.b.count, r.b[r.i] >= 0x30, r.b[r.i] <= 0x39 { r.i += 1 }
            return r.i - s
        }
        let intStart = i
        let n = digits(&self)
        guard n > 0, !(n > 1 && b[intStart] == 0x30) else { throw GiveUp() }  // no leading zeros
        var integer = true
        if peek == UInt8(ascii: ".") {
            i += 1
            guard digits(&self) > 0 else { throw GiveUp() }
            integer = false
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            i += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { i += 1 }
            guard digits(&self) > 0 else { throw GiveUp() }
            integer = false
        }
        return (UnsafeBufferPointer(rebasing: b[start..<i]), integer)
    }

    /// What `FlexibleInt` decodes: an integer, or a float with an integral value below 1e12.
    /// Anything else gives up (the general path reports it).
    mutating func flexibleInt() throws -> FlexibleInt {
        let (text, integer) = try number()
        if integer {
            var v = 0
            let negative = text[0] == UInt8(ascii: "-")
            for c in text.dropFirst(negative ? 1 : 0) {
                let (m, o1) = v.multipliedReportingOverflow(by: 10)
                let (a, o2) = negative ? m.subtractingReportingOverflow(Int(c - 0x30)) : m.addingReportingOverflow(Int(c - 0x30))
                guard !o1, !o2 else { throw GiveUp() }
                v = a
            }
            return FlexibleInt(value: v)
        }
        guard let d = Double(String(decoding: text, as: UTF8.self)), d.isFinite, d == d.rounded(), abs(d) < 1e12 else {
            throw GiveUp()
        }
        return FlexibleInt(value: Int(d))
    }

    mutating func double() throws -> Double {
        let (text, _) = try number()
        guard let d = Double(String(decoding: text, as: UTF8.self)), d.isFinite else { throw GiveUp() }
        return d
    }

    /// Skips any value, checking its syntax.
    mutating func skipValue() throws {
        skipSpace()
        guard let c = peek else { throw GiveUp() }
        switch c {
        case UInt8(ascii: "{"): try object { r, _ in try r.skipValue() }
        case UInt8(ascii: "["): try array { try $0.skipValue() }
        case UInt8(ascii: "\""): _ = try string()
        case UInt8(ascii: "t"), UInt8(ascii: "f"): _ = try bool()
        case UInt8(ascii: "n"): guard literal("null") else { throw GiveUp() }
        default: _ = try number()
        }
    }
}
