//! Random draws shared by the generator's modules.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// An index drawn with probability proportional to `weights`.
pub(crate) fn weighted(rng: &mut ChaCha8Rng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut x = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len().saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn weights_decide_the_frequencies() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut counts = [0u32; 3];
        for _ in 0..30_000 {
            counts[weighted(&mut rng, &[1.0, 0.0, 2.0])] += 1;
        }
        assert_eq!(counts[1], 0, "a zero weight is never drawn");
        let ratio = counts[2] as f64 / counts[0] as f64;
        assert!((1.9..2.1).contains(&ratio), "{counts:?}");
    }
}
