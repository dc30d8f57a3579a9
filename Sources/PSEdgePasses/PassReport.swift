/// What the passes did, for `psedge convert --report` and for tests.
public struct PassReport: Sendable {
    public struct Entry: Sendable {
        public let pass: String
        public let message: String
    }
    public private(set) var entries: [Entry] = []

    public init() {}

    public mutating func add(_ pass: String, _ message: String) { entries.append(Entry(pass: pass, message: message)) }

    public var lines: [String] { entries.map { "[\($0.pass)] \($0.message)" } }
}
