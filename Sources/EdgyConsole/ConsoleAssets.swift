/// The web console's files, compiled into the binary (SwiftPM `embedInCode`): edgyd serves them
/// at `/ui` with nothing fetched from elsewhere, at build time or at run time.
public enum ConsoleAssets {
    public struct Asset: Sendable {
        public let bytes: [UInt8]
        public let contentType: String
    }

    /// The asset served at `/ui/NAME` ("" for the page itself), or nil.
    public static func asset(_ name: String) -> Asset? {
        switch name {
        case "", "index.html": Asset(bytes: PackageResources.index_html, contentType: "text/html; charset=utf-8")
        case "app.js": Asset(bytes: PackageResources.app_js, contentType: "text/javascript; charset=utf-8")
        case "app.css": Asset(bytes: PackageResources.app_css, contentType: "text/css; charset=utf-8")
        default: nil
        }
    }

    /// The paths under `/ui` that have an asset.
    public static let paths = ["", "app.js", "app.css"]
}
