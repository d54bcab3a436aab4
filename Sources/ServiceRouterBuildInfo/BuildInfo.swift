/// What `servicerouter --version` prints besides the version: the commit the binary was built
/// from (`GeneratedBuildInfo.swift`, written by the BuildInfoPlugin before every build).
public enum BuildInfo {
    /// 12 hex digits, `-dirty` when tracked files differed from that commit, or `unknown` (a
    /// source tree without git, e.g. a Docker build given no `SERVICEROUTER_COMMIT`).
    public static let commit: String = generatedCommit
}
