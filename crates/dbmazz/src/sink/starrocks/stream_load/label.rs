//! Label rules shared by plain and transactional loads (spec §2): the length limit, and what a
//! label StarRocks already holds means.

use std::sync::OnceLock;

/// StarRocks refuses labels longer than this (spec §2).
const MAX_LABEL: usize = 128;

/// How many new labels one load may take before giving up: each one found taken means
/// another process loads the same rows (with one process there is never a second).
pub(super) const MAX_LOADS_AGAIN: u32 = 8;

/// What a label that StarRocks already holds as COMMITTED/VISIBLE (found on the *first* send,
/// so from an earlier run or an earlier load of the same rows) means for a load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LabelTaken {
    /// That load is this one and nothing has been loaded over it since: done. Snapshot
    /// chunks — a table's changes wait until its copy is complete.
    #[default]
    AlreadyLoaded,
    /// Load it again under a new label. Stream batches: a replay starts at the slot's
    /// position, behind what StarRocks holds, and re-applies older images of rows before it
    /// reaches this batch (another cut of the same changes gets other labels), so skipping
    /// it would leave those rows older than PostgreSQL — a deleted row back, an update lost.
    /// Loading it again is what the replay guarantee rests on (DESIGN §4).
    LoadAgain,
}

/// Labels are at most 128 characters: a longer one keeps its first 100 characters and ends
/// with a digest of the whole, so it stays deterministic and distinct.
pub fn fit_label(label: String) -> String {
    if label.len() <= MAX_LABEL {
        return label;
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, label.as_bytes());
    let hex: String = digest.as_ref()[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let cut = (0..=100)
        .rev()
        .find(|&index| label.is_char_boundary(index))
        .unwrap_or(0);
    format!("{}-{hex}", &label[..cut])
}

/// The label of the `again`-th new load of `label`'s rows in this process: unique to the
/// process, so a later run never takes it for its own.
pub fn load_again_label(label: &str, again: u32) -> String {
    fit_label(format!("{label}-r{:08x}{again}", process_tag()))
}

/// A random tag of this process (time and pid if the system has no randomness to give).
fn process_tag() -> u32 {
    static TAG: OnceLock<u32> = OnceLock::new();
    *TAG.get_or_init(|| {
        use ring::rand::SecureRandom;
        let mut bytes = [0u8; 4];
        if ring::rand::SystemRandom::new().fill(&mut bytes).is_ok() {
            return u32::from_le_bytes(bytes);
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.subsec_nanos());
        nanos ^ std::process::id().rotate_left(16)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(label: &str) -> bool {
        label.len() <= MAX_LABEL
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    }

    #[test]
    fn labels_loaded_again_are_new_valid_and_distinct() {
        let label = "dbmazz-slot-16384-100000010-0-100000010-3-0";
        let first = load_again_label(label, 1);
        let second = load_again_label(label, 2);
        assert!(first.starts_with(&format!("{label}-r")), "{first}");
        assert_ne!(first, second);
        assert!(valid(&first) && valid(&second));
        let longest = "x".repeat(MAX_LABEL);
        let again = load_again_label(&longest, 1);
        assert!(valid(&again), "{again}");
        assert_ne!(again, fit_label(longest.clone()));
        assert_ne!(again, load_again_label(&longest, 2));
    }

    #[test]
    fn long_labels_are_cut_with_a_digest() {
        let short = "a".repeat(MAX_LABEL);
        assert_eq!(fit_label(short.clone()), short);
        let long = format!("{short}b");
        let fitted = fit_label(long.clone());
        assert!(
            valid(&fitted) && fitted.starts_with(&"a".repeat(100)),
            "{fitted}"
        );
        assert_ne!(fitted, fit_label(format!("{short}c")));
        assert_eq!(fitted, fit_label(long));
    }
}
