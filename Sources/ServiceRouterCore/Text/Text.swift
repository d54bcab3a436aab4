#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The few string operations the product used from full Foundation, which FoundationEssentials
// does not have (`String(format:)`, `trimmingCharacters(in:)`, `replacingOccurrences(of:with:)`,
// `range(of:)`, `padding(toLength:withPad:startingAt:)`). Each gives the output the Foundation
// call gave for the inputs the product passes (the tests compare them with Foundation itself).

extension StringProtocol {
    /// The first occurrence of `needle`, compared byte for byte (UTF-8); nil for an empty needle,
    /// like Foundation's `range(of:)`.
    public func range(ofLiteral needle: some StringProtocol) -> Range<String.Index>? {
        let n = Array(needle.utf8)
        guard let first = n.first else { return nil }
        let hay = utf8
        var i = hay.startIndex
        while i != hay.endIndex {
            if hay[i] == first {
                var h = hay.index(after: i), k = 1
                while k < n.count, h != hay.endIndex, hay[h] == n[k] { h = hay.index(after: h); k += 1 }
                if k == n.count { return i..<h }
            }
            i = hay.index(after: i)
        }
        return nil
    }

    /// Every occurrence of `target` replaced by `replacement`, left to right and not overlapping,
    /// like Foundation's `replacingOccurrences(of:with:)` (byte-for-byte comparison).
    public func replacingAll(_ target: some StringProtocol, with replacement: some StringProtocol) -> String {
        var rest = self[...]
        guard var r = rest.range(ofLiteral: target) else { return String(self) }
        var out = ""
        out.reserveCapacity(utf8.count)
        while true {
            out += rest[..<r.lowerBound]
            out += replacement
            rest = rest[r.upperBound...]
            guard let next = rest.range(ofLiteral: target) else { break }
            r = next
        }
        out += rest
        return out
    }

    /// The text without the leading and trailing Unicode scalars for which `drop` is true.
    public func trimmingScalars(where drop: (Unicode.Scalar) -> Bool) -> String {
        let scalars = unicodeScalars
        var lo = scalars.startIndex, hi = scalars.endIndex
        while lo != hi, drop(scalars[lo]) { lo = scalars.index(after: lo) }
        while hi != lo, drop(scalars[scalars.index(before: hi)]) { hi = scalars.index(before: hi) }
        return String(self[lo..<hi])
    }

    /// `trimmingCharacters(in: .whitespaces)`.
    public func trimmingWhitespace() -> String { trimmingScalars(where: \.isFoundationWhitespace) }

    /// `trimmingCharacters(in: .whitespacesAndNewlines)`.
    public func trimmingWhitespaceAndNewlines() -> String {
        trimmingScalars(where: \.isFoundationWhitespaceOrNewline)
    }

    /// `padding(toLength: length, withPad: " ", startingAt: 0)`: padded with spaces or cut to
    /// `length` UTF-16 code units.
    public func padded(toLength length: Int) -> String {
        let units = utf16.count
        if units < length { return String(self) + String(repeating: " ", count: length - units) }
        if units == length { return String(self) }
        return String(decoding: Array(utf16.prefix(Swift.max(0, length))), as: UTF16.self)
    }
}

extension Unicode.Scalar {
    /// A member of Foundation's `CharacterSet.whitespaces` (tab and the space separators).
    public var isFoundationWhitespace: Bool {
        switch value {
        case 0x09, 0x20, 0xA0, 0x1680, 0x2000...0x200B, 0x202F, 0x205F, 0x3000: return true
        default: return false
        }
    }

    /// A member of Foundation's `CharacterSet.whitespacesAndNewlines`.
    public var isFoundationWhitespaceOrNewline: Bool {
        switch value {
        case 0x0A...0x0D, 0x85, 0x2028, 0x2029: return true
        default: return isFoundationWhitespace
        }
    }
}

extension Double {
    /// `String(format: "%.<decimals>f", self)`: printf's fixed notation (round half to even on
    /// the binary value, "-0.0" for small negatives, "nan", "inf").
    public func fixed(_ decimals: Int) -> String { printf("%.*f", Int32(clamping: decimals)) }

    /// `String(format: "%.<digits>g", self)`: printf's shortest of fixed and exponent notation.
    public func significant(_ digits: Int) -> String { printf("%.*g", Int32(clamping: digits)) }

    private func printf(_ format: String, _ precision: Int32) -> String {
        withVaList([precision, self]) { args in
            var buffer = [CChar](repeating: 0, count: 64)
            let n = Int(buffer.withUnsafeMutableBufferPointer { vsnprintf($0.baseAddress, 64, format, args) })
            if n < 64 { return String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self) }
            return withVaList([precision, self]) { again in
                var big = [CChar](repeating: 0, count: n + 1)
                _ = big.withUnsafeMutableBufferPointer { vsnprintf($0.baseAddress, n + 1, format, again) }
                return String(decoding: big.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
        }
    }
}

extension BinaryInteger {
    /// `String(format: "%0<width>d", self)`: decimal, zero-padded to `width` characters
    /// including a minus sign.
    public func zeroPadded(_ width: Int) -> String {
        let digits = String(self.magnitude)
        let sign = self < 0 ? "-" : ""
        let pad = max(0, width - sign.count - digits.count)
        return sign + String(repeating: "0", count: pad) + digits
    }

    /// `String(format: "%0<width>x", self)` for non-negative values: lowercase hex, zero-padded.
    public func hexZeroPadded(_ width: Int) -> String {
        let digits = String(self, radix: 16)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}

extension StringProtocol {
    /// The part after the last `/` (the whole text without one).
    public var lastPathComponent: String {
        guard let slash = lastIndex(of: "/") else { return String(self) }
        return String(self[index(after: slash)...])
    }

    /// `(path as NSString).deletingLastPathComponent`: repeated slashes collapsed, a trailing
    /// slash ignored, then everything before the last slash ("/" for a top-level path, "" for a
    /// bare name; "" for "//" and "///" as swift-corelibs-foundation gave). Foundation trapped on
    /// one-character names ("a"); this gives "" for them, like any bare name.
    public var droppingLastPathComponent: String {
        if count > 1, allSatisfy({ $0 == "/" }) { return "" }
        var fixed = ""
        var previousSlash = false
        for c in self {
            if c == "/" {
                if previousSlash { continue }
                previousSlash = true
            } else {
                previousSlash = false
            }
            fixed.append(c)
        }
        if fixed.count > 1, fixed.hasSuffix("/") { fixed.removeLast() }
        if fixed == "/" || fixed.isEmpty { return fixed }
        guard let slash = fixed.lastIndex(of: "/") else { return "" }
        if slash == fixed.startIndex { return "/" }
        return String(fixed[..<slash])
    }
}
