/// IEEE half and bfloat16 <-> float conversions, independent of platform Float16 support.
@inlinable public func halfBitsToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    var exp = UInt32(h >> 10) & 0x1f
    var mant = UInt32(h & 0x3ff)
    if exp == 0 {
        if mant == 0 { return Float(bitPattern: sign) }
        // Subnormal: normalize.
        exp = 127 - 15 + 1
        while mant & 0x400 == 0 { mant <<= 1; exp -= 1 }
        mant &= 0x3ff
        return Float(bitPattern: sign | (exp << 23) | (mant << 13))
    }
    if exp == 0x1f { return Float(bitPattern: sign | 0x7f80_0000 | (mant << 13)) }
    return Float(bitPattern: sign | ((exp + 127 - 15) << 23) | (mant << 13))
}

/// Round-to-nearest-even float -> half.
@inlinable public func floatToHalfBits(_ f: Float) -> UInt16 {
    let x = f.bitPattern
    let sign = UInt16((x >> 16) & 0x8000)
    let exp = Int((x >> 23) & 0xff)
    var mant = x & 0x7f_ffff
    if exp == 0xff { return sign | 0x7c00 | (mant != 0 ? 0x200 : 0) }
    var e = exp - 127 + 15
    if e >= 0x1f { return sign | 0x7c00 }
    if e <= 0 {
        if e < -10 { return sign }
        mant |= 0x80_0000
        let shift = UInt32(14 - e)
        var half = mant >> shift
        let rem = mant & ((1 << shift) - 1)
        let halfway = UInt32(1) << (shift - 1)
        if rem > halfway || (rem == halfway && (half & 1) == 1) { half += 1 }
        return sign | UInt16(half)
    }
    var half = UInt32(e << 10) | (mant >> 13)
    let rem = mant & 0x1fff
    if rem > 0x1000 || (rem == 0x1000 && (half & 1) == 1) { half += 1 }
    e = Int(half >> 10)
    return sign | UInt16(truncatingIfNeeded: half)
}

@inlinable public func bfloatBitsToFloat(_ b: UInt16) -> Float { Float(bitPattern: UInt32(b) << 16) }

@inlinable public func floatToBfloatBits(_ f: Float) -> UInt16 {
    let x = f.bitPattern
    if f.isNaN { return UInt16(x >> 16) | 0x40 }
    let rounding = ((x >> 16) & 1) + 0x7fff
    return UInt16((x &+ rounding) >> 16)
}
