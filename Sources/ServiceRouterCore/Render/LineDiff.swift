/// A unified line diff (Myers' O(ND) algorithm), for `servicerouter plan`'s config diff.
public enum LineDiff {
    enum Op: Equatable { case same(String), del(String), add(String) }

    public static func unified(old: String, new: String, oldName: String = "current", newName: String = "planned", context: Int = 3) -> String {
        let a = old.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let b = new.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let ops = diff(a, b)
        guard ops.contains(where: { if case .same = $0 { false } else { true } }) else { return "" }
        var out = "--- \(oldName)\n+++ \(newName)\n"
        // Group changes into hunks with `context` unchanged lines around them.
        var i = 0
        var aLine = 1, bLine = 1
        var positions: [(Int, Int)] = []
        for op in ops {
            positions.append((aLine, bLine))
            switch op {
            case .same: aLine += 1; bLine += 1
            case .del: aLine += 1
            case .add: bLine += 1
            }
        }
        while i < ops.count {
            guard let firstChange = ops[i...].firstIndex(where: { if case .same = $0 { false } else { true } }) else { break }
            let start = max(i, firstChange - context)
            var end = firstChange
            var sameRun = 0
            var j = firstChange
            while j < ops.count {
                if case .same = ops[j] {
                    sameRun += 1
                    if sameRun > 2 * context { break }
                } else {
                    sameRun = 0
                    end = j
                }
                j += 1
            }
            let stop = min(ops.count, end + context + 1)
            var aCount = 0, bCount = 0
            var body = ""
            for op in ops[start..<stop] {
                switch op {
                case .same(let l): body += " \(l)\n"; aCount += 1; bCount += 1
                case .del(let l): body += "-\(l)\n"; aCount += 1
                case .add(let l): body += "+\(l)\n"; bCount += 1
                }
            }
            let (as_, bs) = positions[start]
            out += "@@ -\(as_),\(aCount) +\(bs),\(bCount) @@\n" + body
            i = stop
        }
        return out
    }

    /// Common prefix and suffix are matched first (configs mostly differ in a few places), and a
    /// middle with very many changes is shown as a block replacement to bound memory.
    static func diff(_ a: [String], _ b: [String]) -> [Op] {
        var p = 0
        while p < a.count, p < b.count, a[p] == b[p] { p += 1 }
        var sfx = 0
        while sfx < a.count - p, sfx < b.count - p, a[a.count - 1 - sfx] == b[b.count - 1 - sfx] { sfx += 1 }
        let midA = Array(a[p..<(a.count - sfx)]), midB = Array(b[p..<(b.count - sfx)])
        let middle: [Op] = (midA.count + midB.count > 4000 ? nil : myers(midA, midB))
            ?? midA.map { .del($0) } + midB.map { .add($0) }
        return a[..<p].map { .same($0) } + middle + a[(a.count - sfx)...].map { .same($0) }
    }

    /// nil when the texts differ in more than `maxEdits` lines: the trace kept for the backtrack
    /// grows with the square of the edit count.
    static func myers(_ a: [String], _ b: [String], maxEdits: Int = 1000) -> [Op]? {
        let n = a.count, m = b.count
        if n == 0 && m == 0 { return [] }
        let maxD = n + m
        var v = [Int](repeating: 0, count: 2 * maxD + 3)
        var trace: [[Int]] = []
        outer: for d in 0...maxD {
            if d > maxEdits { return nil }
            // Step d only reads diagonals -(d+1)...d+1 back: keep just those (offset d + 1).
            trace.append(Array(v[(maxD - d)...(maxD + 2 + d)]))
            for k in stride(from: -d, through: d, by: 2) {
                var x: Int
                if k == -d || (k != d && v[k - 1 + maxD + 1] < v[k + 1 + maxD + 1]) {
                    x = v[k + 1 + maxD + 1]
                } else {
                    x = v[k - 1 + maxD + 1] + 1
                }
                var y = x - k
                while x < n, y < m, a[x] == b[y] { x += 1; y += 1 }
                v[k + maxD + 1] = x
                if x >= n && y >= m { trace.append([]); break outer }
            }
        }
        // Backtrack.
        var ops: [Op] = []
        var x = n, y = m
        for d in stride(from: trace.count - 2, through: 0, by: -1) {
            let vd = trace[d]
            let k = x - y
            let prevK: Int
            if k == -d || (k != d && vd[k - 1 + d + 1] < vd[k + 1 + d + 1]) {
                prevK = k + 1
            } else {
                prevK = k - 1
            }
            let prevX = vd[prevK + d + 1]
            let prevY = prevX - prevK
            while x > prevX && y > prevY {
                ops.append(.same(a[x - 1])); x -= 1; y -= 1
            }
            if d > 0 {
                if x == prevX { ops.append(.add(b[y - 1])); y -= 1 } else { ops.append(.del(a[x - 1])); x -= 1 }
            }
        }
        while x > 0 && y > 0 { ops.append(.same(a[x - 1])); x -= 1; y -= 1 }
        return ops.reversed()
    }
}
