import PSEdgeIR

/// A person-search head's config.json: the model settings sit at the top level or under one of a few section names
/// ("config" in the parity fixtures, "head_config" in the shipped package); the file may also record input shapes
/// ("features", "inputs", "image_size_hw", "input": {height, width}) that give the builders their defaults.
struct HeadConfigFile {
    /// The whole file.
    let root: JSONField
    /// The model settings.
    var settings: ConfigReader

    init(path: String, sections: [String], what: String) throws {
        let whole = try ConfigReader(path: path, what: what)
        root = whole.root
        for s in sections {
            if let f = try whole.field(s), case .object = f.value {
                settings = ConfigReader(f, what: what)
                return
            }
        }
        settings = whole
    }

    /// The shape recorded for `name` under the top-level object `section` ({"p2": [1, 64, 32, 32], …}), if any.
    func recordedShape(_ section: String, _ name: String) throws -> [Int]? {
        guard let s = try root.optionalMember(section), case .object = s.value else { return nil }
        return try s.optionalMember(name).map { try $0.ints() }
    }

    /// The network input size (height, width) the file records: "image_size_hw", "image_size" or "input" {height,
    /// width}, looked up in the settings first, then at the top level.
    func imageSize() throws -> (height: Int, width: Int)? {
        for scope in [settings.root, root] {
            for key in ["image_size_hw", "image_size"] {
                if let f = try scope.optionalMember(key) {
                    let hw = try f.ints()
                    guard hw.count == 2 else { throw f.error("should be [height, width]") }
                    return (hw[0], hw[1])
                }
            }
            if let f = try scope.optionalMember("input"), case .object = f.value,
               let h = try f.optionalMember("height"), let w = try f.optionalMember("width") {
                return (try h.int(), try w.int())
            }
        }
        return nil
    }
}
