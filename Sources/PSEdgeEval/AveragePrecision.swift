/// Average precision exactly as `sklearn.metrics.average_precision_score` defines it for binary labels:
///
///     AP = Σ_i (R_i − R_{i−1}) · P_i
///
/// over the *distinct* score values t_1 > t_2 > … (one threshold per distinct value, so tied scores enter
/// together), where P_i = TP(score ≥ t_i) / N(score ≥ t_i) and R_i = TP(score ≥ t_i) / TP_total, R_0 = 0.
/// Only thresholds holding a positive change R, so only those contribute. No interpolation.
public enum AveragePrecision {
    /// AP of `labels` ranked by `scores` (higher = more confident). 0 when there is no positive (sklearn warns
    /// and returns a meaningless value there; every caller in the protocol guards that case).
    public static func compute(labels: [Bool], scores: [Double]) -> Double {
        precondition(labels.count == scores.count)
        let positives = labels.reduce(0) { $0 + ($1 ? 1 : 0) }
        guard positives > 0 else { return 0 }
        let order = scores.indices.sorted { scores[$0] > scores[$1] }
        var ap = 0.0
        var tp = 0, n = 0, prevTP = 0
        var k = 0
        let total = Double(positives)
        while k < order.count {
            let t = scores[order[k]]
            // One threshold per distinct value: take the whole group of equal scores.
            while k < order.count && scores[order[k]] == t {
                if labels[order[k]] { tp += 1 }
                n += 1
                k += 1
            }
            if tp != prevTP {
                ap += (Double(tp) / total - Double(prevTP) / total) * (Double(tp) / Double(n))
                prevTP = tp
            }
        }
        return ap
    }

    /// The same quantity from counts, for when the positives are few and the negatives many (person search):
    /// `positives` are the scores of the true positives, `countAtLeast(t)` must return how many ranked items
    /// (positives and negatives) score ≥ t. Computed by `RankCounter`.
    static func fromThresholdCounts(distinct: [Double], positivesAt: [Int], cumulativeCounts: [Int]) -> Double {
        let total = Double(positivesAt.reduce(0, +))
        guard total > 0 else { return 0 }
        var ap = 0.0
        var tp = 0, prevTP = 0
        for i in distinct.indices {
            tp += positivesAt[i]
            ap += (Double(tp) / total - Double(prevTP) / total) * (Double(tp) / Double(cumulativeCounts[i]))
            prevTP = tp
        }
        return ap
    }
}

/// Ranks a query's gallery without sorting it: the thresholds are the distinct true-positive similarities
/// (descending); `add(_:)` drops every ranked item into the bucket [t_j, t_{j−1}) it falls in. Items below the
/// lowest threshold never matter to AP or top-k.
struct RankCounter {
    /// Distinct true-positive similarities, descending.
    var thresholds: [Double] = []
    /// How many true positives have exactly thresholds[i].
    var positivesAt: [Int] = []
    /// Items (positives included) in [thresholds[j], thresholds[j-1]).
    var bucket: [Int] = []

    mutating func reset(positives: inout [Double]) {
        positives.sort(by: >)
        thresholds.removeAll(keepingCapacity: true)
        positivesAt.removeAll(keepingCapacity: true)
        for p in positives {
            if let last = thresholds.last, last == p {
                positivesAt[positivesAt.count - 1] += 1
            } else {
                thresholds.append(p)
                positivesAt.append(1)
            }
        }
        bucket = [Int](repeating: 0, count: thresholds.count)
    }

    @inline(__always)
    mutating func add(_ s: Double) {
        let m = thresholds.count
        if m <= 8 {
            var j = 0
            while j < m {
                if thresholds[j] <= s { bucket[j] += 1; return }
                j += 1
            }
        } else {
            // First index with thresholds[j] <= s (thresholds descending).
            var lo = 0, hi = m
            while lo < hi {
                let mid = (lo + hi) >> 1
                if thresholds[mid] <= s { hi = mid } else { lo = mid + 1 }
            }
            if lo < m { bucket[lo] += 1 }
        }
    }

    /// N(score ≥ t_i) for every threshold.
    var cumulative: [Int] {
        var out = bucket
        for i in out.indices.dropFirst() { out[i] += out[i - 1] }
        return out
    }

    var averagePrecision: Double {
        AveragePrecision.fromThresholdCounts(distinct: thresholds, positivesAt: positivesAt, cumulativeCounts: cumulative)
    }

    /// Top-k hit: fewer than k negatives score at least the best true positive (ties rank negatives first).
    func hit(k: Int) -> Bool {
        guard let top = bucket.first else { return false }
        return top - positivesAt[0] < k
    }
}
