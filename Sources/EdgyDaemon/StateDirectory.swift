import EdgyModel
import Foundation
import Glibc

/// The state directory holds the database, the admin token and the audit log: it must be private.
/// At start-up the directory is made 0711 and its files 0600 whatever modes they had, and the
/// daemon refuses a directory (or a parent it relies on) that another user owns or could write,
/// since whoever can write there can replace the database or read the token.
enum StateDirectory {
    /// Checks ownership and writability of `path` and its parents, then tightens modes.
    static func secure(_ path: String) throws {
        let owner = geteuid()
        var current = ""
        // Symbolic links among the parents (/var/run -> /run) are judged by what they point to.
        let components = URL(fileURLWithPath: path).resolvingSymlinksInPath().path.split(separator: "/")
        for (index, component) in ([""] + components.map(String.init)).enumerated() {
            current = index == 0 ? "/" : (current == "/" ? "" : current) + "/" + component
            guard let info = FileFacts(current) else { throw ConfigurationError("cannot inspect \(current): errno \(errno)") }
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
        // Search but no read for others: jails bind dependency layers from `layers/` by path (their
        // user is not the owner), and may not list or open anything else here.
        guard chmod(path, 0o711) == 0 else { throw ConfigurationError("cannot chmod \(path): errno \(errno)") }
        try tightenFiles(in: path)
    }

    /// Makes every regular file directly in `path` mode 0600 (the database and its -wal/-shm files,
    /// admin.token, audit.log). Symbolic links are refused rather than followed.
    static func tightenFiles(in path: String) throws {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        for name in names {
            let file = path + "/" + name
            guard let info = FileFacts(file) else { continue }
            let type = info.st_mode & S_IFMT
            if type == S_IFLNK {
                throw ConfigurationError("refusing state directory \(path): \(file) is a symbolic link")
            }
            guard type == S_IFREG, info.st_mode & 0o7777 != 0o600 else { continue }
            guard chmod(file, 0o600) == 0 else { throw ConfigurationError("cannot chmod \(file): errno \(errno)") }
        }
    }
}

/// What `lstat` says of a file: owner, and type and permission bits as in `st_mode`. Read through
/// FileManager, since naming Glibc's `struct stat` here fails in release builds, where the
/// type is attributed to the Dispatch module that Foundation brings in.
struct FileFacts {
    var st_uid: uid_t
    var st_mode: mode_t

    init?(_ path: String) {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
              let uid = (attributes[.ownerAccountID] as? NSNumber)?.uint32Value,
              let permissions = (attributes[.posixPermissions] as? NSNumber)?.uint32Value
        else { return nil }
        let type: mode_t
        switch attributes[.type] as? FileAttributeType {
        case .typeDirectory?: type = S_IFDIR
        case .typeSymbolicLink?: type = S_IFLNK
        case .typeRegular?: type = S_IFREG
        default: type = 0
        }
        st_uid = uid
        st_mode = type | mode_t(permissions)
    }
}
