/// An axis-aligned box in pixels, corners (x1, y1) top-left and (x2, y2) bottom-right.
public struct Box: Equatable, Sendable, CustomStringConvertible {
    public var x1: Float, y1: Float, x2: Float, y2: Float

    public init(_ x1: Float, _ y1: Float, _ x2: Float, _ y2: Float) {
        (self.x1, self.y1, self.x2, self.y2) = (x1, y1, x2, y2)
    }

    public var width: Float { x2 - x1 }
    public var height: Float { y2 - y1 }
    /// (x2 - x1)(y2 - y1), no +1 (torchvision).
    public var area: Float { (x2 - x1) * (y2 - y1) }
    public var array: [Float] { [x1, y1, x2, y2] }
    public var description: String { "(\(x1), \(y1), \(x2), \(y2))" }

    /// Clamps x to [0, width] and y to [0, height].
    public func clipped(width w: Float, height h: Float) -> Box {
        Box(min(max(x1, 0), w), min(max(y1, 0), h), min(max(x2, 0), w), min(max(y2, 0), h))
    }

    public func scaled(by s: Float) -> Box { Box(x1 * s, y1 * s, x2 * s, y2 * s) }

    /// inter / (area_a + area_b - inter); NaN for two empty boxes (0/0), which suppresses nothing in NMS.
    public func iou(_ o: Box) -> Float {
        let iw = max(min(x2, o.x2) - max(x1, o.x1), 0)
        let ih = max(min(y2, o.y2) - max(y1, o.y1), 0)
        let inter = iw * ih
        return inter / (area + o.area - inter)
    }

    /// Boxes from a flat [x1, y1, x2, y2, ...] array.
    public static func list(_ flat: [Float]) -> [Box] {
        stride(from: 0, to: flat.count - 3, by: 4).map { Box(flat[$0], flat[$0 + 1], flat[$0 + 2], flat[$0 + 3]) }
    }
}

/// Greedy non-maximum suppression (torchvision `nms`): visit boxes by descending score (ties: lower index first),
/// keep a box unless a kept box overlaps it with IoU > threshold (strict). Returns kept indices in visit order.
public func nonMaximumSuppression(_ boxes: [Box], scores: [Float], iouThreshold: Float) -> [Int] {
    precondition(boxes.count == scores.count)
    let order = descendingOrder(scores)
    var suppressed = [Bool](repeating: false, count: boxes.count)
    var keep: [Int] = []
    for (pos, i) in order.enumerated() where !suppressed[i] {
        keep.append(i)
        for j in order[(pos + 1)...] where !suppressed[j] && boxes[i].iou(boxes[j]) > iouThreshold {
            suppressed[j] = true
        }
    }
    return keep
}

/// Indices sorted by descending value; equal values keep their index order (a stable sort).
public func descendingOrder(_ values: [Float]) -> [Int] {
    values.indices.sorted { values[$0] > values[$1] || (values[$0] == values[$1] && $0 < $1) }
}
