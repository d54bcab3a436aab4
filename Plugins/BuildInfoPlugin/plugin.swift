import Foundation
import PackagePlugin

/// Writes `GeneratedBuildInfo.swift` (the commit the build comes from) before every build, so
/// `servicerouter --version` names it. A prebuild command runs on every build; the script rewrites
/// the file only when its text changes, so an unchanged tree recompiles nothing.
///
/// The commit is `SERVICEROUTER_COMMIT` when set (the Docker build, whose context has no `.git`),
/// else `git rev-parse --short=12 HEAD` in the package directory with `-dirty` when tracked files
/// differ from it, else `unknown`.
@main struct BuildInfoPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let output = context.pluginWorkDirectoryURL.appending(path: "generated")
        let script = #"""
            set -u
            out=$1 repo=$2
            mkdir -p "$out"
            commit=${SERVICEROUTER_COMMIT:-}
            if [ -z "$commit" ]; then
              commit=$(git -C "$repo" rev-parse --short=12 HEAD 2>/dev/null) || commit=unknown
              if [ "$commit" != unknown ] && [ -n "$(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
                commit="$commit-dirty"
              fi
            fi
            case $commit in *[!A-Za-z0-9._-]*) commit=unknown ;; esac
            text="let generatedCommit = \"$commit\""
            file="$out/GeneratedBuildInfo.swift"
            [ -f "$file" ] && [ "$(cat "$file")" = "$text" ] || printf '%s\n' "$text" > "$file"
            """#
        var environment: [String: String] = [:]
        if let commit = ProcessInfo.processInfo.environment["SERVICEROUTER_COMMIT"] { environment["SERVICEROUTER_COMMIT"] = commit }
        return [.prebuildCommand(displayName: "servicerouter build info (commit)", executable: URL(fileURLWithPath: "/bin/sh"),
                                 arguments: ["-c", script, "sh", output.path, context.package.directoryURL.path],
                                 environment: environment, outputFilesDirectory: output)]
    }
}
