import Foundation
import ZIPFoundation

/// A sealed layer as one compressed file (zip, deflate), for hosts that share a store.
enum LayerArchive {
    struct ArchiveError: Error, CustomStringConvertible {
        var description: String
    }

    /// The layer at `path`, zipped, using `scratch` (a path prefix on the same disk) for the file.
    static func pack(_ path: String, scratch: String) throws(ArchiveError) -> [UInt8] {
        let zip = URL(fileURLWithPath: scratch + ".zip")
        defer { try? FileManager.default.removeItem(at: zip) }
        do {
            try FileManager.default.zipItem(
                at: URL(fileURLWithPath: path, isDirectory: true), to: zip, shouldKeepParent: false, compressionMethod: .deflate)
            return Array(try Data(contentsOf: zip))
        } catch {
            throw ArchiveError(description: "cannot archive the layer: \(error)")
        }
    }

    /// Unpacks `archive` and seals it at `destination` as an install would (`LayerTree.copy`:
    /// root's files, no special files, symlinks kept as links). Returns the layer's bytes.
    static func unpack(_ archive: [UInt8], to destination: String, scratch: String) throws(ArchiveError) -> UInt64 {
        let zip = URL(fileURLWithPath: scratch + ".zip")
        let unpacked = URL(fileURLWithPath: scratch + "-unpacked", isDirectory: true)
        defer {
            try? FileManager.default.removeItem(at: zip)
            LayerTree.remove(unpacked.path)
        }
        do {
            try Data(archive).write(to: zip)
            try FileManager.default.createDirectory(at: unpacked, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
            try FileManager.default.unzipItem(at: zip, to: unpacked)
        } catch {
            throw ArchiveError(description: "cannot unpack the layer: \(error)")
        }
        do {
            return try LayerTree.copy(from: unpacked.path, to: destination)
        } catch {
            throw ArchiveError(description: "cannot seal the unpacked layer: \(error.description)")
        }
    }
}
