import Foundation
import Glibc

/// The state directory holds the database, the admin token and the audit log: it must be private.
/// At start-up the directory is made 0700 and its files 0600 whatever modes they had, and the
/// daemon refuses a directory (or a parent it relies on) that another user owns or could write,
/// since whoever can write there can replace the database or read the token.
enum StateDirectory {
    /// Checks ownership and writability of `path` and its parents, then tightens modes.
    static func secure(_ path: String) throws {
        let owner = geteuid()
        var current = ""
        let components = path.split(separator: "/")
        for (index, component) in ([""] + components.map(String.init)).enumerated() {
            current = index == 0 ? "/" : (current == "/" ? "" : current) + "/" + component
            var info = Glibc.stat()
            guard stat(current, &info) == 0 else { throw ConfigurationError("cannot inspect \(current): errno \(errno)") }
            guard info.st_uid == 0 || info.st_uid == owner else {
                throw ConfigurationError("refusing state directory \(path): \(current) is owned by uid \(info.st_uid), not by this user or root")
            }
            let writableByOthers = info.st_mode & (S_IWGRP | S_IWOTH) != 0
            let isStateDirectory = index == components.count
            // A sticky parent (like /tmp) lets others add entries but not replace or remove ours.
            if writableByOthers && (isStateDirectory || info.st_mode & S_ISVTX == 0) {
                throw ConfigurationError(
                    "refusing state directory \(path): \(current) is writable by group or others (mode \(String(info.st_mode & 0o7777, radix: 8))); make it writable by its owner only")
            }
            if isStateDirectory && info.st_uid != owner {
                throw ConfigurationError("refusing state directory \(path): it is owned by uid \(info.st_uid), not by this user")
            }
        }
        guard chmod(path, 0o700) == 0 else { throw ConfigurationError("cannot chmod \(path): errno \(errno)") }
        try tightenFiles(in: path)
    }

    /// Makes every regular file directly in `path` mode 0600 (the database and its -wal/-shm files,
    /// admin.token, audit.log). Symbolic links are refused rather than followed.
    static func tightenFiles(in path: String) throws {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        for name in names {
            let file = path + "/" + name
            var info = Glibc.stat()
            guard lstat(file, &info) == 0 else { continue }
            let type = info.st_mode & S_IFMT
            if type == S_IFLNK {
                throw ConfigurationError("refusing state directory \(path): \(file) is a symbolic link")
            }
            guard type == S_IFREG, info.st_mode & 0o7777 != 0o600 else { continue }
            guard chmod(file, 0o600) == 0 else { throw ConfigurationError("cannot chmod \(file): errno \(errno)") }
        }
    }
}
