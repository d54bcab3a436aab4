@testable import MarathonSimulator
import ServiceRouterCore

/// Every key path in a JSON document, arrays flattened to `[]`: `apps[].tasks[].healthCheckResults[].alive`.
/// Children of string maps (labels, env) are user data, not shape, and are left out.
func keyPaths(_ value: JSONValue, prefix: String = "") -> Set<String> {
    var out = Set<String>()
    switch value {
    case .object(let o):
        for (k, v) in o.pairs {
            let path = prefix.isEmpty ? k : "\(prefix).\(k)"
            out.insert(path)
            if k != "labels" && k != "env" { out.formUnion(keyPaths(v, prefix: path)) }
        }
    case .array(let a):
        for v in a { out.formUnion(keyPaths(v, prefix: prefix + "[]")) }
    default:
        break
    }
    return out
}
