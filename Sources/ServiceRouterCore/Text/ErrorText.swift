import FoundationEssentials

extension Error {
    /// What full Foundation's `(error as NSError).localizedDescription` said for this error on
    /// Linux, without full Foundation: the error's own description if it is a `LocalizedError`,
    /// Foundation's sentence for a file error (`CocoaError`), else "The operation could not be
    /// completed. (<domain> error <code>.)".
    public var foundationDescription: String {
        if let e = self as? CocoaError {
            if let text = e.userInfo["NSLocalizedDescription"] as? String { return text }
            if let text = Self.cocoaFileErrorText[e.code.rawValue] {
                return "The operation could not be completed. " + text
            }
            return "The operation could not be completed. (NSCocoaErrorDomain error \(e.code.rawValue).)"
        }
        if let e = self as? any LocalizedError, let text = e.errorDescription { return text }
        return "The operation could not be completed. (\(_domain) error \(_code).)"
    }

    /// swift-corelibs-foundation's descriptions of the file error codes.
    private static var cocoaFileErrorText: [Int: String] {
        [
            4: "The file doesn’t exist.",
            255: "The file couldn’t be locked.",
            257: "You don’t have permission.",
            258: "The file name is invalid.",
            259: "The file isn’t in the correct format.",
            260: "The file doesn’t exist.",
            261: "The specified text encoding isn’t applicable.",
            262: "The specified URL type isn’t supported.",
            263: "The item is too large.",
            264: "The text encoding of the contents couldn’t be determined.",
            513: "You don’t have permission.",
            514: "The file name is invalid.",
            516: "A file with the same name already exists.",
            517: "The specified text encoding isn’t applicable.",
            518: "The specified URL type isn’t supported.",
            640: "There isn’t enough space.",
            642: "The volume is read only.",
        ]
    }
}
