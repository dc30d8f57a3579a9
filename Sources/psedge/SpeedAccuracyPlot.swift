import Foundation
import PSEdgeImage

/// The speed/accuracy plot of `psedge eval --model`: two panels, search mAP and detection AP (%) against median
/// latency per image (ms), one line per precision through its step counts, each point labelled with its step count.
enum SpeedAccuracyPlot {
    static func render(_ rows: [PipelineEvaluation.Row], title: String) -> RGB8Image {
        let left = panel(rows, title: title, metric: "MAP %") { $0.mAP }
        let right = panel(rows, title: "", metric: "DETECTION AP %") { $0.detAP }
        var out = RGB8Image(width: left.width + right.width, height: left.height, fill: .white)
        for y in 0..<left.height {
            for x in 0..<left.width { let (r, g, b) = left[x, y]; out.set(x, y, Color(r, g, b)) }
            for x in 0..<right.width { let (r, g, b) = right[x, y]; out.set(left.width + x, y, Color(r, g, b)) }
        }
        return out
    }

    static func panel(_ rows: [PipelineEvaluation.Row], title: String, metric: String, _ value: (PipelineEvaluation.Row) -> Double) -> RGB8Image {
        let (W, H) = (720, 480)
        let (left, right, top, bottom) = (80, 150, 50, 60)
        var img = RGB8Image(width: W, height: H, fill: .white)
        let xs = rows.map(\.latencyP50Ms), ys = rows.map { value($0) * 100 }
        let (x0, x1) = niceRange(xs.min() ?? 0, xs.max() ?? 1, includeZero: true)
        let (y0, y1) = niceRange(ys.min() ?? 0, ys.max() ?? 1, includeZero: false)
        let pw = W - left - right, ph = H - top - bottom
        func px(_ x: Double) -> Int { left + Int((x - x0) / (x1 - x0) * Double(pw)) }
        func py(_ y: Double) -> Int { top + ph - Int((y - y0) / (y1 - y0) * Double(ph)) }
        // Grid and ticks.
        for i in 0...5 {
            let xv = x0 + (x1 - x0) * Double(i) / 5, yv = y0 + (y1 - y0) * Double(i) / 5
            img.line(px(xv), top, px(xv), top + ph, .lightGray)
            img.line(left, py(yv), left + pw, py(yv), .lightGray)
            let xl = format(xv), yl = format(yv)
            img.text(xl, x: px(xv) - RGB8Image.textWidth(xl) / 2, y: top + ph + 8, .black)
            img.text(yl, x: left - 8 - RGB8Image.textWidth(yl), y: py(yv) - 3, .black)
        }
        img.line(left, top, left, top + ph, .black, thickness: 2)
        img.line(left, top + ph, left + pw, top + ph, .black, thickness: 2)
        let xlabel = "LATENCY P50 PER IMAGE (MS)"
        img.text(xlabel, x: left + pw / 2 - RGB8Image.textWidth(xlabel, scale: 2) / 2, y: H - 28, .black, scale: 2)
        img.text(metric, x: left - 24, y: top - 16, .black)
        img.text(title, x: left, y: 8, .black, scale: 2)
        let colors: [String: Color] = ["fp32": .blue, "int8": .orange]
        var legendY = top + 10
        for precision in Array(Set(rows.map(\.precision))).sorted() {
            let c = colors[precision] ?? .green
            let pts = rows.filter { $0.precision == precision }.sorted { $0.steps < $1.steps }
            for (a, b) in zip(pts, pts.dropFirst()) {
                img.line(px(a.latencyP50Ms), py(value(a) * 100), px(b.latencyP50Ms), py(value(b) * 100), c, thickness: 2)
            }
            for p in pts {
                img.fillRect(x: px(p.latencyP50Ms) - 4, y: py(value(p) * 100) - 4, width: 9, height: 9, c)
                img.text("\(p.steps)", x: px(p.latencyP50Ms) + 7, y: py(value(p) * 100) - 12, c, scale: 2)
            }
            img.fillRect(x: left + pw + 16, y: legendY, width: 14, height: 14, c)
            img.text(precision, x: left + pw + 36, y: legendY, .black, scale: 2)
            legendY += 24
        }
        img.text("LABEL = STEPS", x: left + pw + 16, y: legendY + 6, .gray)
        return img
    }

    static func niceRange(_ lo: Double, _ hi: Double, includeZero: Bool) -> (Double, Double) {
        var a = includeZero ? min(0, lo) : lo, b = hi
        if b - a < 1e-9 { a -= 1; b += 1 }
        let pad = (b - a) * 0.1
        if !includeZero || a < 0 { a -= pad }
        b += pad
        let step = pow(10, (log10((b - a) / 5)).rounded(.down))
        return ((a / step).rounded(.down) * step, (b / step).rounded(.up) * step)
    }

    static func format(_ v: Double) -> String { abs(v) >= 100 ? String(format: "%.0f", v) : String(format: "%.1f", v) }
}
