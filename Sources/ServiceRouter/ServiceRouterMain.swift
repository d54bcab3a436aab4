import Foundation

public enum ServiceRouterMain {
    public static func run(_ arguments: [String]) async {
        print("servicerouter")
    }
}
