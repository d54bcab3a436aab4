// Commands whose implementation lands with the simulator.
enum SimCommand {
    static func run(_ args: [String]) async throws -> Int32 { throw UsageError("sim: not available in this build yet") }
}
enum DemoCommand {
    static func run(_ args: [String]) async throws -> Int32 { throw UsageError("demo: not available in this build yet") }
}
