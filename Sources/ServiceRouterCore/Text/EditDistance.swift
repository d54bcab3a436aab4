/// Levenshtein distance and "did you mean": for names an operator typed (labels, templates).
public enum EditDistance {
    /// Insertions, deletions and substitutions turning `a` into `b`, on Unicode scalars.
    public static func between(_ a: String, _ b: String) -> Int {
        let x = Array(a.unicodeScalars), y = Array(b.unicodeScalars)
        if x.isEmpty { return y.count }
        if y.isEmpty { return x.count }
        var previous = Array(0...y.count)
        var current = [Int](repeating: 0, count: y.count + 1)
        for i in 1...x.count {
            current[0] = i
            for j in 1...y.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[y.count]
    }

    /// The candidate nearest to `name` (the first of equals, in the order given), when it is near
    /// enough to be a likely typo: at most a third of the name's length, and at least 1.
    public static func closest(to name: String, among candidates: some Sequence<String>) -> String? {
        var best: (name: String, distance: Int)?
        for c in candidates {
            let d = between(name, c)
            if best == nil || d < best!.distance { best = (c, d) }
        }
        guard let best, best.distance <= max(1, name.unicodeScalars.count / 3) else { return nil }
        return best.name
    }
}
