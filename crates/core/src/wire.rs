//! Fixed-width integers read from byte slices. Every read is a bounds-checked `get`, never an
//! index: a short input gives `None`, never a panic (parsers read hostile bytes).

/// `N` bytes at `at`, if there.
pub fn array_at<const N: usize>(data: &[u8], at: usize) -> Option<[u8; N]> {
    data.get(at..at.checked_add(N)?)?.try_into().ok()
}

pub fn be16(data: &[u8], at: usize) -> Option<u16> {
    array_at(data, at).map(u16::from_be_bytes)
}

pub fn le16(data: &[u8], at: usize) -> Option<u16> {
    array_at(data, at).map(u16::from_le_bytes)
}

pub fn be32(data: &[u8], at: usize) -> Option<u32> {
    array_at(data, at).map(u32::from_be_bytes)
}

pub fn le32(data: &[u8], at: usize) -> Option<u32> {
    array_at(data, at).map(u32::from_le_bytes)
}

/// A 16-bit integer in the byte order a file header chose (pcap's magic, ELF's EI_DATA).
pub fn u16_at(data: &[u8], at: usize, big_endian: bool) -> Option<u16> {
    if big_endian {
        be16(data, at)
    } else {
        le16(data, at)
    }
}

/// A 32-bit integer in the byte order a file header chose.
pub fn u32_at(data: &[u8], at: usize, big_endian: bool) -> Option<u32> {
    if big_endian {
        be32(data, at)
    } else {
        le32(data, at)
    }
}

/// A 64-bit integer in the byte order a file header chose.
pub fn u64_at(data: &[u8], at: usize, big_endian: bool) -> Option<u64> {
    array_at(data, at).map(if big_endian {
        u64::from_be_bytes
    } else {
        u64::from_le_bytes
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_in_either_order_and_never_past_the_end() {
        let b = [1, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(be16(&b, 0), Some(0x0102));
        assert_eq!(le16(&b, 0), Some(0x0201));
        assert_eq!(be32(&b, 4), Some(0x0506_0708));
        assert_eq!(le32(&b, 4), Some(0x0807_0605));
        assert_eq!(u16_at(&b, 6, true), Some(0x0708));
        assert_eq!(u32_at(&b, 0, false), Some(0x0403_0201));
        assert_eq!(u64_at(&b, 0, true), Some(0x0102_0304_0506_0708));
        assert_eq!(be16(&b, 7), None);
        assert_eq!(be32(&b, 5), None);
        assert_eq!(u64_at(&b, 1, false), None);
        assert_eq!(be16(&b, usize::MAX), None);
    }
}
