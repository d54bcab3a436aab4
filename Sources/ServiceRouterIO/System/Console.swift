#if canImport(Glibc)
import Glibc
#endif

/// Writes text straight to a file descriptor (standard output and error, log files): what
/// `FileHandle.write` did, without full Foundation. Writes everything, retrying after EINTR and
/// short writes; a descriptor that fails (closed pipe) drops the rest instead of trapping.
public enum Console {
    public static func standardOutput(_ text: String) { write(text, to: STDOUT_FILENO) }

    public static func standardError(_ text: String) { write(text, to: STDERR_FILENO) }

    public static func write(_ text: String, to fd: Int32) {
        var text = text
        text.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += n
            }
        }
    }
}
