/// `servicerouter sim`: the Marathon simulator as a command (see Sources/MarathonSimulator/README.md).
import MarathonSimulator

enum SimCommand {
    static func run(_ args: [String]) async throws -> Int32 { await SimulatorCommand.run(arguments: args) }
}
