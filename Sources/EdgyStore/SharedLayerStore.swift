/// Where hosts that share a store keep the dependency layers they built, as compressed archives:
/// a host that needs a layer another host installed fetches it instead of installing it again.
/// The embedded SQLite store has one host and does without.
public protocol SharedLayerStore: Sendable {
    /// The archive of layer `key`, or nil when no host stored one (or the one stored no longer
    /// matches its checksum).
    func layerArchive(key: String) async throws -> [UInt8]?

    /// Stores the archive of layer `key`. The first archive of a key stays: equal keys are equal layers.
    func storeLayerArchive(key: String, archive: [UInt8]) async throws
}
