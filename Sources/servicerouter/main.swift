import ServiceRouter
await ServiceRouterMain.run(CommandLine.arguments)
