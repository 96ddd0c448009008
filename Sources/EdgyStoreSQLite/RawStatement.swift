import GRDB
import GRDBSQLite

/// A cached statement stepped through SQLite's C API, for loops that run a statement once per
/// row (an attempt's hundred output files), where building GRDB argument arrays costs more than
/// SQLite's own work. Bindings stay until replaced; `reset` makes the statement ready to step
/// again. Text is copied into SQLite (`SQLITE_TRANSIENT`); `bindStatic` lends bytes instead.
struct RawStatement {
    private let statement: OpaquePointer
    private let connection: OpaquePointer

    init(_ db: Database, _ sql: String) throws {
        statement = try db.cachedStatement(sql: sql).sqliteStatement
        connection = db.sqliteConnection!
        sqlite3_reset(statement)
        sqlite3_clear_bindings(statement)
    }

    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    func bind(_ index: Int32, _ text: String) {
        var text = text
        text.withUTF8 { utf8 in
            _ = utf8.withMemoryRebound(to: CChar.self) { sqlite3_bind_text(statement, index, $0.baseAddress, Int32($0.count), Self.transient) }
        }
    }

    func bind(_ index: Int32, _ value: Int64) {
        sqlite3_bind_int64(statement, index, value)
    }

    /// The bytes must stay valid until the next `step` returns (`SQLITE_STATIC`).
    func bindStatic(_ index: Int32, _ bytes: UnsafeRawBufferPointer) {
        // A zero-length blob still needs a non-null pointer, or SQLite binds NULL.
        sqlite3_bind_blob(statement, index, bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(bytes.count), nil)
    }

    /// True when a row is ready to read, false when the statement is done.
    func step() throws -> Bool {
        let code = sqlite3_step(statement)
        switch code {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            sqlite3_reset(statement)
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(connection)))
        }
    }

    func bool(_ column: Int32) -> Bool {
        sqlite3_column_int64(statement, column) != 0
    }

    func reset() {
        sqlite3_reset(statement)
    }
}
