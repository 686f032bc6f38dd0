//! Helpers for tests of this workspace (and of applications embedding it): seeded file
//! content. Not part of the stable API.

/// `len` pseudo-random bytes from `seed` (xorshift64, the low byte of each state):
/// reproducible, incompressible, and no two chunks of a file alike, so no two share a CID.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn noise_is_reproducible_and_differs_by_seed() {
        assert_eq!(super::noise(1000, 7), super::noise(1000, 7));
        assert_ne!(super::noise(1000, 7), super::noise(1000, 8));
        let chunk = 256 * 1024;
        let data = super::noise(2 * chunk, 1);
        assert_ne!(data[..chunk], data[chunk..], "no two chunks alike");
    }
}
