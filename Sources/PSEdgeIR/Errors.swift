/// Every error a user can cause carries a message that names the thing that is wrong.
public struct PSEdgeError: Error, CustomStringConvertible, Sendable {
    public enum Kind: String, Sendable {
        case io, malformed, unsupported, invalidArgument, shape, internalError
    }
    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    public static func malformed(_ m: String) -> PSEdgeError { .init(.malformed, m) }
    public static func unsupported(_ m: String) -> PSEdgeError { .init(.unsupported, m) }
    public static func invalid(_ m: String) -> PSEdgeError { .init(.invalidArgument, m) }
    public static func shape(_ m: String) -> PSEdgeError { .init(.shape, m) }
    public static func io(_ m: String) -> PSEdgeError { .init(.io, m) }
}
