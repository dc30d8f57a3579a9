/// Drawing on RGB images for annotated results and plots: rectangles, lines, and text in a 5×7 pixel font.
public struct Color: Sendable, Equatable {
    public var r: UInt8, g: UInt8, b: UInt8
    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) { (self.r, self.g, self.b) = (r, g, b) }
    public static let white = Color(255, 255, 255), black = Color(0, 0, 0), red = Color(230, 40, 40)
    public static let green = Color(40, 200, 60), blue = Color(40, 90, 230), gray = Color(150, 150, 150)
    public static let orange = Color(245, 150, 20), lightGray = Color(225, 225, 225)
}

extension RGB8Image {
    /// A blank image of one colour.
    public init(width: Int, height: Int, fill: Color) {
        var p = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) { (p[3 * i], p[3 * i + 1], p[3 * i + 2]) = (fill.r, fill.g, fill.b) }
        try! self.init(width: width, height: height, pixels: p)
    }

    public mutating func set(_ x: Int, _ y: Int, _ c: Color) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        let o = (y * width + x) * 3
        (pixels[o], pixels[o + 1], pixels[o + 2]) = (c.r, c.g, c.b)
    }

    public mutating func fillRect(x: Int, y: Int, width w: Int, height h: Int, _ c: Color) {
        for yy in max(0, y)..<max(max(0, y), min(height, y + h)) {
            for xx in max(0, x)..<max(max(0, x), min(width, x + w)) { set(xx, yy, c) }
        }
    }

    /// The outline of a box (corners in pixels), `thickness` pixels wide, inside the box.
    public mutating func strokeRect(x1: Double, y1: Double, x2: Double, y2: Double, _ c: Color, thickness: Int = 2) {
        let (a, b, e, f) = (Int(x1.rounded()), Int(y1.rounded()), Int(x2.rounded()), Int(y2.rounded()))
        fillRect(x: a, y: b, width: e - a, height: thickness, c)
        fillRect(x: a, y: f - thickness, width: e - a, height: thickness, c)
        fillRect(x: a, y: b, width: thickness, height: f - b, c)
        fillRect(x: e - thickness, y: b, width: thickness, height: f - b, c)
    }

    /// A straight line (Bresenham), `thickness` pixels square pen.
    public mutating func line(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, _ c: Color, thickness: Int = 1) {
        var (x, y) = (x0, y0)
        let dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1
        var err = dx + dy
        while true {
            fillRect(x: x - thickness / 2, y: y - thickness / 2, width: thickness, height: thickness, c)
            if x == x1 && y == y1 { break }
            let e2 = 2 * err
            if e2 >= dy { err += dy; x += sx }
            if e2 <= dx { err += dx; y += sy }
        }
    }

    /// Text in the built-in 5×7 font (upper-case letters, digits, a few symbols; lower case is drawn upper case),
    /// top-left at (x, y), each font pixel `scale`×`scale`. Returns the width drawn.
    @discardableResult
    public mutating func text(_ s: String, x: Int, y: Int, _ c: Color, scale: Int = 1) -> Int {
        var cx = x
        for ch in s.uppercased() {
            if let rows = Font5x7.glyphs[ch] {
                for (ry, row) in rows.enumerated() {
                    for rx in 0..<5 where row & (0x10 >> rx) != 0 {
                        fillRect(x: cx + rx * scale, y: y + ry * scale, width: scale, height: scale, c)
                    }
                }
            }
            cx += 6 * scale
        }
        return cx - x
    }

    public static func textWidth(_ s: String, scale: Int = 1) -> Int { s.count * 6 * scale }
}

/// 5×7 glyphs, one byte per row, bit 4 = leftmost column.
enum Font5x7 {
    static let glyphs: [Character: [UInt8]] = [
        "0": [14, 17, 19, 21, 25, 17, 14], "1": [4, 12, 4, 4, 4, 4, 14], "2": [14, 17, 1, 2, 4, 8, 31],
        "3": [31, 2, 4, 2, 1, 17, 14], "4": [2, 6, 10, 18, 31, 2, 2], "5": [31, 16, 30, 1, 1, 17, 14],
        "6": [6, 8, 16, 30, 17, 17, 14], "7": [31, 1, 2, 4, 8, 8, 8], "8": [14, 17, 17, 14, 17, 17, 14],
        "9": [14, 17, 17, 15, 1, 2, 12],
        "A": [14, 17, 17, 31, 17, 17, 17], "B": [30, 17, 17, 30, 17, 17, 30], "C": [14, 17, 16, 16, 16, 17, 14],
        "D": [28, 18, 17, 17, 17, 18, 28], "E": [31, 16, 16, 30, 16, 16, 31], "F": [31, 16, 16, 30, 16, 16, 16],
        "G": [14, 17, 16, 23, 17, 17, 15], "H": [17, 17, 17, 31, 17, 17, 17], "I": [14, 4, 4, 4, 4, 4, 14],
        "J": [7, 2, 2, 2, 2, 18, 12], "K": [17, 18, 20, 24, 20, 18, 17], "L": [16, 16, 16, 16, 16, 16, 31],
        "M": [17, 27, 21, 21, 17, 17, 17], "N": [17, 17, 25, 21, 19, 17, 17], "O": [14, 17, 17, 17, 17, 17, 14],
        "P": [30, 17, 17, 30, 16, 16, 16], "Q": [14, 17, 17, 17, 21, 18, 13], "R": [30, 17, 17, 30, 20, 18, 17],
        "S": [15, 16, 16, 14, 1, 1, 30], "T": [31, 4, 4, 4, 4, 4, 4], "U": [17, 17, 17, 17, 17, 17, 14],
        "V": [17, 17, 17, 17, 17, 10, 4], "W": [17, 17, 17, 21, 21, 21, 10], "X": [17, 17, 10, 4, 10, 17, 17],
        "Y": [17, 17, 17, 10, 4, 4, 4], "Z": [31, 1, 2, 4, 8, 16, 31],
        ".": [0, 0, 0, 0, 0, 12, 12], ",": [0, 0, 0, 0, 12, 4, 8], "-": [0, 0, 0, 31, 0, 0, 0],
        "+": [0, 4, 4, 31, 4, 4, 0], "%": [24, 25, 2, 4, 8, 19, 3], "/": [0, 1, 2, 4, 8, 16, 0],
        ":": [0, 12, 12, 0, 12, 12, 0], "(": [2, 4, 8, 8, 8, 4, 2], ")": [8, 4, 2, 2, 2, 4, 8],
        "=": [0, 0, 31, 0, 31, 0, 0], "#": [10, 10, 31, 10, 31, 10, 10], "_": [0, 0, 0, 0, 0, 0, 31],
        " ": [0, 0, 0, 0, 0, 0, 0],
    ]
}
