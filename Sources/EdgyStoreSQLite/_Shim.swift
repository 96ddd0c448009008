// TEMPORARY: replaced by the sqlite branch at merge.
import EdgyAuth
import EdgyStore
public typealias SQLiteTaskStoreShimBase = InMemoryTaskStore
public enum SQLiteTaskStoreFactory {
    public static func open(path: String) throws -> (any TaskStore, any TokenStore) { (InMemoryTaskStore(), InMemoryTokenStore()) }
}
