import EdgyModel
import Foundation

/// Reads the destinations a jail was refused from nftables' JSON listing of its set.
enum EgressCounters {
    static func refusedDestinations(_ listing: String) -> [String] {
        for line in listing.split(separator: "\n") {
            guard let document = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let objects = document["nftables"] as? [[String: Any]] else { continue }
            for object in objects {
                if let set = object["set"] as? [String: Any], let elements = set["elem"] as? [Any] {
                    return Array(elements.compactMap(destination).sorted().prefix(NetworkReport.maxRefusedShown))
                }
            }
        }
        return []
    }

    /// `{"concat": ["198.51.100.9", "tcp", 8001]}` (possibly inside `{"elem": {"val": …}}`) →
    /// "198.51.100.9:8001/tcp".
    private static func destination(_ element: Any) -> String? {
        var value = element
        if let wrapped = (value as? [String: Any])?["elem"] as? [String: Any], let inner = wrapped["val"] { value = inner }
        guard let parts = (value as? [String: Any])?["concat"] as? [Any], parts.count == 3,
              let address = parts[0] as? String else { return nil }
        let proto = (parts[1] as? String) ?? "\(parts[1])"
        return "\(address):\(parts[2])/\(proto)"
    }
}
